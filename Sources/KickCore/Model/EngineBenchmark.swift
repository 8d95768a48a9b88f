import Foundation

/// The engine figures `make bench` prints: load time, prefill tokens/s,
/// single-sequence decode tokens/s and batched decode throughput.
public enum EngineBenchmark {
    /// Seconds to open a model and build the engine from it: the median of
    /// `repeats` loads (the file already in the page cache after the first).
    public static func loadSeconds(path: String, repeats: Int = 3) throws -> Double {
        var times: [Double] = []
        for _ in 0..<max(1, repeats) {
            let t0 = Date()
            _ = try ModelBundle.open(path: path).loadModel()
            times.append(Date().timeIntervalSince(t0))
        }
        return times.sorted()[times.count / 2]
    }

    /// What `kick-infer bench` prints.
    public struct Result: Codable, Sendable {
        public var model: String
        /// The panel formats the weights were held in, and their size.
        public var weights: String
        public var weightMB: Double
        public var blasThreads: Int
        public var linearKernel: String
        public var loadSeconds: Double
        public var prefillTokens: Int
        public var prefillTokensPerS: Double
        public var decodeTokens: Int
        /// Single-sequence decode after the prompt (context `prefillTokens`
        /// up to `prefillTokens + decodeTokens`).
        public var decodeTokensPerS: Double
        /// Single-sequence decode of `decodeTokens` tokens from an empty
        /// cache, as llama-bench's `tg` test runs it: the figure to set
        /// beside `tg128` (after a 512-token prompt each step also reads
        /// 512+ positions of keys and values). Absent in results written
        /// before it was measured.
        public var decodeFromEmptyTokensPerS: Double?
        public var batch: Int
        public var batchDecodeTokensPerS: Double
        public var batchSpeedup: Double
        /// Peak resident memory of the whole run (model load included).
        public var peakRSSMB: Double
        enum CodingKeys: String, CodingKey {
            case model, batch, weights
            case weightMB = "weight_mb", peakRSSMB = "peak_rss_mb"
            case blasThreads = "blas_threads", linearKernel = "linear_kernel", loadSeconds = "load_seconds", prefillTokens = "prefill_tokens"
            case prefillTokensPerS = "prefill_tokens_per_s", decodeTokens = "decode_tokens", decodeTokensPerS = "decode_tokens_per_s"
            case decodeFromEmptyTokensPerS = "decode_from_empty_tokens_per_s"
            case batchDecodeTokensPerS = "batch_decode_tokens_per_s", batchSpeedup = "batch_speedup"
        }
    }

    public static func run(path: String, weights: WeightPrecision = .source, promptTokens: Int, decodeTokens: Int, batch: Int, batchDecodeTokens: Int) throws -> Result {
        var t0 = Date()
        let bundle = try ModelBundle.open(path: path)
        let model = try bundle.loadModel(weights: weights)
        let load = Date().timeIntervalSince(t0)
        let V = model.config.vocabSize
        // a deterministic pseudo-random prompt
        var rng = SeededRandom(seed: 7)
        let prompt = (0..<promptTokens).map { _ in Int(rng.next() % UInt64(V - 100)) + 100 }
        // warm-up
        _ = model.forward([BatchItem(cache: model.newCache(capacity: 16), tokens: Array(prompt.prefix(16)), logits: .last)])
        // prefill: the whole prompt as one sequence, last logits only; the
        // median of three (one prefill is a second or less, and a 2-core
        // machine's scheduling noise alone moves it by a third)
        var prefills: [Double] = []
        var cache = model.newCache(capacity: promptTokens + decodeTokens)
        var last = Matrix(zeros: 1, 1)
        for _ in 0..<3 {
            cache = model.newCache(capacity: promptTokens + decodeTokens)
            t0 = Date()
            last = model.forward([BatchItem(cache: cache, tokens: prompt, logits: .last)])[0]!
            prefills.append(Date().timeIntervalSince(t0))
        }
        let prefill = prefills.sorted()[1]
        // single-sequence greedy decode after the prompt
        t0 = Date()
        for _ in 0..<decodeTokens {
            let next = Sampler.argmax(last.data)
            last = model.forward([BatchItem(cache: cache, tokens: [next], logits: .last)])[0]!
        }
        let decode = Date().timeIntervalSince(t0)
        // single-sequence decode from an empty cache (llama-bench's tg)
        let fresh = model.newCache(capacity: decodeTokens + 1)
        var token = prompt[0]
        t0 = Date()
        for _ in 0..<decodeTokens {
            token = Sampler.argmax(model.forward([BatchItem(cache: fresh, tokens: [token], logits: .last)])[0]!.data)
        }
        let fromEmpty = Date().timeIntervalSince(t0)
        // batched decode: `batch` sequences with short distinct prompts, timed over decode steps only
        let caches = (0..<batch).map { _ in model.newCache(capacity: 32 + batchDecodeTokens) }
        var lasts = model.forward(caches.enumerated().map { i, c in
            BatchItem(cache: c, tokens: Array(prompt[(i * 8) % (promptTokens - 16)..<(i * 8) % (promptTokens - 16) + 16]), logits: .last)
        })
        t0 = Date()
        for _ in 0..<batchDecodeTokens {
            let items = caches.enumerated().map { i, c in BatchItem(cache: c, tokens: [Sampler.argmax(lasts[i]!.data)], logits: .last) }
            lasts = model.forward(items)
        }
        let batched = Date().timeIntervalSince(t0)
        let single = Double(decodeTokens) / decode
        let multi = Double(batch * batchDecodeTokens) / batched
        return Result(model: path, weights: model.weightFormats, weightMB: Double(model.weightBytes) / 1_048_576, blasThreads: BLAS.threads, linearKernel: PackedWeight.kernelName, loadSeconds: load, prefillTokens: promptTokens,
                      prefillTokensPerS: Double(promptTokens) / prefill, decodeTokens: decodeTokens, decodeTokensPerS: single,
                      decodeFromEmptyTokensPerS: Double(decodeTokens) / fromEmpty, batch: batch,
                      batchDecodeTokensPerS: multi, batchSpeedup: multi / single,
                      peakRSSMB: Double(PeakMemory.residentBytes()) / 1_048_576)
    }
}

/// Engine figures for several weight precisions side by side: each round
/// runs every precision once, in turn (so drift in the machine's speed
/// falls on all alike), each in its own process so peak memory is its own.
public enum PrecisionComparison {
    /// One precision's figures from one round.
    public struct Sample: Sendable {
        public var bench: EngineBenchmark.Result
        /// Peak RSS (MiB) of a separate `generate` process.
        public var generatePeakMB: Double
        public init(bench: EngineBenchmark.Result, generatePeakMB: Double) {
            self.bench = bench
            self.generatePeakMB = generatePeakMB
        }
    }

    /// min–max of a figure over the rounds.
    public static func range(_ xs: [Double]) -> String {
        guard let lo = xs.min(), let hi = xs.max() else { return "–" }
        return String(format: "%.1f–%.1f", lo, hi)
    }

    /// The table `make bench` prints: each precision's ranges, then each
    /// precision's ratio to the first (`base`), round by round (a ratio
    /// within one round compares runs minutes apart, not hours).
    public static func table(_ samples: [WeightPrecision: [Sample]], order: [WeightPrecision]) -> String {
        var lines = ["| weights | held MB | prefill tok/s | decode tok/s | batch-\(samples.values.first?.first?.bench.batch ?? 0) decode tok/s | generate peak RSS MB |",
                     "|---|---|---|---|---|---|"]
        for w in order {
            guard let s = samples[w], let first = s.first else { continue }
            lines.append("| \(w.rawValue) (\(first.bench.weights)) | \(String(format: "%.0f", first.bench.weightMB)) | "
                         + "\(range(s.map(\.bench.prefillTokensPerS))) | \(range(s.map(\.bench.decodeTokensPerS))) | "
                         + "\(range(s.map(\.bench.batchDecodeTokensPerS))) | \(range(s.map(\.generatePeakMB))) |")
        }
        guard let base = order.first, let b = samples[base] else { return lines.joined(separator: "\n") }
        lines += ["", "ratios to \(base.rawValue), per round (min–max):", "",
                  "| weights | prefill | decode | batch decode | generate peak RSS |", "|---|---|---|---|---|"]
        for w in order.dropFirst() {
            guard let s = samples[w] else { continue }
            let n = min(s.count, b.count)
            func ratio(_ f: (Sample) -> Double) -> String {
                let xs = (0..<n).map { f(s[$0]) / f(b[$0]) }
                return String(format: "%.2f–%.2f×", xs.min() ?? 0, xs.max() ?? 0)
            }
            lines.append("| \(w.rawValue) | \(ratio { $0.bench.prefillTokensPerS }) | \(ratio { $0.bench.decodeTokensPerS }) | "
                         + "\(ratio { $0.bench.batchDecodeTokensPerS }) | \(ratio { $0.generatePeakMB }) |")
        }
        return lines.joined(separator: "\n")
    }
}

extension EngineBenchmark {
    /// The weight forms `linearGFLOPs` measures: the panel formats, then
    /// integer codes as GGUF's Q4_1 and Q8_0 and as GPTQ's g128 codes.
    public static let linearForms = PanelFormat.allCases.map(\.rawValue) + ["Q4_1", "Q8_0", "q4-g128", "q3-g128", "q2-g128", "q8-g128",
                                                                          "2:4-f16", "sparse50-f16", "sparse70-f16", "sparse90-f16",
                                                                          "sparse50-f32", "sparse70-f32"]

    /// A random rows × cols weight held in `form` (one of `linearForms`;
    /// also `sparse<percent>-<f32|f16|bf16>` for any percent, and
    /// `<n>:<m>-<format>`).
    public static func randomWeight(rows: Int, cols: Int, form: String, seed: UInt64 = 3) throws -> PackedWeight {
        var rng = SeededRandom(seed: seed)
        func values(zeroPercent: Int = 0) -> Matrix {
            Matrix(rows: rows, cols: cols, data: (0..<rows * cols).map { _ in
                let v = Float(rng.next() % 2001) / 1000 - 1
                return Int(rng.next() % 100) < zeroPercent ? 0 : (v == 0 ? 0.5 : v)
            })
        }
        if let f = PanelFormat(rawValue: form) { return PackedWeight(values(), format: f) }
        let parts = form.split(separator: "-")
        if parts.count == 2, let f = PanelFormat(rawValue: String(parts[1])) {
            if parts[0].hasPrefix("sparse"), let pct = Int(parts[0].dropFirst(6)), (0...100).contains(pct) {
                return PackedWeight(sparse: SparsePanels(stacking: [values(zeroPercent: pct)], format: f))
            }
            let nm = parts[0].split(separator: ":").compactMap { Int($0) }
            if nm.count == 2 {
                var w = values()
                // keep the first n of every m
                for i in w.data.indices where (i % cols) % nm[1] >= nm[0] { w.data[i] = 0 }
                if let p = NMPanels(stacking: [w], n: nm[0], m: nm[1], format: f) { return PackedWeight(nm: p) }
            }
        }
        let cr: CodeRows
        if let t = GGMLType.supported.first(where: { $0.name == form }) {
            var bytes = [UInt8](repeating: 0, count: t.byteCount(elements: rows * cols))
            for i in bytes.indices { bytes[i] = UInt8(truncatingIfNeeded: rng.next()) }
            // finite scales: f16 values in ±[2^-8, 2)
            for blk in 0..<bytes.count / t.bytesPerBlock {
                for h in 0..<(t == .q4_1 ? 2 : 1) {
                    let v = floatToHalf(Float(rng.next() % 2001) / 1000 - 1)
                    bytes[blk * t.bytesPerBlock + 2 * h] = UInt8(v & 0xFF)
                    bytes[blk * t.bytesPerBlock + 2 * h + 1] = UInt8(v >> 8)
                }
            }
            guard let c = try bytes.withUnsafeBytes({ try CodeRows(ggml: $0, type: t, rows: rows, cols: cols) }) else {
                throw KickError("\(form) is not a code form")
            }
            cr = c
        } else if form.hasPrefix("q"), let g = form.split(separator: "-g").last.flatMap({ Int($0) }), let bits = Int(form.dropFirst().prefix { $0 != "-" }) {
            let groups = (cols + g - 1) / g
            cr = CodeRows(QuantizedMatrix(rows: rows, cols: cols, bits: bits, groupSize: g,
                                          codes: (0..<rows * cols).map { _ in UInt8(rng.next() % UInt64(1 << bits)) },
                                          scales: (0..<rows * groups).map { _ in Float(rng.next() % 1000 + 1) / 7919 },
                                          zeros: (0..<rows * groups).map { _ in UInt8(rng.next() % UInt64(1 << bits)) }))
        } else {
            throw KickError("unknown weight form \(form): one of \(linearForms.joined(separator: ", "))")
        }
        return PackedWeight(codes: CodePanels(stacking: [cr])!)
    }

    /// The linear kernel alone: GFLOP/s of `tokens` × (rows × cols) over a
    /// weight held in `form`, the best of `reps` (whole-model figures on a
    /// 2-core machine swing by a third; the kernel's best is stable).
    public static func linearGFLOPs(rows: Int, cols: Int, tokens: Int, form: String, reps: Int) throws -> Double {
        let w = try randomWeight(rows: rows, cols: cols, form: form)
        var rng = SeededRandom(seed: 4)
        let x = (0..<tokens * cols).map { _ in Float(rng.next() % 2001) / 1000 - 1 }
        var out = [Float](repeating: 0, count: tokens * rows)
        var best = Double.infinity
        let team = ThreadTeam.sharedIfParallel
        for _ in 0..<max(1, reps) {
            let t0 = Date()
            BLAS.withOneThread { w.apply(tokens: tokens, input: x, out: &out, team: team) }
            best = min(best, Date().timeIntervalSince(t0))
        }
        return 2 * Double(rows * cols * tokens) / best / 1e9
    }
}
