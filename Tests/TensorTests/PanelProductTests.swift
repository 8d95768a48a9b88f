import Foundation
import Testing
@testable import KickCore

/// kick's own products and factorizations: right against float64 loops,
/// and the same bits with and without a thread team (what makes a
/// compressed checkpoint independent of the machine's thread count).
@Suite struct PanelProductTests {
    /// One team for the suite: a team lives as long as the process (its workers hold it).
    static let team = ThreadTeam(size: 2)

    func random(_ n: Int, seed: UInt64) -> [Float] {
        var rng = SeededRandom(seed: seed)
        return (0..<n).map { _ in Float(rng.unit() * 2 - 1) }
    }

    func relativeError(_ a: [Float], _ b: [Double]) -> Double {
        var num = 0.0, den = 0.0
        for (x, y) in zip(a, b) { num += (Double(x) - y) * (Double(x) - y); den += y * y }
        return (num / max(den, 1e-300)).squareRoot()
    }

    @Test(arguments: [(37, 45), (300, 20), (6, 96), (256, 50)])
    func gramIsXTransposeX(rows: Int, n: Int) {
        let x = random(rows * n, seed: UInt64(rows * 1000 + n))
        var want = [Double](repeating: 0, count: n * n)
        for t in 0..<rows { for i in 0..<n { for j in 0..<n { want[i * n + j] += Double(x[t * n + i]) * Double(x[t * n + j]) } } }
        var alone = [Float](repeating: .nan, count: n * n), shared = alone
        x.withUnsafeBufferPointer { xb in
            alone.withUnsafeMutableBufferPointer { PanelProduct.gram(rows: rows, n: n, x: xb.baseAddress!, ldx: n, g: $0.baseAddress!, ldg: n) }
            shared.withUnsafeMutableBufferPointer {
                PanelProduct.gram(rows: rows, n: n, x: xb.baseAddress!, ldx: n, g: $0.baseAddress!, ldg: n, team: Self.team)
            }
        }
        #expect(relativeError(alone, want) < 1e-6)
        #expect(alone == shared, "a team changed the bits")
        for i in 0..<n { for j in 0..<n { #expect(alone[i * n + j] == alone[j * n + i]) } }
    }

    @Test(arguments: [(1, 5, 3), (29, 33, 70), (64, 17, 128), (7, 130, 9)])
    func productsMatchFloat64(m: Int, n: Int, k: Int) {
        let a = random(m * k, seed: 1), bt = random(n * k, seed: 2), b = random(k * n, seed: 3), c0 = random(m * n, seed: 4)
        var wantT = [Double](repeating: 0, count: m * n), want = wantT
        for i in 0..<m { for j in 0..<n { for p in 0..<k {
            wantT[i * n + j] += Double(a[i * k + p]) * Double(bt[j * k + p])
            want[i * n + j] += Double(a[i * k + p]) * Double(b[p * n + j])
        } } }
        var outT = [Float](repeating: .nan, count: m * n), out = outT, sub = c0, subTeam = c0
        a.withUnsafeBufferPointer { ab in
            bt.withUnsafeBufferPointer { tb in
                outT.withUnsafeMutableBufferPointer {
                    PanelProduct.multiplyTransposed(m: m, n: n, k: k, a: ab.baseAddress!, lda: k, b: tb.baseAddress!, ldb: k, c: $0.baseAddress!, ldc: n)
                }
            }
            b.withUnsafeBufferPointer { bb in
                out.withUnsafeMutableBufferPointer {
                    PanelProduct.multiply(m: m, n: n, k: k, a: ab.baseAddress!, lda: k, b: bb.baseAddress!, ldb: n, c: $0.baseAddress!, ldc: n)
                }
                sub.withUnsafeMutableBufferPointer {
                    PanelProduct.multiply(m: m, n: n, k: k, a: ab.baseAddress!, lda: k, b: bb.baseAddress!, ldb: n, c: $0.baseAddress!, ldc: n,
                                          subtract: true)
                }
                subTeam.withUnsafeMutableBufferPointer {
                    PanelProduct.multiply(m: m, n: n, k: k, a: ab.baseAddress!, lda: k, b: bb.baseAddress!, ldb: n, c: $0.baseAddress!, ldc: n,
                                          subtract: true, team: Self.team)
                }
            }
        }
        #expect(relativeError(outT, wantT) < 1e-6)
        #expect(relativeError(out, want) < 1e-6)
        #expect(relativeError(sub, zip(c0, want).map { Double($0) - $1 }) < 1e-6)
        #expect(sub == subTeam, "a team changed the bits")
        // C − A·B is the product first, then one subtraction
        #expect(sub == zip(c0, out).map { $0 - $1 })
    }

    @Test(arguments: [1, 50, 64, 150, 200])
    func upperFactorOfTheInverse(n: Int) throws {
        // A = BBᵀ/n + I: symmetric positive definite
        let b = random(n * n, seed: UInt64(n))
        var a = [Float](repeating: 0, count: n * n)
        for i in 0..<n { for j in 0..<n {
            var s = 0.0
            for p in 0..<n { s += Double(b[i * n + p]) * Double(b[j * n + p]) }
            a[i * n + j] = Float(s / Double(n)) + (i == j ? 1 : 0)
        } }
        let u = try Cholesky.upperFactorOfInverse(a, n: n)
        let shared = try Cholesky.upperFactorOfInverse(a, n: n, team: Self.team)
        #expect(u == shared, "a team changed the bits")
        for i in 0..<n { for j in 0..<i { #expect(u[i * n + j] == 0) } ; #expect(u[i * n + i] > 0) }
        // (UᵀU)·A = I
        var inv = [Double](repeating: 0, count: n * n)
        for q in 0..<n { for i in q..<n { for p in q..<n { inv[i * n + p] += Double(u[q * n + i]) * Double(u[q * n + p]) } } }
        var worst = 0.0
        for i in 0..<n { for j in 0..<n {
            var s = 0.0
            for p in 0..<n { s += inv[i * n + p] * Double(a[p * n + j]) }
            worst = max(worst, abs(s - (i == j ? 1 : 0)))
        } }
        #expect(worst < 1e-4, "UᵀU·A is \(worst) from the identity")
    }

    @Test func aMatrixThatIsNotPositiveDefiniteIsAnError() {
        #expect(throws: KickError.self) { try Cholesky.upperFactorOfInverse([1, 2, 2, 1], n: 2) }
    }
}
