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
        subcommands: [Run.self, Merge.self, Submit.self, SlurmWait.self, Status.self, Estimate.self, Tokenize.self, Logits.self, Generate.self, Perplexity.self, Bench.self, BenchWeights.self,
                      BenchLinear.self, BenchLoad.self, BenchHash.self])
}

struct ModelOption: ParsableArguments {
    @Option(name: .long, help: "A .gguf file, a .kick checkpoint or a Hugging Face model folder.")
    var model: String
    @Option(name: .long, help: ArgumentHelp("How the engine holds the weights: source (quantized codes stay codes, N:M pruned weights stay sparse, f16/bf16 stay 16-bit, the rest float32), f32 (everything widened), f16 or bf16.",
                                            valueName: "source|f32|f16|bf16"))
    var weights: WeightPrecision = .source

    /// Builds the engine as --weights says.
    func load(_ bundle: ModelBundle) throws -> LlamaModel { try bundle.loadModel(weights: weights) }
}

extension WeightPrecision: ExpressibleByArgument {}

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
        let model = try m.load(bundle)
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
        let loadStart = Date()
        let model = try m.load(bundle)
        let loadSeconds = Date().timeIntervalSince(loadStart)
        let gen = BatchGenerator(model: model, tokenizer: tok, maxBatch: 1)
        let start = Date()
        let r = gen.generate([GenerationRequest(id: 0, prompt: ids, maxNewTokens: maxNewTokens,
                                                sampling: SamplingParams(temperature: temperature, topP: topP, seed: seed),
                                                stopStrings: stop)])[0]
        struct Output: Encodable {
            var prompt_tokens: [Int], tokens: [Int], text: String, finish: String, seconds: Double, load_seconds: Double
            var weights: String, weight_mb: Double, peak_rss_mb: Double
        }
        try printJSON(Output(prompt_tokens: ids, tokens: r.tokens, text: r.text, finish: r.finish.rawValue,
                             seconds: Date().timeIntervalSince(start), load_seconds: loadSeconds, weights: model.weightFormats,
                             weight_mb: Double(model.weightBytes) / 1_048_576, peak_rss_mb: Double(PeakMemory.residentBytes()) / 1_048_576))
    }
}

runMain(KickInfer.self, tool: "kick-infer")
