import CBLAS

/// The calibration statistics of one linear layer's input, accumulated as
/// the reference `add_batch` does: H = (2/n)·Σ xxᵀ as a running average over
/// n samples, in float32. Wanda needs only the diagonal (the squared column
/// norms), so the full matrix is optional.
public final class HessianAccumulator: @unchecked Sendable {
    public let cols: Int
    public let full: Bool
    /// cols × cols when `full`, else empty.
    public private(set) var H: [Float]
    /// Σ x_j² scaled as H's diagonal / 2 (the reference's `scaler_row`).
    public private(set) var columnSquares: [Float]
    public private(set) var samples = 0

    public init(cols: Int, full: Bool) {
        self.cols = cols
        self.full = full
        H = full ? [Float](repeating: 0, count: cols * cols) : []
        columnSquares = [Float](repeating: 0, count: cols)
    }

    /// Adds `rows` tokens (row-major, `cols` wide) that make up `samples`
    /// calibration sequences. With a team (OpenBLAS then on one thread, as
    /// during a block's calibration forward) H's rows are split across it.
    public func add(_ x: UnsafeBufferPointer<Float>, rows: Int, samples n: Int, team: ThreadTeam? = nil) {
        precondition(x.count >= rows * cols)
        guard rows > 0 else { return }
        let old = Float(samples)
        samples += n
        let keep = old / Float(samples)
        let scale = 2 / Float(samples)
        if full {
            H.withUnsafeMutableBufferPointer { hb in
                let h = hb.baseAddress!, c = cols
                let parts = min(team?.size ?? 1, max(1, c / 64))
                let per = (c + parts - 1) / parts
                let part = { (p: Int) in
                    let i0 = p * per, i1 = min(c, i0 + per)
                    guard i0 < i1 else { return }
                    for i in i0 * c..<i1 * c { h[i] *= keep }
                    // H[i0..<i1, :] += scale · X[:, i0..<i1]ᵀ X (both triangles, as torch's matmul gives)
                    BLAS.gemmTN(m: i1 - i0, n: c, k: rows, a: x.baseAddress! + i0, lda: c, b: x.baseAddress!, ldb: c,
                                c: h + i0 * c, ldc: c, alpha: scale, beta: 1)
                }
                if let team, parts > 1 { team.forEach(parts) { p, _ in part(p) } } else { part(0) }
            }
        }
        for j in 0..<cols { columnSquares[j] *= keep }
        for r in 0..<rows {
            let row = x.baseAddress! + r * cols
            for j in 0..<cols { columnSquares[j] += row[j] * row[j] / Float(samples) }
        }
    }

    /// ‖X_j‖₂ per column (Wanda's activation norm, up to one common factor).
    public var columnNorms: [Float] { columnSquares.map { $0.squareRoot() } }
}

/// Cholesky through LAPACK (OpenBLAS), float32 as the reference computes.
public enum Cholesky {
    /// The upper Cholesky factor U of A⁻¹ (A⁻¹ = UᵀU) for a symmetric
    /// positive-definite A (n × n, row-major): the reference's
    /// `cholesky(cholesky_inverse(cholesky(H)), upper=True)`.
    public static func upperFactorOfInverse(_ a: [Float], n: Int) throws -> [Float] {
        var m = a
        var N = Int32(n), lda = Int32(n), info: Int32 = 0
        var uplo = Int8(UInt8(ascii: "L"))
        // Row-major memory read as column-major is the transpose; A is
        // symmetric, and a column-major lower factor is a row-major upper one.
        spotrf_(&uplo, &N, &m, &lda, &info, 1)
        guard info == 0 else { throw KickError("the Hessian is not positive definite (LAPACK spotrf info \(info)); raise --percdamp") }
        spotri_(&uplo, &N, &m, &lda, &info, 1)
        guard info == 0 else { throw KickError("cannot invert the Hessian (LAPACK spotri info \(info)); raise --percdamp") }
        // spotri filled one triangle (column-major lower = row-major upper): mirror it
        for i in 0..<n { for j in 0..<i { m[i * n + j] = m[j * n + i] } }
        spotrf_(&uplo, &N, &m, &lda, &info, 1)
        guard info == 0 else { throw KickError("the inverse Hessian is not positive definite (LAPACK spotrf info \(info)); raise --percdamp") }
        for i in 0..<n { for j in 0..<i { m[i * n + j] = 0 } }
        return m
    }
}
