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

    /// How an answer is taken from the model (the profile's `icrqa_answer`).
    /// The paper takes the first line of greedy output, which is empty when a
    /// model ends at once or starts with a newline: formatting, not knowledge.
    public enum AnswerProtocol: String, Codable, Sendable, CaseIterable {
        /// The paper's: the first line, whatever it holds.
        case firstLine = "first-line"
        /// The end token may not be the first token.
        case atLeastOneToken = "at-least-one-token"
        /// The first line that holds text: neither an end token nor a newline
        /// ends the answer before it holds a non-whitespace character.
        case firstNonEmptyLine = "first-nonempty-line"
        /// The prompt in the model's chat template, then the first line.
        case chat
    }

    /// The scored answer: the output's first line, or its first line holding text.
    static func answer(_ output: String, _ p: AnswerProtocol) -> String {
        let lines = output.split(separator: "\n", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
        return (p == .firstNonEmptyLine ? lines.first { !$0.isEmpty } : lines.first) ?? ""
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
        let proto = runner.options.generation.icrqaAnswer
        return try runner.runPending(name, items, log) { todo, progress in
            let jobs = todo.map { it -> SuiteRunner.Job in
                let text = prompt(it)
                let ids = proto == .chat ? runner.chat([.init(role: "user", content: text)]) : runner.encode(text)
                var job = SuiteRunner.Job(item: it, key: text, prompt: ids, maxNew: runner.options.generation.icrqaMaxTokens, stops: ["\n"])
                job.requireText = proto == .firstNonEmptyLine
                job.minNewTokens = proto == .atLeastOneToken ? 1 : 0
                return job
            }
            try runner.generate(jobs, progress: progress) { j, r, s in
                let answer = answer(r.text, proto)
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

    public static func summarize(_ records: [Record], items: [TaskItem], _ context: ScoringContext) -> (metrics: [MetricSummary], notes: [String]) {
        ([], ["answer protocol: \(context.generation.icrqaAnswer.rawValue) (profile generation.icrqa_answer); the paper's is first-line"])
    }

    public static let headline = TaskHeadline(metric: "exact_match", subset: "open", label: "open-book QA exact match")

    public static func reportSection(_ t: ReportTables) -> String {
        "## In-context retrieval QA\n\n" + t.table([("open-book EM", "exact_match", "open"), ("open-book F1", "f1", "open"),
                                                    ("closed-book EM", "exact_match", "closed"), ("closed-book F1", "f1", "closed")])
    }
}
