import Foundation

/// `<task>.jsonl` of a run: one typed record per scored item, appended and
/// flushed as soon as the item is scored, so a killed run loses only the
/// items in flight. A rerun reads it to skip what is done; a torn last line
/// (a kill mid-write) is dropped and rewritten. A line anywhere else that is
/// not a record of this task is corruption, not a kill, and stops the run
/// with its line number.
public final class TaskLog<Record: TaskRecord> {
    public let path: String
    public private(set) var records: [String: Record] = [:]
    public private(set) var order: [String] = []
    private var handle: FileHandle?

    public init(path: String) throws {
        self.path = path
        try FileManager.default.createDirectory(atPath: path.parentFolder, withIntermediateDirectories: true)
        if let d = try RegularFile.contents(atPath: path) {
            let (recs, good, torn) = try Self.parse(d, file: path)
            for r in recs { remember(r) }
            if torn || (d.last != nil && d.last != 0x0A) { try AtomicFile.write(good, to: path) }
        }
        if !FileManager.default.fileExists(atPath: path) { _ = FileManager.default.createFile(atPath: path, contents: nil) }
        guard let h = FileHandle(forWritingAtPath: path) else { throw KickError("cannot open for appending", file: path) }
        h.seekToEndOfFile()
        handle = h
    }

    deinit { try? handle?.close() }

    private func remember(_ r: Record) {
        if records[r.id] == nil { order.append(r.id) }
        records[r.id] = r
    }

    public func has(_ id: String) -> Bool { records[id] != nil }

    public func append(_ record: Record) throws {
        guard !record.id.isEmpty else { throw KickError("a log record needs an id", file: path) }
        var d = try LogLine.encode(record, file: path)
        d.append(0x0A)
        handle?.write(d)
        try handle?.synchronize()
        remember(record)
    }

    /// Records of a finished log (another configuration's, e.g. dense), by
    /// id; an absent log is empty.
    public static func read(path: String) throws -> [String: Record] {
        guard let d = try RegularFile.contents(atPath: path) else { return [:] }
        return Dictionary(try parse(d, file: path).records.map { ($0.id, $0) }, uniquingKeysWith: { _, b in b })
    }

    /// The records in file order, the well-formed bytes, and whether a torn
    /// last line was dropped; throws on a malformed line before the last.
    static func parse(_ d: Data, file: String) throws -> (records: [Record], good: Data, torn: Bool) {
        var recs: [Record] = []
        var good = Data()
        var bad: (line: Int, why: String)?
        let decoder = LogLine.decoder
        try JSONLines.forEach(data: d) { line, n in
            if let b = bad {
                throw KickError("line \(b.line) is not a log record (\(b.why)); the log is corrupt: remove that line, or rerun with --fresh",
                                file: file, code: .malformed)
            }
            do {
                let r = try decoder.decode(LogLine.Tagged<Record>.self, from: line).record
                guard !r.id.isEmpty else { bad = (n, "empty \"id\""); return }
                recs.append(r)
                good.append(line)
                good.append(0x0A)
            } catch let e as LogLine.SchemaMismatch {
                bad = (n, e.why)
            } catch {
                bad = (n, KickError.decoding(error))
            }
        }
        return (recs, good, bad != nil)
    }
}

/// How a log record is written as one line: its task's fields plus
/// `"schema": "kick.log/1"`, keys sorted, non-finite numbers as "nan"/"inf"
/// strings (read back as numbers), like every kick artifact.
enum LogLine {
    static let schema = "kick.log/1"

    fileprivate enum SchemaKey: String, CodingKey { case schema }

    /// A line whose schema is another version, or missing.
    struct SchemaMismatch: Error { var why: String }

    /// The record with the schema beside its own keys, written and read in one pass.
    struct Tagged<R> { var record: R }

    static func encode(_ value: some Encodable, file: String) throws -> Data {
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        enc.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        do { return try enc.encode(Tagged(record: value)) } catch { throw KickError("cannot encode a log record: \(error)", file: file) }
    }


    static var decoder: JSONDecoder {
        let dec = JSONDecoder()
        dec.nonConformingFloatDecodingStrategy = .convertFromString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return dec
    }
}

extension LogLine.Tagged: Encodable where R: Encodable {
    func encode(to encoder: Encoder) throws {
        try record.encode(to: encoder)
        var c = encoder.container(keyedBy: LogLine.SchemaKey.self)
        try c.encode(LogLine.schema, forKey: .schema)
    }
}

extension LogLine.Tagged: Decodable where R: Decodable {
    /// The schema is checked before the record's fields, so a log of another
    /// version is named as such rather than as a missing field.
    init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: LogLine.SchemaKey.self)
        switch try c.decodeIfPresent(String.self, forKey: .schema) {
        case LogLine.schema?: record = try R(from: decoder)
        case let other?: throw LogLine.SchemaMismatch(why: "schema \(KickError.quote(other)) is not \(LogLine.schema)")
        case nil: throw LogLine.SchemaMismatch(why: "no \"schema\" (a log from an older kick?)")
        }
    }
}
