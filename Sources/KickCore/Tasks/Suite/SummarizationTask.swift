import Foundation

/// Summarization: each article summarized twice from one prompt cache,
/// sampled at the paper's temperature and greedily; ROUGE against the
/// reference and against dense's summary, and repetition measures.
public enum SummarizationTask: KickTask {
    public static let name = "summarization"
    /// The paper's sampling temperature for summaries.
    public static let samplingTemperature: Float = 0.7

    public static func prompt(_ story: String) -> String {
        "Summarize the given story in less than 150 words while preserving high coherence, consistency, fluency, and relevance.\n\n\(story)"
    }

    /// The paper samples; greedy is reported beside it.
    public enum Mode: String, CaseIterable, Codable, Sendable { case sampled, greedy }

    /// One summary's measures.
    public struct ModeVerdicts: Codable, Sendable, Equatable {
        public var rouge1: Double
        public var rouge2: Double
        public var rougeL: Double
        public var distinct1: Double
        public var distinct2: Double
        public var repeatedTrigram: Double
        /// ROUGE-L against dense's summary in the same mode (no dense run: nil).
        public var rougeLVsDense: Double?
        enum CodingKeys: String, CodingKey {
            case rouge1, rouge2, rougeL, distinct1, distinct2, repeatedTrigram = "repeated_trigram", rougeLVsDense = "rougeL_vs_dense"
        }
    }

    /// A value per mode, written as {"sampled": …, "greedy": …}.
    public struct PerMode<T: Codable & Sendable & Equatable>: Codable, Sendable, Equatable {
        public var sampled: T
        public var greedy: T
        public subscript(_ m: Mode) -> T { m == .sampled ? sampled : greedy }
    }

    public struct Tokens: Codable, Sendable, Equatable {
        public var prompt: Int
        public var output: PerMode<Int>
    }

    public struct Record: TaskRecord, Equatable {
        public var id: String
        public var subset: String
        public var golds: [String]
        /// The prompt with the article as {article}: the article is the item's context in the task file.
        public var prompt: String
        public var chatTemplate: String
        public var articleWords: Int
        /// Whether the article was cut to fit the context.
        public var truncated: Bool
        public var outputs: PerMode<String>
        public var finish: PerMode<String>
        public var verdicts: PerMode<ModeVerdicts>
        public var tokens: Tokens
        public var judge: JudgeRating?
        public var seconds: Double
        enum CodingKeys: String, CodingKey {
            case id, subset, golds, prompt, truncated, outputs, finish, verdicts, tokens, judge, seconds
            case chatTemplate = "chat_template", articleWords = "article_words"
        }
    }

    public static func inputs(_ ingest: TaskIngest) throws -> [TaskIngest.Input] {
        [try ingest.either(ingest.originals.cnnDailyMailDir, "cnn-dailymail", reader: "cnn-dailymail-stories", dataset: "xsum")]
    }

    public static func read(_ inputs: [TaskIngest.Input], _ ingest: TaskIngest, _ counts: inout TaskManifest.Counts) throws -> [TaskItem] {
        let r = try ingest.source(inputs[0], &counts, original: { try SummarizationReader.cnnDailyMail(dir: $0) },
                                  package: { try SummarizationReader.xsum(data: try ingest.data($0), file: $0) })
        for (bucket, n) in Dictionary(grouping: r.items, by: \.subset).mapValues(\.count) { counts.counts["bucket:" + bucket] = n }
        return r.items
    }

    public static func problem(with item: TaskItem) -> String? { item.textProblem ?? item.goldProblem }

    static func verdicts(_ text: String, reference: String, dense: String?) -> ModeVerdicts {
        let r = SuiteRunner.round
        return ModeVerdicts(rouge1: r(TextMetrics.rougeN(text, reference, n: 1)), rouge2: r(TextMetrics.rougeN(text, reference, n: 2)),
                            rougeL: r(TextMetrics.rougeL(text, reference)), distinct1: r(TextMetrics.distinct(text, n: 1)),
                            distinct2: r(TextMetrics.distinct(text, n: 2)), repeatedTrigram: r(TextMetrics.repeatedTrigramRate(text)),
                            rougeLVsDense: dense.map { r(TextMetrics.rougeL(text, $0)) })
    }

    public static func run(_ items: [TaskItem], on runner: SuiteRunner, log: TaskLog<Record>) throws -> TaskRunOutcome {
        let model = runner.model, options = runner.options
        let maxNew = options.generation.summaryMaxTokens
        let dense = try runner.denseLogPath(name).map { try TaskLog<Record>.read(path: $0) } ?? [:]
        return try runner.runPending(name, items, log) { todo, p in
            var truncated: [String: Bool] = [:]
            var half: [String: (String, GenerationResult)] = [:]
            // a few items at a time: both runs of an item share its prompt's KV
            // cache, computed once, and the caches of long articles are large
            let perChunk = max(1, options.batch / 2)
            for chunk in stride(from: 0, to: todo.count, by: perChunk).map({ Array(todo[$0..<min(todo.count, $0 + perChunk)]) }) {
                var jobs: [SuiteRunner.Job] = []
                for it in chunk {
                    let (ids, cut) = runner.fitting(it.context ?? "", room: runner.contextLimit - maxNew) { runner.chat([.init(role: "user", content: prompt($0))]) }
                    truncated[it.id] = cut
                    let prefix = model.newCache(capacity: ids.count)
                    if ids.count > 1 { _ = model.forward([BatchItem(cache: prefix, tokens: Array(ids.dropLast()), logits: .none)]) }
                    p.tokens += ids.count - 1
                    let seed = options.summarySeed &+ UInt64(truncatingIfNeeded: it.id.hashValueStable)
                    jobs.append(SuiteRunner.Job(item: it, key: Mode.sampled.rawValue, prompt: ids, maxNew: maxNew,
                                                sampling: SamplingParams(temperature: samplingTemperature, topP: 1, seed: seed), prefix: prefix))
                    jobs.append(SuiteRunner.Job(item: it, key: Mode.greedy.rawValue, prompt: ids, maxNew: maxNew, prefix: prefix))
                }
                try runner.generate(jobs, progress: p) { j, r, s in
                    guard let other = half.removeValue(forKey: j.item.id) else { half[j.item.id] = (j.key, r); return }
                    let outs = Dictionary(uniqueKeysWithValues: [(j.key, r), other])
                    let sampled = outs[Mode.sampled.rawValue]!, greedy = outs[Mode.greedy.rawValue]!
                    let ref = j.item.golds.first ?? "", d = dense[j.item.id]?.outputs
                    var rec = Record(
                        id: j.item.id, subset: j.item.subset, golds: j.item.golds, prompt: prompt("{article}"), chatTemplate: runner.bundle.chatTemplate.rawValue,
                        articleWords: wordCount(j.item.context ?? ""), truncated: truncated[j.item.id] ?? false,
                        outputs: PerMode(sampled: sampled.text, greedy: greedy.text),
                        finish: PerMode(sampled: sampled.finish.rawValue, greedy: greedy.finish.rawValue),
                        verdicts: PerMode(sampled: verdicts(sampled.text, reference: ref, dense: d?.sampled),
                                          greedy: verdicts(greedy.text, reference: ref, dense: d?.greedy)),
                        tokens: Tokens(prompt: r.promptTokens, output: PerMode(sampled: sampled.tokens.count, greedy: greedy.tokens.count)),
                        judge: nil, seconds: SuiteRunner.round(s))
                    if let judge = runner.judge {
                        rec.judge = judge.rateSummary(story: j.item.context ?? "", summary: sampled.text, reference: d?.sampled)
                    }
                    try log.append(rec)
                    p.step()
                }
            }
        }
    }

    public static let metrics: [TaskMetric<Record>] = {
        typealias K = ModeVerdicts.CodingKeys
        let perMode: [(K, @Sendable (ModeVerdicts) -> Double?)] = [
            (.rouge1, { $0.rouge1 }), (.rouge2, { $0.rouge2 }), (.rougeL, { $0.rougeL }), (.rougeLVsDense, { $0.rougeLVsDense }),
            (.distinct1, { $0.distinct1 }), (.distinct2, { $0.distinct2 }), (.repeatedTrigram, { $0.repeatedTrigram }),
        ]
        var out: [TaskMetric<Record>] = perMode.flatMap { k, f in
            Mode.allCases.map { m in TaskMetric<Record>.mean(k, suffix: "_" + m.rawValue) { f($0.verdicts[m]) } }
        }
        out.append(.emptyAnswer { [$0.outputs.greedy] })
        out += JudgeRating.summaryCriteria.map { k in .mean("judge_" + k.stringValue) { $0.judge?[k] } }
        return out
    }()

    public static func summarize(_ records: [Record], items: [TaskItem], _ context: ScoringContext) -> (metrics: [MetricSummary], notes: [String]) {
        var notes: [String] = []
        if context.comparesWithDense && !records.contains(where: { $0.verdicts.greedy.rougeLVsDense != nil }) { notes.append("no dense run: similarity to dense not measured") }
        notes += JudgeRating.notes(records.map(\.judge), criterion: .coherence)
        return ([], notes)
    }

    public static let headline = TaskHeadline(metric: "rougeL_greedy", label: "summarization ROUGE-L (greedy) vs reference")

    public static func reportSection(_ t: ReportTables) -> String {
        var md = "## Summarization\n\n" + t.table([("ROUGE-L greedy", "rougeL_greedy", "all"), ("ROUGE-L sampled T=0.7", "rougeL_sampled", "all"),
                                                   ("ROUGE-L vs dense (greedy)", "rougeL_vs_dense_greedy", "all"), ("distinct-2", "distinct2_greedy", "all"),
                                                   ("repeated trigrams", "repeated_trigram_greedy", "all")])
        let buckets = ["small", "mid", "large"].filter { t.has(metric: "rougeL_greedy", subset: $0) }
        if !buckets.isEmpty {
            md += "\nBy context length (ROUGE-L greedy; small < 300 words, mid 300–800, large > 800):\n\n" + t.table(buckets.map { ($0, "rougeL_greedy", $0) })
        }
        return md
    }
}
