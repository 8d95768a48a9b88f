import Foundation

/// `ingest/model.json` (`kick.ingest-model/2`): what the later stages need
/// to know of the model. Read back typed: a missing or renamed field is an
/// error naming the file, never a silent default.
public struct IngestedModel: Codable, Sendable, Equatable {
    public static let schemaName = "kick.ingest-model/2"

    public struct TokenizerInfo: Codable, Sendable, Equatable {
        public var kind: String
        public var vocabSize: Int
        public var identity: String
        public var addBOS: Bool
        enum CodingKeys: String, CodingKey { case kind, identity, vocabSize = "vocab_size", addBOS = "add_bos" }
    }

    public var schema = IngestedModel.schemaName
    public var toolVersion = KickVersion.string
    public var name: String
    public var path: String
    /// size and modification time of the source, to reuse the sha256
    public var stamp: String
    public var source: String
    public var sha256: String
    /// Every file of the model (one for a GGUF or .kick file) with its sha256.
    public var files: [InputHash.File]
    public var config: LlamaConfig
    public var tokenizer: TokenizerInfo
    public var chatTemplate: String
    public var contextLength: Int
    /// the longest prompt + answer the tasks build (MMLU's shots are cut to it)
    public var sequenceLength: Int
    public var note: String

    enum CodingKeys: String, CodingKey {
        case schema, name, path, stamp, source, sha256, files, config, tokenizer, note
        case toolVersion = "tool_version", chatTemplate = "chat_template", contextLength = "context_length", sequenceLength = "sequence_length"
    }

    public static func read(path: String) throws -> IngestedModel {
        try JSONArtifact.read(IngestedModel.self, path: path, schema: schemaName, ifMissing: "missing; run kick-ingest first",
                              hint: "; rerun kick-ingest with this kick")
    }

    /// Writes `out` for the resolved model unless it is up to date (same
    /// path, size, date and kick version). Returns whether it wrote.
    public static func write(_ r: ModelResolver.Resolved, to out: String, force: Bool) throws -> Bool {
        let names = try InputHash.names(of: r.path)
        let stamp = try Self.stamp(r.path, names)
        if !force, let old = try? read(path: out), old.path == r.path, old.stamp == stamp, old.toolVersion == KickVersion.string { return false }
        let bundle = try ModelBundle.open(path: r.path)
        let t = bundle.tokenizer
        let hashed = try InputHash.listing(of: r.path, names: names, label: "hashing the model")
        let m = IngestedModel(
            name: r.name, path: r.path, stamp: stamp, source: r.sourceDescription, sha256: hashed.sha256, files: hashed.files, config: bundle.config,
            tokenizer: .init(kind: t.kind.rawValue, vocabSize: t.vocabSize, identity: t.identity, addBOS: t.addBOS),
            chatTemplate: (r.manifest?.chatTemplate).flatMap(ChatTemplate.init(rawValue:))?.rawValue ?? bundle.chatTemplate.rawValue,
            contextLength: r.manifest?.contextLength ?? bundle.config.contextLength,
            sequenceLength: r.manifest?.sequenceLength ?? min(2048, bundle.config.contextLength), note: r.manifest?.note ?? "")
        try AtomicFile.writeJSON(m, to: out)
        return true
    }

    /// Size and modification time of the model, or of each file of a
    /// folder (a folder's own date does not change when a file is rewritten).
    static func stamp(_ path: String, _ names: [String]) throws -> String {
        try names.map { n in
            let a = try FileManager.default.attributesOfItem(atPath: path.joinedPath(n))
            return "\(n.isEmpty ? "" : n + ":")\((a[.size] as? Int) ?? 0)-\(((a[.modificationDate] as? Date) ?? Date()).timeIntervalSince1970)"
        }.joined(separator: ",")
    }
}
