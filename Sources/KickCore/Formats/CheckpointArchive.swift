import CArchive
import Foundation

/// Archives of configuration folders: pax tar through zstd (libarchive),
/// with a manifest of every member's sha256 as the last member. Extraction
/// stages into the target, verifies every hash, and refuses members that
/// could land outside it (absolute paths, `..`, links of any kind).
public enum CheckpointArchive {
    public static let manifestName = "kick-archive.json"
    // libarchive's AE_IFREG / AE_IFDIR (macros Swift does not import)
    static let fileTypeRegular: UInt32 = 0o100000
    static let fileTypeDirectory: UInt32 = 0o040000

    public struct Member: Codable, Sendable, Equatable {
        public var path: String
        public var size: Int
        public var sha256: String
    }

    public struct Manifest: Codable, Sendable {
        public var schema = "kick.archive/1"
        public var members: [Member]
    }

    /// Archives each folder under its own name, or under its path relative
    /// to `base` when given (compress/<config>, infer/<config>); returns the
    /// manifest.
    @discardableResult
    public static func create(_ out: String, folders: [String], relativeTo base: String? = nil) throws -> Manifest {
        let fm = FileManager.default
        var files: [(String, String)] = []  // (member path, disk path)
        for folder in folders {
            var isDir: ObjCBool = false
            guard fm.fileExists(atPath: folder, isDirectory: &isDir), isDir.boolValue else {
                throw KickError("not a folder", file: folder)
            }
            var prefix = (folder as NSString).lastPathComponent
            if let base {
                let b = URL(fileURLWithPath: base).standardizedFileURL.path + "/"
                let f = URL(fileURLWithPath: folder).standardizedFileURL.path
                guard f.hasPrefix(b) else { throw KickError("folder is not inside \(base)", file: folder) }
                prefix = String(f.dropFirst(b.count))
            }
            guard let walker = fm.enumerator(atPath: folder) else { throw KickError("cannot list", file: folder) }
            var rels: [String] = []
            while let rel = walker.nextObject() as? String {
                let full = (folder as NSString).appendingPathComponent(rel)
                let attrs = try fm.attributesOfItem(atPath: full)
                if attrs[.type] as? FileAttributeType == .typeRegular && !rel.contains("/.") && !rel.hasPrefix(".") { rels.append(rel) }
            }
            for rel in rels.sorted() { files.append(("\(prefix)/\(rel)", (folder as NSString).appendingPathComponent(rel))) }
        }
        guard !files.isEmpty else { throw KickError("nothing to archive", file: out) }
        let tmp = AtomicFile.temporaryPath(for: out)
        try fm.createDirectory(atPath: (out as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        guard let a = archive_write_new() else { throw KickError("libarchive: cannot allocate a writer", file: out) }
        defer { archive_write_free(a) }
        archive_write_add_filter_zstd(a)
        archive_write_set_format_pax_restricted(a)
        guard archive_write_open_filename(a, tmp) == ARCHIVE_OK else {
            throw KickError("cannot create: \(String(cString: archive_error_string(a)))", file: tmp)
        }
        var members: [Member] = []
        do {
            for (name, disk) in files {
                let data = try Data(contentsOf: URL(fileURLWithPath: disk), options: .alwaysMapped)
                try writeMember(a, name: name, data: data, file: out)
                members.append(Member(path: name, size: data.count, sha256: SHA256.hex(of: data)))
            }
            let enc = JSONEncoder()
            enc.outputFormatting = [.prettyPrinted, .sortedKeys]
            let manifest = Manifest(members: members)
            try writeMember(a, name: manifestName, data: try enc.encode(manifest), file: out)
            guard archive_write_close(a) == ARCHIVE_OK else { throw KickError("cannot finish: \(String(cString: archive_error_string(a)))", file: out) }
            try AtomicFile.replace(tmp, with: out)
            return manifest
        } catch {
            try? fm.removeItem(atPath: tmp)
            throw error
        }
    }

    private static func writeMember(_ a: OpaquePointer, name: String, data: Data, file: String) throws {
        guard let e = archive_entry_new() else { throw KickError("libarchive: cannot allocate an entry", file: file) }
        defer { archive_entry_free(e) }
        archive_entry_set_pathname(e, name)
        archive_entry_set_size(e, la_int64_t(data.count))
        archive_entry_set_filetype(e, fileTypeRegular)
        archive_entry_set_perm(e, 0o644)
        guard archive_write_header(a, e) == ARCHIVE_OK else {
            throw KickError("cannot write \(name): \(String(cString: archive_error_string(a)))", file: file)
        }
        try data.withUnsafeBytes { buf in
            var off = 0
            while off < buf.count {
                let n = archive_write_data(a, buf.baseAddress! + off, min(1 << 20, buf.count - off))
                guard n > 0 else { throw KickError("cannot write \(name): \(String(cString: archive_error_string(a)))", file: file) }
                off += n
            }
        }
    }

    /// A member name is safe when it is relative and never climbs out.
    static func isSafe(_ name: String) -> Bool {
        guard !name.isEmpty, !name.hasPrefix("/"), !name.contains("\\"), !name.contains("\0") else { return false }
        let parts = name.split(separator: "/", omittingEmptySubsequences: true)
        return !parts.isEmpty && !parts.contains("..") && !parts.contains(".")
    }

    /// Extracts into `target` after checking every member against the
    /// manifest; nothing is placed unless all of it verifies.
    @discardableResult
    public static func extract(_ archive: String, into target: String) throws -> Manifest {
        let fm = FileManager.default
        try fm.createDirectory(atPath: target, withIntermediateDirectories: true)
        let stage = (target as NSString).appendingPathComponent(".kick-extract-\(getpid())")
        try? fm.removeItem(atPath: stage)
        try fm.createDirectory(atPath: stage, withIntermediateDirectories: true)
        defer { try? fm.removeItem(atPath: stage) }
        return try ArchiveReader.withReader(archive) { a in try extract(a, archive: archive, stage: stage, into: target) }
    }

    private static func extract(_ a: OpaquePointer, archive: String, stage: String, into target: String) throws -> Manifest {
        let fm = FileManager.default
        var got: [String: Member] = [:]
        var manifestData: Data?
        var entry: OpaquePointer?
        while true {
            let r = archive_read_next_header(a, &entry)
            if r == ARCHIVE_EOF { break }
            guard r == ARCHIVE_OK || r == ARCHIVE_WARN, let e = entry else {
                throw KickError("corrupt archive: \(String(cString: archive_error_string(a)))", file: archive)
            }
            let name = archive_entry_pathname(e).map { String(cString: $0) } ?? ""
            guard isSafe(name) else { throw KickError("member '\(name)' would land outside the target; refusing the archive", file: archive) }
            let type = archive_entry_filetype(e)
            if type == fileTypeDirectory { continue }
            guard type == fileTypeRegular, archive_entry_hardlink(e) == nil, archive_entry_symlink(e) == nil else {
                throw KickError("member '\(name)' is a link or special file; refusing the archive", file: archive)
            }
            guard got[name] == nil, !(name == manifestName && manifestData != nil) else { throw KickError("member '\(name)' appears twice", file: archive) }
            var h = SHA256()
            var size = 0
            var data = Data()
            let dest = (stage as NSString).appendingPathComponent(name)
            var handle: FileHandle?
            if name != manifestName {
                try fm.createDirectory(atPath: (dest as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
                guard fm.createFile(atPath: dest, contents: nil) else { throw KickError("cannot create", file: dest) }
                handle = FileHandle(forWritingAtPath: dest)
            }
            var buf = [UInt8](repeating: 0, count: 1 << 20)
            while true {
                let n = buf.withUnsafeMutableBytes { archive_read_data(a, $0.baseAddress, $0.count) }
                if n == 0 { break }
                guard n > 0 else { throw KickError("corrupt member \(name): \(String(cString: archive_error_string(a)))", file: archive) }
                let chunk = Data(buf[0..<n])
                if let handle { try handle.write(contentsOf: chunk) } else { data.append(chunk) }
                h.update(chunk)
                size += n
            }
            try handle?.close()
            if name == manifestName { manifestData = data } else { got[name] = Member(path: name, size: size, sha256: h.finalize().hex) }
        }
        guard let md = manifestData, let manifest = try? JSONDecoder().decode(Manifest.self, from: md) else {
            throw KickError("archive has no readable \(manifestName)", file: archive)
        }
        let want = Dictionary(manifest.members.map { ($0.path, $0) }, uniquingKeysWith: { a, _ in a })
        for (name, m) in got where want[name] != m {
            throw KickError("member \(name) does not match the manifest (sha256 \(m.sha256))", file: archive)
        }
        for name in want.keys where got[name] == nil { throw KickError("member \(name) listed in the manifest is missing", file: archive) }
        for name in got.keys.sorted() {
            let dest = (target as NSString).appendingPathComponent(name)
            try fm.createDirectory(atPath: (dest as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            try AtomicFile.replace((stage as NSString).appendingPathComponent(name), with: dest)
        }
        return manifest
    }
}
