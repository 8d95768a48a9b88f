import Testing
@testable import KickCore
import KickTestSupport

@Suite struct PruningMaskTests {
    /// Selection gives exactly the sorted value, ties and zeros included,
    /// at every k of small arrays and at scattered k of larger ones.
    @Test func kthSmallestIsTheSortedValue() {
        var rng = SeededRandom(seed: 9)
        for n in [1, 2, 3, 7, 64, 1000, 4099] {
            for distinct in [2, 17, 1 << 20] {
                let v = (0..<n).map { _ in Float(rng.next() % UInt64(distinct)) / 8 }
                let sorted = v.sorted()
                let ks = n <= 64 ? Array(0..<n) : [0, 1, n / 3, n / 2, n - 2, n - 1]
                for k in ks { #expect(PruningMask.kthSmallest(v, k) == sorted[k], "n \(n) distinct \(distinct) k \(k)") }
            }
        }
        // already sorted, reversed, all equal: the shapes that defeat naive pivots
        let up = (0..<5000).map(Float.init)
        #expect(PruningMask.kthSmallest(up, 2500) == 2500 && PruningMask.kthSmallest(up.reversed(), 17) == 17)
        #expect(PruningMask.kthSmallest([Float](repeating: 0.5, count: 3000), 1234) == 0.5)
    }
}
