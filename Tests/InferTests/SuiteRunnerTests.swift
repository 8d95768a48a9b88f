import Foundation
import Testing
@testable import KickCore
import KickTestSupport

/// The task suite on a tiny random model and hand-made items.
@Suite(.serialized) struct SuiteRunnerTests {
    static let config = LlamaConfig(vocabSize: 300, hiddenSize: 32, intermediateSize: 64, numLayers: 2, numHeads: 4, numKVHeads: 2,
                                    contextLength: 4096, ropeStyle: .halves)

    static let fixture: (bundle: ModelBundle, model: LlamaModel, ingest: String) = {
        let dir = tempDir("suite")
        var toks = (0..<256).map { String(ByteLevelMap.byteToScalar[$0]) } + ["<|im_start|>", "<|im_end|>"]
        toks += (toks.count..<300).map { "tok\($0)" }
        try! LlamaExport.gguf(config, .random(config, seed: 7, scale: 0.5), to: dir + "/m.gguf", extraMetadata: [
            ("tokenizer.ggml.model", .string("gpt2")), ("tokenizer.ggml.pre", .string("smollm")),
            ("tokenizer.ggml.tokens", .strings(toks)), ("tokenizer.ggml.merges", .strings([])),
            ("tokenizer.ggml.eos_token_id", .u32(257)),
        ])
        let bundle = try! ModelBundle.open(path: dir + "/m.gguf")
        let ingest = dir + "/ingest"
        try! writeTasks(ingest)
        return (bundle, try! bundle.loadModel(), ingest)
    }()

    static func writeTasks(_ ingest: String) throws {
        let t = ingest + "/tasks/"
        try TaskFile.write((0..<6).map { TaskItem(id: "f\($0)", task: "factoid", subset: "all", question: "Question number \($0)?", golds: ["a", "b\($0)"]) },
                           to: t + "factoid.jsonl")
        var mmlu: [TaskItem] = []
        for s in ["anatomy", "philosophy"] {
            for i in 0..<4 { mmlu.append(TaskItem(id: "\(s)-\(i)", task: "mmlu", subset: s, group: s == "anatomy" ? "Other" : "Humanities",
                                                  question: "Q\(i) about \(s)?", choices: ["w", "x", "y", "z"], golds: [["A", "B", "C", "D"][i]])) }
        }
        MMLUReader.assignShots(&mmlu, dev: [:], seed: 0, count: 2)
        try TaskFile.write(StratifiedOrder.order(mmlu, seed: 0), to: t + "mmlu.jsonl")  // subjects interleaved, as ingest writes them
        try TaskFile.write([TaskItem(id: "o1", task: "icrqa", subset: "open", question: "Who?", context: "Ann met Bob.", golds: ["Ann"]),
                            TaskItem(id: "o2", task: "icrqa", subset: "open", question: "Where?", context: "In Rome.", golds: ["Rome"]),
                            TaskItem(id: "c1", task: "icrqa", subset: "closed", question: "What?", golds: ["x"])], to: t + "icrqa.jsonl")
        try TaskFile.write((0..<3).map { TaskItem(id: "s\($0)", task: "summarization", subset: "small", context: "A short story number \($0) about a cat.", golds: ["A cat story."]) },
                           to: t + "summarization.jsonl")
        try TaskFile.write([TaskItem(id: "m1", task: "instruct", subset: "writing", turns: ["Write a poem.", "Shorter."], golds: []),
                            TaskItem(id: "m2", task: "instruct", subset: "math", turns: ["2+2?", "3+3?"], golds: ["4", "6"])], to: t + "instruct.jsonl")
        try TaskFile.write((0..<3).map { TaskItem(id: "doc-\($0)", task: "perplexity", subset: "all", context: String(repeating: "Some text \($0). ", count: 12), golds: []) },
                           to: t + "perplexity.jsonl")
    }

    static func runner(_ out: String, config: String = "dense", batch: Int, dense: String? = nil, stopAfter: Int? = nil, judge: JudgeClient? = nil,
                       shard: TaskShard? = nil) -> SuiteRunner {
        var o = SuiteOptions(config: config, modelName: "tiny", ingestDir: fixture.ingest, outDir: out, denseDir: dense,
                             generation: .init(factoidMaxTokens: 8, summaryMaxTokens: 12, instructMaxTokens: 8), perplexityWindow: 32, perplexityWindows: 4)
        o.batch = batch
        o.stopAfter = stopAfter
        o.showProgress = false
        o.topK = 8
        o.shard = shard
        return SuiteRunner(bundle: fixture.bundle, model: fixture.model, options: o, judge: judge)
    }

    /// The log's records without what depends on the run rather than the
    /// item: timings, and whether this run computed the MMLU prefix.
    static func untimed(_ path: String, keepPrefixFlag: Bool = false) throws -> [String] {
        try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").map { line in
            var o = try JSONSerialization.jsonObject(with: Data(line.utf8)) as! [String: Any]
            o["seconds"] = nil
            if !keepPrefixFlag { o["prefix_computed"] = nil }
            return String(decoding: try JSONSerialization.data(withJSONObject: o, options: [.sortedKeys]), as: UTF8.self)
        }
    }

    @Test func logsDoNotDependOnBatchSize() throws {
        let a = tempDir("b1"), b = tempDir("b16")
        for t in TaskRegistry.standard.names {
            let sa = try Self.runner(a, batch: 1).run(task: t)
            let sb = try Self.runner(b, batch: 16).run(task: t)
            #expect(sa.metrics == sb.metrics, "\(t)")
            // finishing order differs with the batch; the records do not
            #expect(try Self.untimed("\(a)/\(t).jsonl").sorted() == Self.untimed("\(b)/\(t).jsonl").sorted(), "\(t)")
            #expect(sa.items == sa.itemsInTaskFile && sa.items > 0, "\(t)")
            if ["factoid", "icrqa", "summarization", "instruct"].contains(t) {
                #expect(sa.metrics.contains { $0.metric == "empty_answer" && $0.subset == "all" && $0.n == sa.items }, "\(t)")
            }
            // the scores name the task file they were scored from
            #expect(try TaskScores.read(path: "\(a)/\(t).scores.json").taskFileSHA256 == SHA256.hex(ofFile: "\(Self.fixture.ingest)/tasks/\(t).jsonl"))
        }
        // every task scored what it promises
        let mm = try TaskScores.read(path: a + "/mmlu.scores.json")
        #expect(Set(mm.metrics.map(\.metric)) == ["correct_generate", "correct_loglik"])
        #expect(mm.metrics.contains { $0.subset == "discipline:Humanities" } && mm.metrics.contains { $0.subset == "subject:anatomy" })
        // each subject's distinct shot prefix is computed once, though the task
        // file interleaves the subjects; the other items reuse it
        let computed = try Self.untimed(a + "/mmlu.jsonl", keepPrefixFlag: true).filter { line in
            let o = try! JSONSerialization.jsonObject(with: Data(line.utf8)) as! [String: Any]
            #expect(((o["tokens"] as! [String: Any])["prompt_reused"] as! Int) > 0)
            return o["prefix_computed"] as! Bool
        }.count
        let items = try TaskFile.read(path: Self.fixture.ingest + "/tasks/mmlu.jsonl")
        let distinct = Set(items.map { MMLUTask.prompt($0, shots: 2).prefix }).count
        #expect(computed == distinct && distinct < items.count, "\(computed) prefixes computed, \(distinct) distinct, \(items.count) items")
        let pp = try TaskScores.read(path: a + "/perplexity.scores.json")
        #expect(pp.metrics.first { $0.metric == "perplexity" }!.n == 4 * 31)
    }

    /// Two shards, each into its own log, merged by item id: the same
    /// records and the same scores as one unsharded run, for dense and for
    /// a configuration compared with it (similarity, KL); an incomplete
    /// shard is named, and a record in the wrong shard's log refused.
    @Test func shardedRunsMergeToTheUnshardedLogsAndScores() throws {
        let one = tempDir("unsharded"), two = tempDir("sharded")
        for c in ["dense", "other"] {
            let dense1 = c == "dense" ? nil : one + "/dense", dense2 = c == "dense" ? nil : two + "/dense"
            for t in TaskRegistry.standard.names {
                let whole = try Self.runner(one + "/" + c, config: c, batch: 4, dense: dense1).run(task: t)
                for i in 0..<2 { try Self.runner(two + "/" + c, config: c, batch: 4, dense: dense2, shard: try TaskShard(index: i, count: 2)).run(task: t) }
                var o = Self.runner(two + "/" + c, config: c, batch: 4, dense: dense2).options
                o.shard = nil
                let merged = try TaskShards.merge(task: t, shards: 2, options: o, contextLength: Self.config.contextLength, tokenizer: Self.fixture.bundle.tokenizer)
                #expect(merged.metrics == whole.metrics && merged.items == whole.items, "\(c) \(t)")
                #expect(try Self.untimed("\(one)/\(c)/\(t).jsonl").sorted() == Self.untimed("\(two)/\(c)/\(t).jsonl").sorted(), "\(c) \(t)")
            }
        }
        // a shard missing items is named; a record moved into the other shard's log is refused
        var o = Self.runner(two + "/dense", batch: 4).options
        let s1 = "\(two)/dense/factoid.shard-1-of-2.jsonl"
        let lines = try String(contentsOfFile: s1, encoding: .utf8).split(separator: "\n")
        try (lines.dropLast().joined(separator: "\n") + "\n").write(toFile: s1, atomically: true, encoding: .utf8)
        o.shard = nil
        let e = #expect(throws: KickError.self) { try TaskShards.merge(task: "factoid", shards: 2, options: o, contextLength: 4096, tokenizer: Self.fixture.bundle.tokenizer) }
        #expect(e?.message.contains("rerun shard(s) 1/2") == true, "\(e?.message ?? "")")
        try (String(lines.last!) + "\n").write(toFile: "\(two)/dense/factoid.shard-0-of-2.jsonl", atomically: true, encoding: .utf8)
        let w = #expect(throws: KickError.self) { try TaskShards.merge(task: "factoid", shards: 2, options: o, contextLength: 4096, tokenizer: Self.fixture.bundle.tokenizer) }
        #expect(w?.message.contains("belongs to shard 1/2") == true, "\(w?.message ?? "")")
        #expect(throws: KickError.self) { try TaskShard(parsing: "2/2") }
        #expect(throws: KickError.self) { try TaskShard(parsing: "1-2") }
    }

    @Test func aKilledRunResumesWithoutDuplicatesOrGaps() throws {
        let whole = tempDir("whole"), cut = tempDir("cut")
        for t in ["factoid", "mmlu", "perplexity"] {
            let full = try Self.runner(whole, batch: 4).run(task: t)
            #expect(throws: SuiteRunner.StoppedEarly.self) { try Self.runner(cut, batch: 4, stopAfter: 2).run(task: t) }
            #expect(try Self.untimed("\(cut)/\(t).jsonl").count == 2)
            #expect(!FileManager.default.fileExists(atPath: "\(cut)/\(t).scores.json"))
            // a torn last line, as a kill mid-write leaves, is dropped
            let h = FileHandle(forWritingAtPath: "\(cut)/\(t).jsonl")!
            h.seekToEndOfFile(); h.write(Data("{\"id\": \"torn".utf8)); try h.close()
            let resumed = try Self.runner(cut, batch: 4).run(task: t)
            let ids = try Self.untimed("\(cut)/\(t).jsonl").map { (try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any])["id"] as! String }
            #expect(ids.count == Set(ids).count, "\(t): duplicates")
            #expect(ids.count == full.items, "\(t): gaps")
            #expect(resumed.metrics == full.metrics, "\(t)")
            #expect(try Self.untimed("\(cut)/\(t).jsonl").sorted() == Self.untimed("\(whole)/\(t).jsonl").sorted())
        }
    }

    @Test func similarityAndKLAgainstDense() throws {
        let dense = tempDir("dense"), same = tempDir("same")
        for t in ["perplexity", "summarization", "instruct"] {
            try Self.runner(dense, batch: 8).run(task: t)
            let s = try Self.runner(same, config: "copy", batch: 8, dense: dense).run(task: t)
            func v(_ m: String) -> Double? { s.metrics.first { $0.metric == m && $0.subset == "all" }?.value }
            switch t {
            case "perplexity":
                // the same weights: KL 0 and full agreement
                #expect(abs(v("kl_topk_vs_dense")!) < 1e-4)
                #expect(v("top1_agreement_vs_dense") == 1)
            case "summarization": #expect(v("rougeL_vs_dense_greedy") == 1 || v("rougeL_vs_dense_greedy") == 0)  // 0 only if the output has no words
            default: #expect(v("rougeL_vs_dense") != nil)
            }
        }
        // without a dense run the measures are absent and the scores say so
        let lone = try Self.runner(tempDir("lone"), config: "copy", batch: 8).run(task: "perplexity")
        #expect(!lone.metrics.contains { $0.metric == "kl_topk_vs_dense" } && lone.notes.contains { $0.contains("no dense") })
    }

    /// Requests that share a precomputed prompt prefix decode as if each had fed the whole prompt.
    @Test func sharedPrefixDecodesLikeTheWholePrompt() {
        let (b, m) = (Self.fixture.bundle, Self.fixture.model)
        let prompt = b.tokenizer.encode("A prompt long enough to be worth sharing between two requests.")
        let gen = BatchGenerator(model: m, tokenizer: b.tokenizer, maxBatch: 4)
        let plain = gen.generate([GenerationRequest(id: 0, prompt: prompt, maxNewTokens: 8, stopAtEndToken: false)])[0]
        let pre = m.newCache(capacity: prompt.count)
        _ = m.forward([BatchItem(cache: pre, tokens: Array(prompt.dropLast()), logits: .none)])
        let shared = gen.generate((0..<2).map { GenerationRequest(id: $0, prompt: prompt, maxNewTokens: 8, stopAtEndToken: false, prefix: pre) })
        #expect(shared.map(\.tokens) == [plain.tokens, plain.tokens])
        #expect(pre.length == prompt.count - 1)  // copied, never extended
    }

    @Test func judgeClientAgainstALocalServer() throws {
        let server = try LocalHTTPServer { path, body in
            let req = (try? JSONSerialization.jsonObject(with: body)) as? [String: Any]
            let prompt = ((req?["messages"] as? [[String: Any]])?.first?["content"] as? String) ?? ""
            let text = prompt.contains("Rating: [[N]]") ? "The answer is fine. Rating: [[7]]" : "coherence: 8, consistency: 7, fluency: 9, relevance: 6"
            let ans: [String: Any] = ["choices": [["message": ["role": "assistant", "content": text]]]]
            return (path == "/v1/chat/completions" ? 200 : 404, try! JSONSerialization.data(withJSONObject: ans))
        }
        let cache = tempDir("judge")
        let j = JudgeClient(url: URL(string: server.url)!, model: "test-judge", key: "k", cacheDir: cache)
        let r = j.rateSummary(story: "A story.", summary: "A summary.", reference: "Ref.")
        #expect(r.coherence == 8 && r.consistency == 7 && r.fluency == 9 && r.relevance == 6 && r.judge == "test-judge" && r.cached == nil)
        #expect(j.rateInstruction(turns: ["Q1", "Q2"], answers: ["A1", "A2"], reference: nil).rating == 7)
        #expect(server.requests.count == 2)
        // cached by (prompt, answer, judge): no new request
        #expect(j.rateSummary(story: "A story.", summary: "A summary.", reference: "Ref.").cached == true)
        #expect(server.requests.count == 2)
        let body = try JSONSerialization.jsonObject(with: server.requests[0].body) as! [String: Any]
        #expect(body["model"] as? String == "test-judge" && body["max_tokens"] as? Int == JudgeClient.maxJudgeTokens && body["temperature"] as? Int == 0)

        // the suite logs judgements and scores them
        let out = tempDir("judged")
        try Self.runner(out, batch: 4, judge: j).run(task: "instruct")
        let s = try Self.runner(out, batch: 4, judge: j).run(task: "instruct")
        #expect(s.metrics.contains { $0.metric == "judge_rating" && $0.value == 7 })

        // an unreachable judge: a warning and a "not judged" mark, never a failed run
        let dead = JudgeClient(url: URL(string: "http://127.0.0.1:1/v1")!, model: "m", key: "k", cacheDir: tempDir("dead"), timeout: 5)
        #expect(dead.rateSummary(story: "s", summary: "x", reference: nil).notJudged != nil)
        let out2 = tempDir("unjudged")
        let s2 = try Self.runner(out2, batch: 4, judge: dead).run(task: "summarization")
        #expect(!s2.metrics.contains { $0.metric.hasPrefix("judge_") } && s2.notes.contains { $0.contains("not judged") })
        #expect(!dead.warnings.isEmpty)
    }
}
