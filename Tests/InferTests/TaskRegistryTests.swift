import Foundation
import Testing
@testable import KickCore
import KickTestSupport

/// A seventh task, defined only here: one type and a registry line carry it
/// through ingest, the suite runner, scores and the report.
enum EchoTask: KickTask {
    static let name = "echo"

    struct Verdicts: Codable, Sendable, Equatable {
        var echoed: Bool
        var length: Double
        enum CodingKeys: String, CodingKey { case echoed, length }
    }

    struct Record: TaskRecord, Equatable {
        var id: String
        var subset: String
        var prompt: String
        var output: String
        var verdicts: Verdicts
    }

    /// One item per line: `subset<TAB>word`.
    static func inputs(_ ingest: TaskIngest) throws -> [TaskIngest.Input] {
        [try ingest.fileInput("echo-words", ingest.root + "/datasets/echo.tsv", reader: "echo-tsv")]
    }

    static func read(_ inputs: [TaskIngest.Input], _ ingest: TaskIngest, _ counts: inout TaskManifest.Counts) throws -> [TaskItem] {
        try ingest.source(inputs[0], &counts, original: { path in
            var out = ReaderOutput()
            for (i, line) in try ingest.text(path).split(separator: "\n").enumerated() {
                let f = line.split(separator: "\t").map(String.init)
                guard f.count == 2 else { out.skip("not two fields"); continue }
                out.items.append(TaskItem(id: "e\(i)", task: name, subset: f[0], question: f[1], golds: [f[1]]))
            }
            return out
        }, package: { _ in throw KickError("echo has no package") }).items
    }

    static func problem(with item: TaskItem) -> String? { item.questionProblem }

    static func run(_ items: [TaskItem], on runner: SuiteRunner, log: TaskLog<Record>) throws -> TaskRunOutcome {
        try runner.runPending(name, items, log) { todo, progress in
            let jobs = todo.map { SuiteRunner.Job(item: $0, prompt: runner.encode("Say \($0.question!):"), maxNew: 3) }
            try runner.generate(jobs, progress: progress) { j, r, _ in
                try log.append(Record(id: j.item.id, subset: j.item.subset, prompt: "Say \(j.item.question!):", output: r.text,
                                      verdicts: Verdicts(echoed: r.text.contains(j.item.golds[0]), length: Double(r.tokens.count))))
                progress.step()
            }
        }
    }

    static let metrics: [TaskMetric<Record>] = [
        .proportion(Verdicts.CodingKeys.echoed) { $0.verdicts.echoed },
        .mean(Verdicts.CodingKeys.length) { $0.verdicts.length },
    ]

    static let headline = TaskHeadline(metric: "echoed", label: "echo (the word said back)")

    static func reportSection(_ t: ReportTables) -> String {
        "## Echo\n\n" + t.table([("echoed", "echoed", "all"), ("tokens", "length", "all")] + t.subsets(metric: "echoed", prefix: "").map { ($0, "echoed", $0) })
    }
}

@Suite(.serialized) struct TaskRegistryTests {
    static let registry = TaskRegistry(TaskRegistry.standard.tasks + [EchoTask.self])

    @Test func aTaskDefinedInTheTestsRunsThroughIngestRunScoresAndReport() throws {
        let root = tempDir("echo-root"), work = root + "/work/tiny"
        try FileManager.default.createDirectory(atPath: root + "/datasets", withIntermediateDirectories: true)
        try "animals\tcat\nanimals\tdog\ncolors\tred\nbroken line\ncolors\tblue\n".write(toFile: root + "/datasets/echo.tsv", atomically: true, encoding: .utf8)
        let fixture = SuiteRunnerTests.fixture
        let profile = Profile(schema: "kick.profile/1", name: "echo", description: "", configs: ["dense"], calib: .init(corpus: "wiki", samples: 1, length: 8, seed: 0),
                              tasks: ["echo": .init(items: 3)], generation: .init(factoidMaxTokens: 4, summaryMaxTokens: 4, instructMaxTokens: 4))
        var ingest = TaskIngest(root: root, outDir: work + "/ingest", profile: profile, fetcher: PackageFetcher(), tokenizer: fixture.bundle.tokenizer)
        ingest.registry = Self.registry

        // ingest: the task's reader, the profile's sample, a typed manifest
        let (m, built) = try ingest.build("echo")
        #expect(built && m.items == 3 && m.itemsAvailable == 4 && m.sources["echo-words"]?.skippedByReason == ["not two fields": 1])
        #expect(try TaskManifest.read(path: work + "/ingest/tasks/echo.jsonl.manifest.json") == m)
        #expect(try !ingest.build("echo").built)
        // the standard registry does not know it
        let unknown = #expect(throws: KickError.self) { try TaskIngest(root: root, outDir: work + "/ingest", profile: profile, fetcher: PackageFetcher(),
                                                                       tokenizer: fixture.bundle.tokenizer).build("echo") }
        #expect(unknown?.code == .invalidValue && unknown?.message.contains("tasks are factoid, mmlu") == true)

        // run and score, for dense and one more configuration
        for config in ["dense", "magnitude-unstructured-50"] {
            var o = SuiteOptions(config: config, modelName: "tiny", ingestDir: work + "/ingest", outDir: "\(work)/infer/\(config)", denseDir: nil,
                                 generation: profile.generation, perplexityWindow: 32, perplexityWindows: 1)
            o.showProgress = false
            let runner = SuiteRunner(bundle: fixture.bundle, model: fixture.model, options: o)
            runner.registry = Self.registry
            let s = try runner.run(task: "echo")
            #expect(s.items == 3 && s.task == "echo")
            #expect(s.metrics.contains { $0.metric == "echoed" && $0.subset == "all" && $0.n == 3 && $0.interval == "wilson" })
            #expect(s.metrics.contains { $0.metric == "length" && $0.subset == "all" && $0.interval == "normal" })
            #expect(Set(s.metrics.map(\.subset)).isSuperset(of: ["all"]) && s.metrics.map(\.subset).contains { $0 == "animals" || $0 == "colors" })
            let log = try TaskLog<EchoTask.Record>.read(path: "\(work)/infer/\(config)/echo.jsonl")
            #expect(log.count == 3 && log.values.allSatisfy { $0.prompt.hasPrefix("Say ") })
        }

        // the report: rows, the task's own section, paired with dense by item
        let b = ReportBuilder(work: work, outDir: work + "/report", configs: ["dense", "magnitude-unstructured-50"], model: "tiny", registry: Self.registry)
        let l = try b.load()
        #expect(b.rows(l).contains { $0.task == "echo" && $0.metric == "echoed" && $0.config == "magnitude-unstructured-50" })
        let paired = try #require(l.paired["magnitude-unstructured-50"]?["echo"]?["all|echoed"])
        #expect(paired.n == 3 && paired.flipsLost == 0 && paired.flipsGained == 0)  // the same model under two names
        let md = b.markdown(l, plots: [])
        #expect(md.contains("## Echo\n\n| config | echoed | tokens |"))
        #expect(md.contains("**echo (the word said back)**"))
    }

    @Test func theStandardRegistryDrivesTaskNames() throws {
        #expect(TaskRegistry.standard.names == ["factoid", "mmlu", "icrqa", "summarization", "instruct", "perplexity"])
        let e = #expect(throws: KickError.self) { try TaskRegistry.standard.task(named: "echo") }
        #expect(e?.code == .invalidValue)
        // a profile naming a task kick does not know is refused, naming it
        let p = Profile(schema: "kick.profile/1", name: "p", description: "", configs: [], calib: .init(corpus: "wiki", samples: 1, length: 8, seed: 0),
                        tasks: ["echo": .init(items: 1)], generation: .init(factoidMaxTokens: 4, summaryMaxTokens: 4, instructMaxTokens: 4))
        #expect(p.problem(registry: .standard)?.contains("task 'echo' is not one of kick's tasks") == true)
        #expect(p.problem(registry: Self.registry) == nil)
    }
}
