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
            throw KickError("model not found (expected a .gguf file or a Hugging Face model folder)", file: path)
        }
        if isDir.boolValue {
            let src = try HFWeightSource(directory: path)
            let tokPath = (path as NSString).appendingPathComponent("tokenizer.json")
            let tok = try Tokenizer(huggingFace: tokPath, config: src.config)
            var template: ChatTemplate = tok.tokens.contains("<|im_start|>") ? .chatml : .vicuna
            if let d = FileManager.default.contents(atPath: (path as NSString).appendingPathComponent("tokenizer_config.json")),
               let o = (try? JSONSerialization.jsonObject(with: d)) as? [String: Any],
               let t = ChatTemplate.detect(fromJinja: o["chat_template"] as? String) { template = t }
            return ModelBundle(path: path, source: src, tokenizer: tok, chatTemplate: template)
        }
        let head = try FileHandle(forReadingFrom: URL(fileURLWithPath: path)).read(upToCount: 4) ?? Data()
        if head == Data("GGUF".utf8) {
            let reader = try GGUFReader(path: path)
            let src = try GGUFWeightSource(reader: reader)
            let tok = try Tokenizer(gguf: reader)
            let template = ChatTemplate.detect(fromJinja: reader.metadata["tokenizer.chat_template"]?.string)
                ?? (tok.tokens.contains("<|im_start|>") ? .chatml : .vicuna)
            return ModelBundle(path: path, source: src, tokenizer: tok, chatTemplate: template)
        }
        throw KickError("not a GGUF file (bad magic) and not a model folder", file: path)
    }

    /// Loads every weight and builds the engine.
    public func loadModel() throws -> LlamaModel { try LlamaModel(source: source) }
}
