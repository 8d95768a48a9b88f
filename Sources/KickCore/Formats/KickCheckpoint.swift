import Foundation

/// The `.kick` checkpoint, format version 1 (docs/checkpoint-format.md):
/// a 64-byte header, zstd chunks of every tensor's packed bytes, then a JSON
/// directory that the header points to and hashes.
public enum KickFormat {
    public static let magic: [UInt8] = Array("KICKCKPT".utf8)
    public static let version: UInt32 = 1
    public static let headerSize = 64
    public static let defaultChunk = 4 << 20
    /// Largest M of an N:M pattern: C(16, 8) = 12,870 patterns still
    /// tabulate; the paper's patterns use M ≤ 8.
    public static let maxGroup = 16

    public struct Chunk: Codable, Sendable, Equatable {
        public var offset: Int
        public var length: Int
        /// Bytes after decompression.
        public var raw: Int
    }

    public struct TensorEntry: Codable, Sendable {
        public var name: String
        /// [rows, cols] for matrices, [n] for vectors.
        public var shape: [Int]
        public var encoding: TensorEncoding
        public var chunks: [Chunk]
        /// Packed (uncompressed) bytes.
        public var size: Int
        /// sha256 of the stored (compressed) chunk bytes, in order: every
        /// byte in the file is covered by a hash, even bytes zstd ignores.
        public var sha256: String
        /// Exact zero values in the decoded tensor.
        public var zeros: Int
        public var rows: Int { shape.count >= 2 ? shape.dropLast().reduce(1, *) : 1 }
        public var cols: Int { shape.last ?? 1 }
        public var elements: Int { shape.reduce(1, *) }
        public var compressedBytes: Int { chunks.reduce(0) { $0 + $1.length } }
    }

    public struct BlobEntry: Codable, Sendable {
        public var name: String
        public var chunks: [Chunk]
        public var size: Int
        /// sha256 of the stored chunk bytes, as for tensors.
        public var sha256: String
    }

    /// What tokenizer the checkpoint carries: a GGUF holding only the
    /// `tokenizer.*` keys, or Hugging Face tokenizer files, as blobs.
    public struct TokenizerRef: Codable, Sendable {
        public var kind: String  // "gguf" | "huggingface"
        public var blobs: [String]
        public var identity: String
    }

    public struct Directory: Codable, Sendable {
        public var format = "kick.checkpoint"
        public var version = Int(KickFormat.version)
        public var config: LlamaConfig
        public var chatTemplate: ChatTemplate
        public var tokenizer: TokenizerRef
        public var metadata: [String: String]
        public var tensors: [TensorEntry]
        public var blobs: [BlobEntry]
    }
}

/// Writes a checkpoint while streaming: tensors are compressed and appended
/// as they come (a block at a time), the directory goes last, and the header
/// is patched at the end. The file appears under its name only when
/// `finish` succeeds.
public final class KickCheckpointWriter {
    public let path: String
    private let tmp: String
    private let handle: FileHandle
    private var offset = KickFormat.headerSize
    private var tensors: [KickFormat.TensorEntry] = []
    private var blobs: [KickFormat.BlobEntry] = []
    private var finished = false
    public let chunkSize: Int

    public init(path: String, chunkSize: Int = KickFormat.defaultChunk) throws {
        self.path = path
        self.chunkSize = max(1024, chunkSize)
        let (t, fd) = try AtomicFile.createTemporary(for: path)
        tmp = t
        handle = FileHandle(fileDescriptor: fd, closeOnDealloc: true)
        try put(Data(count: KickFormat.headerSize))
    }

    /// Appends, wording a failed write (a full disk) with the checkpoint's name.
    private func put<D: DataProtocol>(_ d: D) throws {
        do { try handle.write(contentsOf: d) } catch { throw KickError(describing: error, file: path) }
    }

    deinit {
        if !finished {
            try? handle.close()
            try? FileManager.default.removeItem(atPath: tmp)
        }
    }

    /// Compresses and appends; returns the chunks and the hash of what was stored.
    private func writeChunks(_ bytes: [UInt8]) throws -> ([KickFormat.Chunk], String) {
        var chunks: [KickFormat.Chunk] = []
        var h = SHA256()
        var start = 0
        repeat {
            let end = min(bytes.count, start + chunkSize)
            let c = try bytes.withUnsafeBytes { try Zstd.compress(UnsafeRawBufferPointer(rebasing: $0[start..<end])) }
            try put(c)
            h.update(c)
            chunks.append(.init(offset: offset, length: c.count, raw: end - start))
            offset += c.count
            start = end
        } while start < bytes.count
        return (chunks, h.finalize().hex)
    }

    public func addTensor(name: String, shape: [Int], encoding: TensorEncoding, payload: [UInt8], zeros: Int) throws {
        precondition(!finished)
        guard !tensors.contains(where: { $0.name == name }) else { throw KickError("tensor \(name) written twice", file: path) }
        let (chunks, hash) = try writeChunks(payload)
        tensors.append(.init(name: name, shape: shape, encoding: encoding, chunks: chunks, size: payload.count,
                             sha256: hash, zeros: zeros))
    }

    public func addBlob(name: String, bytes: [UInt8]) throws {
        precondition(!finished)
        let (chunks, hash) = try writeChunks(bytes)
        blobs.append(.init(name: name, chunks: chunks, size: bytes.count, sha256: hash))
    }

    /// Writes the directory, patches the header, syncs and renames into place.
    public func finish(config: LlamaConfig, chatTemplate: ChatTemplate, tokenizer: KickFormat.TokenizerRef,
                       metadata: [String: String]) throws {
        let dir = KickFormat.Directory(config: config, chatTemplate: chatTemplate, tokenizer: tokenizer, metadata: metadata,
                                       tensors: tensors, blobs: blobs)
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys]
        let json = try enc.encode(dir)
        try put(json)
        var header = KickFormat.magic
        withUnsafeBytes(of: KickFormat.version.littleEndian) { header.append(contentsOf: $0) }
        withUnsafeBytes(of: UInt32(0).littleEndian) { header.append(contentsOf: $0) }
        withUnsafeBytes(of: UInt64(offset).littleEndian) { header.append(contentsOf: $0) }
        withUnsafeBytes(of: UInt64(json.count).littleEndian) { header.append(contentsOf: $0) }
        var h = SHA256()
        h.update(json)
        header += h.finalize()
        do {
            try handle.seek(toOffset: 0)
            try handle.write(contentsOf: header)
            try handle.synchronize()
            try handle.close()
        } catch { throw KickError(describing: error, file: path) }
        try AtomicFile.replace(tmp, with: path)
        finished = true
    }
}

/// Reads a checkpoint through a memory map. The header, the directory's
/// hash and every chunk's place in the file are checked on open; a tensor's
/// zstd checksums and sha256 are checked when it is decoded.
public final class KickCheckpoint: @unchecked Sendable {
    public let file: MappedFile
    public let directory: KickFormat.Directory
    public var path: String { file.path }
    private let index: [String: Int]

    public convenience init(path: String) throws {
        try self.init(file: MappedFile(path: path))
    }

    public init(file: MappedFile) throws {
        self.file = file
        let path = file.path
        guard file.size >= KickFormat.headerSize else {
            throw KickError("truncated checkpoint: \(file.size) bytes, the header alone is \(KickFormat.headerSize)", file: path)
        }
        let b = file.bytes
        guard Array(b[0..<8]) == KickFormat.magic else { throw KickError("not a kick checkpoint (bad magic)", file: path) }
        var c = ByteCursor(b, offset: 8, file: path)
        let version = try c.read(UInt32.self, "version")
        guard version == KickFormat.version else {
            throw KickError("checkpoint format version \(version) is not one this kick reads (\(KickFormat.version))", file: path)
        }
        let flags = try c.read(UInt32.self, "flags")
        guard flags == 0 else { throw KickError("unknown header flags \(flags)", file: path) }
        let dirOffset = try c.read(UInt64.self, "directory offset")
        let dirLength = try c.read(UInt64.self, "directory length")
        let digest = Array(try c.readBytes(32, "directory hash"))
        guard dirOffset >= UInt64(KickFormat.headerSize), dirLength > 0, dirOffset <= UInt64(file.size),
              dirLength == UInt64(file.size) - dirOffset else {
            throw KickError("directory (offset \(dirOffset), length \(dirLength)) does not end the file (\(file.size) bytes): truncated or corrupt", file: path)
        }
        let json = try file.slice(offset: Int(dirOffset), length: Int(dirLength), what: "directory")
        var h = SHA256()
        h.update(json)
        guard h.finalize() == digest else { throw KickError("directory hash mismatch: the checkpoint is corrupt", file: path) }
        do {
            directory = try JSONDecoder().decode(KickFormat.Directory.self, from: Data(json))
        } catch {
            throw KickError("directory is not valid: \(KickError.decoding(error))", file: path, code: .malformed)
        }
        guard directory.format == "kick.checkpoint", directory.version == Int(KickFormat.version) else {
            throw KickError("directory says \(directory.format) v\(directory.version)", file: path)
        }
        try directory.config.validate(file: path)
        // the chunks must tile [header, directory) exactly: no byte unaccounted for
        var all: [(KickFormat.Chunk, String)] = []
        for t in directory.tensors { all += t.chunks.map { ($0, "tensor \(t.name)") } }
        for bl in directory.blobs { all += bl.chunks.map { ($0, "blob \(bl.name)") } }
        all.sort { $0.0.offset < $1.0.offset }
        var at = KickFormat.headerSize
        for (ch, what) in all {
            guard ch.offset == at, ch.length > 0, ch.raw >= 0, ch.length <= Int(dirOffset) - at else {
                throw KickError("\(what): chunk at \(ch.offset) (length \(ch.length)) is out of place", file: path)
            }
            at += ch.length
        }
        guard at == Int(dirOffset) else { throw KickError("\(Int(dirOffset) - at) bytes before the directory belong to no tensor", file: path) }
        var idx: [String: Int] = [:]
        for (i, t) in directory.tensors.enumerated() {
            guard idx[t.name] == nil else { throw KickError("tensor \(t.name) is listed twice", file: path) }
            guard t.shape.count >= 1, t.shape.count <= 2 else { throw KickError("tensor \(t.name) has shape \(t.shape)", file: path) }
            _ = try checkedElementCount(t.shape, of: "tensor \(t.name)", file: path)
            guard t.chunks.reduce(0, { $0 + $1.raw }) == t.size else {
                throw KickError("tensor \(t.name): chunk sizes do not add up to \(t.size)", file: path)
            }
            idx[t.name] = i
        }
        index = idx
    }

    public var tensorNames: [String] { directory.tensors.map(\.name) }
    public func entry(_ name: String) -> KickFormat.TensorEntry? { index[name].map { directory.tensors[$0] } }

    /// Checks the stored bytes' hash, then decompresses every chunk (each
    /// zstd frame checks its own content checksum).
    private func inflate(_ chunks: [KickFormat.Chunk], size: Int, sha256: String, what: String) throws -> [UInt8] {
        var h = SHA256()
        var frames: [UnsafeRawBufferPointer] = []
        for ch in chunks {
            let src = try file.slice(offset: ch.offset, length: ch.length, what: what)
            h.update(src)
            frames.append(src)
        }
        guard h.finalize().hex == sha256 else { throw KickError("\(what): checksum mismatch, the checkpoint is corrupt", file: path) }
        var out = [UInt8](repeating: 0, count: size)
        var at = 0
        try out.withUnsafeMutableBytes { dst in
            for (ch, src) in zip(chunks, frames) {
                do {
                    try Zstd.decompress(src, rawLength: ch.raw, into: UnsafeMutableRawBufferPointer(rebasing: dst[at..<at + ch.raw]))
                } catch let e as KickError {
                    throw KickError("\(what): \(e.message)", file: path)
                }
                at += ch.raw
            }
        }
        return out
    }

    /// A tensor's packed bytes, verified.
    public func payload(_ name: String) throws -> (KickFormat.TensorEntry, [UInt8]) {
        guard let t = entry(name) else { throw KickError("tensor \(name) is not in the checkpoint", file: path) }
        return (t, try inflate(t.chunks, size: t.size, sha256: t.sha256, what: "tensor \(name)"))
    }

    /// A tensor decoded to float32.
    public func floats(_ name: String) throws -> [Float] {
        let (t, p) = try payload(name)
        do {
            return try p.withUnsafeBytes { try TensorCodec.decode($0, rows: t.rows, cols: t.cols, t.encoding) }
        } catch let e as KickError {
            throw KickError("tensor \(name): \(e.message)", file: path)
        }
    }

    public func matrix(_ name: String) throws -> Matrix {
        guard let t = entry(name) else { throw KickError("tensor \(name) is not in the checkpoint", file: path) }
        return Matrix(rows: t.rows, cols: t.cols, data: try floats(name))
    }

    public func blob(_ name: String) throws -> [UInt8] {
        guard let b = directory.blobs.first(where: { $0.name == name }) else { throw KickError("blob \(name) is not in the checkpoint", file: path) }
        return try inflate(b.chunks, size: b.size, sha256: b.sha256, what: "blob \(name)")
    }

    /// Everything the loader verifies, verified: every tensor decoded (its
    /// sha256, each chunk's zstd checksum, its encoding), every blob, and
    /// the tokenizer parsed from them. Returns how many tensors and blobs.
    @discardableResult
    public func verifyAll() throws -> (tensors: Int, blobs: Int) {
        for n in tensorNames { _ = try floats(n) }
        for b in directory.blobs { _ = try blob(b.name) }
        _ = try tokenizer()
        return (directory.tensors.count, directory.blobs.count)
    }

    /// The tokenizer the checkpoint carries.
    public func tokenizer() throws -> Tokenizer {
        let t = directory.tokenizer
        switch t.kind {
        case "gguf":
            guard let name = t.blobs.first else { throw KickError("tokenizer lists no blob", file: path) }
            return try Tokenizer(gguf: GGUFReader(file: MappedFile(bytes: try blob(name), label: "\(path):\(name)")))
        case "huggingface":
            let cfg = try t.blobs.first(where: { $0.hasSuffix("tokenizer_config.json") }).map { Data(try blob($0)) }
            guard let json = t.blobs.first(where: { $0.hasSuffix("tokenizer.json") }) else {
                guard let sp = t.blobs.first(where: { $0.hasSuffix("tokenizer.model") }) else {
                    throw KickError("neither a tokenizer.json nor a tokenizer.model blob", file: path)
                }
                return try Tokenizer(sentencePieceModel: Data(try blob(sp)), tokenizerConfig: cfg, label: "\(path):\(sp)",
                                     configLabel: "\(path):tokenizer_config.json")
            }
            return try Tokenizer(huggingFaceJSON: Data(try blob(json)), tokenizerConfig: cfg, config: directory.config, label: "\(path):\(json)")
        default:
            throw KickError("tokenizer kind \(t.kind) is unknown", file: path)
        }
    }
}
