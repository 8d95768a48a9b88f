import ArgumentParser
import Foundation
import KickCLI
import KickCore

/// kick-infer: run a model. The debug commands here are kept for users and
/// tests alike; every one prints JSON.
struct KickInfer: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kick-infer",
        abstract: "Run a Llama-family model (GGUF file or Hugging Face folder) on CPU.",
        subcommands: [Run.self, Tokenize.self, Logits.self, Generate.self, Perplexity.self, Bench.self, BenchLoad.self])
}

struct ModelOption: ParsableArguments {
    @Option(name: .long, help: "A .gguf file or a Hugging Face model folder.")
    var model: String
}

func parseTokens(_ s: String) throws -> [Int] {
    let parts = s.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
    var out: [Int] = []
    for p in parts {
        guard let v = Int(p), v >= 0 else { throw ValidationError("--tokens: '\(KickError.quote(p))' is not a token id") }
        out.append(v)
    }
    guard !out.isEmpty else { throw ValidationError("--tokens is empty") }
    return out
}

func checkVocab(_ ids: [Int], _ bundle: ModelBundle) throws {
    if let bad = ids.first(where: { $0 >= bundle.config.vocabSize }) {
        throw KickError("token id \(bad) is outside the vocabulary of \(bundle.config.vocabSize)", file: bundle.path)
    }
}


struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a model or checkpoint on the LLM-KICK tasks: <task>.jsonl logs (resumable) and <task>.scores.json.")
    @OptionGroup var m: ModelOption
    @Option(name: .long, help: "The ingest folder (work/<MODEL>/ingest) with tasks/ and model.json.") var ingest: String
    @Option(name: .long, help: "The configuration's name in logs and scores (dense, sparsegpt-2of4-50, …).") var config: String
    @Option(name: .long, help: "Comma-separated tasks (default: all).") var tasks: TaskSelection?
    @Option(name: .long, help: "Output folder (work/<MODEL>/infer/<config>).") var out: String
    @Option(name: .long, help: "Profile for generation lengths and perplexity windows.") var profile = "quick"
    @Option(name: .long, help: "The dense run's folder (default: dense/ beside --out when it exists).") var dense: String?
    @Option(name: .long, help: "Most sequences decoding together.") var batch = 16
    @Flag(name: .customLong("no-judge"), help: "Do not call a judge even if KICK_JUDGE_* are set.") var noJudge = false
    @Option(name: .customLong("stop-after"), help: .hidden) var stopAfter: Int?
    @Flag(name: .long, help: "Delete the tasks' logs first and run every item again.") var fresh = false
    @OptionGroup var lock: LockOptions

    func validate() throws {
        guard batch > 0 else { throw ValidationError("--batch must be positive") }
    }

    func run() throws {
        let held = try OutputLock(folder: out, wait: lock.wait)
        defer { withExtendedLifetime(held) {} }
        let root = try ProjectRoot.find()
        let prof = try Profile.load(profile, root: root)
        let mj = try IngestedModel.read(path: ingest + "/model.json")
        let bundle = try ModelBundle.open(path: m.model)
        guard mj.tokenizer.identity == bundle.tokenizer.identity else {
            throw KickError("the model's tokenizer (\(bundle.tokenizer.identity)) is not the one the ingest folder was made with (\(mj.tokenizer.identity))", file: m.model)
        }
        let model = try bundle.loadModel()
        let seqLen = mj.sequenceLength
        let pp = prof.size("perplexity")
        var denseDir = dense
        if denseDir == nil, config != "dense" {
            let cand = ((out as NSString).deletingLastPathComponent as NSString).appendingPathComponent("dense")
            if FileManager.default.fileExists(atPath: cand) { denseDir = cand }
        }
        var opt = SuiteOptions(config: config, modelName: mj.name, ingestDir: ingest, outDir: out, denseDir: denseDir,
                               generation: prof.generation, perplexityWindow: min(pp.window ?? seqLen, seqLen), perplexityWindows: pp.windows)
        opt.batch = batch
        opt.stopAfter = stopAfter
        let runner = SuiteRunner(bundle: bundle, model: model, options: opt, judge: noJudge ? nil : JudgeClient.fromEnvironment())
        for t in tasks?.tasks ?? SuiteRunner.tasks {
            let t0 = Date()
            if fresh {
                for f in ["\(out)/\(t).jsonl", "\(out)/\(t).scores.json"] { try? FileManager.default.removeItem(atPath: f) }
                if t == "perplexity" { try? FileManager.default.removeItem(atPath: "\(out)/perplexity.topk") }
            }
            let s: TaskScores
            do { s = try runner.run(task: t) } catch let e as SuiteRunner.StoppedEarly {
                FileHandle.standardError.write(Data("kick-infer: \(e.description)\n".utf8))
                Foundation.exit(3)
            }
            let head = s.metrics.filter { $0.subset == "all" }.prefix(3).map { String(format: "%@ %.4f", $0.metric, $0.value) }.joined(separator: ", ")
            FileHandle.standardError.write(Data(String(format: "kick-infer: %@ %@: %d items, %@ (%.1f s)\n", config, t, s.items, head, Date().timeIntervalSince(t0)).utf8))
            print(runner.scoresPath(t))
        }
    }
}

struct Tokenize: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print the token ids of each JSON string line of a file (no BOS).")
    @OptionGroup var m: ModelOption
    @Flag(name: .long, help: "Parse special tokens written in the text.") var parseSpecial = false
    @Option(name: .long, help: "File with one JSON string per line.") var jsonl: String

    func run() throws {
        let bundle = try ModelBundle.open(path: m.model)
        guard let text = try RegularFile.contents(atPath: jsonl) else { throw KickError("cannot read", file: jsonl) }
        for (n, line) in String(decoding: text, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: true).enumerated() {
            guard let s = try? JSONSerialization.jsonObject(with: Data(line.utf8), options: [.fragmentsAllowed]) as? String else {
                throw KickError("line \(n + 1) is not a JSON string", file: jsonl)
            }
            try printJSON(bundle.tokenizer.encode(s, parseSpecial: parseSpecial))
        }
    }
}

struct Logits: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Write the float32 logits of every position to a .npy file.")
    @OptionGroup var m: ModelOption
    @Option(name: .long, help: "Comma-separated token ids.") var tokens: String
    @Option(name: .long, help: "Output .npy path.") var out: String

    func run() throws {
        let ids = try parseTokens(tokens)
        let bundle = try ModelBundle.open(path: m.model)
        try checkVocab(ids, bundle)
        let model = try bundle.loadModel()
        let l = model.forward([BatchItem(cache: model.newCache(capacity: ids.count), tokens: ids, logits: .all)])[0]!
        try Npy.write(Npy.Array(shape: [l.rows, l.cols], data: l.data), to: out)
        try printJSON(["out": out, "shape": [l.rows, l.cols]])
    }
}

struct Generate: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Generate tokens: greedy, or sampled with --temperature.")
    @OptionGroup var m: ModelOption
    @Option(name: .long, help: "Comma-separated prompt token ids.") var tokens: String?
    @Option(name: .long, help: "Prompt text (tokenized without BOS unless the model adds one).") var prompt: String?
    @Flag(name: .long, help: "Wrap --prompt in the model's chat template.") var chat = false
    @Option(name: .long) var maxNewTokens: Int = 32
    @Option(name: .long) var temperature: Float?
    @Option(name: .long) var topP: Float = 1
    @Option(name: .long) var seed: UInt64 = 0
    @Option(name: .long, help: "Stop when this text appears (repeatable).") var stop: [String] = []

    func validate() throws {
        guard (tokens == nil) != (prompt == nil) else { throw ValidationError("give exactly one of --tokens and --prompt") }
        guard maxNewTokens > 0 else { throw ValidationError("--max-new-tokens must be positive") }
        guard topP.isFinite, topP > 0 && topP <= 1 else { throw ValidationError("--top-p must be in (0, 1]") }
        if let t = temperature, !(t.isFinite && t >= 0) { throw ValidationError("--temperature must be a finite number ≥ 0 (got \(t))") }
    }

    func run() throws {
        let bundle = try ModelBundle.open(path: m.model)
        let tok = bundle.tokenizer
        var ids: [Int]
        if let tokens { ids = try parseTokens(tokens) } else {
            let text = chat ? bundle.chatTemplate.render([.init(role: "user", content: prompt!)],
                                                         defaultSystem: bundle.chatTemplate == .chatml ? ChatTemplate.smolLMSystem : nil) : prompt!
            ids = tok.encode(text, parseSpecial: chat, addBOS: tok.addBOS)
        }
        try checkVocab(ids, bundle)
        let model = try bundle.loadModel()
        let gen = BatchGenerator(model: model, tokenizer: tok, maxBatch: 1)
        let start = Date()
        let r = gen.generate([GenerationRequest(id: 0, prompt: ids, maxNewTokens: maxNewTokens,
                                                sampling: SamplingParams(temperature: temperature, topP: topP, seed: seed),
                                                stopStrings: stop)])[0]
        try printJSON(["prompt_tokens": ids, "tokens": r.tokens, "text": r.text, "finish": r.finish.rawValue,
                   "seconds": Date().timeIntervalSince(start)])
    }
}

struct Perplexity: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: """
        Perplexity: mean NLL over every token after the first, and its exp. With --text-file, the pruning papers' protocol: \
        the text cut into non-overlapping windows of --window tokens, every token after the first of each window scored.
        """)
    @OptionGroup var m: ModelOption
    @Option(name: .long, help: "Comma-separated token ids (at least two).") var tokens: String?
    @Option(name: .long, help: "A text file to score instead of --tokens.") var textFile: String?
    @Option(name: .long, help: "A calibration .tok file to score, window by window (in-sample check for compression).") var calib: String?
    @Option(name: .long, help: "Window length for --text-file (default: the model's context length).") var window: Int?
    @Option(name: .long, help: "Score at most this many windows.") var maxWindows: Int?

    func validate() throws {
        guard [tokens == nil, textFile == nil, calib == nil].filter({ !$0 }).count == 1 else {
            throw ValidationError("give exactly one of --tokens, --text-file and --calib")
        }
        if let w = window, w < 2 { throw ValidationError("--window must be at least 2") }
        if let n = maxWindows, n < 1 { throw ValidationError("--max-windows must be at least 1 (got \(n))") }
    }

    func run() throws {
        let bundle = try ModelBundle.open(path: m.model)
        if let tokens {
            let ids = try parseTokens(tokens)
            guard ids.count >= 2 else { throw ValidationError("perplexity needs at least two tokens") }
            try checkVocab(ids, bundle)
            let p = Scoring.perplexity(try bundle.loadModel(), tokens: ids)
            try printJSON(["mean_nll": p.meanNLL, "perplexity": p.perplexity, "scored_tokens": p.tokens])
            return
        }
        var ids: [Int]
        var w = window ?? bundle.config.contextLength
        if let calib {
            let cal = try CalibrationSet.read(path: calib)
            guard cal.tokenizerIdentity == bundle.tokenizer.identity else { throw KickError("made with another tokenizer", file: calib) }
            ids = Array(cal.windows.joined())
            w = cal.length
        } else {
            guard let data = try RegularFile.contents(atPath: textFile!) else { throw KickError("cannot read", file: textFile!) }
            ids = bundle.tokenizer.encode(String(decoding: data, as: UTF8.self))
        }
        guard w <= bundle.config.contextLength else {
            throw ValidationError("--window \(w) exceeds the model's context length \(bundle.config.contextLength)")
        }
        guard ids.count >= w else {
            throw KickError("the text has \(ids.count) tokens, fewer than one window of \(w): nothing to score (give a shorter --window)", file: calib ?? textFile)
        }
        let model = try bundle.loadModel()
        let t0 = Date()
        let p = Scoring.windowedPerplexity(model, tokens: ids, window: w, maxWindows: maxWindows)
        try printJSON(["mean_nll": p.meanNLL, "perplexity": p.perplexity, "scored_tokens": p.tokens, "window": w,
                   "windows": p.tokens / (w - 1), "text_tokens": ids.count, "seconds": Date().timeIntervalSince(t0),
                   "protocol": "non-overlapping windows, every token after the first of each window"])
    }
}

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Engine speed: prefill, single-sequence decode, batched decode.")
    @OptionGroup var m: ModelOption
    @Option(name: .long, help: "Prompt length for prefill; the batched prompts are 16-token slices of it (at least 32).")
    var promptTokens = 512
    @Option(name: .long) var decodeTokens = 128
    @Option(name: .long) var batch = 32
    @Option(name: .long) var batchDecodeTokens = 64

    func validate() throws {
        guard promptTokens >= 32 else { throw ValidationError("--prompt-tokens must be at least 32 (got \(promptTokens))") }
        guard decodeTokens >= 1, batch >= 1, batchDecodeTokens >= 1 else {
            throw ValidationError("--decode-tokens, --batch and --batch-decode-tokens must be at least 1")
        }
    }

    func run() throws {
        let r = try EngineBenchmark.run(path: m.model, promptTokens: promptTokens, decodeTokens: decodeTokens,
                                        batch: batch, batchDecodeTokens: batchDecodeTokens)
        try printJSON(r)
    }
}

struct BenchLoad: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "bench-load", abstract: "Median seconds to load each model into the engine.")
    @Option(name: .long, help: "Models to load (repeatable).") var model: [String]
    @Option(name: .long) var repeats = 3

    func run() throws {
        for m in model {
            let s = try EngineBenchmark.loadSeconds(path: m, repeats: repeats)
            let size = (try? FileManager.default.attributesOfItem(atPath: m)[.size] as? Int) ?? nil
            try printJSON(["model": m, "load_seconds": s, "file_bytes": size ?? 0])
        }
    }
}

runMain(KickInfer.self, tool: "kick-infer")
