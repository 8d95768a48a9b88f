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
        let (tmp, fd) = try AtomicFile.createTemporary(for: out)
        defer { close(fd) }
        guard let a = archive_write_new() else { unlink(tmp); throw KickError("libarchive: cannot allocate a writer", file: out) }
        defer { archive_write_free(a) }
        archive_write_add_filter_zstd(a)
        archive_write_set_format_pax_restricted(a)
        guard archive_write_open_fd(a, fd) == ARCHIVE_OK else {
            unlink(tmp)
            throw KickError("cannot create: \(String(cString: archive_error_string(a)))", file: tmp)
        }
        // The manifest goes first: an extractor learns every member's size
        // before it writes a byte, so it can bound what it writes.
        var members: [Member] = []
        do {
            for (name, disk) in files {
                let data = try Data(contentsOf: URL(fileURLWithPath: disk), options: .alwaysMapped)
                members.append(Member(path: name, size: data.count, sha256: SHA256.hex(of: data)))
            }
            let enc = JSONEncoder()
            enc.outputFormatting = [.prettyPrinted, .sortedKeys]
            let manifest = Manifest(members: members)
            try writeMember(a, name: manifestName, data: try enc.encode(manifest), file: out)
            for ((name, disk), m) in zip(files, members) {
                let data = try Data(contentsOf: URL(fileURLWithPath: disk), options: .alwaysMapped)
                guard data.count == m.size else { throw KickError("changed while it was archived", file: disk) }
                try writeMember(a, name: name, data: data, file: out)
            }
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

    /// The default cap on what one extraction may write.
    public static let defaultMaxBytes = 64 << 30
    /// A manifest larger than this is not one kick wrote.
    static let maxManifestBytes = 64 << 20

    /// Extracts into `target` after checking every member against the
    /// manifest; nothing is placed unless all of it verifies. The manifest
    /// is read first, in a streaming pass that writes nothing, so that no
    /// member is written beyond its declared size, and the declared total is
    /// checked against `maxBytes` and the target's free space beforehand.
    @discardableResult
    public static func extract(_ archive: String, into target: String, maxBytes: Int = defaultMaxBytes) throws -> Manifest {
        let fm = FileManager.default
        guard let fd = try RegularFile.open(archive) else { throw KickError("archive not found", file: archive) }
        close(fd)
        let manifest = try ArchiveReader.withReader(archive) { try readManifest($0, archive: archive) }
        var declared: [String: Member] = [:]
        var total = 0
        for m in manifest.members {
            guard isSafe(m.path), m.path != manifestName else {
                throw KickError("manifest member '\(KickError.quote(m.path))' would land outside the target; refusing the archive", file: archive, code: .refused)
            }
            guard m.size >= 0, declared[m.path] == nil else { throw KickError("manifest lists '\(KickError.quote(m.path))' twice or with a negative size", file: archive) }
            declared[m.path] = m
            let (t, o) = total.addingReportingOverflow(m.size)
            guard !o else { throw KickError("manifest sizes overflow", file: archive) }
            total = t
        }
        guard total <= maxBytes else {
            throw KickError("the manifest declares \(total) bytes, over the limit of \(maxBytes) (raise it with --max-bytes)", file: archive, code: .refused)
        }
        try checkNoLinks(target, archive: archive)
        do { try fm.createDirectory(atPath: target, withIntermediateDirectories: true) } catch {
            throw KickError("cannot create the target: \(KickError.reason(of: error))", file: target)
        }
        var vfs = statvfs()
        if statvfs(target, &vfs) == 0 {
            let free = Int(vfs.f_bavail) &* Int(vfs.f_frsize)
            guard total <= free else { throw KickError("the archive holds \(total) bytes, the target's file system has \(free) free", file: target) }
        }
        AtomicFile.removeStale(in: target)
        let stage = (target as NSString).appendingPathComponent(".kick-extract-\(getpid())")
        try? fm.removeItem(atPath: stage)  // our own pid's leftover (removeItem does not follow a link)
        guard mkdir(stage, 0o700) == 0 else {
            throw KickError("cannot create the staging folder: \(String(cString: strerror(errno)).lowercasedFirst)", file: stage)
        }
        defer { try? fm.removeItem(atPath: stage) }
        try ArchiveReader.withReader(archive) { a in try extract(a, archive: archive, declared: declared, stage: stage) }
        for name in declared.keys.sorted() {
            let dest = (target as NSString).appendingPathComponent(name)
            try checkNoLinks(dest, archive: archive, below: target)
            try fm.createDirectory(atPath: dest.parentFolder, withIntermediateDirectories: true)
            try checkNoLinks(dest, archive: archive, below: target)
            try AtomicFile.replace((stage as NSString).appendingPathComponent(name), with: dest)
        }
        return manifest
    }

    /// Refuses a path (or, with `below`, any folder between `below` and it)
    /// that is a symbolic link: extraction must never write through one.
    static func checkNoLinks(_ path: String, archive: String, below base: String? = nil) throws {
        var paths = [path]
        if let base {
            var p = path.parentFolder
            while p.count > base.count, p.hasPrefix(base) { paths.append(p); p = p.parentFolder }
            paths.append(base)
        }
        for p in paths {
            var st = stat()
            if lstat(p, &st) == 0, (st.st_mode & S_IFMT) == S_IFLNK {
                throw KickError("is a symbolic link; refusing to extract \(archive) through it", file: p, code: .refused)
            }
        }
    }

    /// The first pass: finds the manifest (first in kick's archives, after
    /// the members in older ones) while skipping member data unwritten.
    private static func readManifest(_ a: OpaquePointer, archive: String) throws -> Manifest {
        var data: Data?
        try ArchiveReader.forEachEntry(a, label: archive) { _, name in
            guard name == manifestName else { archive_read_data_skip(a); return true }
            var d = Data()
            try ArchiveReader.readData(a, label: archive, member: name) { chunk in
                d.append(contentsOf: chunk)
                guard d.count <= maxManifestBytes else { throw KickError("\(manifestName) is over \(maxManifestBytes) bytes", file: archive) }
            }
            data = d
            return false
        }
        guard let data else { throw KickError("archive has no \(manifestName); only archives kick-compress wrote can be extracted", file: archive) }
        do { return try JSONDecoder().decode(Manifest.self, from: data) } catch {
            throw KickError("\(manifestName) is not a kick.archive/1 manifest", file: archive)
        }
    }

    private static func extract(_ a: OpaquePointer, archive: String, declared: [String: Member], stage: String) throws {
        let fm = FileManager.default
        var got: [String: Member] = [:]
        var sawManifest = false
        try ArchiveReader.forEachEntry(a, label: archive) { e, name in
            guard isSafe(name) else { throw KickError("member '\(KickError.quote(name))' would land outside the target; refusing the archive", file: archive, code: .refused) }
            let type = archive_entry_filetype(e)
            if type == fileTypeDirectory { return true }
            guard type == fileTypeRegular, archive_entry_hardlink(e) == nil, archive_entry_symlink(e) == nil else {
                throw KickError("member '\(KickError.quote(name))' is a link or special file; refusing the archive", file: archive, code: .refused)
            }
            if name == manifestName {
                guard !sawManifest else { throw KickError("member '\(name)' appears twice", file: archive) }
                sawManifest = true
                archive_read_data_skip(a)
                return true
            }
            guard let want = declared[name] else {
                throw KickError("member '\(KickError.quote(name))' has no declared size in the manifest; refusing the archive", file: archive, code: .refused)
            }
            guard got[name] == nil else { throw KickError("member '\(KickError.quote(name))' appears twice", file: archive) }
            let dest = (stage as NSString).appendingPathComponent(name)
            try fm.createDirectory(atPath: dest.parentFolder, withIntermediateDirectories: true)
            let fd = open(dest, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o644)
            guard fd >= 0 else { throw KickError("cannot create: \(String(cString: strerror(errno)).lowercasedFirst)", file: dest) }
            defer { close(fd) }
            var h = SHA256()
            var size = 0
            try ArchiveReader.readData(a, label: archive, member: name) { chunk in
                size += chunk.count
                guard size <= want.size else {
                    throw KickError("member \(name) holds more than the \(want.size) bytes its manifest declares; refusing the archive", file: archive, code: .refused)
                }
                h.update(chunk)
                var off = 0
                while off < chunk.count {
                    let w = write(fd, chunk.baseAddress! + off, chunk.count - off)
                    guard w > 0 else { throw KickError("cannot write: \(String(cString: strerror(errno)).lowercasedFirst)", file: dest) }
                    off += w
                }
            }
            got[name] = Member(path: name, size: size, sha256: h.finalize().hex)
            return true
        }
        for (name, m) in got where declared[name] != m {
            throw KickError("member \(name) does not match the manifest (sha256 \(m.sha256), \(m.size) bytes)", file: archive)
        }
        for name in declared.keys.sorted() where got[name] == nil { throw KickError("member \(name) listed in the manifest is missing", file: archive) }
    }
}
