import Foundation

/// A model ready to run: its weights' source, tokenizer and chat format,
/// opened from a GGUF file or a Hugging Face directory by path.
public struct ModelBundle: Sendable {
    public let path: String
    public let source: WeightSource
    public let tokenizer: Tokenizer
    public let chatTemplate: ChatTemplate

    public init(path: String, source: WeightSource, tokenizer: Tokenizer, chatTemplate: ChatTemplate) {
        self.path = path
        self.source = source
        self.tokenizer = tokenizer
        self.chatTemplate = chatTemplate
    }

    public var config: LlamaConfig { source.config }

    public static func open(path: String) throws -> ModelBundle {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else {
            throw KickError("model not found (expected a .gguf file, a .kick checkpoint or a Hugging Face model folder)", file: path)
        }
        if isDir.boolValue {
            let src = try HFWeightSource(directory: path)
            let tok = try Tokenizer(huggingFaceFolder: path, config: src.config)
            var template: ChatTemplate = tok.tokens.contains("<|im_start|>") ? .chatml : .vicuna
            if let d = try RegularFile.contents(atPath: (path as NSString).appendingPathComponent("tokenizer_config.json")),
               let o = (try? JSONSerialization.jsonObject(with: d)) as? [String: Any],
               let t = ChatTemplate.detect(fromJinja: o["chat_template"] as? String) { template = t }
            return try ModelBundle(path: path, source: src, tokenizer: tok, chatTemplate: template).checked()
        }
        guard let fd = try RegularFile.open(path) else { throw KickError("model not found", file: path) }
        let head = try FileHandle(fileDescriptor: fd, closeOnDealloc: true).read(upToCount: 8) ?? Data()
        if head == Data(KickFormat.magic) { return try openCheckpoint(path: path) }
        if head.prefix(4) == Data("GGUF".utf8) {
            let reader = try GGUFReader(path: path)
            let src = try GGUFWeightSource(reader: reader)
            let tok = try Tokenizer(gguf: reader)
            let template = ChatTemplate.detect(fromJinja: reader.metadata["tokenizer.chat_template"]?.string)
                ?? (tok.tokens.contains("<|im_start|>") ? .chatml : .vicuna)
            return try ModelBundle(path: path, source: src, tokenizer: tok, chatTemplate: template).checked()
        }
        throw KickError("neither a GGUF file nor a .kick checkpoint (bad magic), and not a model folder", file: path)
    }

    /// The tokenizer and the weights agree: every token id the tokenizer can
    /// produce has an embedding row, and the config's layer count is the
    /// weights' (a config saying fewer layers would silently drop blocks).
    func checked() throws -> ModelBundle {
        let c = config
        if tokenizer.tokens.count > c.vocabSize {
            throw KickError("the tokenizer has \(tokenizer.tokens.count) tokens, the model's vocabulary only \(c.vocabSize)", file: path)
        }
        for special in [c.bosTokenID, c.eosTokenID].compactMap({ $0 }) where special < 0 || special >= c.vocabSize {
            throw KickError("special token id \(special) is outside the vocabulary of \(c.vocabSize)", file: path)
        }
        if source.has(.attnNorm(c.numLayers)) || source.has(.linear(c.numLayers, .q)) {
            throw KickError("the config says \(c.numLayers) layers, but the weights hold block \(c.numLayers) too", file: path)
        }
        return self
    }

    /// Loads every weight and builds the engine, holding the weights as
    /// `weights` says (by default 16-bit weights stay 16-bit).
    public func loadModel(weights: WeightPrecision = .source) throws -> LlamaModel { try LlamaModel(source: source, weights: weights) }
}

extension ModelBundle {
    /// A checkpoint opened as a model (its config, tokenizer and template).
    static func openCheckpoint(path: String) throws -> ModelBundle {
        let ck = try KickCheckpoint(path: path)
        return try ModelBundle(path: path, source: KickWeightSource(checkpoint: ck), tokenizer: try ck.tokenizer(),
                               chatTemplate: ck.directory.chatTemplate).checked()
    }

    /// The tokenizer as blobs for a checkpoint to carry.
    public func tokenizerBlobs() throws -> (KickFormat.TokenizerRef, [(String, [UInt8])]) {
        if let g = source as? GGUFWeightSource {
            return (.init(kind: "gguf", blobs: ["tokenizer.gguf"], identity: tokenizer.identity),
                    [("tokenizer.gguf", try TokenizerBlob.fromGGUF(g.reader))])
        }
        if let k = source as? KickWeightSource {
            let t = k.checkpoint.directory.tokenizer
            return (t, try t.blobs.map { ($0, try k.checkpoint.blob($0)) })
        }
        var files: [(String, [UInt8])] = []
        // tokenizer.json wins where both are (as the folder's tokenizer does)
        let fm = FileManager.default
        let spOnly = !fm.fileExists(atPath: (path as NSString).appendingPathComponent("tokenizer.json"))
        for f in ["tokenizer.json", "tokenizer_config.json"] + (spOnly ? ["tokenizer.model"] : []) {
            if let d = try RegularFile.contents(atPath: (path as NSString).appendingPathComponent(f)) { files.append((f, [UInt8](d))) }
        }
        return (.init(kind: "huggingface", blobs: files.map(\.0), identity: tokenizer.identity), files)
    }
}
