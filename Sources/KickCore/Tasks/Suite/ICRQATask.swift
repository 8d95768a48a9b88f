import Foundation

/// In-context retrieval QA: the same kind of question with the evidence in
/// the prompt (open book) and without (closed book); the first line of the
/// answer is matched against the golds.
public enum ICRQATask: KickTask {
    public static let name = "icrqa"

    public static func closedBookPrompt(_ q: String) -> String { "Answer these questions:\n\nQ: \(q)\nA:" }

    public static func openBookPrompt(_ q: String, evidence: String) -> String {
        "\(evidence.prefix(TriviaQARCReader.evidenceCharacters))\n\nBased on these texts, answer these questions:\n\nQ: \(q)\nA:"
    }

    public static func prompt(_ item: TaskItem) -> String {
        item.subset == "open" ? openBookPrompt(item.question ?? "", evidence: item.context ?? "") : closedBookPrompt(item.question ?? "")
    }

    public struct Verdicts: Codable, Sendable, Equatable {
        public var exactMatch: Bool
        public var f1: Double
        enum CodingKeys: String, CodingKey { case f1, exactMatch = "exact_match" }
    }

    public struct Record: TaskRecord, Equatable {
        public var id: String
        public var subset: String
        public var golds: [String]
        public var prompt: String
        public var output: String
        /// The output's first line, which is scored.
        public var answer: String
        public var verdicts: Verdicts
        public var tokens: TokenCounts
        public var seconds: Double
    }

    public static func inputs(_ ingest: TaskIngest) throws -> [TaskIngest.Input] {
        let o = ingest.originals
        let evidence = try o.triviaQAEvidence.map { [try ingest.fileInput("triviaqa-evidence", $0, reader: "evidence-folder")] } ?? []
        return [try ingest.either(o.triviaQARC, "triviaqa-rc", reader: "triviaqa-rc-json", dataset: "quoref"), try ingest.packageInput("triviaqa")] + evidence
    }

    public static func read(_ inputs: [TaskIngest.Input], _ ingest: TaskIngest, _ counts: inout TaskManifest.Counts) throws -> [TaskItem] {
        let open = try ingest.source(inputs[0], &counts,
                                     original: { try TriviaQARCReader.read(data: try ingest.data($0), file: $0, evidenceDir: ingest.originals.triviaQAEvidence) },
                                     package: { try QuorefReader.read(data: try ingest.data($0), file: $0) })
        let closed = try ingest.source(inputs[1], label: inputs[1].name + " (closed book)", &counts,
                                       package: { try TriviaTopicsReader.read(text: try ingest.text($0), file: $0, task: name, subset: "closed") })
        return open.items.map { var i = $0; i.subset = "open"; return i } + closed.items
    }

    public static func problem(with item: TaskItem) -> String? { item.questionProblem ?? item.goldProblem }

    public static func annotate(_ manifest: inout TaskManifest, items: [TaskItem], _ ingest: TaskIngest) {
        manifest.itemsWithGoldsEmptyAfterNormalization = TextMetrics.itemsWithGoldsEmptyAfterNormalization(items)
    }

    public static func run(_ items: [TaskItem], on runner: SuiteRunner, log: TaskLog<Record>) throws -> TaskRunOutcome {
        try runner.runPending(name, items, log) { todo, progress in
            let jobs = todo.map { it -> SuiteRunner.Job in
                let text = prompt(it)
                return SuiteRunner.Job(item: it, key: text, prompt: runner.encode(text), maxNew: runner.options.generation.icrqaMaxTokens, stops: ["\n"])
            }
            try runner.generate(jobs, progress: progress) { j, r, s in
                // the first line of the output is the answer
                let answer = r.text.split(separator: "\n", omittingEmptySubsequences: false).first.map(String.init)?.trimmingCharacters(in: .whitespaces) ?? ""
                try log.append(Record(id: j.item.id, subset: j.item.subset, golds: j.item.golds, prompt: j.key, output: r.text, answer: answer,
                                      verdicts: Verdicts(exactMatch: TextMetrics.containmentMatch(answer, golds: j.item.golds),
                                                         f1: SuiteRunner.round(TextMetrics.tokenF1(answer, golds: j.item.golds))),
                                      tokens: TokenCounts(prompt: r.promptTokens, output: r.tokens.count), seconds: SuiteRunner.round(s)))
                progress.step()
            }
        }
    }

    public static let metrics: [TaskMetric<Record>] = [
        .proportion(Verdicts.CodingKeys.exactMatch) { $0.verdicts.exactMatch },
        .mean(Verdicts.CodingKeys.f1) { $0.verdicts.f1 },
        .emptyAnswer { [$0.answer] },
    ]

    public static let headline = TaskHeadline(metric: "exact_match", subset: "open", label: "open-book QA exact match")

    public static func reportSection(_ t: ReportTables) -> String {
        "## In-context retrieval QA\n\n" + t.table([("open-book EM", "exact_match", "open"), ("open-book F1", "f1", "open"),
                                                    ("closed-book EM", "exact_match", "closed"), ("closed-book F1", "f1", "closed")])
    }
}
