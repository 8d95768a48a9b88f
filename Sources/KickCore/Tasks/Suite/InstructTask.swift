import Foundation

/// Instruction following (MT-Bench, two turns through the chat template):
/// similarity to dense's answers, repetition, and a judge's rating when one
/// is configured.
public enum InstructTask: KickTask {
    public static let name = "instruct"

    public struct Verdicts: Codable, Sendable, Equatable {
        public var distinct1: Double
        public var distinct2: Double
        public var repeatedTrigram: Double
        /// Mean ROUGE-L of each turn's answer against dense's (no dense run: nil).
        public var rougeLVsDense: Double?
        enum CodingKeys: String, CodingKey { case distinct1, distinct2, repeatedTrigram = "repeated_trigram", rougeLVsDense = "rougeL_vs_dense" }
    }

    public struct Record: TaskRecord, Equatable {
        public var id: String
        public var subset: String
        public var golds: [String]
        /// The turns, joined by "\n---\n".
        public var prompt: String
        /// One answer per turn.
        public var outputs: [String]
        public var verdicts: Verdicts
        public var tokens: TokenCounts
        public var judge: JudgeRating?
        public var seconds: Double
    }

    public static func inputs(_ ingest: TaskIngest) throws -> [TaskIngest.Input] {
        [try ingest.either(ingest.originals.mtBenchQuestions, "mtbench-questions", reader: "mtbench-questions", dataset: "mtbench")]
    }

    public static func read(_ inputs: [TaskIngest.Input], _ ingest: TaskIngest, _ counts: inout TaskManifest.Counts) throws -> [TaskItem] {
        let read = { (path: String) in try MTBenchReader.read(data: try ingest.data(path), file: path) }
        let r = try ingest.source(inputs[0], &counts, original: read, package: read)
        for (category, n) in Dictionary(grouping: r.items, by: \.subset).mapValues(\.count) { counts.counts["category:" + category] = n }
        return r.items
    }

    public static func problem(with item: TaskItem) -> String? {
        let turns = item.turns ?? []
        return turns.isEmpty || turns.contains(where: { TaskItem.isBlank($0) }) ? "item '\(KickError.quote(item.id))' has no turns or an empty one" : nil
    }

    public static func run(_ items: [TaskItem], on runner: SuiteRunner, log: TaskLog<Record>) throws -> TaskRunOutcome {
        let maxNew = runner.options.generation.instructMaxTokens
        let dense = try runner.denseLogPath(name).map { try TaskLog<Record>.read(path: $0) } ?? [:]
        return try runner.runPending(name, items, log) { todo, p in
            var first: [String: GenerationResult] = [:]
            let t1 = todo.map { SuiteRunner.Job(item: $0, key: "1", prompt: runner.chat([.init(role: "user", content: $0.turns?.first ?? "")]), maxNew: maxNew) }
            try runner.generate(t1, progress: p) { j, r, _ in first[j.item.id] = r }
            let t2 = todo.map { it -> SuiteRunner.Job in
                let turns = it.turns ?? []
                guard turns.count > 1 else { return SuiteRunner.Job(item: it, key: "2", prompt: [], maxNew: 0) }
                return SuiteRunner.Job(item: it, key: "2", prompt: runner.chat([.init(role: "user", content: turns[0]), .init(role: "assistant", content: first[it.id]!.text),
                                                                                .init(role: "user", content: turns[1])]), maxNew: maxNew)
            }
            try runner.generate(t2, progress: p) { j, r, s in
                let a1 = first[j.item.id]!
                let answers = j.prompt.isEmpty ? [a1.text] : [a1.text, r.text]
                let all = answers.joined(separator: "\n")
                let refs = dense[j.item.id]?.outputs
                let vsDense = refs.flatMap { d in
                    d.count == answers.count ? SuiteRunner.round(zip(answers, d).map { TextMetrics.rougeL($0, $1) }.reduce(0, +) / Double(d.count)) : nil
                }
                var rec = Record(id: j.item.id, subset: j.item.subset, golds: j.item.golds, prompt: (j.item.turns ?? []).joined(separator: "\n---\n"),
                                 outputs: answers,
                                 verdicts: Verdicts(distinct1: SuiteRunner.round(TextMetrics.distinct(all, n: 1)), distinct2: SuiteRunner.round(TextMetrics.distinct(all, n: 2)),
                                                    repeatedTrigram: SuiteRunner.round(TextMetrics.repeatedTrigramRate(all)), rougeLVsDense: vsDense),
                                 tokens: TokenCounts(prompt: a1.promptTokens, output: answers.count > 1 ? a1.tokens.count + r.tokens.count : a1.tokens.count),
                                 judge: nil, seconds: SuiteRunner.round(s))
                if let judge = runner.judge {
                    rec.judge = judge.rateInstruction(turns: j.item.turns ?? [], answers: answers, reference: refs)
                }
                try log.append(rec)
                p.step()
            }
        }
    }

    public static let metrics: [TaskMetric<Record>] = [
        .mean(Verdicts.CodingKeys.distinct1) { $0.verdicts.distinct1 },
        .mean(Verdicts.CodingKeys.distinct2) { $0.verdicts.distinct2 },
        .mean(Verdicts.CodingKeys.repeatedTrigram) { $0.verdicts.repeatedTrigram },
        .mean(Verdicts.CodingKeys.rougeLVsDense) { $0.verdicts.rougeLVsDense },
        .emptyAnswer { $0.outputs },
        .mean("judge_" + JudgeRating.CodingKeys.rating.stringValue) { $0.judge?.rating },
    ]

    public static func summarize(_ records: [Record], items: [TaskItem], _ context: ScoringContext) -> (metrics: [MetricSummary], notes: [String]) {
        var notes: [String] = []
        if context.comparesWithDense && !records.contains(where: { $0.verdicts.rougeLVsDense != nil }) { notes.append("no dense run: similarity to dense not measured") }
        notes += JudgeRating.notes(records.map(\.judge), criterion: .rating)
        return ([], notes)
    }

    public static let headline = TaskHeadline(metric: "distinct2", label: "instruction following distinct-2 (less is more repetitive)")

    public static func reportSection(_ t: ReportTables) -> String {
        var md = "## Instruction following (MT-Bench, two turns)\n\n" + t.table([("ROUGE-L vs dense", "rougeL_vs_dense", "all"), ("distinct-1", "distinct1", "all"),
                                                                                 ("distinct-2", "distinct2", "all"), ("repeated trigrams", "repeated_trigram", "all")])
        let cats = t.subsets(metric: "distinct2", prefix: "")
        if !cats.isEmpty { md += "\nBy category (distinct-2):\n\n" + t.table(cats.map { ($0, "distinct2", $0) }) }
        return md
    }
}
