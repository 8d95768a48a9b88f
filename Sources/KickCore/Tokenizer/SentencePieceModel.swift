import Foundation

/// SentencePiece's `tokenizer.model` (a `ModelProto` protobuf), as
/// LLaMA-family folders ship it: the pieces with their scores and types, and
/// the trainer and normalizer options that change how text is encoded.
public struct SentencePieceModel: Sendable {
    public enum ModelType: Int, Sendable { case unigram = 1, bpe = 2, word = 3, char = 4 }

    public var pieces: [String] = []
    public var scores: [Float] = []
    public var types: [Tokenizer.TokenType] = []
    public var modelType: ModelType = .unigram
    public var byteFallback = false
    public var splitDigits = false
    public var unknownID = 0
    public var bosID = 1
    public var eosID = 2
    public var normalizerName = ""
    public var addDummyPrefix = true
    public var removeExtraWhitespaces = true
    public var escapeWhitespaces = true

    /// Decodes a `ModelProto`: field 1 the pieces, 2 the trainer spec, 3 the normalizer spec.
    public init(data: Data, file: String) throws {
        var sawPiece = false
        try ProtobufWire(data, file: file).forEachField { field, v in
            switch field {
            case 1:
                guard let d = v.data else { throw KickError("not a SentencePiece model: piece \(pieces.count) is not a message", file: file, code: .malformed) }
                var piece: String?, score: Float = 0, type = Tokenizer.TokenType.normal
                try ProtobufWire(d, file: file).forEachField { f, x in
                    switch f {
                    case 1: piece = x.string
                    case 2: score = x.float ?? 0
                    case 3:
                        guard let t = x.int, let tt = Tokenizer.TokenType(rawValue: t) else {
                            throw KickError("not a SentencePiece model: piece \(pieces.count) has type \(x.int.map(String.init) ?? "?")", file: file, code: .malformed)
                        }
                        type = tt
                    default: break
                    }
                }
                guard let p = piece else { throw KickError("not a SentencePiece model: piece \(pieces.count) has no text", file: file, code: .malformed) }
                // scores rank the merges: NaN or infinity would make the order arbitrary
                guard score.isFinite else { throw KickError("not a SentencePiece model: piece \(pieces.count) has score \(score)", file: file, code: .malformed) }
                pieces.append(p); scores.append(score); types.append(type)
                sawPiece = true
            case 2:
                guard let d = v.data else { throw KickError("not a SentencePiece model: the trainer spec is not a message", file: file, code: .malformed) }
                try ProtobufWire(d, file: file).forEachField { f, x in
                    switch f {
                    case 3: if let t = x.int { modelType = ModelType(rawValue: t) ?? .unigram }
                    case 25: splitDigits = x.bool ?? splitDigits
                    case 35: byteFallback = x.bool ?? byteFallback
                    case 40: unknownID = x.int ?? unknownID
                    case 41: bosID = x.int ?? bosID
                    case 42: eosID = x.int ?? eosID
                    default: break
                    }
                }
            case 3:
                guard let d = v.data else { throw KickError("not a SentencePiece model: the normalizer spec is not a message", file: file, code: .malformed) }
                try ProtobufWire(d, file: file).forEachField { f, x in
                    switch f {
                    case 1: normalizerName = x.string ?? ""
                    case 3: addDummyPrefix = x.bool ?? addDummyPrefix
                    case 4: removeExtraWhitespaces = x.bool ?? removeExtraWhitespaces
                    case 5: escapeWhitespaces = x.bool ?? escapeWhitespaces
                    default: break
                    }
                }
            default: break
            }
        }
        guard sawPiece else { throw KickError("not a SentencePiece model: no pieces", file: file, code: .malformed) }
        guard modelType == .bpe else {
            throw KickError("SentencePiece model type \(modelType) is not supported: kick encodes BPE models (LLaMA's)", file: file, code: .malformed)
        }
        guard ["", "identity"].contains(normalizerName) else {
            throw KickError("SentencePiece normalizer '\(KickError.quote(normalizerName))' is not supported: kick applies the identity normalization LLaMA's models use", file: file, code: .malformed)
        }
        for (name, id) in [("unk", unknownID), ("bos", bosID), ("eos", eosID)] where id >= pieces.count {
            throw KickError("SentencePiece \(name) id \(id) is outside the \(pieces.count) pieces", file: file, code: .malformed)
        }
    }

    public init(path: String) throws {
        guard let d = try RegularFile.contents(atPath: path) else { throw KickError("missing tokenizer.model", file: path, code: .notFound) }
        try self.init(data: d, file: path)
    }
}

extension Tokenizer {
    /// A SentencePiece BPE `tokenizer.model`; BOS is added as Hugging Face's
    /// LlamaTokenizer does (`add_bos_token` in tokenizer_config.json, default true).
    public convenience init(sentencePiece m: SentencePieceModel, addBOS: Bool = true, source: String? = nil) throws {
        try self.init(kind: .sentencePiece, tokens: m.pieces, types: m.types, merges: nil, scores: m.scores, preTokenizer: nil,
                      bosID: m.bosID >= 0 ? m.bosID : nil, eosID: m.eosID >= 0 ? m.eosID : nil, unknownID: m.unknownID >= 0 ? m.unknownID : nil,
                      addBOS: addBOS, addSpacePrefix: m.addDummyPrefix, byteFallback: m.byteFallback,
                      removeExtraWhitespaces: m.removeExtraWhitespaces, source: source)
    }
}

extension Tokenizer {
    /// A Hugging Face model folder's tokenizer: `tokenizer.json` when it is
    /// there (it wins), else SentencePiece's `tokenizer.model` with
    /// `add_bos_token` from `tokenizer_config.json` (default true, as LlamaTokenizer).
    public convenience init(huggingFaceFolder dir: String, config: LlamaConfig?) throws {
        let json = (dir as NSString).appendingPathComponent("tokenizer.json")
        let model = (dir as NSString).appendingPathComponent("tokenizer.model")
        let fm = FileManager.default
        if fm.fileExists(atPath: json) || !fm.fileExists(atPath: model) {
            guard fm.fileExists(atPath: json) else {
                throw KickError("no tokenizer.json and no tokenizer.model in the model folder", file: dir, code: .notFound)
            }
            try self.init(huggingFace: json, config: config)
            return
        }
        let tcPath = (dir as NSString).appendingPathComponent("tokenizer_config.json")
        guard let d = try RegularFile.contents(atPath: model) else { throw KickError("cannot read", file: model, code: .notFound) }
        try self.init(sentencePieceModel: d, tokenizerConfig: try RegularFile.contents(atPath: tcPath), label: model, configLabel: tcPath)
    }

    /// SentencePiece's model bytes with `add_bos_token` from a tokenizer
    /// config (default true, as LlamaTokenizer): a folder's, or a checkpoint's blobs.
    public convenience init(sentencePieceModel data: Data, tokenizerConfig: Data?, label: String, configLabel: String) throws {
        struct TokenizerConfig: Decodable { var add_bos_token: Bool? }
        var addBOS = true
        if let d = tokenizerConfig {
            do { addBOS = try JSONDecoder().decode(TokenizerConfig.self, from: d).add_bos_token ?? true } catch {
                throw KickError("not a tokenizer config: \(KickError.decoding(error))", file: configLabel, code: .malformed)
            }
        }
        try self.init(sentencePiece: try SentencePieceModel(data: data, file: label), addBOS: addBOS, source: label)
    }
}

extension SentencePieceModel {
    /// An empty model (the fields' defaults), to fill in.
    init() {}

    /// The ModelProto bytes of this model (the fields kick reads).
    public func encoded() -> Data {
        var w = ProtobufWriter()
        for i in pieces.indices {
            var p = ProtobufWriter()
            p.string(1, pieces[i])
            p.float(2, scores[i])
            p.int(3, types[i].rawValue)
            w.bytes(1, p.bytes)
        }
        var t = ProtobufWriter()
        t.int(3, modelType.rawValue)
        t.bool(25, splitDigits)
        t.bool(35, byteFallback)
        t.int(40, unknownID)
        t.int(41, bosID)
        t.int(42, eosID)
        w.bytes(2, t.bytes)
        var n = ProtobufWriter()
        n.string(1, normalizerName)
        n.bool(3, addDummyPrefix)
        n.bool(4, removeExtraWhitespaces)
        n.bool(5, escapeWhitespaces)
        w.bytes(3, n.bytes)
        return Data(w.bytes)
    }

    /// A LLaMA-shaped BPE vocabulary of `size` pieces for synthetic models:
    /// `<unk>`, `<s>`, `</s>`, the 256 byte pieces, then letter pieces
    /// ("▁a", "ab", "▁ab", …) ranked by score, so text encodes to real merges.
    public static func synthetic(size: Int) -> SentencePieceModel {
        var m = SentencePieceModel()
        m.modelType = .bpe
        m.byteFallback = true
        m.splitDigits = true
        m.normalizerName = "identity"
        m.removeExtraWhitespaces = false
        m.pieces = ["<unk>", "<s>", "</s>"] + (0..<256).map { String(format: "<0x%02X>", $0) }
        m.types = [Tokenizer.TokenType.unknown, .control, .control] + [Tokenizer.TokenType](repeating: .byte, count: 256)
        let letters = "abcdefghijklmnopqrstuvwxyz".map(String.init)
        var words = ["▁"] + letters + letters.map { "▁" + $0 }
        var level = letters
        while m.pieces.count + words.count < size {
            level = level.flatMap { a in letters.map { a + $0 } }
            words += level.flatMap { [$0, "▁" + $0] }
        }
        m.pieces += Array(words.prefix(size - m.pieces.count))
        m.types += [Tokenizer.TokenType](repeating: .normal, count: m.pieces.count - m.types.count)
        m.scores = m.pieces.indices.map { $0 < 259 ? 0 : -Float($0 - 259) }
        return m
    }
}
