import Foundation
import Testing
@testable import KickCore
import KickTestSupport

/// kick-report's tables and findings from hand-made scores.
@Suite struct ReportTests {
    static func scores(_ config: String, _ task: String, _ metrics: [(String, String, Double)], n: Int = 100) -> TaskScores {
        TaskScores(config: config, task: task, model: "m", items: n, itemsInTaskFile: n, notes: [],
                   metrics: metrics.map { MetricSummary(metric: $0.0, subset: $0.1, value: $0.2, n: n, ciLow: $0.2 - 0.01, ciHigh: $0.2 + 0.01, interval: "test") },
                   secondsLogged: 10, tokensGenerated: 1000, tokensPerSecond: 100)
    }

    @Test func csvFieldsFollowRFC4180() {
        #expect(ResultRow.csvField("plain") == "plain")
        #expect(ResultRow.csvField("a,b") == "\"a,b\"")
        #expect(ResultRow.csvField("say \"hi\"") == "\"say \"\"hi\"\"\"")
        #expect(ResultRow.csvField("two\nlines") == "\"two\nlines\"")
        #expect(ResultRow.csvField("cr\r\nlf") == "\"cr\r\nlf\"")
        var r = ResultRow(model: "m", config: "dense", method: "dense", pattern: "none", level: "", bits: "", task: "instruct",
                          subset: "writing\nroleplay", metric: "distinct1", value: 0.5, n: 2, ciLow: 0.4, ciHigh: 0.6)
        #expect(r.csv == "m,dense,dense,none,,,instruct,\"writing\nroleplay\",distinct1,0.5,2,0.4,0.6,,,,,,")
        r.subset = "all"
        #expect(!r.csv.contains("\""))
    }

    @Test func tablesCSVAndFindings() throws {
        let work = tempDir("report") + "/m"
        let configs = ["dense", "sparsegpt-unstructured-30", "sparsegpt-unstructured-50", "gptq-w4g128"]
        let factoid: [String: Double] = ["dense": 0.60, "sparsegpt-unstructured-30": 0.58, "sparsegpt-unstructured-50": 0.20, "gptq-w4g128": 0.57]
        let ppl: [String: Double] = ["dense": 10, "sparsegpt-unstructured-30": 11, "sparsegpt-unstructured-50": 13, "gptq-w4g128": 10.5]
        for c in configs {
            try Self.scores(c, "factoid", [("substring_hit", "all", factoid[c]!)]).write(to: "\(work)/infer/\(c)/factoid.scores.json")
            // gptq's perplexity was never run
            if c != "gptq-w4g128" { try Self.scores(c, "perplexity", [("perplexity", "all", ppl[c]!)]).write(to: "\(work)/infer/\(c)/perplexity.scores.json") }
        }
        let b = ReportBuilder(work: work, outDir: work + "/report", configs: configs.reversed(), model: "m")
        #expect(b.configs == configs)  // dense first, levels in order, GPTQ last
        let l = try b.load()
        let rows = b.rows(l)
        #expect(rows.count == 7)
        let r = rows.first { $0.config == "sparsegpt-unstructured-50" && $0.task == "factoid" }!
        #expect(r.method == "sparsegpt" && r.pattern == "unstructured" && r.level == "50" && r.bits == "" && r.value == 0.2 && r.n == 100)
        // no logs: no paired columns
        #expect(r.csv == "m,sparsegpt-unstructured-50,sparsegpt,unstructured,50,,factoid,all,substring_hit,0.2,100,0.19,0.21,,,,,,")
        let md = b.markdown(l, plots: [])
        #expect(md.contains("| sparsegpt-unstructured-50 | 0.200 (−0.400) |"))
        #expect(md.contains("| gptq-w4g128 | 0.570 (−0.030) | — | — | not run |"))  // missing, never zero
        #expect(md.contains("sparsegpt falls below 90% of dense at 50% (0.200 vs 0.600), where perplexity is 1.30× dense's"))
        #expect(md.contains("gptq-w4g128 keeps 95% of dense"))
        #expect(md.contains("not run"))
    }

    /// Logs of the same items under dense and two configurations: the
    /// paired columns, Holm over the two, and the results.md markers.
    @Test func pairedWithDenseFromTheLogs() throws {
        let work = tempDir("report-paired") + "/m"
        let configs = ["dense", "wanda-unstructured-30", "wanda-unstructured-70"]
        // 20 items: 30% keeps every verdict; 70% loses 12 of dense's 14 hits and gains none
        let hits: [String: [Bool]] = [
            "dense": (0..<20).map { $0 < 14 },
            "wanda-unstructured-30": (0..<20).map { $0 < 14 },
            "wanda-unstructured-70": (0..<20).map { $0 < 2 },
        ]
        for c in configs {
            let log = try TaskLog<FactoidTask.Record>(path: "\(work)/infer/\(c)/factoid.jsonl")
            for i in 0..<20 {
                let hit = hits[c]![i]
                try log.append(FactoidTask.Record(id: "q\(i)", subset: "all", golds: ["x"], prompt: "Q\(i)?", output: hit ? "x" : "y",
                                                  verdicts: .init(substringHit: hit, exactMatch: hit, f1: hit ? 1.0 : 0.25),
                                                  tokens: .init(prompt: 3, output: 1), finish: "eos", seconds: 0))
            }
            let n = Double(hits[c]!.filter { $0 }.count) / 20
            try Self.scores(c, "factoid", [("substring_hit", "all", n), ("f1", "all", n)]).write(to: "\(work)/infer/\(c)/factoid.scores.json")
        }
        let b = ReportBuilder(work: work, outDir: work + "/report", configs: configs, model: "m")
        let l = try b.load()
        let same = try #require(l.paired["wanda-unstructured-30"]?["factoid"]?["all|substring_hit"])
        #expect(same.flipsLost == 0 && same.flipsGained == 0 && same.p == 1 && same.n == 20)
        let lost = try #require(l.paired["wanda-unstructured-70"]?["factoid"]?["all|substring_hit"])
        #expect(lost.flipsLost == 12 && lost.flipsGained == 0)
        #expect(abs(lost.p - 2 * pow(0.5, 12)) < 1e-12)
        // Holm over two configurations: the smaller p doubled
        #expect(abs(l.pHolm["wanda-unstructured-70"]!["factoid"]!["all|substring_hit"]! - 4 * pow(0.5, 12)) < 1e-12)
        let f1 = try #require(l.paired["wanda-unstructured-70"]?["factoid"]?["all|f1"])
        #expect(abs(f1.meanDifference - (-0.45)) < 1e-12 && f1.diffHigh < 0 && f1.flipsLost == nil)
        let row = b.rows(l).first { $0.config == "wanda-unstructured-70" && $0.metric == "substring_hit" }!
        #expect(row.csv.contains(",0.1,100,0.09,0.11,12,0,0.000488281,0.00097656") && row.csv.hasSuffix(",-0.8,-0.4"))
        let md = b.markdown(l, plots: [])
        #expect(md.contains("| wanda-unstructured-70 | 0.100 (−0.600)* |"))
        #expect(md.contains("| wanda-unstructured-30 | 0.700 (+0.000) |"))
        #expect(md.contains("## Paired with dense"))
        #expect(md.contains("| wanda-unstructured-70 | 20 | 2 | 12 | 0 | 6 |"))  // both right, lost, gained, both wrong
    }

    /// MMLU logs where Wanda 30% loses 20 of dense's 60 right answers at
    /// perplexity 1.1× dense's, and 2:4 loses more than unstructured 50%:
    /// claims 1–3 hold; GPTQ loses nothing against a larger pruned model.
    @Test func claimsCarryVerdictsFromPairedEvidence() throws {
        let work = tempDir("report-claims") + "/m"
        let right: [String: (Int) -> Bool] = [
            "dense": { $0 < 60 }, "wanda-unstructured-30": { $0 < 40 }, "wanda-unstructured-50": { $0 < 40 },
            "wanda-2of4-50": { $0 < 10 }, "gptq-w4g128": { $0 < 60 },
        ]
        let ppl: [String: Double] = ["dense": 10, "wanda-unstructured-30": 11, "wanda-unstructured-50": 14, "wanda-2of4-50": 30, "gptq-w4g128": 10.2]
        for (c, r) in right {
            let log = try TaskLog<MMLUTask.Record>(path: "\(work)/infer/\(c)/mmlu.jsonl")
            for i in 0..<100 {
                try log.append(MMLUTask.Record(id: "q\(i)", subset: "anatomy", group: "Other", golds: ["A"], prompt: "p", shots: 5, output: " A",
                                               predictionGenerate: "A", predictionLoglik: r(i) ? "A" : "B", loglik: [:],
                                               verdicts: .init(correctGenerate: r(i), correctLoglik: r(i)), tokens: .init(prompt: 9, output: 1),
                                               prefixComputed: false, seconds: 0))
            }
            let acc = Double((0..<100).filter(r).count) / 100
            try Self.scores(c, "mmlu", [("correct_loglik", "all", acc)]).write(to: "\(work)/infer/\(c)/mmlu.scores.json")
            try Self.scores(c, "perplexity", [("perplexity", "all", ppl[c]!)]).write(to: "\(work)/infer/\(c)/perplexity.scores.json")
        }
        // checkpoint sizes: GPTQ 4-bit about the size of the 2:4 one
        for (c, mb) in ["dense": 200, "wanda-unstructured-30": 150, "wanda-unstructured-50": 110, "wanda-2of4-50": 60, "gptq-w4g128": 56] {
            try AtomicFile.write(Data(count: mb * 1000), to: "\(work)/compress/\(c)/model.kick")
        }
        let b = ReportBuilder(work: work, outDir: work + "/report", configs: Array(right.keys), model: "m")
        let l = try b.load()
        let check = try b.claimCheck(l)
        #expect(check.floors.isEmpty)
        #expect(check.claims.map(\.verdict) == [.holds, .holds, .holds, .holds, .cannotTell])
        #expect(check.claims[0].configs == ["wanda-unstructured-30", "wanda-unstructured-50"])  // perplexity 1.1× and 1.4× dense
        #expect(check.claims[3].configs == ["gptq-w4g128", "wanda-2of4-50"])
        let md = b.markdown(l, plots: [])
        #expect(md.contains("2. **SparseGPT and Wanda at 25–30% sparsity already hurt knowledge tasks** — **holds**"))
        #expect(md.contains("Smallest drop a paired test detects here"))
        #expect(md.contains("| config | n | both right | lost | gained | both wrong |"))
    }
}
