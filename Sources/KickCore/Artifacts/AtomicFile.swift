import Foundation

/// Writes go to a temporary name beside the target and are renamed into
/// place, so an interrupted stage never leaves a half file under a final name.
/// Only regular files are ever replaced: a device node, a folder or a
/// symbolic link at the target is refused, never written through.
public enum AtomicFile {
    public static func write(_ data: Data, to path: String) throws {
        try write(to: path) { try $0.write(contentsOf: data) }
    }

    /// Streams a file through `body` into a temporary, renamed into place
    /// only when `body` returns.
    public static func write(to path: String, _ body: (FileHandle) throws -> Void) throws {
        let (tmp, fd) = try createTemporary(for: path)
        do {
            let h = FileHandle(fileDescriptor: fd, closeOnDealloc: true)
            try body(h)
            try h.close()
            try replace(tmp, with: path)
        } catch {
            unlink(tmp)
            if let k = error as? KickError { throw k }
            throw KickError("cannot write: \(KickError.reason(of: error))", file: path, code: .io, cause: error as NSError)
        }
    }

    public static func write(_ text: String, to path: String) throws {
        try write(Data(text.utf8), to: path)
    }

    /// rename(2): atomic on the same file system, replacing an old regular file.
    public static func replace(_ tmp: String, with path: String) throws {
        try refuseNonRegular(path)
        if rename(tmp, path) != 0 {
            throw KickError("cannot rename \(tmp) into place: \(String(cString: strerror(errno)).lowercasedFirst)", file: path)
        }
    }

    /// Throws unless `path` is absent or a regular file (not followed if a link).
    public static func refuseNonRegular(_ path: String) throws {
        var st = stat()
        guard lstat(path, &st) == 0 else { return }
        switch st.st_mode & S_IFMT {
        case S_IFREG: return
        case S_IFLNK: throw KickError("is a symbolic link; refusing to write through it", file: path, code: .refused)
        case S_IFDIR: throw KickError("is a folder; refusing to replace it", file: path, code: .refused)
        default: throw KickError("is not a regular file (a device, pipe or socket); refusing to replace it", file: path, code: .refused)
        }
    }

    /// Every writer's start: `path` must be absent or a regular file, its
    /// folder is created, and a fresh temporary beside it is opened with
    /// O_EXCL|O_NOFOLLOW (only this pid's own leftover is removed first), so
    /// nothing planted at either name is written through.
    public static func createTemporary(for path: String) throws -> (path: String, fd: Int32) {
        try refuseNonRegular(path)
        do { try FileManager.default.createDirectory(atPath: path.parentFolder, withIntermediateDirectories: true) } catch {
            throw KickError("cannot create its folder: \(KickError.reason(of: error))", file: path, code: .io)
        }
        let tmp = temporaryPath(for: path)
        unlink(tmp)
        let fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw KickError("cannot create: \(String(cString: strerror(errno)).lowercasedFirst)", file: tmp, code: .io) }
        return (tmp, fd)
    }

    /// A temporary path beside `path` for writers that stream.
    public static func temporaryPath(for path: String) -> String {
        let url = URL(fileURLWithPath: path)
        return url.deletingLastPathComponent().appendingPathComponent(".\(url.lastPathComponent).tmp-\(getpid())@\(hostName)").path
    }

    /// This machine's name, in temporaries: on a shared filesystem (Slurm
    /// jobs on several nodes) a pid says whether a writer is alive only on
    /// the machine that made it.
    public static let hostName: String = {
        var buf = [CChar](repeating: 0, count: 256)
        guard gethostname(&buf, buf.count - 1) == 0 else { return "localhost" }
        let name = String(decoding: buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        // '@' and '/' cannot appear in a host name; keep the file name parseable anyway
        return name.isEmpty ? "localhost" : String(name.map { $0 == "/" || $0 == "@" ? "_" : $0 })
    }()

    /// Removes the temporaries (`.NAME.tmp-PID@HOST`, or `.NAME.tmp-PID` as
    /// older runs named them) and extraction staging folders
    /// (`.kick-extract-PID`) that killed runs left in `dir`: those made on
    /// this machine whose process no longer exists. Another machine's
    /// temporary is left alone, whatever its pid. Returns what it removed.
    @discardableResult
    public static func removeStale(in dir: String) -> [String] {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: dir) else { return [] }
        var removed: [String] = []
        for n in names where n.hasPrefix(".") {
            let pidText: Substring
            if let r = n.range(of: ".tmp-", options: .backwards) {
                var rest = n[r.upperBound...]
                if let at = rest.firstIndex(of: "@") {
                    guard rest[rest.index(after: at)...] == hostName else { continue }
                    rest = rest[..<at]
                }
                pidText = rest
            }
            else if n.hasPrefix(".kick-extract-") { pidText = n.dropFirst(".kick-extract-".count) }
            else { continue }
            guard let pid = Int32(pidText), pid > 0, pid != getpid(), kill(pid, 0) != 0, errno == ESRCH else { continue }
            let full = (dir as NSString).appendingPathComponent(n)
            if (try? FileManager.default.removeItem(atPath: full)) != nil { removed.append(full) }
        }
        return removed
    }
}
