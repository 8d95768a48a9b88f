import Foundation

/// A compressed configuration against dense on the same items: both are
/// scored on identical items, so a paired test sees differences that two
/// independent intervals cannot.
public struct PairedComparison: Sendable, Equatable {
    /// items paired (present in both logs)
    public var n: Int
    /// binary verdicts: dense right and compressed wrong, and the reverse
    public var flipsLost: Int?
    public var flipsGained: Int?
    /// mean(compressed − dense) and its paired-bootstrap 95% interval
    public var meanDifference: Double
    public var diffLow: Double
    public var diffHigh: Double
    /// two-sided: exact McNemar for binary verdicts, paired bootstrap otherwise
    public var p: Double
    /// binary verdicts: items both got right (with n and the flips, the whole 2×2 table)
    public var bothRight: Int? = nil
    /// the per-item differences' standard deviation
    public var sdDifference: Double = .nan

    /// Binary verdicts: both wrong, the fourth cell of the 2×2 table.
    public var bothWrong: Int? { bothRight.map { n - $0 - (flipsLost ?? 0) - (flipsGained ?? 0) } }
    /// The share of items whose verdict flipped either way.
    public var discordance: Double? { flipsLost.map { Double($0 + (flipsGained ?? 0)) / Double(max(1, n)) } }

    public static let bootstrapResamples = 10_000
    public static let bootstrapSeed: UInt64 = 20_240_101

    /// Binary verdicts, paired by position.
    public static func binary(dense: [Bool], compressed: [Bool]) -> PairedComparison {
        precondition(dense.count == compressed.count)
        var lost = 0, gained = 0
        for (d, c) in zip(dense, compressed) where d != c { if d { lost += 1 } else { gained += 1 } }
        let diffs = zip(dense, compressed).map { Double($1 ? 1 : 0) - Double($0 ? 1 : 0) }
        let (lo, hi, _) = bootstrap(diffs)
        return PairedComparison(n: dense.count, flipsLost: lost, flipsGained: gained, meanDifference: mean(diffs),
                                diffLow: lo, diffHigh: hi, p: mcnemarExact(lost: lost, gained: gained),
                                bothRight: zip(dense, compressed).filter { $0 && $1 }.count, sdDifference: sd(diffs))
    }

    /// Continuous per-item values (F1, ROUGE, NLL per window), paired by position.
    public static func continuous(dense: [Double], compressed: [Double]) -> PairedComparison {
        precondition(dense.count == compressed.count)
        let diffs = zip(dense, compressed).map { $1 - $0 }
        let (lo, hi, p) = bootstrap(diffs)
        return PairedComparison(n: diffs.count, flipsLost: nil, flipsGained: nil, meanDifference: mean(diffs), diffLow: lo, diffHigh: hi, p: p,
                                sdDifference: sd(diffs))
    }

    /// Exact two-sided McNemar: the discordant pairs split as a fair coin
    /// would, p = min(1, 2·P(X ≤ min(b, c))) with X ~ Binomial(b + c, ½).
    public static func mcnemarExact(lost b: Int, gained c: Int) -> Double {
        let n = b + c
        guard n > 0 else { return 1 }
        let k = min(b, c)
        // log-space binomial terms: n can be in the thousands
        var logTerm = -Double(n) * log(2.0)  // i = 0: C(n,0)/2^n
        var tail = exp(logTerm)
        if k > 0 {
            for i in 1...k {
                logTerm += log(Double(n - i + 1)) - log(Double(i))
                tail += exp(logTerm)
            }
        }
        return min(1, 2 * tail)
    }

    static func mean(_ xs: [Double]) -> Double { xs.isEmpty ? .nan : xs.reduce(0, +) / Double(xs.count) }

    static func sd(_ xs: [Double]) -> Double {
        guard xs.count > 1 else { return .nan }
        let m = mean(xs)
        return (xs.reduce(0) { $0 + ($1 - m) * ($1 - m) } / Double(xs.count - 1)).squareRoot()
    }

    // MARK: power (two-sided α = 0.05, power 0.8)

    static let zAlpha = 1.959964, zBeta = 0.841621

    /// Items a paired test of binary verdicts needs to detect a difference
    /// `delta` in accuracy when a share `discordance` of items flip
    /// (Connor 1987's approximation for McNemar's test).
    public static func itemsNeeded(binaryDifference delta: Double, discordance d: Double) -> Int? {
        let δ = abs(delta)
        guard δ > 0, d > δ * δ else { return nil }
        let root = zAlpha * d.squareRoot() + zBeta * (d - δ * δ).squareRoot()
        return Int((root * root / (δ * δ)).rounded(.up))
    }

    /// Items a paired test of per-item numbers needs to detect a mean difference `delta`.
    public static func itemsNeeded(meanDifference delta: Double, sd: Double) -> Int? {
        guard abs(delta) > 0, sd.isFinite, sd > 0 else { return nil }
        let r = (zAlpha + zBeta) * sd / abs(delta)
        return Int((r * r).rounded(.up))
    }

    /// The smallest difference detectable with 80% power at these n and
    /// discordance (binary) or SD (numbers).
    public var detectableDifference: Double? {
        guard n > 0 else { return nil }
        if let d = discordance {
            guard d > 0 else { return nil }
            // the smallest δ whose needed n is at most this n (needed n falls as δ grows)
            var lo = 0.0, hi = d.squareRoot()
            for _ in 0..<60 {
                let mid = (lo + hi) / 2
                if let need = Self.itemsNeeded(binaryDifference: mid, discordance: d), need <= n { hi = mid } else { lo = mid }
            }
            return hi
        }
        guard sdDifference.isFinite, sdDifference > 0 else { return nil }
        return (Self.zAlpha + Self.zBeta) * sdDifference / Double(n).squareRoot()
    }

    /// Items this comparison would need for its observed difference to be detected with 80% power.
    public var itemsNeededForObservedDifference: Int? {
        if let d = discordance { return Self.itemsNeeded(binaryDifference: meanDifference, discordance: d) }
        return Self.itemsNeeded(meanDifference: meanDifference, sd: sdDifference)
    }

    /// Percentile interval of the mean over resamples with replacement
    /// (fixed seed), and the two-sided bootstrap p of a zero mean.
    static func bootstrap(_ diffs: [Double]) -> (low: Double, high: Double, p: Double) {
        let n = diffs.count
        guard n > 0 else { return (.nan, .nan, .nan) }
        if diffs.allSatisfy({ $0 == diffs[0] }) { return (diffs[0], diffs[0], diffs[0] == 0 ? 1 : 0) }
        var rng = SeededRandom(seed: bootstrapSeed)
        var means = [Double](repeating: 0, count: bootstrapResamples)
        diffs.withUnsafeBufferPointer { d in
            for r in 0..<bootstrapResamples {
                var s = 0.0
                for _ in 0..<n { s += d[Int(rng.next() % UInt64(n))] }
                means[r] = s / Double(n)
            }
        }
        means.sort()
        let lo = means[Int(0.025 * Double(bootstrapResamples))], hi = means[Int(0.975 * Double(bootstrapResamples)) - 1]
        let below = means.filter { $0 <= 0 }.count, above = means.filter { $0 >= 0 }.count
        let p = min(1, 2 * Double(min(below, above)) / Double(bootstrapResamples))
        return (lo, hi, p)
    }

    /// Holm's step-down adjustment of a family of p-values (here: the
    /// configurations of one task, metric and subset), in the input order.
    public static func holm(_ ps: [Double]) -> [Double] {
        let m = ps.count
        let order = ps.indices.sorted { ps[$0] < ps[$1] }
        var adjusted = [Double](repeating: 1, count: m)
        var running = 0.0
        for (rank, i) in order.enumerated() {
            running = max(running, min(1, Double(m - rank) * ps[i]))
            adjusted[i] = running
        }
        return adjusted
    }
}
