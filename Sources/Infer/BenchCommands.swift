import ArgumentParser
import Foundation
import KickCLI
import KickCore

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
