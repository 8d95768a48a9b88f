/// The calibration statistics of one linear layer's input, accumulated as
/// the reference `add_batch` does: H = (2/n)·Σ xxᵀ as a running average over
/// n samples, in float32. Wanda needs only the diagonal (the squared column
/// norms), so the full matrix is optional.
public final class HessianAccumulator: @unchecked Sendable {
    public let cols: Int
    public let full: Bool
    /// cols × cols when `full`, else empty: `add` accumulates the lower
    /// triangle; the upper is mirrored from it on the first read after.
    private var lower: [Float]
    private var mirrored = true
    /// The full symmetric matrix (mirrored once per `add`, not per read:
    /// SparseGPT and GPTQ read it for every layer of a group and again for
    /// the layer errors, 485 MB a read at 7B's FFN width).
    public var H: [Float] {
        if full && !mirrored {
            lower.withUnsafeMutableBufferPointer { PanelProduct.mirrorLower($0.baseAddress!, n: cols, ld: cols) }
            mirrored = true
        }
        return lower
    }
    /// Σ x_j² scaled as H's diagonal / 2 (the reference's `scaler_row`).
    public private(set) var columnSquares: [Float]
    public private(set) var samples = 0

    public init(cols: Int, full: Bool) {
        self.cols = cols
        self.full = full
        lower = full ? [Float](repeating: 0, count: cols * cols) : []
        columnSquares = [Float](repeating: 0, count: cols)
    }

    /// Rows per Gram product: H gains each chunk's XᵀX in turn, every entry
    /// one chain over the chunk's rows in order, so the sums are fixed by
    /// the calibration rows alone (and a chunk's products stay in cache).
    public static let chunkRows = 256

    /// Adds `rows` tokens (row-major, `cols` wide) that make up `samples`
    /// calibration sequences: H ← H · n_old/n + (2/n) · Σ_chunks X_cᵀX_c,
    /// through `PanelProduct.gram` (kick's own kernels, the same bits on
    /// every machine and thread count), across the team when given.
    public func add(_ x: UnsafeBufferPointer<Float>, rows: Int, samples n: Int, team: ThreadTeam? = nil) {
        precondition(x.count >= rows * cols)
        guard rows > 0 else { return }
        let old = Float(samples)
        samples += n
        let keep = old / Float(samples)
        let scale = 2 / Float(samples)
        let c = cols
        if full {
            mirrored = false
            let g = UnsafeMutablePointer<Float>.allocate(capacity: c * c)
            defer { g.deallocate() }
            lower.withUnsafeMutableBufferPointer { hb in
                let h = hb.baseAddress!
                for i in 0..<c { for j in 0...i { h[i * c + j] *= keep } }
                for r0 in stride(from: 0, to: rows, by: Self.chunkRows) {
                    PanelProduct.gram(rows: min(Self.chunkRows, rows - r0), n: c, x: x.baseAddress! + r0 * c, ldx: c, g: g, ldg: c,
                                      mirror: false, team: team)
                    for i in 0..<c { for j in 0...i { h[i * c + j] += scale * g[i * c + j] } }
                }
            }
        }
        var sums = [Float](repeating: 0, count: c)
        sums.withUnsafeMutableBufferPointer { sb in
            let sp = sb.baseAddress!
            for r in 0..<rows {
                let row = x.baseAddress! + r * c
                for j in 0..<c { sp[j] += row[j] * row[j] }
            }
        }
        let count = Float(samples)
        for j in 0..<c { columnSquares[j] = columnSquares[j] * keep + sums[j] / count }
    }

    /// ‖X_j‖₂ per column (Wanda's activation norm, up to one common factor).
    public var columnNorms: [Float] { columnSquares.map { $0.squareRoot() } }
}

/// The factorizations the OBS walk needs, in kick's own code: blocked,
/// with the blocks' updates through `PanelProduct` and the small diagonal
/// blocks in plain loops, so every entry is computed in one fixed order
/// (LAPACK through OpenBLAS rounds differently per kernel and thread count).
public enum Cholesky {
    static let block = 64

    /// The upper Cholesky factor U of A⁻¹ (A⁻¹ = UᵀU) for a symmetric
    /// positive-definite A (n × n, row-major): what the reference computes
    /// as `cholesky(cholesky_inverse(cholesky(H)), upper=True)`, here in
    /// one factorization and one triangular inverse. With J the reversal
    /// permutation and JAJ = LLᵀ, A⁻¹ = J L⁻ᵀ L⁻¹ J = (J L⁻¹ J)ᵀ (J L⁻¹ J),
    /// and J L⁻¹ J is upper triangular with a positive diagonal: U.
    public static func upperFactorOfInverse(_ a: [Float], n: Int, team: ThreadTeam? = nil) throws -> [Float] {
        precondition(a.count == n * n)
        var r = [Float](repeating: 0, count: n * n)
        for i in 0..<n { for j in 0..<n { r[i * n + j] = a[(n - 1 - i) * n + (n - 1 - j)] } }
        try r.withUnsafeMutableBufferPointer { try factorLower($0.baseAddress!, n: n, team: team) }
        let m = r.withUnsafeBufferPointer { invertLower($0.baseAddress!, n: n, team: team) }
        var u = [Float](repeating: 0, count: n * n)
        for i in 0..<n { for j in i..<n { u[i * n + j] = m[(n - 1 - i) * n + (n - 1 - j)] } }
        return u
    }

    /// A = LLᵀ in place (row-major; the lower triangle becomes L, the upper
    /// is zeroed), left-looking by blocks of columns: each block first
    /// takes every earlier column's contribution in one product (a chain
    /// over those columns in order), then is factored column by column.
    static func factorLower(_ a: UnsafeMutablePointer<Float>, n: Int, team: ThreadTeam?) throws {
        for j0 in stride(from: 0, to: n, by: block) {
            let j1 = min(n, j0 + block)
            if j0 > 0 {
                PanelProduct.multiplyTransposed(m: n - j0, n: j1 - j0, k: j0, a: a + j0 * n, lda: n, b: a + j0 * n, ldb: n,
                                                c: a + j0 * n + j0, ldc: n, subtract: true, team: team)
            }
            for j in j0..<j1 {
                let rj = a + j * n
                var d = rj[j]
                for k in j0..<j { d -= rj[k] * rj[k] }
                guard d > 0, d.isFinite else {
                    throw KickError("the Hessian is not positive definite (pivot \(j + 1) of \(n) is \(d)); raise --percdamp")
                }
                let l = d.squareRoot()
                rj[j] = l
                for i in j + 1..<n {
                    let ri = a + i * n
                    var s = ri[j]
                    for k in j0..<j { s -= ri[k] * rj[k] }
                    ri[j] = s / l
                }
            }
        }
        for i in 0..<n { for j in i + 1..<n { a[i * n + j] = 0 } }
    }

    /// L⁻¹ of a lower-triangular L (row-major), by blocks of rows:
    /// M_II = L_II⁻¹ by substitution, M[I, :i0] = −M_II · (L[I, :i0] · M[:i0, :i0]).
    static func invertLower(_ l: UnsafePointer<Float>, n: Int, team: ThreadTeam?) -> [Float] {
        var m = [Float](repeating: 0, count: n * n)
        m.withUnsafeMutableBufferPointer { mb in
            let M = mb.baseAddress!
            let t = UnsafeMutablePointer<Float>.allocate(capacity: block * n)
            defer { t.deallocate() }
            for i0 in stride(from: 0, to: n, by: block) {
                let i1 = min(n, i0 + block), w = i1 - i0
                // the diagonal block's inverse, column by column of the identity
                for j in i0..<i1 {
                    M[j * n + j] = 1 / l[j * n + j]
                    for i in j + 1..<i1 {
                        var s: Float = 0
                        for k in j..<i { s += l[i * n + k] * M[k * n + j] }
                        M[i * n + j] = -s / l[i * n + i]
                    }
                }
                guard i0 > 0 else { continue }
                PanelProduct.multiply(m: w, n: i0, k: i0, a: l + i0 * n, lda: n, b: M, ldb: n, c: t, ldc: i0, team: team)
                PanelProduct.multiply(m: w, n: i0, k: w, a: M + i0 * n + i0, lda: n, b: t, ldb: i0, c: M + i0 * n, ldc: n, team: team)
                for i in i0..<i1 { for j in 0..<i0 { M[i * n + j] = -M[i * n + j] } }
            }
        }
        return m
    }
}
