import Foundation

/// kick-report: reads every configuration's scores under work/<MODEL>/ and
/// writes results.csv, results.md and the plots (gnuplot, from data files
/// the report writes). Missing pieces are shown as missing, never as zero.
public struct ReportBuilder {
    public let work: String
    public let outDir: String
    public let configs: [String]
    public let registry: TaskRegistry
    public var tasks: [String] { registry.names }
    public var model: String

    public init(work: String, outDir: String, configs: [String], model: String, registry: TaskRegistry = .standard) {
        self.work = work
        self.outDir = outDir
        self.configs = configs.sorted { ConfigDescription($0).sortKey < ConfigDescription($1).sortKey }
        self.model = model
        self.registry = registry
    }

    /// The headline of each task, by name.
    func headline(_ task: String) -> TaskHeadline? { registry.tasks.first { $0.name == task }?.headline }

    /// The per-item headline each task is paired with dense on, by name.
    func pairedHeadline(_ task: String) -> TaskHeadline? { registry.tasks.first { $0.name == task }?.pairedHeadline }

    public struct Loaded {
        public var scores: [String: [String: TaskScores]] = [:]   // config → task → scores
        public var checkpointBytes: [String: Int] = [:]
        public var compressSeconds: [String: Double] = [:]
        /// config → `kick-infer bench` on its checkpoint (make's cost stage)
        public var speed: [String: EngineBenchmark.Result] = [:]
        /// config → task → "subset|metric" → paired comparison with dense
        public var paired: [String: [String: [String: PairedComparison]]] = [:]
        /// the same, Holm-adjusted over the configurations of each task, subset and metric
        public var pHolm: [String: [String: [String: Double]]] = [:]
    }

    /// Every configuration's scores. An absent scores file is "not run"; one
    /// that is there but malformed is an error naming it, never a silent gap.
    public func load() throws -> Loaded {
        var l = Loaded()
        for c in configs {
            for t in tasks {
                let p = "\(work)/infer/\(c)/\(t).scores.json"
                guard FileManager.default.fileExists(atPath: p) else { continue }
                l.scores[c, default: [:]][t] = try TaskScores.read(path: p)
            }
            let ck = "\(work)/compress/\(c)/model.kick"
            if let a = try? FileManager.default.attributesOfItem(atPath: ck), let n = a[.size] as? Int { l.checkpointBytes[c] = n }
            if FileManager.default.fileExists(atPath: ck + ".manifest.json") {
                l.compressSeconds[c] = try CompressManifest.read(path: ck + ".manifest.json").report.seconds
            }
            // a speed measured on an older checkpoint than the one there now is not shown
            let sp = "\(work)/cost/\(c).json"
            func modified(_ p: String) -> Date? { (try? FileManager.default.attributesOfItem(atPath: p))?[.modificationDate] as? Date }
            if let ms = modified(sp), (modified(ck).map { $0 <= ms } ?? true) {
                do {
                    l.speed[c] = try JSONDecoder().decode(EngineBenchmark.Result.self, from: Data(contentsOf: URL(fileURLWithPath: sp)))
                } catch {
                    throw KickError("not a kick-infer bench result: \(KickError.decoding(error))", file: sp, code: .malformed)
                }
            }
        }
        try pairWithDense(&l)
        return l
    }

    /// Per-item verdicts of each configuration against dense's on the same
    /// items (by id): exact McNemar for binary verdicts, a paired bootstrap
    /// for per-item numbers (F1, ROUGE, a window's mean NLL), per subset the
    /// scores report; then Holm over the configurations of a task.
    func pairWithDense(_ l: inout Loaded) throws {
        for t in registry.tasks { try pairWithDense(t, &l) }
    }

    func pairWithDense<T: KickTask>(_ task: T.Type, _ l: inout Loaded) throws {
        let t = T.name
        // dense's log once, against every configuration's
        guard let dense = try log(T.self, "dense") else { return }
        for c in configs where c != "dense" && l.scores[c]?[t] != nil {
            if let mine = try log(T.self, c) { l.paired[c, default: [:]][t] = Self.paired(T.self, base: dense, other: mine) }
        }
        // Holm over the configurations, per subset and metric
        let keys = Set(configs.flatMap { l.paired[$0]?[t]?.keys.map { $0 } ?? [] })
        for k in keys {
            let cs = configs.filter { l.paired[$0]?[t]?[k] != nil }
            let adjusted = PairedComparison.holm(cs.map { l.paired[$0]![t]![k]!.p })
            for (c, p) in zip(cs, adjusted) { l.pHolm[c, default: [:]][t, default: [:]][k] = p }
        }
    }

    /// A configuration's log of a task by id, or nil when it has none.
    func log<T: KickTask>(_ task: T.Type, _ config: String) throws -> [String: T.Record]? {
        let path = "\(work)/infer/\(config)/\(T.name).jsonl"
        return FileManager.default.fileExists(atPath: path) ? try TaskLog<T.Record>.read(path: path) : nil
    }

    /// `other` against `base` item by item, keyed "subset|metric": differences are other − base.
    static func paired<T: KickTask>(_ task: T.Type, base b: [String: T.Record], other o: [String: T.Record]) -> [String: PairedComparison] {
        var bools: [String: ([Bool], [Bool])] = [:], nums: [String: ([Double], [Double])] = [:]
        for id in o.keys.sorted() {
            guard let x = b[id], let y = o[id] else { continue }
            let vb = T.itemValues(x)
            for (key, v) in T.itemValues(y) {
                switch (v, vb[key]) {
                case (.bool(let a), .bool(let d)?): bools[key, default: ([], [])].0.append(d); bools[key, default: ([], [])].1.append(a)
                case (.number(let a), .number(let d)?): nums[key, default: ([], [])].0.append(d); nums[key, default: ([], [])].1.append(a)
                default: break
                }
            }
        }
        var out: [String: PairedComparison] = [:]
        for (k, v) in bools { out[k] = .binary(dense: v.0, compressed: v.1) }
        for (k, v) in nums { out[k] = .continuous(dense: v.0, compressed: v.1) }
        return out
    }

    /// Two configurations' logs compared on a task (nil when either is missing).
    func paired<T: KickTask>(_ task: T.Type, base: String, other: String) throws -> [String: PairedComparison]? {
        guard let b = try log(T.self, base), let o = try log(T.self, other) else { return nil }
        return Self.paired(T.self, base: b, other: o)
    }

    /// Two configurations compared on a task by name (see `paired`).
    func paired(task name: String, base: String, other: String) throws -> [String: PairedComparison]? {
        guard let t = registry.tasks.first(where: { $0.name == name }) else { return nil }
        return try paired(t, base: base, other: other)
    }

    public func rows(_ l: Loaded) -> [ResultRow] {
        var out: [ResultRow] = []
        for c in configs {
            let d = ConfigDescription(c)
            for t in tasks {
                guard let s = l.scores[c]?[t] else { continue }
                for m in s.metrics {
                    let key = m.subset + "|" + m.metric
                    out.append(ResultRow(model: model, config: c, method: d.method, pattern: d.pattern, level: d.level.map(String.init) ?? "",
                                         bits: d.bits.map(String.init) ?? "", task: t, subset: m.subset, metric: m.metric, value: m.value, n: m.n,
                                         ciLow: m.ciLow, ciHigh: m.ciHigh, paired: l.paired[c]?[t]?[key], pHolm: l.pHolm[c]?[t]?[key]))
                }
            }
        }
        return out
    }

    func value(_ l: Loaded, _ c: String, _ t: String, _ metric: String, _ subset: String) -> MetricSummary? {
        l.scores[c]?[t]?.metrics.first { $0.metric == metric && $0.subset == subset }
    }

    /// "0.412 (−0.083)" or "—" when not run.
    func cell(_ l: Loaded, _ c: String, _ t: String, _ metric: String, _ subset: String) -> String {
        guard let v = value(l, c, t, metric, subset), !v.value.isNaN else { return l.scores[c]?[t] == nil ? "not run" : "—" }
        let fmt = metric == "perplexity" ? "%.2f" : "%.3f"
        var s = String(format: fmt, v.value)
        if c != "dense", let d = value(l, "dense", t, metric, subset), !d.value.isNaN {
            let delta = v.value - d.value
            s += String(format: " (%@" + fmt + ")", delta >= 0 ? "+" : "−", abs(delta))
            if let p = l.pHolm[c]?[t]?[subset + "|" + metric], p < 0.05 { s += "*" }
        }
        return s
    }

    /// The headline metric of each task, paired with dense item by item.
    func pairedSection(_ l: Loaded) -> String {
        var md = "## Paired with dense\n\n"
        md += "Every configuration is scored on dense's items, so each is compared with dense item by item: for right/wrong verdicts the items dense got right and the configuration lost, those it gained, and an exact McNemar p; for per-item numbers a paired bootstrap (10,000 resamples, fixed seed) of the mean difference. "
        md += "p (Holm) corrects over the configurations of the task; a `*` in the tables marks a difference with p (Holm) < 0.05. Every metric and subset has these columns in results.csv.\n\n"
        var any = false
        for t in tasks {
            guard let h = pairedHeadline(t) else { continue }
            let key = h.key
            let cs = configs.filter { l.paired[$0]?[t]?[key] != nil }
            guard !cs.isEmpty else { continue }
            any = true
            md += "**\(h.label)**\(h.subset == "all" ? "" : " (\(h.subset))")\n\n| config | n | both right | lost | gained | both wrong | mean difference [95% CI] | p | p (Holm) |\n|---|---|---|---|---|---|---|---|---|\n"
            for c in cs {
                let p = l.paired[c]![t]![key]!
                let ph = l.pHolm[c]?[t]?[key] ?? .nan
                md += "| \(c) | \(p.n) | \(p.bothRight.map(String.init) ?? "—") | \(p.flipsLost.map(String.init) ?? "—") | \(p.flipsGained.map(String.init) ?? "—") | \(p.bothWrong.map(String.init) ?? "—") | "
                md += String(format: "%+.3f [%+.3f, %+.3f] | %.3g | %.3g%@ |\n", p.meanDifference, p.diffLow, p.diffHigh, p.p, ph, ph < 0.05 ? " *" : "")
            }
            md += "\n"
        }
        return any ? md : ""
    }

    /// A table of one task's metrics per configuration, with perplexity beside them.
    func table(_ l: Loaded, _ t: String, columns: [(String, String, String)]) -> String {
        let ppl = PerplexityTask.name
        var md = "| config | " + columns.map(\.0).joined(separator: " | ") + " | perplexity |\n"
        md += "|" + String(repeating: "---|", count: columns.count + 2) + "\n"
        for c in configs {
            md += "| \(c) | " + columns.map { cell(l, c, t, $0.1, $0.2) }.joined(separator: " | ") + " | " + cell(l, c, ppl, "perplexity", "all") + " |\n"
        }
        return md
    }

    func subsets(_ l: Loaded, _ t: String, metric: String, prefix: String) -> [String] {
        let all = Set(configs.flatMap { c in (l.scores[c]?[t]?.metrics ?? []).filter { $0.metric == metric && $0.subset.hasPrefix(prefix) && $0.subset != "all" }.map(\.subset) })
        return all.sorted()
    }

    public func markdown(_ l: Loaded, plots: [String]) -> String {
        var md = "# kick report: \(model)\n\n"
        md += "Configurations: \(configs.count). Each cell is the metric and, in brackets, its change against dense. "
        md += "\"not run\" marks a task not run for a configuration; \"—\" a metric that could not be measured (e.g. no dense run to compare with). "
        md += "95% confidence intervals and n for every number are in results.csv.\n\n"
        if let m = try? IngestedModel.read(path: "\(work)/ingest/model.json"), !m.note.isEmpty { md += "Model: \(m.note).\n\n" }
        let drops = detectableDrops(l)
        if !drops.isEmpty {
            md += "Smallest drop a paired test detects here (80% power, α = 0.05, from this run's n and how many items flip): " + drops.joined(separator: "; ") + ".\n\n"
        }
        md += "## What this shows\n\nThe paper's claims, each judged on this run (a difference counts at p < 0.05 after Holm's correction over the claim's comparisons):\n\n"
        md += claimsMarkdown(l) + "\n### Where each method falls below 90% of dense\n\n" + findings(l) + "\n"
        md += pairedSection(l)
        if !plots.isEmpty {
            md += "## Plots\n\n" + plots.map { "![\($0)](plots/\($0).svg)" }.joined(separator: "\n") + "\n\n"
        }
        md += registry.tasks.map { $0.reportSection(ReportTables(builder: self, loaded: l, task: $0.name)) }.joined(separator: "\n")
        let judged = configs.contains { c in tasks.contains { l.scores[c]?[$0]?.metrics.contains { $0.metric.hasPrefix("judge_") } == true } }
        md += judged ? "\nJudge ratings are in results.csv (metrics judge_*).\n" : "\nNo judge was configured (KICK_JUDGE_URL, KICK_JUDGE_MODEL, KICK_JUDGE_KEY): summaries and answers are not judged.\n"
        let emptyTasks = tasks.filter { t in configs.contains { value(l, $0, t, "empty_answer", "all") != nil } }
        if !emptyTasks.isEmpty {
            md += "\n## Empty answers\n\nThe share of items whose answer is empty (the model ended at once): a protocol artifact rather than knowledge, so a change here qualifies the task's score. "
            md += "icrqa counts the first line of the output; summarization the greedy summary; instruct an item with any empty turn.\n\n"
            md += "| config | " + emptyTasks.joined(separator: " | ") + " |\n|" + String(repeating: "---|", count: emptyTasks.count + 1) + "\n"
            for c in configs {
                md += "| \(c) | " + emptyTasks.map { cell(l, c, $0, "empty_answer", "all") }.joined(separator: " | ") + " |\n"
            }
        }
        md += "\n## Cost\n\nWhat each configuration buys beside what it loses: its checkpoint on disk, its weights as the engine holds them, "
        md += "and its speed in a fixed `kick-infer bench` run on its checkpoint (make's cost stage; BENCH=0 skips it).\n\n"
        md += "| config | checkpoint MB | vs dense | resident weight MB | weights held as | prefill tok/s | decode tok/s | decode vs dense | \(l.speed.values.first?.batch ?? 16)-seq decode tok/s | compress s |\n"
        md += "|---|---|---|---|---|---|---|---|---|---|\n"
        func f(_ v: Double?, _ fmt: String) -> String { v.map { String(format: fmt, $0) } ?? "—" }
        for c in configs {
            let r = (l.checkpointBytes[c], l.checkpointBytes["dense"])
            let ratio = r.0 != nil && r.1 != nil ? String(format: "%.3f", Double(r.0!) / Double(r.1!)) : "—"
            let sp = l.speed[c], dense = l.speed["dense"]
            let vsDense = sp.flatMap { s in dense.map { s.decodeTokensPerS / $0.decodeTokensPerS } }
            md += "| \(c) | \(f(l.checkpointBytes[c].map { Double($0) / 1e6 }, "%.1f")) | \(ratio) | \(f(sp?.weightMB, "%.1f")) | \(sp?.weights ?? "—") | "
            md += "\(f(sp?.prefillTokensPerS, "%.0f")) | \(f(sp?.decodeTokensPerS, "%.1f")) | \(f(vsDense, "%.2f×")) | \(f(sp?.batchDecodeTokensPerS, "%.0f")) | "
            md += "\(f(l.compressSeconds[c], "%.0f")) |\n"
        }
        if let s = l.speed.values.first {
            md += "\nprefill: one \(s.prefillTokens)-token prompt; decode: \(s.decodeTokens) greedy tokens of one sequence after it; \(s.batch)-seq decode: tokens per second of \(s.batch) sequences decoding together. "
            md += "One run on the machine that ran make (\(s.blasThreads) threads, kernel \(s.linearKernel)): compare configurations with each other, not with another machine's figures.\n"
        }
        md += "\nThroughput of each task's own run (tokens per second; generated tokens for generation tasks, prompt tokens for mmlu and perplexity):\n\n"
        md += "| config | " + tasks.map { "\($0) tok/s" }.joined(separator: " | ") + " |\n|" + String(repeating: "---|", count: tasks.count + 1) + "\n"
        for c in configs {
            md += "| \(c) | " + tasks.map { t in l.scores[c]?[t].map { String(format: "%.0f", $0.tokensPerSecond) } ?? "not run" }.joined(separator: " | ") + " |\n"
        }
        return md
    }

    /// Sentences computed from the numbers: where each method falls below
    /// 90% of dense on each task, and how perplexity moved by then.
    func findings(_ l: Loaded) -> String {
        var out = ""
        let methods = ["magnitude", "wanda", "sparsegpt"].filter { m in configs.contains { ConfigDescription($0).method == m } }
        for task in registry.tasks where task.headline.isAbility {
            let t = task.name, h = task.headline
            guard let dense = value(l, "dense", t, h.metric, h.subset)?.value, dense > 0 else { continue }
            var parts: [String] = []
            for m in methods {
                let levels = configs.filter { ConfigDescription($0).method == m && ConfigDescription($0).pattern == "unstructured" }
                guard !levels.isEmpty else { continue }
                if let c = levels.first(where: { (value(l, $0, t, h.metric, h.subset)?.value ?? .infinity) < 0.9 * dense }) {
                    let v = value(l, c, t, h.metric, h.subset)!
                    var s = String(format: "%@ falls below 90%% of dense at %d%% (%.3f vs %.3f", m, ConfigDescription(c).level ?? 0, v.value, dense)
                    // say when the sample cannot tell the two apart
                    if let d = value(l, "dense", t, h.metric, h.subset), v.ciHigh >= d.ciLow { s += ", within dense's 95% interval at n = \(v.n)" }
                    s += ")"
                    if let p = value(l, c, PerplexityTask.name, "perplexity", "all")?.value, let pd = value(l, "dense", PerplexityTask.name, "perplexity", "all")?.value {
                        s += String(format: ", where perplexity is %.2f× dense's", p / pd)
                    }
                    parts.append(s)
                } else {
                    parts.append("\(m) stays above 90% of dense at every level run (up to \(levels.compactMap { ConfigDescription($0).level }.max() ?? 0)%)")
                }
            }
            let nm = configs.filter { ConfigDescription($0).pattern.contains(":") }
            let nmBelow = nm.filter { (value(l, $0, t, h.metric, h.subset)?.value ?? .infinity) < 0.9 * dense }
            if !nm.isEmpty { parts.append("\(nmBelow.count) of \(nm.count) N:M configurations are below 90% of dense") }
            let q = configs.filter { ConfigDescription($0).method == "gptq" }
            for c in q {
                if let v = value(l, c, t, h.metric, h.subset)?.value { parts.append(String(format: "%@ keeps %.0f%% of dense", c, 100 * v / dense)) }
            }
            if !parts.isEmpty { out += "- **\(h.label)** (dense \(String(format: "%.3f", dense))): " + parts.joined(separator: "; ") + ".\n" }
        }
        if let pd = value(l, "dense", PerplexityTask.name, "perplexity", "all")?.value {
            var parts: [String] = []
            for m in methods {
                let levels = configs.filter { ConfigDescription($0).method == m && ConfigDescription($0).pattern == "unstructured" }
                let ratios = levels.compactMap { c in value(l, c, PerplexityTask.name, "perplexity", "all").map { String(format: "%.2f× at %d%%", $0.value / pd, ConfigDescription(c).level ?? 0) } }
                if !ratios.isEmpty { parts.append("\(m) " + ratios.joined(separator: ", ")) }
            }
            for c in configs where ConfigDescription(c).method == "gptq" {
                if let v = value(l, c, PerplexityTask.name, "perplexity", "all")?.value { parts.append(String(format: "%@ %.2f×", c, v / pd)) }
            }
            if !parts.isEmpty { out += String(format: "- **perplexity** (dense %.2f), as a multiple of dense's: ", pd) + parts.joined(separator: "; ") + ".\n" }
        }
        if out.isEmpty { out = "No compressed configuration with a dense reference has been scored yet.\n" }
        out += "\nThe item counts behind these figures are small in the quick and smoke profiles; read the confidence intervals in results.csv before drawing conclusions.\n"
        return out
    }
}

/// What a task's report section draws from: its tables, its subsets, and
/// the notes its scores carry.
public struct ReportTables {
    let builder: ReportBuilder
    let loaded: ReportBuilder.Loaded
    public let task: String

    /// One row per configuration: each column is (header, metric, subset), with perplexity last.
    public func table(_ columns: [(String, String, String)]) -> String { builder.table(loaded, task, columns: columns) }

    /// The subsets (other than "all") some configuration scored the metric on, by prefix.
    public func subsets(metric: String, prefix: String) -> [String] { builder.subsets(loaded, task, metric: metric, prefix: prefix) }

    /// Whether some configuration scored the metric on the subset.
    public func has(metric: String, subset: String) -> Bool { builder.configs.contains { builder.value(loaded, $0, task, metric, subset) != nil } }

    /// The first note of the task's scores that starts with `prefix`.
    public func note(startingWith prefix: String) -> String? {
        builder.configs.compactMap { loaded.scores[$0]?[task]?.notes.first { $0.hasPrefix(prefix) } }.first
    }
}
