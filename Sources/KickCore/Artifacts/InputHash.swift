import Foundation

/// sha256 of a model or data input as manifests record it: a file's own
/// hash, or for a folder the hash of its files' names and hashes in order.
public enum InputHash {
    /// One file of an input: its name relative to the input, size and sha256.
    public struct File: Codable, Sendable, Equatable {
        public var name: String
        public var bytes: Int
        public var sha256: String
    }

    public static func of(path: String) throws -> String {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else { throw KickError("not found", file: path) }
        guard isDir.boolValue else { return try SHA256.hex(ofFile: path) }
        return combined(try files(of: path))
    }

    /// The input's sha256 (as `of(path:)` gives it) and its files, hashed
    /// once, with progress on stderr under `label`; `names` as
    /// `names(of:)` gives them, when the caller has listed them already.
    public static func listing(of path: String, names given: [String]? = nil, label: String) throws -> (sha256: String, files: [File]) {
        let names = try given ?? names(of: path)
        let total = try names.reduce(0) { $0 + (try FileManager.default.attributesOfItem(atPath: path.joinedPath($1))[.size] as? Int ?? 0) }
        let files = try files(of: path, names: names, progress: ByteProgress(label: "\(label): \(names.count) file(s)", total: total))
        return (names == [""] ? files[0].sha256 : combined(files), files)
    }

    /// The folder hash from its files' list (in `files(of:)`'s order).
    public static func combined(_ files: [File]) -> String {
        var h = SHA256()
        for f in files { h.update(f.name + " " + f.sha256 + "\n") }
        return h.finalize().hex
    }

    /// Every file of a folder (hidden ones skipped), named relative to it,
    /// each folder's entries in sorted order with sub-folders in place; or
    /// the file itself. Files are hashed on every core at once: a model's
    /// shards are several GB each, and one SHA-256 stream runs below disk
    /// speed on a fast disk.
    public static func files(of path: String, names given: [String]? = nil, progress: ByteProgress? = nil) throws -> [File] {
        let names = try given ?? names(of: path)
        let paths = names.map { path.joinedPath($0) }
        let out = ResultSlots<File>(count: names.count)
        let next = ManagedAtomicIndex()
        let workers = min(names.count, max(1, ProcessInfo.processInfo.activeProcessorCount))
        DispatchQueue.concurrentPerform(iterations: workers) { _ in
            while let i = next.take(below: names.count) {
                let r = Result { () -> File in
                    let size = ((try? FileManager.default.attributesOfItem(atPath: paths[i])[.size]) as? Int) ?? 0
                    let hex = try SHA256.hex(ofFile: paths[i]) { progress?.advance(bytes: $0) }
                    return File(name: names[i].isEmpty ? (path as NSString).lastPathComponent : names[i], bytes: size, sha256: hex)
                }
                out.set(i, r)
            }
        }
        return try out.values()
    }

    /// The relative names `files(of:)` hashes: a plain file lists as the
    /// single name "" (itself).
    public static func names(of path: String) throws -> [String] {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else { throw KickError("not found", file: path) }
        if !isDir.boolValue { return [""] }
        var names: [String] = []
        try list(path, prefix: "", into: &names)
        return names
    }

    static func list(_ path: String, prefix: String, into names: inout [String]) throws {
        for n in try FileManager.default.contentsOfDirectory(atPath: path).filter({ !$0.hasPrefix(".") }).sorted() {
            let p = (path as NSString).appendingPathComponent(n)
            var sub: ObjCBool = false
            _ = FileManager.default.fileExists(atPath: p, isDirectory: &sub)
            if sub.boolValue { try list(p, prefix: prefix + n + "/", into: &names) } else { names.append(prefix + n) }
        }
    }
}

/// Results filled in by concurrent workers, one slot each.
final class ResultSlots<T>: @unchecked Sendable {
    private var slots: [Result<T, Error>?]
    private let lock = NSLock()

    init(count: Int) { slots = .init(repeating: nil, count: count) }

    func set(_ i: Int, _ r: Result<T, Error>) {
        lock.lock()
        slots[i] = r
        lock.unlock()
    }

    /// Every value in order, or the first error.
    func values() throws -> [T] { try slots.map { try $0!.get() } }
}

/// Hands out 0, 1, 2, … to concurrent workers.
final class ManagedAtomicIndex: @unchecked Sendable {
    private var value = 0
    private let lock = NSLock()

    func take(below n: Int) -> Int? {
        lock.lock()
        defer { lock.unlock() }
        guard value < n else { return nil }
        value += 1
        return value - 1
    }
}

extension String {
    /// This path with a relative name appended ("" is the path itself).
    func joinedPath(_ name: String) -> String { name.isEmpty ? self : (self as NSString).appendingPathComponent(name) }
}
