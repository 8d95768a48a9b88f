import Foundation

/// `<task>.jsonl` of a run: one JSON object per scored item, appended and
/// flushed as soon as the item is scored, so a killed run loses only the
/// items in flight. A rerun reads it to skip what is done; a torn last line
/// (a kill mid-write) is dropped and rewritten. A malformed line anywhere
/// else is corruption, not a kill, and stops the run with its line number.
public final class TaskLog {
    public let path: String
    public private(set) var records: [String: [String: Any]] = [:]
    public private(set) var order: [String] = []
    private var handle: FileHandle?

    public init(path: String) throws {
        self.path = path
        try FileManager.default.createDirectory(atPath: path.parentFolder, withIntermediateDirectories: true)
        if let d = try RegularFile.contents(atPath: path) {
            let (recs, good, torn) = try Self.parse(d, file: path)
            for (id, o) in recs {
                if records[id] == nil { order.append(id) }
                records[id] = o
            }
            if torn || (d.last != nil && d.last != 0x0A) { try AtomicFile.write(good, to: path) }
        }
        if !FileManager.default.fileExists(atPath: path) { _ = FileManager.default.createFile(atPath: path, contents: nil) }
        guard let h = FileHandle(forWritingAtPath: path) else { throw KickError("cannot open for appending", file: path) }
        h.seekToEndOfFile()
        handle = h
    }

    deinit { try? handle?.close() }

    public func has(_ id: String) -> Bool { records[id] != nil }

    public func append(_ record: [String: Any]) throws {
        guard let id = record["id"] as? String else { throw KickError("a log record needs an id", file: path) }
        var d = try JSONOutput.data(record, file: path)
        d.append(0x0A)
        handle?.write(d)
        try handle?.synchronize()
        if records[id] == nil { order.append(id) }
        records[id] = record
    }

    /// Records of a finished log (another configuration's, e.g. dense), by id.
    public static func read(path: String) throws -> [String: [String: Any]] {
        guard let d = try RegularFile.contents(atPath: path) else { return [:] }
        return Dictionary(try parse(d, file: path).records, uniquingKeysWith: { _, b in b })
    }

    /// The records in file order, the well-formed bytes, and whether a torn
    /// last line was dropped; throws on a malformed line before the last.
    static func parse(_ d: Data, file: String) throws -> (records: [(String, [String: Any])], good: Data, torn: Bool) {
        var recs: [(String, [String: Any])] = []
        var good = Data()
        var bad: (line: Int, why: String)?
        try JSONLines.forEach(data: d) { line, n in
            if let b = bad {
                throw KickError("line \(b.line) is not a log record (\(b.why)); the log is corrupt: remove that line, or rerun with --fresh", file: file)
            }
            guard let o = (try? JSONSerialization.jsonObject(with: line)) as? [String: Any] else { bad = (n, "not a JSON object"); return }
            guard let id = o["id"] as? String, !id.isEmpty else { bad = (n, "no \"id\""); return }
            recs.append((id, o))
            good.append(line)
            good.append(0x0A)
        }
        return (recs, good, bad != nil)
    }
}
