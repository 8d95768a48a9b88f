import ArgumentParser
import Foundation
import KickCLI
import KickCore

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Engine speed: prefill, single-sequence decode (after the prompt, and from an empty cache as llama-bench's tg), batched decode.")
    @OptionGroup var m: ModelOption
    @Option(name: .long, help: "Prompt length for prefill; the batched prompts are 16-token slices of it (at least 32).")
    var promptTokens = 512
    @Option(name: .long) var decodeTokens = 128
    @Option(name: .long) var batch = 32
    @Option(name: .long) var batchDecodeTokens = 64
    @Option(name: .long, help: "Also write the result to this file (atomically): the report's Cost table reads it.")
    var out: String?

    func validate() throws {
        guard promptTokens >= 32 else { throw ValidationError("--prompt-tokens must be at least 32 (got \(promptTokens))") }
        guard decodeTokens >= 1, batch >= 1, batchDecodeTokens >= 1 else {
            throw ValidationError("--decode-tokens, --batch and --batch-decode-tokens must be at least 1")
        }
    }

    func run() throws {
        let r = try EngineBenchmark.run(path: m.model, weights: m.weights, promptTokens: promptTokens, decodeTokens: decodeTokens,
                                        batch: batch, batchDecodeTokens: batchDecodeTokens)
        if let out { try AtomicFile.writeJSON(r, to: out) }
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

struct BenchWeights: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "bench-weights",
        abstract: "The engine with weights held at several precisions, side by side: alternating rounds, each run in its own process.")
    @Option(name: .long, help: "A model file or folder.") var model: String
    @Option(name: .long, help: "Precisions to compare; ratios are to the first (repeatable).") var weights: [WeightPrecision] = [.f32, .f16]
    @Option(name: .long) var rounds = 3
    @Option(name: .long) var promptTokens = 512
    @Option(name: .long) var decodeTokens = 128
    @Option(name: .long) var batch = 16
    @Option(name: .long) var batchDecodeTokens = 32

    func validate() throws { guard rounds > 0, !weights.isEmpty else { throw ValidationError("--rounds must be positive and --weights given") } }

    func run() throws {
        let me = URL(fileURLWithPath: CommandLine.arguments[0]).path
        func child(_ args: [String]) throws -> Data {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: me.hasPrefix("/") ? me : FileManager.default.currentDirectoryPath + "/" + me)
            p.arguments = args
            let out = Pipe()
            p.standardOutput = out
            p.standardError = FileHandle.nullDevice
            try p.run()
            let d = out.fileHandleForReading.readDataToEndOfFile()
            p.waitUntilExit()
            guard p.terminationStatus == 0 else { throw KickError("kick-infer \(args.joined(separator: " ")) failed (\(p.terminationStatus))", file: model) }
            return d
        }
        struct Generated: Decodable { var peak_rss_mb: Double }
        var samples: [WeightPrecision: [PrecisionComparison.Sample]] = [:]
        for r in 1...rounds {
            for w in weights {
                let b = try JSONDecoder().decode(EngineBenchmark.Result.self, from: try child(
                    ["bench", "--model", model, "--weights", w.rawValue, "--prompt-tokens", "\(promptTokens)", "--decode-tokens", "\(decodeTokens)",
                     "--batch", "\(batch)", "--batch-decode-tokens", "\(batchDecodeTokens)"]))
                let g = try JSONDecoder().decode(Generated.self, from: try child(
                    ["generate", "--model", model, "--weights", w.rawValue, "--tokens", "1,2,3,4,5,6,7,8", "--max-new-tokens", "32"]))
                samples[w, default: []].append(.init(bench: b, generatePeakMB: g.peak_rss_mb))
                FileHandle.standardError.write(Data(String(format: "bench-weights: round %d/%d %@: prefill %.0f, decode %.1f, batch %.0f tok/s, peak %.0f MB\n",
                    r, rounds, w.rawValue, b.prefillTokensPerS, b.decodeTokensPerS, b.batchDecodeTokensPerS, g.peak_rss_mb).utf8))
            }
        }
        print(PrecisionComparison.table(samples, order: weights))
    }
}

struct BenchLinear: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "bench-linear",
        abstract: "The linear kernel alone, per weight form, alternating: GFLOP/s, best of --reps, for each round.")
    @Option(name: .long) var rows = 1536
    @Option(name: .long) var cols = 576
    @Option(name: .long, help: "Token counts (repeatable).") var tokens: [Int] = [1, 16, 512]
    @Option(name: .long) var reps = 20
    @Option(name: .long) var rounds = 3
    @Option(name: .long, help: "Weight forms (repeatable; default all): \(EngineBenchmark.linearForms.joined(separator: ", ")); also sparse<percent>-<f32|f16|bf16> and <n>:<m>-<f32|f16|bf16>.")
    var form: [String] = []
    var forms: [String] { form }

    func run() throws {
        for f in forms where (try? EngineBenchmark.randomWeight(rows: 16, cols: 64, form: f)) == nil {
            throw ValidationError("--form \(f): one of \(EngineBenchmark.linearForms.joined(separator: ", ")), sparse<percent>-<format> or <n>:<m>-<format>")
        }
        for r in 1...max(1, rounds) {
            for t in tokens {
                var row: [String: Double] = [:]
                for f in forms.isEmpty ? EngineBenchmark.linearForms : forms {
                    row[f] = try EngineBenchmark.linearGFLOPs(rows: rows, cols: cols, tokens: t, form: f, reps: reps)
                }
                try printJSON(["round": Double(r), "tokens": Double(t)].merging(row) { a, _ in a })
            }
        }
    }
}
