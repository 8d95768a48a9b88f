import Foundation

/// How the next token is chosen: greedy when temperature is nil or 0.
public struct SamplingParams: Sendable, Equatable, Codable {
    public var temperature: Float?
    public var topP: Float
    public var seed: UInt64

    public init(temperature: Float? = nil, topP: Float = 1, seed: UInt64 = 0) {
        self.temperature = temperature
        self.topP = topP
        self.seed = seed
    }

    public static let greedy = SamplingParams()
    public var isGreedy: Bool { (temperature ?? 0) <= 0 }
}

/// A small seeded generator (SplitMix64): each sequence owns one, so its
/// samples do not depend on what else shares the batch.
public struct SeededRandom: RandomNumberGenerator, Sendable {
    private var state: UInt64
    public init(seed: UInt64) { state = seed &+ 0x9E37_79B9_7F4A_7C15 }
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    public mutating func unit() -> Double { Double(next() >> 11) * (1.0 / 9_007_199_254_740_992.0) }
}

public enum Sampler {
    /// Index of the largest logit: the lowest index wins a tie, NaNs are
    /// ignored, 0 when there is none.
    /// Two vector passes, the maximum then its first position: a decode
    /// step of 32 sequences scans 1.6 M logits.
    public static func argmax(_ p: UnsafeBufferPointer<Float>) -> Int {
        guard let base = p.baseAddress else { return 0 }
        let m = maxValue(base, p.count)
        guard m > -.infinity else { return 0 }
        var i = 0
        while i + 8 <= p.count {
            if any(load8(base + i) .== m) { break }
            i += 8
        }
        while i < p.count && p[i] != m { i += 1 }
        return i < p.count ? i : 0
    }

    public static func argmax(_ a: [Float]) -> Int { a.withUnsafeBufferPointer { argmax($0) } }

    /// Temperature and nucleus (top-p) sampling.
    public static func sample(_ logits: [Float], _ p: SamplingParams, _ rng: inout SeededRandom) -> Int {
        guard let t = p.temperature, t > 0 else { return argmax(logits) }
        let mx = logits.max() ?? 0
        var probs = logits.map { Double(Foundation.exp(($0 - mx) / t)) }
        let z = probs.reduce(0, +)
        for i in probs.indices { probs[i] /= z }
        var order = Array(probs.indices)
        if p.topP < 1 {
            order.sort { probs[$0] > probs[$1] || (probs[$0] == probs[$1] && $0 < $1) }
            var cum = 0.0
            var keep = 0
            for i in order {
                cum += probs[i]
                keep += 1
                if cum >= Double(p.topP) { break }
            }
            order = Array(order.prefix(keep))
        }
        let mass = order.reduce(0.0) { $0 + probs[$1] }
        var u = rng.unit() * mass
        for i in order {
            u -= probs[i]
            if u < 0 { return i }
        }
        return order.last ?? 0
    }

    /// log-softmax of one row, in double for stable sums.
    public static func logSoftmax(_ row: UnsafeBufferPointer<Float>) -> [Float] {
        var mx = -Float.infinity
        for v in row { mx = max(mx, v) }
        var s = 0.0
        for v in row { s += Foundation.exp(Double(v - mx)) }
        let lse = Double(mx) + Foundation.log(s)
        return row.map { Float(Double($0) - lse) }
    }

    /// log p(token) under one row of logits.
    public static func logProb(_ row: UnsafeBufferPointer<Float>, _ token: Int) -> Double {
        var mx = -Float.infinity
        for v in row { mx = max(mx, v) }
        var s = 0.0
        for v in row { s += Foundation.exp(Double(v - mx)) }
        return Double(row[token]) - (Double(mx) + Foundation.log(s))
    }
}
