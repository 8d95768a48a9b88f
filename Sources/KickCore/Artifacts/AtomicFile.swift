import Foundation

/// Writes go to a temporary name beside the target and are renamed into
/// place, so an interrupted stage never leaves a half file under a final name.
public enum AtomicFile {
    public static func write(_ data: Data, to path: String) throws {
        let url = URL(fileURLWithPath: path)
        let dir = url.deletingLastPathComponent()
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let tmp = dir.appendingPathComponent(".\(url.lastPathComponent).tmp-\(getpid())")
        do {
            try data.write(to: tmp)
            try replace(tmp.path, with: path)
        } catch {
            try? FileManager.default.removeItem(at: tmp)
            throw KickError("cannot write: \(error.localizedDescription)", file: path)
        }
    }

    public static func write(_ text: String, to path: String) throws {
        try write(Data(text.utf8), to: path)
    }

    /// rename(2): atomic on the same file system, replacing any old file.
    public static func replace(_ tmp: String, with path: String) throws {
        if rename(tmp, path) != 0 {
            throw KickError("cannot rename \(tmp) into place: \(String(cString: strerror(errno)))", file: path)
        }
    }

    /// A temporary path beside `path` for writers that stream.
    public static func temporaryPath(for path: String) -> String {
        let url = URL(fileURLWithPath: path)
        return url.deletingLastPathComponent().appendingPathComponent(".\(url.lastPathComponent).tmp-\(getpid())").path
    }
}
