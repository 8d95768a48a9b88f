import Foundation

/// `<task>.jsonl` of a run: one JSON object per scored item, appended and
/// flushed as soon as the item is scored, so a killed run loses only the
/// items in flight. A rerun reads it to skip what is done; a torn last line
/// (a kill mid-write) is dropped and rewritten.
public final class TaskLog {
    public let path: String
    public private(set) var records: [String: [String: Any]] = [:]
    public private(set) var order: [String] = []
    private var handle: FileHandle?

    public init(path: String) throws {
        self.path = path
        try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        var good = Data()
        if let d = FileManager.default.contents(atPath: path) {
            var torn = false
            JSONLines.forEach(data: d) { line, _ in
                guard let o = (try? JSONSerialization.jsonObject(with: line)) as? [String: Any], let id = o["id"] as? String else { torn = true; return }
                if records[id] == nil { order.append(id) }
                records[id] = o
                good.append(line)
                good.append(0x0A)
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
        var d = try JSONSerialization.data(withJSONObject: record, options: [.sortedKeys, .withoutEscapingSlashes])
        d.append(0x0A)
        handle?.write(d)
        try handle?.synchronize()
        if records[id] == nil { order.append(id) }
        records[id] = record
    }

    /// Records of a finished log (another configuration's, e.g. dense), by id.
    public static func read(path: String) -> [String: [String: Any]] {
        guard let d = FileManager.default.contents(atPath: path) else { return [:] }
        var out: [String: [String: Any]] = [:]
        JSONLines.forEach(data: d) { line, _ in
            if let o = (try? JSONSerialization.jsonObject(with: line)) as? [String: Any], let id = o["id"] as? String { out[id] = o }
        }
        return out
    }
}
