import Foundation

/// The committed manifests (`datasets/`, `models/`, `profiles/`), found at
/// `$KICK_ROOT` or in the first folder at or above the working directory
/// (then the executable's) that holds all three.
public enum ProjectRoot {
    public static func find() throws -> String {
        if let r = ProcessInfo.processInfo.environment["KICK_ROOT"], !r.isEmpty { return r }
        let starts = [FileManager.default.currentDirectoryPath,
                      URL(fileURLWithPath: CommandLine.arguments.first ?? ".").deletingLastPathComponent().path]
        for s in starts {
            var u = URL(fileURLWithPath: s).standardizedFileURL
            while true {
                if ["datasets", "models", "profiles"].allSatisfy({ FileManager.default.fileExists(atPath: u.appendingPathComponent($0).path) }) {
                    return u.path
                }
                let up = u.deletingLastPathComponent()
                if up.path == u.path { break }
                u = up
            }
        }
        throw KickError("cannot find kick's datasets/, models/ and profiles/ folders above the working directory; run from the repository or set KICK_ROOT")
    }

    static func decode<T: Decodable>(_ type: T.Type, _ path: String) throws -> T {
        guard let d = try RegularFile.contents(atPath: path) else { throw KickError("not found", file: path) }
        do {
            let dec = JSONDecoder()
            dec.keyDecodingStrategy = .convertFromSnakeCase
            return try dec.decode(T.self, from: d)
        } catch { throw KickError("not a valid manifest: \(KickError.decoding(error))", file: path) }
    }
}

/// Where a data set or model comes from: a member of a pinned package,
/// possibly a member of a zip inside that member (a jar in a wheel).
public struct PackageSource: Codable, Sendable, Equatable {
    public var package: String
    public var version: String
    public var file: String
    public var sha256: String
    public var member: String
    public var nestedMember: String?

    public var pinned: PinnedPackage { PinnedPackage(name: package, version: version, file: file, sha256: sha256) }
}

/// `datasets/<name>.json` (`kick.dataset/1`).
public struct DatasetManifest: Codable, Sendable {
    public var schema: String
    public var name: String
    public var tasks: [String]
    public var source: PackageSource
    public var reader: String
    public var originalReader: String
    public var license: String
    public var expectedItems: Int
    public var expectedSubsets: Int?
    public var split: String
    public var categoryMap: String?

    public static func load(_ name: String, root: String) throws -> DatasetManifest {
        let m = try ProjectRoot.decode(DatasetManifest.self, root + "/datasets/\(name).json")
        guard m.schema == "kick.dataset/1" else { throw KickError("schema \(m.schema), expected kick.dataset/1", file: root + "/datasets/\(name).json") }
        return m
    }

    /// The member's bytes' cached path (extracted once, keyed by the package hash).
    public func fetch(_ fetcher: PackageFetcher) throws -> String {
        if let nested = source.nestedMember { return try fetcher.nestedMember(source.pinned, source.member, nested) }
        return try fetcher.member(source.pinned, source.member)
    }
}

/// `models/<name>.json` (`kick.model/1`).
public struct ModelManifest: Codable, Sendable {
    public struct Source: Codable, Sendable {
        public var kind: String
        public var package: String?
        public var version: String?
        public var file: String?
        public var sha256: String?
        public var member: String?
        public var hfRepo: String?
        public var expectedFiles: [String]?
    }
    public var schema: String
    public var name: String
    public var source: Source
    public var chatTemplate: String
    public var contextLength: Int
    public var sequenceLength: Int
    public var license: String?
    public var note: String?

    public static func path(_ name: String, root: String) -> String { root + "/models/\(name).json" }

    public static func load(_ name: String, root: String) throws -> ModelManifest {
        try ProjectRoot.decode(ModelManifest.self, path(name, root: root))
    }
}

/// `profiles/<name>.json` (`kick.profile/1`): the configuration grid, the
/// calibration set and the sample sizes of a run.
public struct Profile: Codable, Sendable {
    public struct Calib: Codable, Sendable {
        public var corpus: String
        public var samples: Int
        public var length: Int
        public var seed: UInt64
    }
    public struct TaskSize: Codable, Sendable {
        /// Items drawn (nil: all).
        public var items: Int?
        /// Perplexity: windows scored (nil: all) and their length.
        public var windows: Int?
        public var window: Int?
        /// Slurm jobs the task is split into per configuration (nil: 1);
        /// `SHARDS=` overrides it.
        public var shards: Int? = nil
    }
    /// Per-task generation limits.
    public struct Generation: Codable, Sendable {
        public var factoidMaxTokens: Int
        public var summaryMaxTokens: Int
        public var instructMaxTokens: Int
        /// An answer is one short line (the paper's 32 tokens).
        public var icrqaMaxTokens: Int
        /// Shots are dropped while an MMLU prompt is longer (the paper's 2,048).
        public var mmluMaxPromptTokens: Int
        /// How an icrqa answer is taken (docs/tasks.md, "Empty answers").
        public var icrqaAnswer: ICRQATask.AnswerProtocol

        public init(factoidMaxTokens: Int, summaryMaxTokens: Int, instructMaxTokens: Int, icrqaMaxTokens: Int = 32, mmluMaxPromptTokens: Int = 2048,
                    icrqaAnswer: ICRQATask.AnswerProtocol = .firstNonEmptyLine) {
            self.icrqaAnswer = icrqaAnswer
            self.factoidMaxTokens = factoidMaxTokens
            self.summaryMaxTokens = summaryMaxTokens
            self.instructMaxTokens = instructMaxTokens
            self.icrqaMaxTokens = icrqaMaxTokens
            self.mmluMaxPromptTokens = mmluMaxPromptTokens
        }
    }
    public var schema: String
    public var name: String
    public var description: String
    public var configs: [String]
    public var calib: Calib
    public var tasks: [String: TaskSize]
    public var generation: Generation
    /// Resources per job kind under LAUNCHER=slurm (`SlurmJobKind` names);
    /// a kind not given takes `SlurmResources.defaults`.
    public var slurm: [String: SlurmResources]? = nil

    public static func load(_ name: String, root: String) throws -> Profile {
        let path = root + "/profiles/\(name).json"
        guard FileManager.default.fileExists(atPath: path) else {
            let have = ((try? FileManager.default.contentsOfDirectory(atPath: root + "/profiles")) ?? []).filter { $0.hasSuffix(".json") }.map { String($0.dropLast(5)) }.sorted()
            throw KickError("no such profile; profiles are \(have.joined(separator: ", "))", file: path)
        }
        let p = try ProjectRoot.decode(Profile.self, path)
        if let problem = p.problem(registry: .standard) { throw KickError(problem, file: path, code: .malformed) }
        return p
    }

    /// What makes the profile unusable: a task kick does not know, or a limit that is not positive.
    public func problem(registry: TaskRegistry) -> String? {
        if let t = tasks.keys.sorted().first(where: { !registry.contains($0) }) {
            return "task '\(KickError.quote(t))' is not one of kick's tasks (\(registry.names.joined(separator: ", ")))"
        }
        let g = generation
        let limits = [("factoid_max_tokens", g.factoidMaxTokens), ("summary_max_tokens", g.summaryMaxTokens), ("instruct_max_tokens", g.instructMaxTokens),
                      ("icrqa_max_tokens", g.icrqaMaxTokens), ("mmlu_max_prompt_tokens", g.mmluMaxPromptTokens)]
        if let (k, v) = limits.first(where: { $0.1 <= 0 }) { return "generation.\(k) is \(v); it must be positive" }
        if let (t, s) = tasks.sorted(by: { $0.key < $1.key }).first(where: { ($0.value.shards ?? 1) < 1 }) {
            return "tasks.\(t).shards is \(s.shards!); it must be at least 1"
        }
        for (k, r) in (slurm ?? [:]).sorted(by: { $0.key < $1.key }) {
            guard SlurmJobKind(rawValue: k) != nil else {
                return "slurm.\(KickError.quote(k)) is not a job kind (\(SlurmJobKind.allCases.map(\.rawValue).joined(separator: ", ")))"
            }
            if let p = r.problem() { return "slurm.\(k): \(p)" }
        }
        return nil
    }

    public func size(_ task: String) -> TaskSize { tasks[task] ?? TaskSize(items: nil, windows: nil, window: nil) }
}
