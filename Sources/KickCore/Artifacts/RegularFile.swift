import Foundation

/// Reads whole files that must be regular files. Opening with O_NONBLOCK
/// means a FIFO or device planted where a file is expected cannot block the
/// open; it is then refused by its type, with a message naming it.
public enum RegularFile {
    /// Opens `path` for reading; nil when it does not exist; throws when it
    /// is not a regular file or cannot be opened.
    public static func open(_ path: String) throws -> Int32? {
        let fd = Foundation.open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else {
            if errno == ENOENT { return nil }
            throw KickError("cannot open: \(String(cString: strerror(errno)).lowercasedFirst)", file: path)
        }
        var st = stat()
        guard fstat(fd, &st) == 0 else { close(fd); throw KickError("cannot stat", file: path) }
        guard (st.st_mode & S_IFMT) == S_IFREG else {
            close(fd)
            throw KickError((st.st_mode & S_IFMT) == S_IFDIR ? "is a folder, not a file" : "not a regular file (a pipe, device or socket)", file: path, code: .refused)
        }
        return fd
    }

    /// The file's bytes; nil when it does not exist.
    public static func contents(atPath path: String) throws -> Data? {
        guard let fd = try open(path) else { return nil }
        let h = FileHandle(fileDescriptor: fd, closeOnDealloc: true)
        do { return try h.readToEnd() ?? Data() } catch {
            throw KickError("cannot read: \(KickError.reason(of: error))", file: path)
        }
    }

    /// The file's bytes; a missing file is an error naming it.
    public static func read(_ path: String, what: String = "file") throws -> Data {
        guard let d = try contents(atPath: path) else { throw KickError("\(what) not found", file: path, code: .notFound) }
        return d
    }
}

extension String {
    /// The folder a path lies in; "." for a bare file name, where
    /// NSString's deletingLastPathComponent gives "" (no folder to create).
    public var parentFolder: String {
        let p = (self as NSString).deletingLastPathComponent
        return p.isEmpty ? "." : p
    }
}
