import Foundation
import Testing
@testable import KickCore
import KickTestSupport

/// Scorers on cases whose right answer is known, including the paper's edge cases.
@Suite struct ScorerTests {
    @Test func factoidSubstringRule() {
        // spaces are deleted on both sides: a gold with spaces matches run-together text and vice versa
        #expect(TextMetrics.factoidHit("It is NewYork City.", golds: ["New York"]))
        #expect(TextMetrics.factoidHit("new york", golds: ["NewYork"]))
        // any alias
        #expect(TextMetrics.factoidHit("Scorpio, I think", golds: ["Skorpio", "Scorpio"]))
        // the prediction containing the gold is a hit; the gold containing the prediction is not
        #expect(TextMetrics.factoidHit("The answer is Paris, France", golds: ["Paris"]))
        #expect(!TextMetrics.factoidHit("Par", golds: ["Paris"]))
        #expect(!TextMetrics.factoidHit("London", golds: ["Paris", ""]))
    }

    @Test func squadNormalizationAndEM() {
        #expect(TextMetrics.squadNormalize("The  Beatles!") == "beatles")
        #expect(TextMetrics.squadNormalize("an apple, a pear") == "apple pear")
        #expect(TextMetrics.exactMatch("the Beatles", golds: ["Beatles"]))  // "the" dropped
        #expect(!TextMetrics.exactMatch("The Beatles were great", golds: ["Beatles"]))
        // icrqa EM: containment either way after normalization
        #expect(TextMetrics.containmentMatch("The Beatles were great", golds: ["beatles"]))
        #expect(TextMetrics.containmentMatch("Catherine", golds: ["Catherine Hickson"]))
        #expect(!TextMetrics.containmentMatch("", golds: ["x"]))
        #expect(!TextMetrics.containmentMatch("the", golds: ["Hickson"]))
    }

    @Test func tokenF1() {
        #expect(TextMetrics.tokenF1("Paris", golds: ["Paris"]) == 1)
        // prediction "paris france" vs gold "paris": p = 1/2, r = 1 → F1 = 2/3
        #expect(abs(TextMetrics.tokenF1("Paris, France", golds: ["Paris"]) - 2.0 / 3) < 1e-12)
        #expect(TextMetrics.tokenF1("London", golds: ["Paris"]) == 0)
        // the best alias counts
        #expect(TextMetrics.tokenF1("Adolf Hitler", golds: ["Hitler", "Adolf Hitler"]) == 1)
    }

    @Test func rougeAndRepetition() {
        // "the cat sat" vs "the cat ran": 2 of 3 unigrams, 1 of 2 bigrams
        #expect(abs(TextMetrics.rougeN("the cat sat", "the cat ran", n: 1) - 2.0 / 3) < 1e-12)
        #expect(abs(TextMetrics.rougeN("the cat sat", "the cat ran", n: 2) - 0.5) < 1e-12)
        // LCS of "a b c d" and "a c d e" is "a c d": p = r = 3/4
        #expect(abs(TextMetrics.rougeL("a b c d", "a c d e") - 0.75) < 1e-12)
        #expect(TextMetrics.rougeL("", "a") == 0)
        #expect(TextMetrics.distinct("a a a a", n: 1) == 0.25)
        #expect(TextMetrics.distinct("a b a b", n: 2) == 2.0 / 3)
        // "x y z x y z": trigrams xyz, yzx, zxy, xyz → one repeat of four
        #expect(TextMetrics.repeatedTrigramRate("x y z x y z") == 0.25)
        #expect(TextMetrics.repeatedTrigramRate("one two") == 0)
    }

    @Test func confidenceIntervals() {
        let p = MetricSummary.proportion("acc", "all", hits: Array(repeating: true, count: 8) + Array(repeating: false, count: 2))
        #expect(p.value == 0.8 && p.n == 10)
        // Wilson 95% for 8/10: [0.490, 0.943]
        #expect(abs(p.ciLow - 0.4902) < 1e-3 && abs(p.ciHigh - 0.9433) < 1e-3)
        let m = MetricSummary.mean("f1", "all", [1, 2, 3, 4])
        #expect(m.value == 2.5 && abs(m.ciHigh - m.ciLow - 2 * 1.959964 * (5.0 / 3 / 4).squareRoot()) < 1e-9)
        #expect(MetricSummary.proportion("acc", "all", hits: []).value.isNaN)
    }

    @Test func configNames() throws {
        for name in ["magnitude-unstructured-30", "wanda-2of4-50", "sparsegpt-1of2-50", "sparsegpt-4of8-50", "gptq-w4g128", "gptq-w8g128", "sparsegpt-unstructured-50-w4"] {
            #expect(try CompressionSpec.parse(configName: name)?.configName == name)
        }
        #expect(try CompressionSpec.parse(configName: "dense") == nil)
        #expect(throws: KickError.self) { try CompressionSpec.parse(configName: "pruney-unstructured-50") }
        #expect(throws: KickError.self) { try CompressionSpec.parse(configName: "wanda-unstructured-150") }
        let d = ConfigDescription("wanda-2of4-50")
        #expect(d.method == "wanda" && d.pattern == "2:4" && d.level == 50)
        #expect(ConfigDescription("gptq-w4g128").bits == 4)
    }
}

/// icrqa's answer protocols: the paper's first line, or the first line that holds text.
@Suite struct AnswerProtocolTests {
    @Test func firstLineAndFirstNonEmptyLine() {
        #expect(ICRQATask.answer("\n Paris\nmore", .firstLine) == "")
        #expect(ICRQATask.answer("\n Paris\nmore", .firstNonEmptyLine) == "Paris")
        #expect(ICRQATask.answer("Rome \n", .firstLine) == "Rome")
        #expect(ICRQATask.answer("  \n\t\n", .firstNonEmptyLine) == "")
        #expect(ICRQATask.answer("", .chat) == "")
    }
}
