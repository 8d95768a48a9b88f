import Foundation

/// How one configuration is run over the task files.
public struct SuiteOptions: Sendable {
    public var config: String
    public var modelName: String
    public var ingestDir: String
    public var outDir: String
    /// The dense run's folder, for similarity to dense and KL (nil: none).
    public var denseDir: String?
    /// Most sequences decoding together.
    public var batch = 16
    public var generation: Profile.Generation
    public var perplexityWindow: Int
    public var perplexityWindows: Int?
    /// Dense top-k kept per scored token for KL.
    public var topK = 32
    /// Test hook: stop (as a kill would) after this many new items of a task.
    public var stopAfter: Int?
    public var summarySeed: UInt64 = 0
    public var showProgress = true

    public init(config: String, modelName: String, ingestDir: String, outDir: String, denseDir: String?, generation: Profile.Generation,
                perplexityWindow: Int, perplexityWindows: Int?) {
        self.config = config
        self.modelName = modelName
        self.ingestDir = ingestDir
        self.outDir = outDir
        self.denseDir = denseDir
        self.generation = generation
        self.perplexityWindow = perplexityWindow
        self.perplexityWindows = perplexityWindows
    }
}

/// Runs the LLM-KICK tasks for one model: items through the engine's
/// batches, every item logged as it is scored, scores written at the end.
public final class SuiteRunner {
    public struct StoppedEarly: Error, CustomStringConvertible {
        public let task: String
        public let items: Int
        public var description: String { "stopped after \(items) items of \(task) (test hook)" }
    }

    public let bundle: ModelBundle
    public let model: LlamaModel
    public let options: SuiteOptions
    public var judge: JudgeClient?
    var tok: Tokenizer { bundle.tokenizer }
    var generatedTokens = 0

    public init(bundle: ModelBundle, model: LlamaModel, options: SuiteOptions, judge: JudgeClient? = nil) {
        self.bundle = bundle
        self.model = model
        self.options = options
        self.judge = judge
    }

    public static let tasks = TaskIngest.tasks
    /// The paper's sampling temperature for summaries.
    public static let summarySamplingTemperature: Float = 0.7

    func logPath(_ task: String) -> String { "\(options.outDir)/\(task).jsonl" }
    public func scoresPath(_ task: String) -> String { "\(options.outDir)/\(task).scores.json" }

    /// Runs the items not yet logged, then scores every logged item of the task file.
    @discardableResult
    public func run(task: String) throws -> TaskScores {
        let taskPath = "\(options.ingestDir)/tasks/\(task).jsonl"
        let taskSHA = try Self.checkedTaskFileHash(taskPath)
        let items = try TaskFile.read(path: taskPath, task: task)
        let log = try TaskLog(path: logPath(task))
        let t0 = Date()
        generatedTokens = 0
        var todo = task == "perplexity" ? [] : items.filter { !log.has($0.id) }
        var stopping = options.stopAfter.map { $0 < todo.count } ?? false
        if let k = options.stopAfter { todo = Array(todo.prefix(k)) }
        let progress = ProgressMeter(label: "\(options.config) \(task)", total: todo.count, show: options.showProgress)
        if !todo.isEmpty {
            switch task {
            case "factoid": try runFactoid(todo, log, progress)
            case "mmlu": try runMMLU(todo, log, progress)
            case "icrqa": try runICRQA(todo, log, progress)
            case "summarization": try runSummarization(todo, log, progress)
            case "instruct": try runInstruct(todo, log, progress)
            case "perplexity": break
            default: throw KickError("unknown task '\(task)'; tasks are \(Self.tasks.joined(separator: ", "))")
            }
        }
        if task == "perplexity" { stopping = try runPerplexity(items, log, stopAfter: options.stopAfter) }
        progress.finish()
        if stopping { throw StoppedEarly(task: task, items: options.stopAfter!) }
        var scores = try score(task: task, items: items, log: log)
        scores.taskFileSHA256 = taskSHA
        let worked = !todo.isEmpty || progress.tokens > 0 || generatedTokens > 0
        if !worked, let old = try? TaskScores.read(path: scoresPath(task)) {
            // nothing new was run: keep the timing of the run that did the work
            scores.secondsLogged = old.secondsLogged
            scores.tokensGenerated = old.tokensGenerated
            scores.tokensPerSecond = old.tokensPerSecond
        } else {
            let el = Date().timeIntervalSince(t0)
            scores.secondsLogged = Self.round(el)
            scores.tokensGenerated = task == "mmlu" ? progress.tokens : generatedTokens
            scores.tokensPerSecond = Self.round(Double(scores.tokensGenerated) / max(el, 1e-9))
        }
        try scores.write(to: scoresPath(task))
        return scores
    }

    /// The task file's sha256, checked against the one its ingest manifest
    /// recorded: an item edited after ingest must not be scored silently.
    static func checkedTaskFileHash(_ path: String) throws -> String {
        guard FileManager.default.fileExists(atPath: path) else { throw KickError("task file not found; run kick-ingest first", file: path) }
        let sha = try SHA256.hex(ofFile: path)
        let manifestPath = path + ".manifest.json"
        if let m = readJSONObject(atPath: manifestPath) {
            guard let want = m["sha256"] as? String else { throw KickError("the manifest records no sha256", file: manifestPath) }
            guard want == sha else {
                throw KickError("sha256 \(sha) differs from the \(want) its manifest recorded: the file changed after ingest; rerun kick-ingest (or make ingest FORCE=1)", file: path)
            }
        } else if FileManager.default.fileExists(atPath: manifestPath) {
            throw KickError("unreadable manifest (not a JSON object)", file: manifestPath)
        } else {
            Diagnostics.warning("\(path) has no manifest; its sha256 is recorded in the scores but checked against nothing")
        }
        return sha
    }

    // MARK: generation

    struct Job {
        var item: TaskItem
        var key: String
        var prompt: [Int]
        var maxNew: Int
        var sampling: SamplingParams = .greedy
        var stops: [String] = []
        var prefix: KVCache? = nil
    }

    /// Generates every job through continuous batching; `done` sees each as it finishes.
    func generate(_ jobs: [Job], progress: ProgressMeter, _ done: (Job, GenerationResult, Double) throws -> Void) throws {
        let gen = BatchGenerator(model: model, tokenizer: tok, maxBatch: options.batch)
        let t0 = Date()
        var failure: Error?
        let reqs = jobs.enumerated().map { GenerationRequest(id: $0.offset, prompt: $0.element.prompt, maxNewTokens: $0.element.maxNew,
                                                               sampling: $0.element.sampling, stopStrings: $0.element.stops, prefix: $0.element.prefix) }
        withoutActuallyEscaping(done) { done in
            _ = gen.generate(reqs) { r in
                guard failure == nil else { return }
                self.generatedTokens += r.tokens.count
                progress.tokens += r.tokens.count
                do { try done(jobs[r.id], r, Date().timeIntervalSince(t0)) } catch { failure = error }
            }
        }
        if let f = failure { throw f }
    }

    func encode(_ text: String) -> [Int] { tok.encode(text, parseSpecial: false, addBOS: tok.addBOS) }

    func chat(_ messages: [ChatTemplate.Message]) -> [Int] {
        let t = bundle.chatTemplate
        let text = t.render(messages, defaultSystem: t == .chatml ? ChatTemplate.smolLMSystem : nil)
        return tok.encode(text, parseSpecial: true, addBOS: tok.addBOS)
    }

    var contextLimit: Int { model.config.contextLength }

    /// Keeps the prompt and the answer inside the context: the longest
    /// prefix of `text` (cut at a word) whose prompt fits.
    func fitting(_ text: String, room: Int, build: (String) -> [Int]) -> (tokens: [Int], truncated: Bool) {
        let full = build(text)
        if full.count <= room { return (full, false) }
        var lo = 0, hi = text.count
        while lo < hi {
            let mid = (lo + hi + 1) / 2
            if build(String(text.prefix(mid))).count <= room { lo = mid } else { hi = mid - 1 }
        }
        var cut = String(text.prefix(lo))
        if let sp = cut.lastIndex(where: { $0.isWhitespace }) { cut = String(cut[..<sp]) }
        return (build(cut), true)
    }

    static func base(_ item: TaskItem, prompt: String) -> [String: Any] {
        var r: [String: Any] = ["id": item.id, "subset": item.subset, "golds": item.golds, "prompt": prompt]
        if let g = item.group { r["group"] = g }
        return r
    }

    func runFactoid(_ todo: [TaskItem], _ log: TaskLog, _ p: ProgressMeter) throws {
        let jobs = todo.map { it -> Job in
            let ids = encode(Prompts.factoid(it.question ?? ""))
            // the paper allows 3× the prompt length; the profile caps it
            return Job(item: it, key: "", prompt: ids, maxNew: min(3 * ids.count, options.generation.factoidMaxTokens))
        }
        try generate(jobs, progress: p) { j, r, s in
            var rec = Self.base(j.item, prompt: Prompts.factoid(j.item.question ?? ""))
            rec["output"] = r.text
            rec["verdicts"] = ["substring_hit": TextMetrics.factoidHit(r.text, golds: j.item.golds),
                               "exact_match": TextMetrics.exactMatch(r.text, golds: j.item.golds),
                               "f1": Self.round(TextMetrics.tokenF1(r.text, golds: j.item.golds))]
            rec["tokens"] = ["prompt": r.promptTokens, "output": r.tokens.count]
            rec["finish"] = r.finish.rawValue
            rec["seconds"] = Self.round(s)
            try log.append(rec)
            p.step()
        }
    }

    func runICRQA(_ todo: [TaskItem], _ log: TaskLog, _ p: ProgressMeter) throws {
        let jobs = todo.map { it -> Job in
            let text = it.subset == "open" ? Prompts.openBook(it.question ?? "", evidence: it.context ?? "") : Prompts.closedBook(it.question ?? "")
            return Job(item: it, key: text, prompt: encode(text), maxNew: 32, stops: ["\n"])
        }
        try generate(jobs, progress: p) { j, r, s in
            // the first line of the output is the answer
            let answer = r.text.split(separator: "\n", omittingEmptySubsequences: false).first.map(String.init)?.trimmingCharacters(in: .whitespaces) ?? ""
            var rec = Self.base(j.item, prompt: j.key)
            rec["output"] = r.text
            rec["answer"] = answer
            rec["verdicts"] = ["exact_match": TextMetrics.containmentMatch(answer, golds: j.item.golds),
                               "f1": Self.round(TextMetrics.tokenF1(answer, golds: j.item.golds))]
            rec["tokens"] = ["prompt": r.promptTokens, "output": r.tokens.count]
            rec["seconds"] = Self.round(s)
            try log.append(rec)
            p.step()
        }
    }

    /// MMLU: the per-subject header and shots are computed once per prefix
    /// and their KV cache copied for each item; one forward per item gives
    /// both the paper's greedy letter and the A/B/C/D log-likelihoods.
    func runMMLU(_ todo: [TaskItem], _ log: TaskLog, _ p: ProgressMeter) throws {
        let limit = min(2048, contextLimit)
        let letterIDs = Prompts.letters.map { tok.encode(" " + $0).first ?? 0 }
        var prefixCache: [String: (ids: [Int], cache: KVCache)] = [:]
        var cachedSubject = ""
        // task files interleave subjects (stratified order): group them so
        // each subject's shot prefix is computed once, and keep one subject's cache at a time
        let bySubject = Dictionary(grouping: todo.indices, by: { todo[$0].subset })
        let order = bySubject.keys.sorted { bySubject[$0]!.first! < bySubject[$1]!.first! }.flatMap { bySubject[$0]! }
        for it in order.map({ todo[$0] }) {
            let t0 = Date()
            var k = it.shots?.count ?? 0
            var parts = Prompts.mmlu(it, shots: k)
            var full = encode(parts.prefix + parts.suffix)
            while full.count > limit && k > 0 {
                k -= 1
                parts = Prompts.mmlu(it, shots: k)
                full = encode(parts.prefix + parts.suffix)
            }
            if it.subset != cachedSubject { prefixCache.removeAll(); cachedSubject = it.subset }
            let computed = prefixCache[parts.prefix] == nil
            if computed {
                let ids = encode(parts.prefix)
                let c = model.newCache(capacity: ids.count)
                if !ids.isEmpty { _ = model.forward([BatchItem(cache: c, tokens: ids, logits: .none)]) }
                p.tokens += ids.count
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
            let llPred = Prompts.letters[lps.indices.max { lps[$0] < lps[$1] }!]
            var rec = Self.base(it, prompt: parts.prefix + parts.suffix)
            rec["shots"] = k
            rec["output"] = text
            rec["prediction_generate"] = genPred
            rec["prediction_loglik"] = llPred
            rec["loglik"] = Dictionary(uniqueKeysWithValues: zip(Prompts.letters, lps.map { Self.round($0) }))
            rec["verdicts"] = ["correct_generate": genPred == it.golds[0], "correct_loglik": llPred == it.golds[0]]
            rec["tokens"] = ["prompt": full.count, "prompt_reused": common, "output": 1]
            rec["prefix_computed"] = computed
            rec["seconds"] = Self.round(Date().timeIntervalSince(t0))
            try log.append(rec)
            p.tokens += full.count - common
            p.step()
        }
    }

    func runSummarization(_ todo: [TaskItem], _ log: TaskLog, _ p: ProgressMeter) throws {
        let maxNew = options.generation.summaryMaxTokens
        let dense = try options.denseDir.map { try TaskLog.read(path: "\($0)/summarization.jsonl") } ?? [:]
        var truncated: [String: Bool] = [:]
        var half: [String: (String, GenerationResult)] = [:]
        // a few items at a time: both runs of an item share its prompt's KV
        // cache, computed once, and the caches of long articles are large
        let perChunk = max(1, options.batch / 2)
        for chunk in stride(from: 0, to: todo.count, by: perChunk).map({ Array(todo[$0..<min(todo.count, $0 + perChunk)]) }) {
            var jobs: [Job] = []
            for it in chunk {
                let (ids, cut) = fitting(it.context ?? "", room: contextLimit - maxNew) { chat([.init(role: "user", content: Prompts.summarize($0))]) }
                truncated[it.id] = cut
                let prefix = model.newCache(capacity: ids.count)
                if ids.count > 1 { _ = model.forward([BatchItem(cache: prefix, tokens: Array(ids.dropLast()), logits: .none)]) }
                p.tokens += ids.count - 1
                // the paper samples; greedy is reported beside it
                let seed = options.summarySeed &+ UInt64(truncatingIfNeeded: it.id.hashValueStable)
                jobs.append(Job(item: it, key: "sampled", prompt: ids, maxNew: maxNew, sampling: SamplingParams(temperature: Self.summarySamplingTemperature, topP: 1, seed: seed), prefix: prefix))
                jobs.append(Job(item: it, key: "greedy", prompt: ids, maxNew: maxNew, prefix: prefix))
            }
            try generate(jobs, progress: p) { j, r, s in
                guard let other = half.removeValue(forKey: j.item.id) else { half[j.item.id] = (j.key, r); return }
                let outs = Dictionary(uniqueKeysWithValues: [(j.key, r), other])
                // the article is the item's context in tasks/summarization.jsonl (same id), not repeated in every log
                var rec = Self.base(j.item, prompt: Prompts.summarize("{article}"))
                rec["chat_template"] = bundle.chatTemplate.rawValue
                rec["article_words"] = wordCount(j.item.context ?? "")
                rec["truncated"] = truncated[j.item.id] ?? false
                var verdicts: [String: Any] = [:]
                var outputs: [String: String] = [:]
                for mode in ["sampled", "greedy"] {
                    let text = outs[mode]!.text
                    outputs[mode] = text
                    let ref = j.item.golds.first ?? ""
                    verdicts["rouge1_\(mode)"] = Self.round(TextMetrics.rougeN(text, ref, n: 1))
                    verdicts["rouge2_\(mode)"] = Self.round(TextMetrics.rougeN(text, ref, n: 2))
                    verdicts["rougeL_\(mode)"] = Self.round(TextMetrics.rougeL(text, ref))
                    verdicts["distinct1_\(mode)"] = Self.round(TextMetrics.distinct(text, n: 1))
                    verdicts["distinct2_\(mode)"] = Self.round(TextMetrics.distinct(text, n: 2))
                    verdicts["repeated_trigram_\(mode)"] = Self.round(TextMetrics.repeatedTrigramRate(text))
                    if let d = (dense[j.item.id]?["outputs"] as? [String: String])?[mode] {
                        verdicts["rougeL_vs_dense_\(mode)"] = Self.round(TextMetrics.rougeL(text, d))
                    }
                }
                rec["outputs"] = outputs
                rec["finish"] = ["sampled": outs["sampled"]!.finish.rawValue, "greedy": outs["greedy"]!.finish.rawValue]
                rec["verdicts"] = verdicts
                rec["tokens"] = ["prompt": r.promptTokens, "output_sampled": outs["sampled"]!.tokens.count, "output_greedy": outs["greedy"]!.tokens.count]
                if let judge {
                    let refAnswer = (dense[j.item.id]?["outputs"] as? [String: String])?["sampled"]
                    rec["judge"] = judge.rateSummary(story: j.item.context ?? "", summary: outputs["sampled"]!, reference: refAnswer)
                }
                rec["seconds"] = Self.round(s)
                try log.append(rec)
                p.step()
            }
        }
    }

    func runInstruct(_ todo: [TaskItem], _ log: TaskLog, _ p: ProgressMeter) throws {
        let maxNew = options.generation.instructMaxTokens
        let dense = try options.denseDir.map { try TaskLog.read(path: "\($0)/instruct.jsonl") } ?? [:]
        var first: [String: GenerationResult] = [:]
        let t1 = todo.map { Job(item: $0, key: "1", prompt: chat([.init(role: "user", content: $0.turns?.first ?? "")]), maxNew: maxNew) }
        try generate(t1, progress: p) { j, r, _ in first[j.item.id] = r }
        let t2 = todo.map { it -> Job in
            let turns = it.turns ?? []
            guard turns.count > 1 else { return Job(item: it, key: "2", prompt: [], maxNew: 0) }
            return Job(item: it, key: "2", prompt: chat([.init(role: "user", content: turns[0]), .init(role: "assistant", content: first[it.id]!.text),
                                                         .init(role: "user", content: turns[1])]), maxNew: maxNew)
        }
        try generate(t2, progress: p) { j, r, s in
            let a1 = first[j.item.id]!
            let answers = j.prompt.isEmpty ? [a1.text] : [a1.text, r.text]
            var rec = Self.base(j.item, prompt: (j.item.turns ?? []).joined(separator: "\n---\n"))
            rec["outputs"] = answers
            let all = answers.joined(separator: "\n")
            var verdicts: [String: Any] = ["distinct1": Self.round(TextMetrics.distinct(all, n: 1)), "distinct2": Self.round(TextMetrics.distinct(all, n: 2)),
                                           "repeated_trigram": Self.round(TextMetrics.repeatedTrigramRate(all))]
            if let d = dense[j.item.id]?["outputs"] as? [String], d.count == answers.count {
                verdicts["rougeL_vs_dense"] = Self.round(zip(answers, d).map { TextMetrics.rougeL($0, $1) }.reduce(0, +) / Double(d.count))
            }
            rec["verdicts"] = verdicts
            rec["tokens"] = ["prompt": a1.promptTokens, "output": answers.count > 1 ? a1.tokens.count + r.tokens.count : a1.tokens.count]
            if let judge {
                let refs = dense[j.item.id]?["outputs"] as? [String]
                rec["judge"] = judge.rateInstruction(turns: j.item.turns ?? [], answers: answers, reference: refs)
            }
            rec["seconds"] = Self.round(s)
            try log.append(rec)
            p.step()
        }
    }

    static func round(_ x: Double) -> Double { (x * 1e4).rounded() / 1e4 }
}

extension String {
    /// FNV-1a: a hash that, unlike hashValue, is the same in every process.
    var hashValueStable: UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in utf8 { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
        return h
    }
}
