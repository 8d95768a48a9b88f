import Foundation

public struct GenerationRequest: Sendable {
    public var id: Int
    public var prompt: [Int]
    public var maxNewTokens: Int
    public var sampling: SamplingParams
    public var stopStrings: [String]
    public var stopAtEndToken: Bool
    /// The answer must hold text: until the output holds a non-whitespace
    /// character, end tokens are not sampled and stop strings do not stop it.
    public var requireText: Bool
    /// End tokens are not sampled for the first `minNewTokens` tokens.
    public var minNewTokens: Int
    /// The KV cache of a prefix of `prompt`, computed once and shared by
    /// several requests (copied, never changed); the rest is fed as usual.
    public var prefix: KVCache?

    public init(id: Int, prompt: [Int], maxNewTokens: Int, sampling: SamplingParams = .greedy,
                stopStrings: [String] = [], stopAtEndToken: Bool = true, requireText: Bool = false, minNewTokens: Int = 0,
                prefix: KVCache? = nil) {
        self.id = id
        self.requireText = requireText
        self.minNewTokens = minNewTokens
        self.prompt = prompt
        self.maxNewTokens = maxNewTokens
        self.sampling = sampling
        self.stopStrings = stopStrings
        self.stopAtEndToken = stopAtEndToken
        self.prefix = prefix
    }
}

public enum FinishReason: String, Sendable, Codable {
    case endToken = "end-token", stopString = "stop-string", length, contextFull = "context-full"
}

public struct GenerationResult: Sendable {
    public var id: Int
    /// New tokens, including the end token when one stopped generation.
    public var tokens: [Int]
    /// Decoded new text, cut before a stop string, without the end token.
    public var text: String
    public var finish: FinishReason
    public var promptTokens: Int
}

/// Continuous batching: up to `maxBatch` sequences decode together, each
/// step one ragged forward; a finished sequence's slot goes to the next
/// waiting request at once. Long prompts are fed in fixed chunks of
/// `prefillChunk` tokens, a split that depends on the prompt alone, so a
/// sequence computes the same way whatever shares its batch.
public final class BatchGenerator {
    public let model: LlamaModel
    public let tokenizer: Tokenizer
    public var maxBatch: Int
    public var prefillChunk: Int
    /// Most prompt tokens fed in one step (bounds activation memory).
    public var stepTokenBudget: Int

    public init(model: LlamaModel, tokenizer: Tokenizer, maxBatch: Int = 16, prefillChunk: Int = 256, stepTokenBudget: Int = 1024) {
        self.model = model
        self.tokenizer = tokenizer
        self.maxBatch = max(1, maxBatch)
        self.prefillChunk = max(1, prefillChunk)
        self.stepTokenBudget = max(prefillChunk, stepTokenBudget)
    }

    private final class Sequence {
        let request: GenerationRequest
        let cache: KVCache
        var pending: [Int]
        var generated: [Int] = []
        var rng: SeededRandom
        let limit: Int
        init(_ r: GenerationRequest, _ cache: KVCache, limit: Int) {
            request = r
            self.cache = cache
            pending = Array(r.prompt[cache.length...])
            rng = SeededRandom(seed: r.sampling.seed)
            self.limit = limit
        }
    }

    /// Generates for every request; `onResult` is called as each finishes
    /// (in finishing order). Returns the results in request order.
    @discardableResult
    public func generate(_ requests: [GenerationRequest], onResult: ((GenerationResult) -> Void)? = nil) -> [GenerationResult] {
        var results = [GenerationResult?](repeating: nil, count: requests.count)
        var waiting = Array(requests.enumerated().reversed())
        var active: [(index: Int, seq: Sequence)] = []
        let ctx = model.config.contextLength
        func finish(_ i: Int, _ s: Sequence, _ reason: FinishReason) {
            var bytes = tokenizer.decodeBytes(s.generated)
            var why = reason
            if let cut = firstStop(bytes, s.request.stopStrings, from: s.request.requireText ? Self.leadingWhitespace(bytes) : 0) { bytes = Array(bytes[..<cut]); why = .stopString }
            let r = GenerationResult(id: s.request.id, tokens: s.generated, text: String(decoding: bytes, as: UTF8.self),
                                     finish: why, promptTokens: s.request.prompt.count)
            results[i] = r
            onResult?(r)
        }
        while !waiting.isEmpty || !active.isEmpty {
            while active.count < maxBatch, let (i, r) = waiting.popLast() {
                let limit = min(r.maxNewTokens, ctx - r.prompt.count)
                let capacity = min(ctx, r.prompt.count + max(0, limit))
                let cache: KVCache
                if let p = r.prefix, p.length < r.prompt.count {
                    cache = p.copy(extraCapacity: max(0, capacity - p.length))
                } else {
                    cache = model.newCache(capacity: capacity)
                }
                let s = Sequence(r, cache, limit: limit)
                if r.prompt.isEmpty || limit <= 0 {
                    finish(i, s, r.prompt.isEmpty ? .length : .contextFull)
                    continue
                }
                active.append((i, s))
            }
            if active.isEmpty { continue }
            // build the step: decoding sequences first, then prompt chunks within the budget
            var items: [BatchItem] = []
            var members: [(Int, Sequence, Bool)] = []
            var budget = stepTokenBudget
            for (i, s) in active where s.pending.count == 1 {
                items.append(BatchItem(cache: s.cache, tokens: s.pending, logits: .last))
                members.append((i, s, true))
            }
            for (i, s) in active where s.pending.count > 1 {
                let n = min(s.pending.count, prefillChunk)
                if n > budget && !items.isEmpty { continue }
                budget -= n
                let last = n == s.pending.count
                items.append(BatchItem(cache: s.cache, tokens: Array(s.pending.prefix(n)), logits: last ? .last : .none))
                members.append((i, s, last))
            }
            let logits = model.forward(items)
            var finished = Set<ObjectIdentifier>()
            for (k, (i, s, wantsNext)) in members.enumerated() {
                let fed = items[k].tokens.count
                s.pending.removeFirst(fed)
                guard wantsNext, let row = logits[k] else { continue }
                let next: Int
                if s.generated.count < s.request.minNewTokens || s.request.requireText && !Self.holdsText(tokenizer.decodeBytes(s.generated)) {
                    // no end yet: the answer is still empty
                    var masked = row.data
                    for e in endTokenIDs { masked[e] = -.infinity }
                    next = Sampler.sample(masked, s.request.sampling, &s.rng)
                } else {
                    next = Sampler.sample(row.data, s.request.sampling, &s.rng)
                }
                s.generated.append(next)
                if s.request.stopAtEndToken && tokenizer.isEndOfGeneration(next) {
                    s.generated.removeLast()
                    finish(i, s, .endToken)
                    finished.insert(ObjectIdentifier(s))
                } else if !s.request.stopStrings.isEmpty, case let b = tokenizer.decodeBytes(s.generated),
                          firstStop(b, s.request.stopStrings, from: s.request.requireText ? Self.leadingWhitespace(b) : 0) != nil {
                    finish(i, s, .stopString)
                    finished.insert(ObjectIdentifier(s))
                } else if s.generated.count >= s.limit {
                    finish(i, s, s.limit < s.request.maxNewTokens ? .contextFull : .length)
                    finished.insert(ObjectIdentifier(s))
                } else {
                    s.pending = [next]
                }
            }
            active.removeAll { finished.contains(ObjectIdentifier($0.seq)) }
        }
        return results.map { $0! }
    }

    /// The tokens that end generation, masked while an answer must go on.
    private lazy var endTokenIDs: [Int] = (0..<tokenizer.vocabSize).filter { tokenizer.isEndOfGeneration($0) }

    static func isWhitespace(_ b: UInt8) -> Bool { b == 0x20 || b == 0x0A || b == 0x09 || b == 0x0D }
    static func leadingWhitespace(_ b: [UInt8]) -> Int { b.prefix { isWhitespace($0) }.count }
    static func holdsText(_ b: [UInt8]) -> Bool { b.contains { !isWhitespace($0) } }

    /// Byte offset of the earliest stop string in the text at or after `from`, if any.
    private func firstStop(_ bytes: [UInt8], _ stops: [String], from start: Int = 0) -> Int? {
        var best: Int?
        for s in stops where !s.isEmpty {
            let p = Array(s.utf8)
            guard bytes.count - start >= p.count else { continue }
            for i in start...(bytes.count - p.count) where bytes[i] == p[0] && Array(bytes[i..<i + p.count]) == p {
                if best == nil || i < best! { best = i }
                break
            }
        }
        return best
    }
}

/// Log-probability scoring: continuations after a context (multiple choice)
/// and perplexity over a token sequence.
public enum Scoring {
    public struct ContinuationScore: Sendable {
        public var logProb: Double
        public var tokens: Int
        /// Whether greedy decoding would have produced the continuation.
        public var isGreedy: Bool
    }

    /// Sum of log p(continuation | context) for each pair, batched.
    public static func continuations(_ model: LlamaModel, _ pairs: [(context: [Int], continuation: [Int])],
                                     maxBatch: Int = 8) -> [ContinuationScore] {
        var out: [ContinuationScore] = []
        var i = 0
        while i < pairs.count {
            let batch = pairs[i..<min(pairs.count, i + maxBatch)]
            var items: [BatchItem] = []
            for p in batch {
                precondition(!p.context.isEmpty && !p.continuation.isEmpty, "context and continuation must be non-empty")
                let seq = p.context + p.continuation.dropLast()
                items.append(BatchItem(cache: model.newCache(capacity: seq.count), tokens: seq, logits: .tail(p.continuation.count)))
            }
            let logits = model.forward(items)
            for (k, p) in batch.enumerated() {
                let m = logits[k]!
                var lp = 0.0
                var greedy = true
                m.data.withUnsafeBufferPointer { b in
                    for (j, tok) in p.continuation.enumerated() {
                        let row = UnsafeBufferPointer(rebasing: b[j * m.cols..<(j + 1) * m.cols])
                        lp += Sampler.logProb(row, tok)
                        if Sampler.argmax(row) != tok { greedy = false }
                    }
                }
                out.append(ContinuationScore(logProb: lp, tokens: p.continuation.count, isGreedy: greedy))
            }
            i += maxBatch
        }
        return out
    }

    public struct Perplexity: Sendable, Codable {
        public var meanNLL: Double
        public var perplexity: Double
        public var tokens: Int
    }

    /// Mean negative log-likelihood of every token after the first, fed in
    /// chunks through one cache so memory stays bounded.
    public static func perplexity(_ model: LlamaModel, tokens: [Int], chunk: Int = 256) -> Perplexity {
        precondition(tokens.count >= 2, "perplexity needs at least two tokens")
        let cache = model.newCache(capacity: tokens.count)
        var nll = 0.0
        var n = 0
        var start = 0
        let inputs = Array(tokens.dropLast())
        while start < inputs.count {
            let end = min(inputs.count, start + chunk)
            let m = model.forward([BatchItem(cache: cache, tokens: Array(inputs[start..<end]), logits: .all)])[0]!
            m.data.withUnsafeBufferPointer { b in
                for j in 0..<(end - start) {
                    let row = UnsafeBufferPointer(rebasing: b[j * m.cols..<(j + 1) * m.cols])
                    nll -= Sampler.logProb(row, tokens[start + j + 1])
                    n += 1
                }
            }
            start = end
        }
        let mean = nll / Double(n)
        return Perplexity(meanNLL: mean, perplexity: Foundation.exp(mean), tokens: n)
    }
}

extension Scoring {
    /// The pruning papers' WikiText protocol: non-overlapping windows of
    /// `window` tokens (a shorter tail is dropped), every token after the
    /// first of each window scored, exp of the mean NLL over all of them.
    /// Windows go through the engine several at a time.
    public static func windowedPerplexity(_ model: LlamaModel, tokens: [Int], window: Int, maxWindows: Int? = nil, batch: Int = 4) -> Perplexity {
        var count = tokens.count / window
        if let m = maxWindows { count = min(count, m) }
        var nll = 0.0, n = 0
        var w0 = 0
        while w0 < count {
            let ws = w0..<min(count, w0 + batch)
            let items = ws.map { w in
                BatchItem(cache: model.newCache(capacity: window), tokens: Array(tokens[w * window..<(w + 1) * window - 1]), logits: .all)
            }
            let logits = model.forward(items)
            for (k, w) in ws.enumerated() {
                let m = logits[k]!
                m.data.withUnsafeBufferPointer { b in
                    for j in 0..<window - 1 {
                        nll -= Sampler.logProb(UnsafeBufferPointer(rebasing: b[j * m.cols..<(j + 1) * m.cols]), tokens[w * window + j + 1])
                        n += 1
                    }
                }
            }
            w0 += batch
        }
        let mean = n > 0 ? nll / Double(n) : .nan
        return Perplexity(meanNLL: mean, perplexity: Foundation.exp(mean), tokens: n)
    }
}
