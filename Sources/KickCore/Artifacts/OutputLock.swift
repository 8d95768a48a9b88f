import Foundation

/// An exclusive flock(2) on an output: two runs writing the same folder or
/// checkpoint would interleave their appends. The lock is a `.kick.lock`
/// file in the folder (or `.NAME.lock` beside a single output file) holding
/// the owner's pid; the kernel releases it when the process ends, however
/// it ends, so a killed run never leaves a stale lock. Taking it also clears
/// the temporaries killed runs left there.
public final class OutputLock: @unchecked Sendable {  // immutable after init
    public let path: String
    private let fd: Int32

    /// Locks folder `dir` (created if needed). Without `wait`, a held lock
    /// is an error `DIR: in use by process PID`; with it, blocks until free.
    public convenience init(folder dir: String, wait: Bool = false) throws {
        do { try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true) } catch {
            throw KickError("cannot create the folder: \(KickError.reason(of: error))", file: dir)
        }
        try self.init(lockFile: (dir as NSString).appendingPathComponent(".kick.lock"), owner: dir, wait: wait)
        AtomicFile.removeStale(in: dir)
    }

    /// Locks one output file's name, for writers of a single file.
    public convenience init(file: String, wait: Bool = false) throws {
        try AtomicFile.refuseNonRegular(file)  // before any lock file is made beside a device
        let url = URL(fileURLWithPath: file)
        let dir = url.deletingLastPathComponent().path
        do { try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true) } catch {
            throw KickError("cannot create its folder: \(KickError.reason(of: error))", file: file)
        }
        try self.init(lockFile: url.deletingLastPathComponent().appendingPathComponent(".\(url.lastPathComponent).lock").path,
                      owner: file, wait: wait)
        AtomicFile.removeStale(in: dir)
    }

    init(lockFile: String, owner: String, wait: Bool) throws {
        path = lockFile
        fd = open(lockFile, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw KickError("cannot open the lock \(lockFile): \(String(cString: strerror(errno)).lowercasedFirst)", file: owner) }
        if flock(fd, LOCK_EX | LOCK_NB) != 0 {
            guard errno == EWOULDBLOCK else {
                let e = errno
                close(fd)
                throw KickError("cannot lock \(lockFile): \(String(cString: strerror(e)).lowercasedFirst)", file: owner)
            }
            guard wait else {
                let holder = Self.holder(fd)
                close(fd)
                throw KickError("in use by process \(holder.map(String.init) ?? "(unknown)"); wait for it, or pass --wait", file: owner, code: .inUse)
            }
            while flock(fd, LOCK_EX) != 0 {
                if errno != EINTR { let e = errno; close(fd); throw KickError("cannot lock: \(String(cString: strerror(e)))", file: owner) }
            }
        }
        let pid = Data("\(getpid())\n".utf8)
        _ = ftruncate(fd, 0)
        _ = pid.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, 0) }
    }

    private static func holder(_ fd: Int32) -> Int32? {
        var buf = [UInt8](repeating: 0, count: 32)
        let n = buf.withUnsafeMutableBytes { pread(fd, $0.baseAddress, 31, 0) }
        guard n > 0 else { return nil }
        return Int32(String(decoding: buf[0..<n], as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines))
    }

    deinit { close(fd) }
}
