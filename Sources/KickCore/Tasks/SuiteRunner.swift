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
    /// Run only this shard's items, into its own log and scores.
    public var shard: TaskShard?

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

/// Runs the tasks of a registry for one model: items through the engine's
/// batches, every item logged as it is scored, scores written at the end.
/// What a task prompts, logs and scores is its own (`KickTask`); this holds
/// what they share: the model, generation, resumption and timing.
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
    public var registry = TaskRegistry.standard
    var tok: Tokenizer { bundle.tokenizer }
    /// Tokens generated (or, where a task says so, computed) in this task run.
    var countedTokens = 0

    public init(bundle: ModelBundle, model: LlamaModel, options: SuiteOptions, judge: JudgeClient? = nil) {
        self.bundle = bundle
        self.model = model
        self.options = options
        self.judge = judge
    }

    func logPath(_ task: String) -> String { "\(options.outDir)/\(task)\(options.shard?.suffix ?? "").jsonl" }
    public func scoresPath(_ task: String) -> String { "\(options.outDir)/\(task)\(options.shard?.suffix ?? "").scores.json" }
    /// Another configuration's log of a task (dense's, for similarity).
    func denseLogPath(_ task: String) -> String? { options.denseDir.map { "\($0)/\(task).jsonl" } }

    /// Runs the items not yet logged, then scores every logged item of the task file.
    @discardableResult
    public func run(task: String) throws -> TaskScores {
        try run(registry.task(named: task))
    }

    func run<T: KickTask>(_ task: T.Type) throws -> TaskScores {
        let taskPath = "\(options.ingestDir)/tasks/\(T.name).jsonl"
        let taskSHA = try Self.checkedTaskFileHash(taskPath)
        let all = try TaskFile.read(path: taskPath, task: T.name, registry: registry)
        let items = T.shardsItems ? options.shard.map { $0.items(all) } ?? all : all
        let log = try TaskLog<T.Record>(path: logPath(T.name))
        let t0 = Date()
        countedTokens = 0
        let outcome = try T.run(items, on: self, log: log)
        if outcome.stoppedEarly { throw StoppedEarly(task: T.name, items: options.stopAfter ?? 0) }
        let timing: Timing
        if outcome.itemsRun == 0, let old = try? TaskScores.read(path: scoresPath(T.name)) {
            // nothing new was run: keep the timing of the run that did the work
            timing = Timing(seconds: old.secondsLogged, tokens: old.tokensGenerated, perSecond: old.tokensPerSecond)
        } else {
            timing = Timing(seconds: Date().timeIntervalSince(t0), tokens: outcome.tokens)
        }
        let scores = Self.scores(T.self, items, log, options: options, perplexityWindow: min(options.perplexityWindow, contextLimit),
                                 taskSHA: taskSHA, timing: timing)
        try scores.write(to: scoresPath(T.name))
        return scores
    }

    /// The work behind a task's scores: seconds, tokens, tokens per second.
    struct Timing {
        var seconds: Double, tokens: Int, perSecond: Double
        /// Measured now: seconds and rate rounded as scores keep them.
        init(seconds: Double, tokens: Int) {
            self.init(seconds: SuiteRunner.round(seconds), tokens: tokens, perSecond: SuiteRunner.round(Double(tokens) / max(seconds, 1e-9)))
        }
        /// As an earlier run recorded them.
        init(seconds: Double, tokens: Int, perSecond: Double) {
            self.seconds = seconds
            self.tokens = tokens
            self.perSecond = perSecond
        }
    }

    /// A task's scores over `items` as `log` holds them: what a run and a
    /// merge of shards both write.
    static func scores<T: KickTask>(_: T.Type, _ items: [TaskItem], _ log: TaskLog<T.Record>, options: SuiteOptions, perplexityWindow: Int,
                                    taskSHA: String, timing: Timing) -> TaskScores {
        let context = ScoringContext(config: options.config, topK: options.topK, perplexityWindow: perplexityWindow, generation: options.generation)
        let (n, metrics, notes) = T.score(items, log, context)
        var scores = TaskScores(config: options.config, task: T.name, model: options.modelName, items: n,
                                itemsInTaskFile: T.sampled ? items.count : n, notes: notes, metrics: metrics,
                                secondsLogged: timing.seconds, tokensGenerated: timing.tokens, tokensPerSecond: timing.perSecond)
        scores.taskFileSHA256 = taskSHA
        return scores
    }

    /// The common shape of a task run: the items the log lacks (cut by the
    /// test hook), a progress meter, and `body` over them.
    public func runPending<R>(_ task: String, _ items: [TaskItem], _ log: TaskLog<R>,
                              _ body: ([TaskItem], ProgressMeter) throws -> Void) throws -> TaskRunOutcome {
        var todo = items.filter { !log.has($0.id) }
        let stopping = options.stopAfter.map { $0 < todo.count } ?? false
        if let k = options.stopAfter { todo = Array(todo.prefix(k)) }
        let progress = ProgressMeter(label: "\(options.config) \(task)", total: todo.count, show: options.showProgress)
        if !todo.isEmpty { try body(todo, progress) }
        progress.finish()
        return TaskRunOutcome(stoppedEarly: stopping, tokens: countedTokens, itemsRun: todo.count)
    }

    /// The task file's sha256, checked against the one its ingest manifest
    /// recorded: an item edited after ingest must not be scored silently.
    static func checkedTaskFileHash(_ path: String) throws -> String {
        guard FileManager.default.fileExists(atPath: path) else { throw KickError("task file not found; run kick-ingest first", file: path, code: .notFound) }
        let sha = try SHA256.hex(ofFile: path)
        let manifestPath = TaskManifest.path(ofTaskFile: path)
        if FileManager.default.fileExists(atPath: manifestPath) {
            let want = try TaskManifest.read(path: manifestPath).sha256
            guard want == sha else {
                throw KickError("sha256 \(sha) differs from the \(want) its manifest recorded: the file changed after ingest; rerun kick-ingest (or make ingest FORCE=1)", file: path)
            }
        } else {
            Diagnostics.warning("\(path) has no manifest; its sha256 is recorded in the scores but checked against nothing")
        }
        return sha
    }

    // MARK: generation

    /// One generation: the item, a key telling a task's several
    /// generations of an item apart, the prompt and its limits.
    public struct Job {
        public var item: TaskItem
        public var key: String
        public var prompt: [Int]
        public var maxNew: Int
        public var sampling: SamplingParams
        public var stops: [String]
        public var requireText = false
        public var minNewTokens = 0
        public var prefix: KVCache?

        public init(item: TaskItem, key: String = "", prompt: [Int], maxNew: Int, sampling: SamplingParams = .greedy, stops: [String] = [], prefix: KVCache? = nil) {
            self.item = item
            self.key = key
            self.prompt = prompt
            self.maxNew = maxNew
            self.sampling = sampling
            self.stops = stops
            self.prefix = prefix
        }
    }

    /// Generates every job through continuous batching; `done` sees each as it finishes.
    public func generate(_ jobs: [Job], progress: ProgressMeter, _ done: (Job, GenerationResult, Double) throws -> Void) throws {
        let gen = BatchGenerator(model: model, tokenizer: tok, maxBatch: options.batch)
        let t0 = Date()
        var failure: Error?
        let reqs = jobs.enumerated().map { GenerationRequest(id: $0.offset, prompt: $0.element.prompt, maxNewTokens: $0.element.maxNew,
                                                               sampling: $0.element.sampling, stopStrings: $0.element.stops,
                                                               requireText: $0.element.requireText, minNewTokens: $0.element.minNewTokens, prefix: $0.element.prefix) }
        withoutActuallyEscaping(done) { done in
            _ = gen.generate(reqs) { r in
                guard failure == nil else { return }
                self.countedTokens += r.tokens.count
                progress.tokens += r.tokens.count
                do { try done(jobs[r.id], r, Date().timeIntervalSince(t0)) } catch { failure = error }
            }
        }
        if let f = failure { throw f }
    }

    public func encode(_ text: String) -> [Int] { tok.encode(text, parseSpecial: false, addBOS: tok.addBOS) }

    public func chat(_ messages: [ChatTemplate.Message]) -> [Int] {
        let t = bundle.chatTemplate
        let text = t.render(messages, defaultSystem: t == .chatml ? ChatTemplate.smolLMSystem : nil)
        return tok.encode(text, parseSpecial: true, addBOS: tok.addBOS)
    }

    public var contextLimit: Int { model.config.contextLength }

    /// Keeps the prompt and the answer inside the context: the longest
    /// prefix of `text` (cut at a word) whose prompt fits.
    public func fitting(_ text: String, room: Int, build: (String) -> [Int]) -> (tokens: [Int], truncated: Bool) {
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

    /// Log values keep four decimals: enough to sum, short to read.
    public static func round(_ x: Double) -> Double { (x * 1e4).rounded() / 1e4 }
}

extension String {
    /// FNV-1a: a hash that, unlike hashValue, is the same in every process.
    var hashValueStable: UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in utf8 { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
        return h
    }
}
