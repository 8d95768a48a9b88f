import Foundation

/// Closed-book factoid QA (knowledge recall): the paper's FreebaseQA
/// prompt, answered greedily, matched by the paper's substring rule.
public enum FactoidTask: KickTask {
    public static let name = "factoid"

    public static func prompt(_ question: String) -> String { "Please give answer to this question: \(question)\nThe answer is " }

    public struct Verdicts: Codable, Sendable, Equatable {
        public var substringHit: Bool
        public var exactMatch: Bool
        public var f1: Double
        enum CodingKeys: String, CodingKey { case f1, substringHit = "substring_hit", exactMatch = "exact_match" }
    }

    public struct Record: TaskRecord, Equatable {
        public var id: String
        public var subset: String
        public var golds: [String]
        public var prompt: String
        public var output: String
        public var verdicts: Verdicts
        public var tokens: TokenCounts
        public var finish: String
        public var seconds: Double
    }

    public static func inputs(_ ingest: TaskIngest) throws -> [TaskIngest.Input] {
        [try ingest.either(ingest.originals.freebaseQA, "freebaseqa", reader: "freebaseqa-json", dataset: "triviaqa")]
    }

    public static func read(_ inputs: [TaskIngest.Input], _ ingest: TaskIngest, _ counts: inout TaskManifest.Counts) throws -> [TaskItem] {
        try ingest.source(inputs[0], &counts, original: { try FreebaseQAReader.read(data: try ingest.data($0), file: $0) },
                          package: { try TriviaTopicsReader.read(text: try ingest.text($0), file: $0, task: name, subset: "all") }).items
    }

    public static func problem(with item: TaskItem) -> String? { item.questionProblem ?? item.goldProblem }

    public static func annotate(_ manifest: inout TaskManifest, items: [TaskItem], _ ingest: TaskIngest) {
        manifest.itemsWithGoldsEmptyAfterNormalization = TextMetrics.itemsWithGoldsEmptyAfterNormalization(items)
    }

    public static func run(_ items: [TaskItem], on runner: SuiteRunner, log: TaskLog<Record>) throws -> TaskRunOutcome {
        try runner.runPending(name, items, log) { todo, progress in
            let jobs = todo.map { it -> SuiteRunner.Job in
                let ids = runner.encode(prompt(it.question ?? ""))
                // the paper allows 3× the prompt length; the profile caps it
                return SuiteRunner.Job(item: it, prompt: ids, maxNew: min(3 * ids.count, runner.options.generation.factoidMaxTokens))
            }
            try runner.generate(jobs, progress: progress) { j, r, s in
                let golds = j.item.golds
                try log.append(Record(id: j.item.id, subset: j.item.subset, golds: golds, prompt: prompt(j.item.question ?? ""), output: r.text,
                                      verdicts: Verdicts(substringHit: TextMetrics.factoidHit(r.text, golds: golds), exactMatch: TextMetrics.exactMatch(r.text, golds: golds),
                                                         f1: SuiteRunner.round(TextMetrics.tokenF1(r.text, golds: golds))),
                                      tokens: TokenCounts(prompt: r.promptTokens, output: r.tokens.count), finish: r.finish.rawValue, seconds: SuiteRunner.round(s)))
                progress.step()
            }
        }
    }

    public static let metrics: [TaskMetric<Record>] = [
        .proportion(Verdicts.CodingKeys.substringHit) { $0.verdicts.substringHit },
        .proportion(Verdicts.CodingKeys.exactMatch) { $0.verdicts.exactMatch },
        .mean(Verdicts.CodingKeys.f1) { $0.verdicts.f1 },
        .emptyAnswer { [$0.output] },
    ]

    static let ruleNote = "substring_hit is the paper's rule (lowercase, spaces removed, any alias a substring) matched against the generated text only, over the N questions asked; the paper's code matched text that still held the prompt and divided by N+1"

    public static func summarize(_ records: [Record], items: [TaskItem], _ context: ScoringContext) -> (metrics: [MetricSummary], notes: [String]) {
        ([], [ruleNote])
    }

    public static let headline = TaskHeadline(metric: "substring_hit", label: "factoid QA (substring hit, paper's rule)")

    public static func reportSection(_ t: ReportTables) -> String {
        "## Factoid QA (closed book)\n\n" + t.table([("substring hit", "substring_hit", "all"), ("exact match", "exact_match", "all"), ("F1", "f1", "all")])
            + "\nsubstring hit follows the paper's rule against the generated text only, over N questions (the paper's code matched text that still held the prompt and divided by N+1).\n"
    }
}

/// A record's token counts: the prompt's, the part of it a cached prefix
/// supplied (MMLU), and the output's.
public struct TokenCounts: Codable, Sendable, Equatable {
    public var prompt: Int
    public var promptReused: Int?
    public var output: Int
    public init(prompt: Int, promptReused: Int? = nil, output: Int) {
        self.prompt = prompt
        self.promptReused = promptReused
        self.output = output
    }
    enum CodingKeys: String, CodingKey { case prompt, output, promptReused = "prompt_reused" }
}
