import Foundation
import Testing
@testable import KickCore

/// McNemar, the paired bootstrap and Holm against hand-computed cases.
@Suite struct PairedComparisonTests {
    @Test func mcnemarExactByHand() {
        // no discordant pair: nothing to test
        #expect(PairedComparison.mcnemarExact(lost: 0, gained: 0) == 1)
        // one flip: 2·P(X ≤ 0 | n=1) = 2·½ → 1
        #expect(PairedComparison.mcnemarExact(lost: 1, gained: 0) == 1)
        // 6 lost, 0 gained: 2·(½)^6 = 1/32
        #expect(abs(PairedComparison.mcnemarExact(lost: 6, gained: 0) - 1.0 / 32) < 1e-12)
        // 8 vs 2: 2·(1 + 10 + 45)/1024 = 112/1024
        #expect(abs(PairedComparison.mcnemarExact(lost: 8, gained: 2) - 112.0 / 1024) < 1e-12)
        // symmetric in its arguments
        #expect(PairedComparison.mcnemarExact(lost: 2, gained: 8) == PairedComparison.mcnemarExact(lost: 8, gained: 2))
        // large n stays finite and tiny
        let p = PairedComparison.mcnemarExact(lost: 2000, gained: 1000)
        #expect(p > 0 && p < 1e-30)
    }

    @Test func binaryTableAllEqualAndAllDiscordant() {
        let same = PairedComparison.binary(dense: [true, false, true], compressed: [true, false, true])
        #expect(same.flipsLost == 0 && same.flipsGained == 0 && same.p == 1 && same.meanDifference == 0)
        #expect(same.diffLow == 0 && same.diffHigh == 0)
        // every item flips from right to wrong: lost 10, p = 2/1024, the difference −1 exactly
        let lost = PairedComparison.binary(dense: Array(repeating: true, count: 10), compressed: Array(repeating: false, count: 10))
        #expect(lost.flipsLost == 10 && lost.flipsGained == 0)
        #expect(abs(lost.p - 2.0 / 1024) < 1e-12)
        #expect(lost.meanDifference == -1 && lost.diffLow == -1 && lost.diffHigh == -1)
        // all discordant both ways, balanced: no evidence
        let both = PairedComparison.binary(dense: [true, false, true, false], compressed: [false, true, false, true])
        #expect(both.flipsLost == 2 && both.flipsGained == 2 && both.p == 1 && both.meanDifference == 0)
    }

    @Test func pairedBootstrapCoversAKnownShift() {
        // compressed = dense − 0.1 ± small noise: the interval holds −0.1 and not 0
        var rng = SeededRandom(seed: 1)
        let dense = (0..<200).map { _ in rng.unit() }
        let comp = dense.map { $0 - 0.1 + (rng.unit() - 0.5) * 0.02 }
        let c = PairedComparison.continuous(dense: dense, compressed: comp)
        #expect(c.diffLow < -0.1 && c.diffHigh > -0.1 && c.diffHigh < 0)
        #expect(c.p < 0.001)
        // the same inputs give the same interval (fixed seed)
        #expect(PairedComparison.continuous(dense: dense, compressed: comp) == c)
        // identical outputs: a zero-width interval at 0, p = 1
        let z = PairedComparison.continuous(dense: dense, compressed: dense)
        #expect(z.diffLow == 0 && z.diffHigh == 0 && z.p == 1)
    }

    @Test func powerByHand() {
        // Connor: d = 0.3, δ = 0.1: (1.96·√0.3 + 0.8416·√0.29)² / 0.01 = 233.1 → 234
        #expect(PairedComparison.itemsNeeded(binaryDifference: -0.1, discordance: 0.3) == 234)
        // a difference larger than the discordance allows has no answer
        #expect(PairedComparison.itemsNeeded(binaryDifference: 0.6, discordance: 0.3) == nil)
        // means: ((1.96 + 0.8416) · 1 / 0.5)² = 31.4 → 32
        #expect(PairedComparison.itemsNeeded(meanDifference: 0.5, sd: 1) == 32)
        // the detectable difference inverts the binary formula at its n
        let dense = (0..<234).map { $0 < 100 }, compressed = (0..<234).map { $0 < 100 ? $0 >= 35 : $0 < 135 }  // 35 lost, 35 gained: d = 70/234
        let p = PairedComparison.binary(dense: dense, compressed: compressed)
        #expect(p.bothRight == 65 && p.flipsLost == 35 && p.flipsGained == 35 && p.bothWrong == 99)
        let δ = try! #require(p.detectableDifference)
        #expect(PairedComparison.itemsNeeded(binaryDifference: δ, discordance: p.discordance!)! <= 234)
        #expect(PairedComparison.itemsNeeded(binaryDifference: δ * 0.97, discordance: p.discordance!)! > 234)
    }

    @Test func holmByHand() {
        // sorted 0.01, 0.02, 0.04 → ×3, ×2, ×1 = 0.03, 0.04, 0.04 (monotone)
        let a = PairedComparison.holm([0.04, 0.01, 0.02])
        #expect(zip(a, [0.04, 0.03, 0.04]).allSatisfy { abs($0 - $1) < 1e-12 })
        #expect(PairedComparison.holm([0.5, 0.9]) == [1, 1])
        #expect(PairedComparison.holm([]) == [])
    }
}
