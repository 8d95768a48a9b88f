import Foundation

/// sha256 of a model or data input as manifests record it: a file's own
/// hash, or for a folder the hash of its files' names and hashes in order.
public enum InputHash {
    public static func of(path: String) throws -> String {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else { throw KickError("not found", file: path) }
        guard isDir.boolValue else { return try SHA256.hex(ofFile: path) }
        var h = SHA256()
        try hashFolder(path, prefix: "", into: &h)
        return h.finalize().hex
    }

    /// Files' relative names and hashes in sorted order, sub-folders included (hidden files skipped).
    static func hashFolder(_ path: String, prefix: String, into h: inout SHA256) throws {
        let names = try FileManager.default.contentsOfDirectory(atPath: path).filter { !$0.hasPrefix(".") }.sorted()
        for n in names {
            let p = (path as NSString).appendingPathComponent(n)
            var sub: ObjCBool = false
            _ = FileManager.default.fileExists(atPath: p, isDirectory: &sub)
            if sub.boolValue { try hashFolder(p, prefix: prefix + n + "/", into: &h); continue }
            h.update(prefix + n + " " + (try SHA256.hex(ofFile: p)) + "\n")
        }
    }
}
