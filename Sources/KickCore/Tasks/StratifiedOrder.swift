import Foundation

/// The order in which a profile draws a task's items: within each stratum
/// (MMLU subject, summarization bucket, icrqa book) a seeded shuffle, then
/// round-robin across strata. A profile takes a prefix, so a smaller
/// profile's items are always a subset of a larger one's, and every stratum
/// is represented as evenly as the counts allow.
public enum StratifiedOrder {
    public static func shuffled<T>(_ a: [T], seed: UInt64) -> [T] {
        var rng = SeededRandom(seed: seed)
        var v = a
        for i in stride(from: v.count - 1, to: 0, by: -1) { v.swapAt(i, Int(rng.next() % UInt64(i + 1))) }
        return v
    }

    public static func order(_ items: [TaskItem], seed: UInt64) -> [TaskItem] {
        var strata: [String: [TaskItem]] = [:]
        for it in items { strata[it.subset, default: []].append(it) }
        let keys = strata.keys.sorted()
        let lists = keys.enumerated().map { k, key in shuffled(strata[key]!, seed: seed &+ UInt64(k) &* 0x9E37_79B9) }
        var out: [TaskItem] = []
        out.reserveCapacity(items.count)
        var r = 0
        while out.count < items.count {
            for l in lists where r < l.count { out.append(l[r]) }
            r += 1
        }
        return out
    }

    /// The first `n` of the order (all when nil).
    public static func sample(_ items: [TaskItem], n: Int?, seed: UInt64) -> [TaskItem] {
        let o = order(items, seed: seed)
        guard let n else { return o }
        return Array(o.prefix(n))
    }
}
