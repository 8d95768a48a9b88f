import Foundation

/// The paper's claims, each judged on this run: the configurations it rests
/// on, the paired evidence, and a verdict. A verdict needs a significant
/// paired difference (p < 0.05 after Holm over the claim's comparisons);
/// "does not hold" needs the opposite difference, or, for "hurts" claims,
/// intervals that rule out a drop of a tenth of dense's score; anything else
/// is "cannot tell", with the items a difference of the size seen would need.
public struct ClaimCheck: Sendable {
    public enum Verdict: String, Sendable { case holds, doesNotHold = "does not hold", cannotTell = "cannot tell" }

    public struct Claim: Sendable {
        public var statement: String
        public var configs: [String]
        public var evidence: [String]
        public var verdict: Verdict
        public var reason: String
    }

    public var claims: [Claim]
    /// Tasks whose dense score is at the floor for this model, with why.
    public var floors: [String: String]
}

extension ReportBuilder {
    static let knowledgeTasks = [FactoidTask.name, MMLUTask.name]
    /// A drop smaller than this share of dense's score counts as "no drop".
    static let equivalenceShare = 0.1

    /// Why a task's dense score cannot show a loss on this model, or nil.
    func floorReason(_ l: Loaded, _ task: String) -> String? {
        guard let h = headline(task), h.isAbility, let d = value(l, "dense", task, h.metric, h.subset), !d.value.isNaN else { return nil }
        if task == MMLUTask.name, d.ciLow <= 0.25 {
            return String(format: "dense's MMLU accuracy %.3f [%.3f, %.3f] is within chance (0.25)", d.value, d.ciLow, d.ciHigh)
        }
        if d.value < 0.05 { return String(format: "dense scores %.3f on %@: too few right answers to lose", d.value, h.label) }
        return nil
    }

    func pplRatio(_ l: Loaded, _ c: String) -> Double? {
        guard let p = value(l, c, PerplexityTask.name, "perplexity", "all")?.value, let d = value(l, "dense", PerplexityTask.name, "perplexity", "all")?.value, d > 0 else { return nil }
        return p / d
    }

    func describe(_ p: PairedComparison, _ a: String, _ b: String, label: String, pAdjusted: Double?) -> String {
        var s = String(format: "%@ vs %@, %@: %+.3f [%+.3f, %+.3f]", b, a, label, p.meanDifference, p.diffLow, p.diffHigh)
        if let lost = p.flipsLost, let gained = p.flipsGained { s += " (\(lost) lost, \(gained) gained of \(p.n))" } else { s += " (n \(p.n))" }
        let q = pAdjusted ?? p.p
        // a bootstrap p of 0 means no resample of 10,000 crossed zero
        s += q == 0 ? ", p (Holm) < 0.0001" : String(format: ", p (Holm) %.3g", q)
        return s
    }

    struct Comparison {
        var base: String, other: String, task: String
        var headline: TaskHeadline
        var p: PairedComparison
        var pHolm = 1.0
        /// other is worse than base (in the task's direction)
        var worse: Bool { headline.higherIsBetter ? p.meanDifference < 0 : p.meanDifference > 0 }
        var significant: Bool { pHolm < 0.05 }
    }

    /// Comparisons of `other` against `base` on `tasks`, Holm-adjusted together.
    func comparisons(_ pairs: [(base: String, other: String)], tasks: [String]) throws -> [Comparison] {
        var out: [Comparison] = []
        for (a, b) in pairs {
            for t in tasks {
                guard let h = pairedHeadline(t), let p = try paired(task: t, base: a, other: b)?[h.key], p.n > 0 else { continue }
                out.append(Comparison(base: a, other: b, task: t, headline: h, p: p))
            }
        }
        for (i, p) in PairedComparison.holm(out.map(\.p.p)).enumerated() { out[i].pHolm = p }
        return out
    }

    /// "holds" when some comparison shows `other` significantly worse (better when
    /// `claimWorse` is false) and none the reverse; the reverse is "does not hold".
    func directional(_ cs: [Comparison], claimWorse: Bool) -> (ClaimCheck.Verdict, String) {
        let pro = cs.filter { $0.significant && $0.worse == claimWorse }, con = cs.filter { $0.significant && $0.worse != claimWorse }
        if !pro.isEmpty && con.isEmpty { return (.holds, "\(pro.count) of \(cs.count) comparisons significant in the claim's direction, none against") }
        if !con.isEmpty && pro.isEmpty { return (.doesNotHold, "\(con.count) of \(cs.count) comparisons significant against the claim, none for it") }
        if !pro.isEmpty { return (.cannotTell, "significant differences both ways (\(pro.count) for, \(con.count) against)") }
        return (.cannotTell, "no difference significant" + neededNote(cs))
    }

    /// "; the largest difference seen (…) would need about N items".
    func neededNote(_ cs: [Comparison]) -> String {
        guard let big = cs.max(by: { abs($0.p.meanDifference) < abs($1.p.meanDifference) }), big.p.meanDifference != 0 else { return "" }
        let need = big.p.itemsNeededForObservedDifference.map { "about \($0) items" } ?? "more items than any profile runs"
        return String(format: "; the largest difference seen (%+.3f, %@ on %@) would need %@ for 80%% power", big.p.meanDifference, big.other, big.task, need)
    }

    /// "Hurts" claims: holds on a significant drop against dense; does not
    /// hold when every interval rules out a drop of a tenth of dense's score.
    func hurts(_ l: Loaded, _ cs: [Comparison]) -> (ClaimCheck.Verdict, String) {
        let drops = cs.filter { $0.significant && $0.worse }
        if !drops.isEmpty { return (.holds, "\(drops.count) of \(cs.count) comparisons show a significant drop") }
        let ruledOut = cs.allSatisfy { c in
            guard let d = value(l, "dense", c.task, c.headline.metric, c.headline.subset)?.value else { return false }
            return c.p.diffLow > -Self.equivalenceShare * abs(d)
        }
        if ruledOut && !cs.isEmpty { return (.doesNotHold, "every interval rules out a drop of \(Int(Self.equivalenceShare * 100))% of dense's score") }
        return (.cannotTell, "no drop significant" + neededNote(cs))
    }

    func claimCheck(_ l: Loaded) throws -> ClaimCheck {
        var floors: [String: String] = [:]
        for t in tasks { if let r = floorReason(l, t) { floors[t] = r } }
        let knowledge = Self.knowledgeTasks.filter { floors[$0] == nil && l.scores["dense"]?[$0] != nil }
        let desc = Dictionary(uniqueKeysWithValues: configs.map { ($0, ConfigDescription($0)) })
        let pruning = configs.filter { ["magnitude", "wanda", "sparsegpt"].contains(desc[$0]!.method) }
        var claims: [ClaimCheck.Claim] = []
        func claim(_ statement: String, _ cs: [Comparison], configs: [String], _ verdict: (ClaimCheck.Verdict, String), extra: [String] = []) {
            let ev = extra + cs.map { describe($0.p, $0.base, $0.other, label: $0.headline.label, pAdjusted: $0.pHolm) }
            claims.append(.init(statement: statement, configs: configs, evidence: ev, verdict: verdict.0, reason: verdict.1))
        }
        let floorNote = knowledge.isEmpty ? " (every knowledge task is at the floor for this model)" : ""

        // 1. knowledge fails before perplexity moves much
        let mild = pruning.filter { desc[$0]!.pattern == "unstructured" && (pplRatio(l, $0) ?? .infinity) <= 1.5 }
        let c1 = try comparisons(mild.map { ("dense", $0) }, tasks: knowledge)
        claim("Knowledge fails before perplexity moves much: pruned configurations whose perplexity stays within 1.5× dense's already lose on knowledge tasks",
              c1, configs: mild, mild.isEmpty ? (.cannotTell, "no pruned configuration kept perplexity within 1.5× dense's")
                  : knowledge.isEmpty ? (.cannotTell, "no knowledge task above the floor" + floorNote) : hurts(l, c1),
              extra: mild.map { String(format: "%@: perplexity %.2f× dense's", $0, pplRatio(l, $0) ?? .nan) })

        // 2. SparseGPT and Wanda at 25–30% already hurt knowledge tasks
        let low = pruning.filter { ["wanda", "sparsegpt"].contains(desc[$0]!.method) && desc[$0]!.pattern == "unstructured" && (25...30).contains(desc[$0]!.level ?? 0) }
        let c2 = try comparisons(low.map { ("dense", $0) }, tasks: knowledge)
        claim("SparseGPT and Wanda at 25–30% sparsity already hurt knowledge tasks", c2, configs: low,
              low.isEmpty ? (.cannotTell, "no Wanda or SparseGPT configuration at 25–30% was run")
                  : knowledge.isEmpty ? (.cannotTell, "no knowledge task above the floor" + floorNote) : hurts(l, c2))

        // 3. structured N:M is worse than unstructured at the same sparsity
        var nmPairs: [(base: String, other: String)] = []
        for c in pruning where desc[c]!.pattern.contains(":") {
            if let u = pruning.first(where: { desc[$0]!.method == desc[c]!.method && desc[$0]!.pattern == "unstructured" && desc[$0]!.level == desc[c]!.level }) {
                nmPairs.append((u, c))
            }
        }
        let abilityTasks = tasks.filter { floors[$0] == nil && (headline($0)?.isAbility ?? false) } + [PerplexityTask.name]
        let c3 = try comparisons(nmPairs, tasks: abilityTasks)
        claim("Structured N:M sparsity is worse than unstructured at the same sparsity", c3, configs: nmPairs.flatMap { [$0.base, $0.other] },
              nmPairs.isEmpty ? (.cannotTell, "no N:M configuration with an unstructured one of the same method and level") : directional(c3, claimWorse: true))

        // 4. quantization keeps knowledge better than pruning at equal size
        var qPairs: [(base: String, other: String)] = []
        for g in configs where desc[g]!.method == "gptq" {
            guard let bg = l.checkpointBytes[g] else { continue }
            let near = pruning.filter { c in l.checkpointBytes[c].map { Double($0) >= 0.8 * Double(bg) && Double($0) <= 1.25 * Double(bg) } ?? false }
            let chosen = near.isEmpty ? pruning.filter { l.checkpointBytes[$0] != nil }.min { abs(l.checkpointBytes[$0]! - bg) < abs(l.checkpointBytes[$1]! - bg) }.map { [$0] } ?? [] : near
            for p in chosen { qPairs.append((g, p)) }
        }
        let qTasks = knowledge.isEmpty ? [PerplexityTask.name] : knowledge
        let c4 = try comparisons(qPairs, tasks: qTasks)
        let sizes = Set(qPairs.flatMap { [$0.base, $0.other] }).sorted().compactMap { c in l.checkpointBytes[c].map { String(format: "%@ %.1f MB", c, Double($0) / 1e6) } }
        claim("Quantization (GPTQ) keeps knowledge better than pruning at about the same checkpoint size" + (knowledge.isEmpty ? " (judged on perplexity: every knowledge task is at the floor)" : ""),
              c4, configs: Set(qPairs.flatMap { [$0.base, $0.other] }).sorted(),
              qPairs.isEmpty ? (.cannotTell, "no GPTQ configuration with a pruned one of comparable size") : directional(c4, claimWorse: true),
              extra: sizes.isEmpty ? [] : ["checkpoint sizes: " + sizes.joined(separator: ", ")])

        // 5. in-context retrieval survives compression better than closed-book recall
        var forClaim = 0, against = 0
        var ev5: [String] = []
        let compressed = configs.filter { $0 != "dense" }
        let openKey = "open|exact_match", closedKey = "closed|exact_match"
        let denseOpen = value(l, "dense", ICRQATask.name, "exact_match", "open")?.value, denseClosed = value(l, "dense", ICRQATask.name, "exact_match", "closed")?.value
        for c in compressed {
            guard let po = l.paired[c]?[ICRQATask.name]?[openKey], let pc = l.paired[c]?[ICRQATask.name]?[closedKey] else { continue }
            let so = (l.pHolm[c]?[ICRQATask.name]?[openKey] ?? 1) < 0.05 && po.meanDifference < 0
            let sc = (l.pHolm[c]?[ICRQATask.name]?[closedKey] ?? 1) < 0.05 && pc.meanDifference < 0
            if sc && !so { forClaim += 1 }
            if so && !sc { against += 1 }
            ev5.append(String(format: "%@: open book %+.3f (p Holm %.3g), closed book %+.3f (p Holm %.3g)", c, po.meanDifference,
                              l.pHolm[c]?[ICRQATask.name]?[openKey] ?? po.p, pc.meanDifference, l.pHolm[c]?[ICRQATask.name]?[closedKey] ?? pc.p))
        }
        var v5: (ClaimCheck.Verdict, String)
        if ev5.isEmpty { v5 = (.cannotTell, "icrqa was not run with dense") }
        else if forClaim > 0 && against == 0 { v5 = (.holds, "\(forClaim) configurations lose closed-book answers significantly while keeping open-book ones; none the reverse") }
        else if against > 0 && forClaim == 0 { v5 = (.doesNotHold, "\(against) configurations lose open-book answers significantly while keeping closed-book ones; none the reverse") }
        else { v5 = (.cannotTell, "no configuration separates the two (\(forClaim) for, \(against) against)") }
        if let d = denseClosed, d < 0.05 { v5 = (.cannotTell, String(format: "closed-book EM is at the floor for dense (%.3f)", d)) }
        claims.append(.init(statement: "In-context retrieval (open book) survives compression better than closed-book recall", configs: compressed,
                            evidence: [String(format: "dense: open-book EM %.3f, closed-book EM %.3f", denseOpen ?? .nan, denseClosed ?? .nan)] + ev5,
                            verdict: v5.0, reason: v5.1))
        return ClaimCheck(claims: claims, floors: floors)
    }

    /// The smallest drop a paired test detects with 80% power on each task,
    /// from this run's n and discordance (median over configurations).
    func detectableDrops(_ l: Loaded) -> [String] {
        var out: [String] = []
        for t in tasks {
            guard let h = pairedHeadline(t) else { continue }
            let ps = configs.compactMap { l.paired[$0]?[t]?[h.key] }
            let ds = ps.compactMap(\.detectableDifference).sorted()
            guard !ds.isEmpty, let n = ps.map(\.n).max() else { continue }
            let disc = ps.compactMap(\.discordance).sorted()
            let d = ds[ds.count / 2]
            out.append(String(format: "%@ %.3f (n %d%@)", h.label, d, n, disc.isEmpty ? "" : String(format: ", %.0f%% of items flip", 100 * disc[disc.count / 2])))
        }
        return out
    }

    func claimsMarkdown(_ l: Loaded) -> String {
        guard let check = try? claimCheck(l) else { return "" }
        var md = ""
        for t in tasks { if let f = check.floors[t] { md += "- **\(t) is at the floor for this model**: \(f). Its accuracy cannot show a loss; read its flips and agreement with dense instead (below).\n" } }
        if !check.floors.isEmpty { md += "\n" }
        for (i, c) in check.claims.enumerated() {
            md += "\(i + 1). **\(c.statement)** — **\(c.verdict.rawValue)**: \(c.reason).\n"
            for e in c.evidence { md += "   - \(e)\n" }
        }
        return md
    }
}
