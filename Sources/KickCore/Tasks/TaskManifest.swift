import Foundation

/// `tasks/<task>.jsonl.manifest.json` (`kick.task-manifest/1`): where a task file's
/// items came from, how many each source held and skipped, how they were
/// drawn, and the file's sha256, which every run checks before scoring.
public struct TaskManifest: Codable, Sendable, Equatable {
    /// One source as the manifest records it: a pinned package's member, or
    /// an original-format file or folder the user gave.
    public struct InputDescription: Codable, Sendable, Equatable {
        public var dataset: String?
        public var package: String?
        public var member: String?
        public var nestedMember: String?
        public var license: String?
        public var path: String?
        public var sha256: String
        public var reader: String

        enum CodingKeys: String, CodingKey { case dataset, package, member, license, path, sha256, reader, nestedMember = "nested_member" }
    }

    /// What one source gave: items read, records skipped by reason, and the
    /// count its data-set manifest expects.
    public struct SourceCount: Codable, Sendable, Equatable {
        public var items: Int
        public var skipped: Int
        public var skippedByReason: [String: Int]
        public var expectedItems: Int?

        enum CodingKeys: String, CodingKey { case items, skipped, skippedByReason = "skipped_by_reason", expectedItems = "expected_items" }
    }

    /// Per-source counts, the task's own named counts over every item read
    /// (subjects, buckets), and notes on how it read them.
    public struct Counts: Codable, Sendable, Equatable {
        public var sources: [String: SourceCount] = [:]
        public var counts: [String: Int] = [:]
        public var notes: [String] = []
        public init() {}
    }

    public static let schemaName = "kick.task-manifest/1"
    public var schema = TaskManifest.schemaName
    public var toolVersion = KickVersion.string
    public var task: String
    public var profile: String
    public var inputs: [InputDescription]
    /// Identity of inputs, sample and tokenizer: equal means the file is up to date.
    public var inputsHash: String
    public var sources: [String: SourceCount]
    public var counts: [String: Int]
    public var notes: [String]
    public var itemsAvailable: Int
    public var items: Int
    public var sample: String
    public var subsets: [String: Int]
    /// Golds such as "🍐" or "The" that SQuAD normalization empties: never
    /// matched (tasks that match answer text only).
    public var itemsWithGoldsEmptyAfterNormalization: Int?
    public var sha256: String
    public var seconds: Double
    /// Perplexity: the text's tokens and the tokenizer that counted them.
    public var tokens: Int?
    public var tokenizer: String?

    public init(task: String, profile: String, inputs: [InputDescription], inputsHash: String, sources: [String: SourceCount], counts: [String: Int],
                notes: [String], itemsAvailable: Int, items: Int, sample: String, subsets: [String: Int], sha256: String, seconds: Double) {
        self.task = task
        self.profile = profile
        self.inputs = inputs
        self.inputsHash = inputsHash
        self.sources = sources
        self.counts = counts
        self.notes = notes
        self.itemsAvailable = itemsAvailable
        self.items = items
        self.sample = sample
        self.subsets = subsets
        self.sha256 = sha256
        self.seconds = seconds
    }

    enum CodingKeys: String, CodingKey {
        case schema, task, profile, inputs, sources, counts, notes, items, sample, subsets, sha256, seconds, tokens, tokenizer
        case toolVersion = "tool_version", inputsHash = "inputs_hash", itemsAvailable = "items_available"
        case itemsWithGoldsEmptyAfterNormalization = "items_with_golds_empty_after_normalization"
    }

    public static func path(ofTaskFile taskPath: String) -> String { taskPath + ".manifest.json" }

    public static func read(path: String) throws -> TaskManifest {
        try JSONArtifact.read(TaskManifest.self, path: path, schema: schemaName, ifMissing: "missing; run kick-ingest",
                              hint: "; rerun kick-ingest (or make ingest FORCE=1) with this kick")
    }
}
