import Foundation

/// Original-format inputs a user may give instead of the pinned packages.
public struct OriginalSources: Sendable {
    public var freebaseQA: String?
    public var mmluDir: String?
    public var triviaQARC: String?
    public var triviaQAEvidence: String?
    public var cnnDailyMailDir: String?
    public var mtBenchQuestions: String?
    public var wikiText: String?
    public init() {}
}

/// Builds `work/<MODEL>/ingest/tasks/<task>.jsonl` and their manifests from
/// the data-set manifests and a profile; each task (`KickTask`) names its
/// sources and reads them. A task whose manifest already records the same
/// inputs is left alone.
public struct TaskIngest {
    public static let sampleSeed: UInt64 = 0

    public let root: String
    public let outDir: String
    public let profile: Profile
    public let fetcher: PackageFetcher
    public let tokenizer: Tokenizer
    public var registry = TaskRegistry.standard
    public var originals = OriginalSources()
    public var force = false

    public init(root: String, outDir: String, profile: Profile, fetcher: PackageFetcher, tokenizer: Tokenizer) {
        self.root = root
        self.outDir = outDir
        self.profile = profile
        self.fetcher = fetcher
        self.tokenizer = tokenizer
    }

    public func taskPath(_ task: String) -> String { "\(outDir)/tasks/\(task).jsonl" }

    /// One source: a pinned package's member, or an original-format file or
    /// folder the user gave. Its identity decides staleness without reading data.
    public struct Input {
        public var name: String
        public var description: TaskManifest.InputDescription
        public var identity: String
        public var dataset: DatasetManifest?
        public var path: String?
    }

    public func packageInput(_ dataset: String) throws -> Input {
        let m = try DatasetManifest.load(dataset, root: root)
        let d = TaskManifest.InputDescription(dataset: dataset, package: "\(m.source.package)==\(m.source.version)", member: m.source.member,
                                              nestedMember: m.source.nestedMember, license: m.license, path: nil, sha256: m.source.sha256, reader: m.reader)
        return Input(name: dataset, description: d, identity: "\(m.source.sha256):\(m.source.member):\(m.source.nestedMember ?? ""):\(m.reader)",
                     dataset: m)
    }

    public func fileInput(_ name: String, _ path: String, reader: String) throws -> Input {
        let h = try InputHash.of(path: path)
        let d = TaskManifest.InputDescription(path: path, sha256: h, reader: reader)
        return Input(name: name, description: d, identity: "\(h):\(reader)", path: path)
    }

    /// The user's original file where one was given, the pinned package otherwise.
    public func either(_ original: String?, _ name: String, reader: String, dataset: String) throws -> Input {
        try original.map { try fileInput(name, $0, reader: reader) } ?? packageInput(dataset)
    }

    public func text(_ path: String) throws -> String {
        guard let d = try RegularFile.contents(atPath: path), let s = String(data: d, encoding: .utf8) else { throw KickError("cannot read as UTF-8", file: path) }
        return s
    }

    public func data(_ path: String) throws -> Data {
        guard let d = try RegularFile.contents(atPath: path) else { throw KickError("cannot read", file: path) }
        return d
    }

    /// One source through its reader: a package member is fetched and its
    /// count checked against the data-set manifest; an original file is read
    /// as given. What it gave is recorded in `counts` under `label`.
    public func source(_ i: Input, label: String? = nil, _ counts: inout TaskManifest.Counts,
                       original: ((String) throws -> ReaderOutput)? = nil, package: (String) throws -> ReaderOutput) throws -> ReaderOutput {
        let r: ReaderOutput
        if let m = i.dataset {
            let path = try m.fetch(fetcher)
            r = try package(path)
            guard r.items.count == m.expectedItems else {
                throw KickError("read \(r.items.count) items, the \(m.name) manifest expects \(m.expectedItems); is the package the pinned one?", file: path)
            }
        } else if let path = i.path, let original {
            r = try original(path)
        } else {
            throw KickError("\(i.name) has no reader for a file given by path")
        }
        counts.sources[label ?? i.name] = .init(items: r.items.count, skipped: r.skippedTotal, skippedByReason: r.skipped, expectedItems: i.dataset?.expectedItems)
        return r
    }

    /// Builds each task file that is not up to date; `report` gets one line per task.
    public func buildAll(_ tasks: [String], report: (String) -> Void) throws {
        for t in tasks {
            let t0 = Date()
            let (m, built) = try build(t)
            let extra = m.tokens.map { ", \($0) tokens" } ?? ""
            report(built ? String(format: "%@: %d of %d items%@ (%.1f s)", t, m.items, m.itemsAvailable, extra, Date().timeIntervalSince(t0))
                         : "\(t): up to date (\(m.items) of \(m.itemsAvailable) items\(extra)), nothing to do")
        }
    }

    /// Builds one task file unless its manifest already matches. Returns
    /// the manifest and whether work was done.
    @discardableResult
    public func build(_ name: String) throws -> (manifest: TaskManifest, built: Bool) {
        try build(registry.task(named: name))
    }

    func build<T: KickTask>(_ task: T.Type) throws -> (manifest: TaskManifest, built: Bool) {
        let name = T.name
        let size = profile.size(name)
        let path = taskPath(name)
        let manifestPath = TaskManifest.path(ofTaskFile: path)
        // Cheap identity first: the package pins (or original files' hashes) and the sample size.
        let sources = try T.inputs(self)
        var key = SHA256()
        key.update("\(TaskFile.schema)|\(KickVersion.string)|\(name)|\(size.items.map(String.init) ?? "all")|\(Self.sampleSeed)|\(tokenizer.identity)")
        for i in sources { key.update("|" + i.identity) }
        let inputsHash = key.finalize().hex
        if !force, let old = try? TaskManifest.read(path: manifestPath), old.inputsHash == inputsHash,
           (try? SHA256.hex(ofFile: path)) == old.sha256 {
            return (old, false)
        }
        let t0 = Date()
        var counts = TaskManifest.Counts()
        let all = try T.read(sources, self, &counts)
        let items = T.sampled ? StratifiedOrder.sample(all, n: size.items, seed: Self.sampleSeed) : all
        try TaskFile.write(items, to: path)
        var m = TaskManifest(
            task: name, profile: profile.name, inputs: sources.map(\.description), inputsHash: inputsHash,
            sources: counts.sources, counts: counts.counts, notes: counts.notes, itemsAvailable: all.count, items: items.count,
            sample: !T.sampled || size.items == nil ? "all" : "first \(items.count) of a seeded stratified order (seed \(Self.sampleSeed))",
            subsets: Dictionary(grouping: items, by: \.subset).mapValues(\.count),
            sha256: try SHA256.hex(ofFile: path), seconds: (Date().timeIntervalSince(t0) * 100).rounded() / 100)
        T.annotate(&m, items: items, self)
        try AtomicFile.writeJSON(m, to: manifestPath)
        return (m, true)
    }
}
