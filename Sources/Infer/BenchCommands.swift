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
        let r = try EngineBenchmark.run(path: m.model, weights: m.weights, promptTokens: promptTokens, decodeTokens: decodeTokens,
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

struct BenchHash: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "bench-hash",
        abstract: "SHA-256 throughput (what every checkpoint load, extraction and download pays) on a buffer in memory.")
    @Option(name: .long, help: "Buffer size in MiB.") var mib = 1024
    @Option(name: .long) var rounds = 3

    func validate() throws { guard mib > 0, rounds > 0 else { throw ValidationError("--mib and --rounds must be positive") } }

    func run() throws {
        var buf = [UInt8](repeating: 0, count: mib << 20)
        var rng = SeededRandom(seed: 1)
        buf.withUnsafeMutableBytes { b in for i in stride(from: 0, to: b.count, by: 8) { b.storeBytes(of: rng.next(), toByteOffset: i, as: UInt64.self) } }
        for r in 1...rounds {
            let t0 = Date()
            var h = SHA256()
            buf.withUnsafeBytes { h.update($0) }
            _ = h.finalize()
            try printJSON(["round": r, "bytes": buf.count, "gb_per_s": Double(buf.count) / Date().timeIntervalSince(t0) / 1e9])
        }
    }
}
