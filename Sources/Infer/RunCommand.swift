import ArgumentParser
import Foundation
import KickCLI
import KickCore

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
    @Option(name: .long, help: ArgumentHelp("Run only items whose position is I mod N, into <task>.shard-I-of-N.jsonl; `kick-infer merge` joins the shards.",
                                            valueName: "I/N")) var shard: String?
    @OptionGroup var lock: LockOptions

    func validate() throws {
        guard batch > 0 else { throw ValidationError("--batch must be positive") }
        if let shard { do { _ = try TaskShard(parsing: shard) } catch let e as KickError { throw ValidationError("--shard: \(e.message)") } }
    }

    func run() throws {
        let taskList = tasks?.tasks ?? TaskRegistry.standard.names
        let taskShard = try shard.map { try TaskShard(parsing: $0) }
        let suffix = taskShard?.suffix ?? ""
        // one lock per task log, not per folder, so that a configuration's
        // tasks and shards run side by side (make -j, Slurm jobs); all taken
        // before the model loads
        let held = try taskList.map { try OutputLock(file: "\(out)/\($0)\(suffix).jsonl", wait: lock.wait) }
        defer { withExtendedLifetime(held) {} }
        let root = try ProjectRoot.find()
        let prof = try Profile.load(profile, root: root)
        let mj = try IngestedModel.read(path: ingest + "/model.json")
        let bundle = try ModelBundle.open(path: m.model)
        guard mj.tokenizer.identity == bundle.tokenizer.identity else {
            throw KickError("the model's tokenizer (\(bundle.tokenizer.identity)) is not the one the ingest folder was made with (\(mj.tokenizer.identity))", file: m.model)
        }
        let model = try m.load(bundle)
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
        opt.shard = taskShard
        let runner = SuiteRunner(bundle: bundle, model: model, options: opt, judge: noJudge ? nil : JudgeClient.fromEnvironment())
        for t in taskList {
            let t0 = Date()
            if fresh {
                for f in ["\(out)/\(t)\(suffix).jsonl", "\(out)/\(t)\(suffix).scores.json"] { try? FileManager.default.removeItem(atPath: f) }
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

struct Merge: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Join the shard logs of `run --shard I/N` by item id into <task>.jsonl and score it, as an unsharded run would.")
    @Option(name: .long, help: "The model or checkpoint the shards ran (its tokenizer cuts perplexity's windows; no weights are loaded).") var model: String
    @Option(name: .long, help: "The ingest folder (work/<MODEL>/ingest).") var ingest: String
    @Option(name: .long, help: "The configuration's name.") var config: String
    @Option(name: .long, help: "Comma-separated tasks (default: all).") var tasks: TaskSelection?
    @Option(name: .long, help: "The run's folder (work/<MODEL>/infer/<config>).") var out: String
    @Option(name: .long, help: "The profile the shards ran with.") var profile = "quick"
    @Option(name: .long, help: "How many shards the tasks were split into.") var shards: Int
    @OptionGroup var lock: LockOptions

    func validate() throws { guard shards >= 1 else { throw ValidationError("--shards must be at least 1") } }

    func run() throws {
        let taskList = tasks?.tasks ?? TaskRegistry.standard.names
        // the locks an unsharded run of each task takes
        let held = try taskList.map { try OutputLock(file: "\(out)/\($0).jsonl", wait: lock.wait) }
        defer { withExtendedLifetime(held) {} }
        let prof = try Profile.load(profile, root: try ProjectRoot.find())
        let mj = try IngestedModel.read(path: ingest + "/model.json")
        let tokenizer = try ModelBundle.open(path: model).tokenizer
        let pp = prof.size("perplexity")
        let opt = SuiteOptions(config: config, modelName: mj.name, ingestDir: ingest, outDir: out, denseDir: nil, generation: prof.generation,
                               perplexityWindow: min(pp.window ?? mj.sequenceLength, mj.sequenceLength), perplexityWindows: pp.windows)
        for t in taskList {
            let s = try TaskShards.merge(task: t, shards: shards, options: opt, contextLength: mj.config.contextLength, tokenizer: tokenizer)
            FileHandle.standardError.write(Data("kick-infer: \(config) \(t): merged \(shards) shard(s), \(s.items) items\n".utf8))
            print("\(out)/\(t).scores.json")
        }
    }
}
