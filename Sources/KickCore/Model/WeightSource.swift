import Foundation

/// Names a tensor of a Llama model by what it does, independent of how a
/// file format names it.
public enum TensorRole: Hashable, Sendable, CustomStringConvertible {
    case embedding, finalNorm, output
    case attnNorm(Int), ffnNorm(Int)
    case linear(Int, LinearRole)

    public var description: String {
        switch self {
        case .embedding: return "embedding"
        case .finalNorm: return "final norm"
        case .output: return "output head"
        case .attnNorm(let i): return "block \(i) attention norm"
        case .ffnNorm(let i): return "block \(i) FFN norm"
        case .linear(let i, let r): return "block \(i) \(r.rawValue) projection"
        }
    }

    /// llama.cpp's GGUF tensor names.
    public var ggufName: String {
        switch self {
        case .embedding: return "token_embd.weight"
        case .finalNorm: return "output_norm.weight"
        case .output: return "output.weight"
        case .attnNorm(let i): return "blk.\(i).attn_norm.weight"
        case .ffnNorm(let i): return "blk.\(i).ffn_norm.weight"
        case .linear(let i, let r):
            let n: [LinearRole: String] = [.q: "attn_q", .k: "attn_k", .v: "attn_v", .o: "attn_output",
                                           .gate: "ffn_gate", .up: "ffn_up", .down: "ffn_down"]
            return "blk.\(i).\(n[r]!).weight"
        }
    }

    /// Hugging Face transformers' Llama tensor names.
    public var hfName: String {
        switch self {
        case .embedding: return "model.embed_tokens.weight"
        case .finalNorm: return "model.norm.weight"
        case .output: return "lm_head.weight"
        case .attnNorm(let i): return "model.layers.\(i).input_layernorm.weight"
        case .ffnNorm(let i): return "model.layers.\(i).post_attention_layernorm.weight"
        case .linear(let i, let r):
            let n: [LinearRole: String] = [.q: "self_attn.q_proj", .k: "self_attn.k_proj", .v: "self_attn.v_proj",
                                           .o: "self_attn.o_proj", .gate: "mlp.gate_proj", .up: "mlp.up_proj",
                                           .down: "mlp.down_proj"]
            return "model.layers.\(i).\(n[r]!).weight"
        }
    }
}

/// Where a model's weights come from. Loading is per tensor so the
/// compression stage can stream one block at a time.
public protocol WeightSource: AnyObject, Sendable {
    var path: String { get }
    var config: LlamaConfig { get }
    func has(_ role: TensorRole) -> Bool
    func matrix(_ role: TensorRole) throws -> Matrix
    /// The encoding the source stores a tensor in (for checkpoints that keep
    /// untouched tensors at their source precision).
    func sourceType(_ role: TensorRole) -> GGMLType?
    /// The tensor exactly as the source stores it, for a checkpoint that
    /// keeps untouched tensors at their source precision.
    func storedPayload(_ role: TensorRole) throws -> (TensorEncoding, [UInt8])
    /// The tensor as integer codes, when the source stores it as codes the
    /// engine's code kernels run (`CodeRows.isCoded`); nil otherwise.
    func codes(_ role: TensorRole) throws -> CodeRows?
    /// The N:M pattern and value precision of a tensor the source stores
    /// N:M sparse (a pruned .kick checkpoint); nil otherwise.
    func nmPattern(_ role: TensorRole) -> (n: Int, m: Int, values: ValueType)?
}

extension WeightSource {
    public func codes(_ role: TensorRole) throws -> CodeRows? { nil }
    public func nmPattern(_ role: TensorRole) -> (n: Int, m: Int, values: ValueType)? { nil }

    public func vector(_ role: TensorRole) throws -> [Float] { try matrix(role).data }

    public func block(_ i: Int) throws -> LlamaBlockWeights {
        var lin: [LinearRole: Matrix] = [:]
        for r in LinearRole.allCases { lin[r] = try matrix(.linear(i, r)) }
        return LlamaBlockWeights(attnNorm: try vector(.attnNorm(i)), ffnNorm: try vector(.ffnNorm(i)), linear: lin)
    }

    /// The weights outside the blocks (embedding, final norm, output head,
    /// nil when tied), shape-checked, with no blocks loaded.
    public func outerWeights() throws -> LlamaWeights {
        let c = config
        let w = LlamaWeights(
            embedding: try matrix(.embedding), blocks: [], finalNorm: try vector(.finalNorm),
            output: c.tieWordEmbeddings || !has(.output) ? nil : try matrix(.output))
        try w.validateOuter(c, file: path)
        return w
    }

    /// One block's weights, shape-checked.
    public func validatedBlock(_ i: Int) throws -> LlamaBlockWeights {
        let b = try block(i)
        try b.validate(index: i, config, file: path)
        return b
    }

    /// Every weight, validated against the config.
    public func loadWeights() throws -> LlamaWeights {
        var w = try outerWeights()
        w.blocks = try (0..<config.numLayers).map { try validatedBlock($0) }
        return w
    }
}

/// Weights read from a GGUF file (llama architecture).
public final class GGUFWeightSource: WeightSource, @unchecked Sendable {
    public let reader: GGUFReader
    public let config: LlamaConfig
    public var path: String { reader.path }

    public init(reader: GGUFReader) throws {
        self.reader = reader
        let m = reader.metadata
        let path = reader.path
        let arch = m["general.architecture"]?.string ?? "(none)"
        guard arch == "llama" else {
            throw KickError("GGUF architecture is '\(arch)'; kick runs 'llama'", file: path)
        }
        func int(_ k: String) throws -> Int {
            guard let v = m["llama.\(k)"]?.int else { throw KickError("GGUF lacks llama.\(k)", file: path) }
            return v
        }
        let embd = try reader.info("token_embd.weight")
        let hidden = try int("embedding_length")
        let heads = try int("attention.head_count")
        let tokens = m["tokenizer.ggml.tokens"]?.strings?.count
        var c = LlamaConfig(
            vocabSize: m["llama.vocab_size"]?.int ?? tokens ?? embd.rows,
            hiddenSize: hidden,
            intermediateSize: try int("feed_forward_length"),
            numLayers: try int("block_count"),
            numHeads: heads,
            numKVHeads: m["llama.attention.head_count_kv"]?.int ?? heads,
            headDim: m["llama.attention.key_length"]?.int ?? (heads > 0 ? hidden / heads : 0),
            rmsNormEps: Float(m["llama.attention.layer_norm_rms_epsilon"]?.double ?? 1e-5),
            ropeTheta: Float(m["llama.rope.freq_base"]?.double ?? 10000),
            contextLength: m["llama.context_length"]?.int ?? 2048,
            tieWordEmbeddings: reader.tensors["output.weight"] == nil,
            ropeStyle: .adjacentPairs,
            bosTokenID: m["tokenizer.ggml.bos_token_id"]?.int,
            eosTokenID: m["tokenizer.ggml.eos_token_id"]?.int)
        if c.vocabSize != embd.rows { c.vocabSize = embd.rows }
        try c.validate(file: path)
        config = c
    }

    public convenience init(path: String) throws {
        try self.init(reader: GGUFReader(path: path))
    }

    public func has(_ role: TensorRole) -> Bool { reader.tensors[role.ggufName] != nil }
    public func sourceType(_ role: TensorRole) -> GGMLType? { reader.tensors[role.ggufName]?.type }

    public func storedPayload(_ role: TensorRole) throws -> (TensorEncoding, [UInt8]) {
        let t = try reader.info(role.ggufName)
        let raw = [UInt8](try reader.rawBytes(role.ggufName))
        switch t.type {
        case .f32: return (.dense(.f32), raw)
        case .f16: return (.dense(.f16), raw)
        case .bf16: return (.dense(.bf16), raw)
        default: return (.ggml(t.type), raw)
        }
    }

    public func codes(_ role: TensorRole) throws -> CodeRows? {
        guard let t = reader.tensors[role.ggufName], CodeRows.isCoded(.ggml(t.type)) else { return nil }
        do {
            return try CodeRows(ggml: try reader.rawBytes(role.ggufName), type: t.type, rows: t.rows, cols: t.cols)
        } catch let e as KickError where e.file == nil {
            throw KickError("tensor \(role.ggufName): \(e.message)", file: path)
        }
    }

    public func matrix(_ role: TensorRole) throws -> Matrix {
        guard reader.tensors[role.ggufName] != nil else {
            throw KickError("the \(role) (\(role.ggufName)) is missing", file: path)
        }
        return try reader.matrix(role.ggufName)
    }
}

/// A file of named dense tensors in a Hugging Face folder: safetensors or
/// a `torch.save` zip.
protocol DenseTensorFile: AnyObject, Sendable {
    var path: String { get }
    var names: [String] { get }
    func contains(_ name: String) -> Bool
    func dtype(_ name: String) -> SafetensorsDType?
    func matrix(_ name: String) throws -> Matrix
    /// The tensor's bytes exactly as stored (row-major).
    func storedBytes(_ name: String) throws -> [UInt8]
}

extension SafetensorsReader: DenseTensorFile {
    var names: [String] { Array(tensors.keys) }
    func contains(_ name: String) -> Bool { tensors[name] != nil }
    func dtype(_ name: String) -> SafetensorsDType? { tensors[name]?.dtype }
    func storedBytes(_ name: String) throws -> [UInt8] {
        guard let t = tensors[name] else { throw KickError("tensor \(name) is missing", file: path) }
        return [UInt8](try file.slice(offset: t.offset, length: t.length, what: "tensor \(name)"))
    }
}

extension PyTorchCheckpointReader: DenseTensorFile {
    var names: [String] { Array(tensors.keys) }
    func contains(_ name: String) -> Bool { tensors[name] != nil }
    func dtype(_ name: String) -> SafetensorsDType? { tensors[name]?.dtype.dense }
    func storedBytes(_ name: String) throws -> [UInt8] {
        if let raw = try contiguousBytes(name) { return [UInt8](raw) }
        // a strided view: gathered, then narrowed back to its own type (exact)
        let m = try matrix(name), t = tensors[name]!
        return t.dtype.dense!.encode(m.data)
    }
}

/// Weights read from a Hugging Face model directory: config.json plus
/// `model.safetensors`, or `pytorch_model.bin`, or either's shards with
/// their index (safetensors win when both are there).
public final class HFWeightSource: WeightSource, @unchecked Sendable {
    public let directory: String
    public let config: LlamaConfig
    private let shards: [String: any DenseTensorFile]  // tensor name -> its file
    /// The weight files, in shard order.
    public let weightFiles: [String]
    public var path: String { directory }

    /// The weight layouts a folder may hold: a single file, or an index
    /// naming shards, for each format.
    static let layouts: [(single: String, index: String)] = [
        ("model.safetensors", "model.safetensors.index.json"), ("pytorch_model.bin", "pytorch_model.bin.index.json")]

    public init(directory: String) throws {
        self.directory = directory
        let fm = FileManager.default
        let cfgPath = (directory as NSString).appendingPathComponent("config.json")
        guard let cfgData = try RegularFile.contents(atPath: cfgPath) else {
            throw KickError("missing config.json (a Hugging Face model folder needs config.json; model.safetensors, pytorch_model.bin, or "
                            + "their shards with an index; and tokenizer.json or tokenizer.model)", file: directory)
        }
        do {
            config = try JSONDecoder().decode(LlamaConfig.self, from: cfgData)
        } catch let e as KickError {
            throw KickError(e.message, file: cfgPath)
        } catch {
            throw KickError("cannot read the model config: \(KickError.decoding(error))", file: cfgPath)
        }
        try config.validate(file: cfgPath)
        func open(_ file: String) throws -> any DenseTensorFile {
            let p = (directory as NSString).appendingPathComponent(file)
            return file.hasSuffix(".safetensors") ? try SafetensorsReader(path: p) : try PyTorchCheckpointReader(path: p)
        }
        var map: [String: any DenseTensorFile] = [:]
        var files: [String] = []
        layouts: for (single, index) in Self.layouts {
            let indexPath = (directory as NSString).appendingPathComponent(index)
            if fm.fileExists(atPath: (directory as NSString).appendingPathComponent(single)) {
                let r = try open(single)
                for k in r.names { map[k] = r }
                files = [single]
                break layouts
            }
            guard let idx = try RegularFile.contents(atPath: indexPath) else { continue }
            struct Index: Decodable { var weight_map: [String: String] }
            let wm: [String: String]
            do { wm = try JSONDecoder().decode(Index.self, from: idx).weight_map } catch {
                throw KickError("not a shard index (needs a weight_map object): \(KickError.decoding(error))", file: indexPath)
            }
            var readers: [String: any DenseTensorFile] = [:]
            for shard in Set(wm.values).sorted() {
                guard !shard.contains("/"), !shard.hasPrefix(".") else { throw KickError("shard name \(shard) is not a plain file name", file: indexPath) }
                guard fm.fileExists(atPath: (directory as NSString).appendingPathComponent(shard)) else {
                    throw KickError("the index names shard \(shard), which is not in the folder", file: indexPath, code: .notFound)
                }
                readers[shard] = try open(shard)
                files.append(shard)
            }
            for (tensor, shard) in wm {
                guard readers[shard]!.contains(tensor) else {
                    throw KickError("index says \(tensor) is in \(shard), but it is not", file: indexPath)
                }
                map[tensor] = readers[shard]
            }
            break layouts
        }
        guard !files.isEmpty else {
            throw KickError("no weights: none of model.safetensors, model.safetensors.index.json, pytorch_model.bin, pytorch_model.bin.index.json",
                            file: directory)
        }
        shards = map
        weightFiles = files
    }

    public func has(_ role: TensorRole) -> Bool { shards[role.hfName] != nil }
    public func sourceType(_ role: TensorRole) -> GGMLType? { shards[role.hfName]?.dtype(role.hfName)?.ggml }

    public func storedPayload(_ role: TensorRole) throws -> (TensorEncoding, [UInt8]) {
        guard let r = shards[role.hfName], let dt = r.dtype(role.hfName) else {
            throw KickError("the \(role) (\(role.hfName)) is missing", file: directory)
        }
        let v: ValueType = dt == .f32 ? .f32 : dt == .f16 ? .f16 : .bf16
        return (.dense(v), try r.storedBytes(role.hfName))
    }

    public func matrix(_ role: TensorRole) throws -> Matrix {
        guard let r = shards[role.hfName] else {
            throw KickError("the \(role) (\(role.hfName)) is missing", file: directory)
        }
        return try r.matrix(role.hfName)
    }
}
