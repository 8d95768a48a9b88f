import Foundation

/// How RoPE pairs the dimensions of a head. llama.cpp's converter permutes
/// the rows of Q and K so that RoPE rotates adjacent pairs; Hugging Face
/// checkpoints rotate the two halves of each head.
public enum RopeStyle: String, Codable, Sendable {
    case adjacentPairs = "adjacent"
    case halves = "halves"
}

/// Llama-family hyper-parameters. Decodes straight from a Hugging Face
/// `config.json` (its field names in CodingKeys, the architecture's defaults
/// where a field is absent) and is filled from GGUF keys by `LlamaLoader`.
public struct LlamaConfig: Codable, Sendable, Equatable {
    public var vocabSize: Int
    public var hiddenSize: Int
    public var intermediateSize: Int
    public var numLayers: Int
    public var numHeads: Int
    public var numKVHeads: Int
    public var headDim: Int
    public var rmsNormEps: Float
    public var ropeTheta: Float
    public var contextLength: Int
    public var tieWordEmbeddings: Bool
    public var ropeStyle: RopeStyle
    public var bosTokenID: Int?
    public var eosTokenID: Int?

    enum CodingKeys: String, CodingKey {
        case vocabSize = "vocab_size"
        case hiddenSize = "hidden_size"
        case intermediateSize = "intermediate_size"
        case numLayers = "num_hidden_layers"
        case numHeads = "num_attention_heads"
        case numKVHeads = "num_key_value_heads"
        case headDim = "head_dim"
        case rmsNormEps = "rms_norm_eps"
        case ropeTheta = "rope_theta"
        case contextLength = "max_position_embeddings"
        case tieWordEmbeddings = "tie_word_embeddings"
        case ropeStyle = "kick_rope_style"
        case bosTokenID = "bos_token_id"
        case eosTokenID = "eos_token_id"
        case architectures
    }

    public init(vocabSize: Int, hiddenSize: Int, intermediateSize: Int, numLayers: Int, numHeads: Int,
                numKVHeads: Int, headDim: Int? = nil, rmsNormEps: Float = 1e-5, ropeTheta: Float = 10000,
                contextLength: Int = 2048, tieWordEmbeddings: Bool = false, ropeStyle: RopeStyle = .halves,
                bosTokenID: Int? = nil, eosTokenID: Int? = nil) {
        self.vocabSize = vocabSize
        self.hiddenSize = hiddenSize
        self.intermediateSize = intermediateSize
        self.numLayers = numLayers
        self.numHeads = numHeads
        self.numKVHeads = numKVHeads
        self.headDim = headDim ?? (numHeads > 0 ? hiddenSize / numHeads : 0)  // validate() refuses 0 heads
        self.rmsNormEps = rmsNormEps
        self.ropeTheta = ropeTheta
        self.contextLength = contextLength
        self.tieWordEmbeddings = tieWordEmbeddings
        self.ropeStyle = ropeStyle
        self.bosTokenID = bosTokenID
        self.eosTokenID = eosTokenID
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        if let arch = try c.decodeIfPresent([String].self, forKey: .architectures),
           !arch.contains(where: { $0.hasPrefix("Llama") || $0.hasPrefix("Mistral") }) {
            throw KickError("architecture \(arch.joined(separator: ",")) is not Llama-family (LlamaForCausalLM expected)")
        }
        let hidden = try c.decode(Int.self, forKey: .hiddenSize)
        let heads = try c.decode(Int.self, forKey: .numHeads)
        self.init(
            vocabSize: try c.decode(Int.self, forKey: .vocabSize),
            hiddenSize: hidden,
            intermediateSize: try c.decode(Int.self, forKey: .intermediateSize),
            numLayers: try c.decode(Int.self, forKey: .numLayers),
            numHeads: heads,
            numKVHeads: try c.decodeIfPresent(Int.self, forKey: .numKVHeads) ?? heads,
            headDim: try c.decodeIfPresent(Int.self, forKey: .headDim),
            rmsNormEps: try c.decodeIfPresent(Float.self, forKey: .rmsNormEps) ?? 1e-6,
            ropeTheta: try c.decodeIfPresent(Float.self, forKey: .ropeTheta) ?? 10000,
            contextLength: try c.decodeIfPresent(Int.self, forKey: .contextLength) ?? 2048,
            tieWordEmbeddings: try c.decodeIfPresent(Bool.self, forKey: .tieWordEmbeddings) ?? false,
            ropeStyle: try c.decodeIfPresent(RopeStyle.self, forKey: .ropeStyle) ?? .halves,
            bosTokenID: try? c.decodeIfPresent(Int.self, forKey: .bosTokenID),
            eosTokenID: try? c.decodeIfPresent(Int.self, forKey: .eosTokenID))
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(vocabSize, forKey: .vocabSize)
        try c.encode(hiddenSize, forKey: .hiddenSize)
        try c.encode(intermediateSize, forKey: .intermediateSize)
        try c.encode(numLayers, forKey: .numLayers)
        try c.encode(numHeads, forKey: .numHeads)
        try c.encode(numKVHeads, forKey: .numKVHeads)
        try c.encode(headDim, forKey: .headDim)
        try c.encode(rmsNormEps, forKey: .rmsNormEps)
        try c.encode(ropeTheta, forKey: .ropeTheta)
        try c.encode(contextLength, forKey: .contextLength)
        try c.encode(tieWordEmbeddings, forKey: .tieWordEmbeddings)
        try c.encode(ropeStyle, forKey: .ropeStyle)
        try c.encodeIfPresent(bosTokenID, forKey: .bosTokenID)
        try c.encodeIfPresent(eosTokenID, forKey: .eosTokenID)
        try c.encode(["LlamaForCausalLM"], forKey: .architectures)
    }

    /// Checks the shapes are self-consistent before any buffer is sized from them.
    public func validate(file: String? = nil) throws {
        func bad(_ m: String) -> KickError { KickError("model config: \(m)", file: file, code: .invalidValue) }
        let fields = [vocabSize, hiddenSize, intermediateSize, numLayers, numHeads, numKVHeads, headDim]
        guard fields.allSatisfy({ $0 > 0 && $0 < 1 << 24 }) else { throw bad("a size is zero, negative or absurd: \(fields)") }
        guard numHeads % numKVHeads == 0 else { throw bad("\(numHeads) heads are not a multiple of \(numKVHeads) KV heads") }
        guard headDim % 2 == 0 else { throw bad("head dim \(headDim) is odd") }
        guard numHeads * headDim == hiddenSize else {
            throw bad("hidden size \(hiddenSize) is not \(numHeads) heads × head dim \(headDim)")
        }
        guard contextLength > 0, contextLength < 1 << 24 else { throw bad("context length \(contextLength) must be in 1..<\(1 << 24)") }
        guard ropeTheta.isFinite, ropeTheta > 0 else { throw bad("rope theta \(ropeTheta) must be a finite positive number") }
        guard rmsNormEps.isFinite, rmsNormEps > 0 else { throw bad("RMS norm epsilon \(rmsNormEps) must be a finite positive number") }
    }
}

