import Foundation

/// The answer and text measures of the LLM-KICK tasks.
public enum TextMetrics {
    /// SQuAD normalization: lowercase, drop punctuation, drop the articles
    /// a/an/the, collapse whitespace.
    public static func squadNormalize(_ s: String) -> String {
        let lower = s.lowercased()
        let noPunct = String(lower.unicodeScalars.map { CharacterSet.punctuationCharacters.contains($0) || CharacterSet.symbols.contains($0) ? " " : Character($0) })
        return noPunct.split(whereSeparator: { $0.isWhitespace }).filter { !["a", "an", "the"].contains($0) }.joined(separator: " ")
    }

    /// The paper's factoid rule: lowercase and delete every space in both,
    /// hit when any gold is a substring of the generated text.
    public static func factoidHit(_ output: String, golds: [String]) -> Bool {
        let o = output.lowercased().filter { !$0.isWhitespace }
        return golds.contains { g in
            let gg = g.lowercased().filter { !$0.isWhitespace }
            return !gg.isEmpty && o.contains(gg)
        }
    }

    /// Normalized equality with any gold.
    /// A gold that normalizes to nothing ("🍐", "The") can never be matched:
    /// an empty output would otherwise equal it.
    public static func exactMatch(_ output: String, golds: [String]) -> Bool {
        let o = squadNormalize(output)
        return golds.contains { g in
            let n = squadNormalize(g)
            return !n.isEmpty && n == o
        }
    }

    /// Golds that leave nothing after SQuAD normalization: skipped by the
    /// SQuAD measures, and counted in the task manifest.
    public static func isEmptyAfterNormalization(_ gold: String) -> Bool { squadNormalize(gold).isEmpty }

    /// Items with a gold that normalization empties (such a gold never matches).
    public static func itemsWithGoldsEmptyAfterNormalization(_ items: [TaskItem]) -> Int {
        items.filter { $0.golds.contains(where: isEmptyAfterNormalization) }.count
    }

    /// icrqa's EM: after normalization the gold is contained in the
    /// prediction or the prediction in the gold (non-empty).
    public static func containmentMatch(_ output: String, golds: [String]) -> Bool {
        let o = squadNormalize(output)
        guard !o.isEmpty else { return false }
        return golds.contains { g in
            let n = squadNormalize(g)
            return !n.isEmpty && (o.contains(n) || n.contains(o))
        }
    }

    /// SQuAD token F1, the best over the golds.
    public static func tokenF1(_ output: String, golds: [String]) -> Double {
        let p = squadNormalize(output).split(separator: " ").map(String.init)
        var best = 0.0
        for g in golds {
            let t = squadNormalize(g).split(separator: " ").map(String.init)
            if t.isEmpty { continue }  // a gold of nothing matches nothing
            if p.isEmpty { continue }
            var counts: [String: Int] = [:]
            for w in t { counts[w, default: 0] += 1 }
            var common = 0
            for w in p where counts[w, default: 0] > 0 { counts[w]! -= 1; common += 1 }
            guard common > 0 else { continue }
            let prec = Double(common) / Double(p.count), rec = Double(common) / Double(t.count)
            best = max(best, 2 * prec * rec / (prec + rec))
        }
        return best
    }

    /// Lowercased alphanumeric words (ROUGE's default tokenization, no stemming).
    public static func words(_ s: String) -> [String] {
        s.lowercased().unicodeScalars.split(whereSeparator: { !CharacterSet.alphanumerics.contains($0) }).map { String(String.UnicodeScalarView($0)) }
    }

    static func ngrams(_ w: [String], _ n: Int) -> [String: Int] {
        var c: [String: Int] = [:]
        if w.count >= n { for i in 0...(w.count - n) { c[w[i..<i + n].joined(separator: " "), default: 0] += 1 } }
        return c
    }

    /// ROUGE-N F-measure.
    public static func rougeN(_ candidate: String, _ reference: String, n: Int) -> Double {
        let c = ngrams(words(candidate), n), r = ngrams(words(reference), n)
        let cn = c.values.reduce(0, +), rn = r.values.reduce(0, +)
        guard cn > 0, rn > 0 else { return 0 }
        var overlap = 0
        for (g, k) in c { overlap += min(k, r[g] ?? 0) }
        guard overlap > 0 else { return 0 }
        let p = Double(overlap) / Double(cn), rc = Double(overlap) / Double(rn)
        return 2 * p * rc / (p + rc)
    }

    /// ROUGE-L F-measure (longest common subsequence of words).
    public static func rougeL(_ candidate: String, _ reference: String) -> Double {
        let a = words(candidate), b = words(reference)
        guard !a.isEmpty, !b.isEmpty else { return 0 }
        var prev = [Int](repeating: 0, count: b.count + 1), cur = prev
        for i in 1...a.count {
            for j in 1...b.count { cur[j] = a[i - 1] == b[j - 1] ? prev[j - 1] + 1 : max(prev[j], cur[j - 1]) }
            swap(&prev, &cur)
        }
        let lcs = Double(prev[b.count])
        guard lcs > 0 else { return 0 }
        let p = lcs / Double(a.count), r = lcs / Double(b.count)
        return 2 * p * r / (p + r)
    }

    /// Distinct-n: unique n-grams over all n-grams of the text (0 for text shorter than n).
    public static func distinct(_ text: String, n: Int) -> Double {
        let g = ngrams(words(text), n)
        let total = g.values.reduce(0, +)
        return total == 0 ? 0 : Double(g.count) / Double(total)
    }

    /// Share of trigram occurrences that repeat an earlier trigram of the same text.
    public static func repeatedTrigramRate(_ text: String) -> Double {
        let g = ngrams(words(text), 3)
        let total = g.values.reduce(0, +)
        return total == 0 ? 0 : Double(g.values.reduce(0) { $0 + $1 - 1 }) / Double(total)
    }
}
