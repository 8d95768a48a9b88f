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
        public var decodeTokensPerS: Double
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
        // prefill: the whole prompt as one sequence, last logits only
        t0 = Date()
        let cache = model.newCache(capacity: promptTokens + decodeTokens)
        var last = model.forward([BatchItem(cache: cache, tokens: prompt, logits: .last)])[0]!
        let prefill = Date().timeIntervalSince(t0)
        // single-sequence greedy decode after the prompt
        t0 = Date()
        for _ in 0..<decodeTokens {
            let next = Sampler.argmax(last.data)
            last = model.forward([BatchItem(cache: cache, tokens: [next], logits: .last)])[0]!
        }
        let decode = Date().timeIntervalSince(t0)
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
                      prefillTokensPerS: Double(promptTokens) / prefill, decodeTokens: decodeTokens, decodeTokensPerS: single, batch: batch,
                      batchDecodeTokensPerS: multi, batchSpeedup: multi / single,
                      peakRSSMB: Double(PeakMemory.residentBytes()) / 1_048_576)
    }
}
