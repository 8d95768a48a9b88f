import Foundation

/// One LLM-KICK task, whole: where its items come from, how they are
/// prompted and run, what each item's log record holds, how records become
/// metric summaries, and the report's section. Ingest, the suite runner,
/// scoring, the report, `--tasks` and the Makefile's task list all read the
/// registry, so a new task is one file and one line in `TaskRegistry.standard`.
public protocol KickTask {
    /// One scored item in `<task>.jsonl`, written as it is scored.
    associatedtype Record: TaskRecord

    /// The name in profiles, file names, `--tasks` and results.csv.
    static var name: String { get }

    // MARK: ingest

    /// The task's sources, main first; their identities decide whether a
    /// task file is stale without reading any data.
    static func inputs(_ ingest: TaskIngest) throws -> [TaskIngest.Input]
    /// Every item the sources hold (ingest samples them afterwards).
    static func read(_ inputs: [TaskIngest.Input], _ ingest: TaskIngest, _ counts: inout TaskManifest.Counts) throws -> [TaskItem]
    /// Whether ingest draws the profile's sample (false: every item, in order).
    static var sampled: Bool { get }
    /// What makes an item unusable for this task, or nil.
    static func problem(with item: TaskItem) -> String?
    /// Adds what the task knows of its drawn items to their manifest.
    static func annotate(_ manifest: inout TaskManifest, items: [TaskItem], _ ingest: TaskIngest)

    // MARK: run

    /// Runs the items the log lacks, appending a record per item as it is
    /// scored (usually through `SuiteRunner.runPending`).
    static func run(_ items: [TaskItem], on runner: SuiteRunner, log: TaskLog<Record>) throws -> TaskRunOutcome
    /// Whether a sharded run hands the task only its shard's items (true:
    /// a record per item). A task that logs other units (perplexity's
    /// windows over all items' text) gets every item and shards its units
    /// itself, by `SuiteOptions.shard`.
    static var shardsItems: Bool { get }
    /// The ids a complete run logs, in order: the unit a shard owns is the
    /// one at position ≡ I (mod N). The items' ids unless the task logs
    /// other units.
    static func recordIDs(_ items: [TaskItem], tokenizer: Tokenizer, window: Int, maxWindows: Int?) -> [String]

    // MARK: scoring

    /// Per-item measures, summarized over every subset an item counts in,
    /// and paired item by item with dense in the report.
    static var metrics: [TaskMetric<Record>] { get }
    /// The subsets besides "all" that a record counts in.
    static func subsets(of record: Record) -> [String]
    /// The records scored, in order.
    static func scoredRecords(_ items: [TaskItem], _ log: TaskLog<Record>) -> [Record]
    /// Summaries that are not per-item means, and the notes scores carry.
    static func summarize(_ records: [Record], items: [TaskItem], _ context: ScoringContext) -> (metrics: [MetricSummary], notes: [String])

    // MARK: report

    /// The task's one figure for findings and plots.
    static var headline: TaskHeadline { get }
    /// The per-item figure dense is paired with (the headline unless that
    /// pools items, as perplexity does).
    static var pairedHeadline: TaskHeadline { get }
    /// The task's section of results.md.
    static func reportSection(_ tables: ReportTables) -> String
}

extension KickTask {
    public static var sampled: Bool { true }

    public static var shardsItems: Bool { true }

    public static func recordIDs(_ items: [TaskItem], tokenizer: Tokenizer, window: Int, maxWindows: Int?) -> [String] { items.map(\.id) }

    public static func problem(with item: TaskItem) -> String? { nil }

    public static var pairedHeadline: TaskHeadline { headline }

    public static func annotate(_ manifest: inout TaskManifest, items: [TaskItem], _ ingest: TaskIngest) {}

    public static func subsets(of record: Record) -> [String] { record.subset == "all" ? [] : [record.subset] }

    public static func scoredRecords(_ items: [TaskItem], _ log: TaskLog<Record>) -> [Record] { items.compactMap { log.records[$0.id] } }

    public static func summarize(_ records: [Record], items: [TaskItem], _ context: ScoringContext) -> (metrics: [MetricSummary], notes: [String]) { ([], []) }

    /// Every metric of every subset over the scored records, then the task's own summaries.
    static func score(_ items: [TaskItem], _ log: TaskLog<Record>, _ context: ScoringContext) -> (records: Int, metrics: [MetricSummary], notes: [String]) {
        let recs = scoredRecords(items, log)
        var bySubset: [String: [Record]] = ["all": recs]
        for r in recs { for s in subsets(of: r) { bySubset[s, default: []].append(r) } }
        var out: [MetricSummary] = []
        for s in ["all"] + bySubset.keys.filter({ $0 != "all" }).sorted() {
            for m in metrics {
                let values = bySubset[s]!.compactMap(m.value)
                guard !values.isEmpty else { continue }
                out.append(m.summary(s, values))
            }
        }
        let (extra, notes) = summarize(recs, items: items, context)
        return (recs.count, out + extra, notes)
    }

    /// Per-item values keyed "subset|metric" for one record, as the report pairs them.
    static func itemValues(_ r: Record) -> [String: TaskMetric<Record>.Value] {
        var out: [String: TaskMetric<Record>.Value] = [:]
        for m in metrics {
            guard let v = m.value(r) else { continue }
            for s in ["all"] + subsets(of: r) { out[s + "|" + m.name] = v }
        }
        return out
    }
}

/// What every log record holds, whatever its task.
public protocol TaskRecord: Codable, Sendable {
    var id: String { get }
    var subset: String { get }
}

/// A per-item measure: right/wrong (a proportion with a Wilson interval) or
/// a number (a mean with a normal interval).
public struct TaskMetric<R>: Sendable {
    public enum Value: Sendable, Equatable { case bool(Bool), number(Double) }
    public let name: String
    public let value: @Sendable (R) -> Value?

    /// A right/wrong verdict; the name is the record's JSON key for it.
    public static func proportion(_ key: some CodingKey, _ f: @escaping @Sendable (R) -> Bool?) -> TaskMetric {
        proportion(key.stringValue, f)
    }

    public static func proportion(_ name: String, _ f: @escaping @Sendable (R) -> Bool?) -> TaskMetric {
        TaskMetric(name: name) { f($0).map(Value.bool) }
    }

    /// A per-item number; the name is the record's JSON key for it.
    public static func mean(_ key: some CodingKey, suffix: String = "", _ f: @escaping @Sendable (R) -> Double?) -> TaskMetric {
        mean(key.stringValue + suffix, f)
    }

    public static func mean(_ name: String, _ f: @escaping @Sendable (R) -> Double?) -> TaskMetric {
        TaskMetric(name: name) { f($0).map(Value.number) }
    }

    /// The share of items whose answer is empty (the model ended at once): a
    /// protocol artifact rather than knowledge, reported beside every generation task.
    public static func emptyAnswer(_ answers: @escaping @Sendable (R) -> [String]) -> TaskMetric {
        proportion("empty_answer") { r in answers(r).contains { $0.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty } }
    }

    func summary(_ subset: String, _ values: [Value]) -> MetricSummary {
        let bools = values.compactMap { if case .bool(let b) = $0 { b } else { nil } }
        if bools.count == values.count { return .proportion(name, subset, hits: bools) }
        return .mean(name, subset, values.compactMap { if case .number(let x) = $0 { x } else { nil } })
    }
}

/// What scoring needs of the run beyond the records.
public struct ScoringContext: Sendable {
    public var config: String
    /// Whether this configuration is compared with a dense run.
    public var comparesWithDense: Bool { config != "dense" }
    public var topK: Int
    public var perplexityWindow: Int
    public var generation: Profile.Generation
}

/// What running a task did: whether the test hook stopped it, and the
/// tokens it generated (or, for MMLU and perplexity, computed).
public struct TaskRunOutcome: Sendable {
    public var stoppedEarly = false
    public var tokens = 0
    public var itemsRun = 0
    public init(stoppedEarly: Bool = false, tokens: Int = 0, itemsRun: Int = 0) {
        self.stoppedEarly = stoppedEarly
        self.tokens = tokens
        self.itemsRun = itemsRun
    }
}

/// A task's headline metric.
public struct TaskHeadline: Sendable {
    public var metric: String
    public var subset: String
    public var label: String
    public var higherIsBetter: Bool
    /// Whether findings count it among the abilities compression may lose (perplexity is the yardstick instead).
    public var isAbility: Bool
    /// "subset|metric", as paired comparisons are keyed.
    public var key: String { subset + "|" + metric }

    public init(metric: String, subset: String = "all", label: String, higherIsBetter: Bool = true, isAbility: Bool = true) {
        self.metric = metric
        self.subset = subset
        self.label = label
        self.higherIsBetter = higherIsBetter
        self.isAbility = isAbility
    }
}

/// The tasks kick knows, in run and report order.
public struct TaskRegistry: Sendable {
    public let tasks: [any KickTask.Type]

    public init(_ tasks: [any KickTask.Type]) {
        precondition(Set(tasks.map { $0.name }).count == tasks.count, "task names must be unique")
        self.tasks = tasks
    }

    /// The paper's five abilities and perplexity.
    public static let standard = TaskRegistry([
        FactoidTask.self, MMLUTask.self, ICRQATask.self, SummarizationTask.self, InstructTask.self, PerplexityTask.self,
    ])

    public var names: [String] { tasks.map { $0.name } }

    public func task(named name: String) throws -> any KickTask.Type {
        guard let t = tasks.first(where: { $0.name == name }) else {
            throw KickError("unknown task '\(KickError.quote(name))'; tasks are \(names.joined(separator: ", "))", code: .invalidValue)
        }
        return t
    }

    public func contains(_ name: String) -> Bool { tasks.contains { $0.name == name } }
}
