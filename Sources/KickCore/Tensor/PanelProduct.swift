import AVX512Kernels

/// Matrix products kick computes itself, through the engine's panel
/// kernels, so that every output is one fused multiply-add chain over the
/// inner dimension in order: the same bits on any processor (AVX2 or
/// AVX-512), with any thread count, whatever OpenBLAS would pick. The
/// compressor's statistics, factorizations and updates go through these,
/// which is what makes a checkpoint's bytes independent of the machine
/// (OpenBLAS's rounding depends on its kernel, its blocking and its threads).
///
/// The cost is packing one operand into panels per call (one pass over it),
/// small beside the product for the shapes kick uses.
public enum PanelProduct {
    /// C (m × n, stride ldc) = A (m × k, stride lda) · Bᵀ, B stored (n × k)
    /// row-major with stride ldb. With `subtract`, C −= A · Bᵀ instead (the
    /// product first, then one subtraction per element).
    public static func multiplyTransposed(m: Int, n: Int, k: Int, a: UnsafePointer<Float>, lda: Int,
                                          b: UnsafePointer<Float>, ldb: Int, c: UnsafeMutablePointer<Float>, ldc: Int,
                                          subtract: Bool = false, team: ThreadTeam? = nil) {
        product(m: m, n: n, k: k, a: a, lda: lda, c: c, ldc: ldc, subtract: subtract, team: team) { r, col in b[r * ldb + col] }
    }

    /// C (m × n) = A (m × k) · B (k × n), all row-major: B's columns are
    /// the panels' rows.
    public static func multiply(m: Int, n: Int, k: Int, a: UnsafePointer<Float>, lda: Int,
                                b: UnsafePointer<Float>, ldb: Int, c: UnsafeMutablePointer<Float>, ldc: Int,
                                subtract: Bool = false, team: ThreadTeam? = nil) {
        product(m: m, n: n, k: k, a: a, lda: lda, c: c, ldc: ldc, subtract: subtract, team: team) { r, col in b[col * ldb + r] }
    }

    /// C (−)= A · Bᵀ for a right operand B (n × k) given element by element.
    private static func product(m: Int, n: Int, k: Int, a: UnsafePointer<Float>, lda: Int, c: UnsafeMutablePointer<Float>, ldc: Int,
                                subtract: Bool, team: ThreadTeam?, element: (Int, Int) -> Float) {
        guard m > 0, n > 0 else { return }
        guard k > 0 else {
            if !subtract { for i in 0..<m { for j in 0..<n { c[i * ldc + j] = 0 } } }
            return
        }
        Panels(rows: n, cols: k, element: element).multiply(m: m, a: a, lda: lda, c: c, ldc: ldc, subtract: subtract, team: team)
    }

    /// G (n × n, stride ldg) = Xᵀ X for X (rows × n, stride ldx): the lower
    /// triangle (and the diagonal blocks of 16) computed, half of a general
    /// product's multiply-adds; with `mirror` the upper triangle is copied
    /// from it (G[i][j] and G[j][i] are the same chain, products commuting
    /// exactly), else left as it was.
    public static func gram(rows: Int, n: Int, x: UnsafePointer<Float>, ldx: Int, g: UnsafeMutablePointer<Float>, ldg: Int,
                            mirror: Bool = true, team: ThreadTeam? = nil) {
        guard n > 0 else { return }
        guard rows > 0 else {
            for i in 0..<n { for j in 0..<n { g[i * ldg + j] = 0 } }
            return
        }
        let pr = PanelLayout.rows, R = rows
        let panelCount = (n + pr - 1) / pr, groups = n / 6
        // the right operand: panel p holds X's columns 16p..<16p+16, row by row (copies of X's rows)
        let panels = UnsafeMutablePointer<Float>.allocate(capacity: panelCount * pr * R)
        // the left operand: G's rows six at a time, X's columns 6i..<6i+6 interleaved row by row
        let packed = UnsafeMutablePointer<Float>.allocate(capacity: max(1, groups * 6 * R))
        defer { panels.deallocate(); packed.deallocate() }
        for p in 0..<panelCount {
            let w = min(pr, n - p * pr)
            for k in 0..<R {
                let src = x + k * ldx + p * pr, dst = panels + (p * R + k) * pr
                for j in 0..<w { dst[j] = src[j] }
                for j in w..<pr { dst[j] = 0 }
            }
        }
        for i in 0..<groups {
            for k in 0..<R {
                let src = x + k * ldx + 6 * i, dst = packed + (i * R + k) * 6
                for j in 0..<6 { dst[j] = src[j] }
            }
        }
        // panel p's outputs: G's rows from the six-row group holding row 16p on (the lower triangle)
        let run = { (p: Int) in
            let w = UnsafeRawPointer(panels + p * pr * R)
            let c0 = p * pr, width = min(pr, n - c0)
            var tile = [Float](repeating: 0, count: 6 * pr)
            for i in c0 / 6..<groups {
                let out = g + 6 * i * ldg + c0
                if width == pr {
                    panelBySixInterleaved(packed + i * 6 * R, w, R, out, ldg)
                } else {
                    tile.withUnsafeMutableBufferPointer { panelBySixInterleaved(packed + i * 6 * R, w, R, $0.baseAddress!, pr) }
                    for r in 0..<6 { for j in 0..<width { out[r * ldg + j] = tile[r * pr + j] } }
                }
            }
            // rows past the last whole group, one chain per output as above
            for r in max(c0, groups * 6)..<n {
                var a = SIMD16<Float>()
                for k in 0..<R { a = a.addingProduct(SIMD16(repeating: x[k * ldx + r]), (w + 64 * k).loadUnaligned(as: SIMD16<Float>.self)) }
                for j in 0..<width { g[r * ldg + c0 + j] = a[j] }
            }
        }
        if let team, panelCount > 1 { team.forEach(panelCount) { p, _ in run(p) } } else { for p in 0..<panelCount { run(p) } }
        if mirror { mirrorLower(g, n: n, ld: ldg) }
    }

    /// Copies the lower triangle of a square matrix onto its upper one, in
    /// tiles (a column walk of a large matrix misses the cache every step).
    public static func mirrorLower(_ g: UnsafeMutablePointer<Float>, n: Int, ld: Int) {
        for i0 in stride(from: 0, to: n, by: 32) {
            for j0 in stride(from: i0, to: n, by: 32) {
                for i in i0..<min(n, i0 + 32) { for j in max(i + 1, j0)..<min(n, j0 + 32) { g[i * ld + j] = g[j * ld + i] } }
            }
        }
    }

    static func transpose(_ a: UnsafePointer<Float>, rows: Int, cols: Int, ld: Int, into t: UnsafeMutablePointer<Float>) {
        // in 16 × 16 tiles so that both sides stay in cache
        for r0 in stride(from: 0, to: rows, by: 16) {
            for c0 in stride(from: 0, to: cols, by: 16) {
                for r in r0..<min(rows, r0 + 16) { for c in c0..<min(cols, c0 + 16) { t[c * rows + r] = a[r * ld + c] } }
            }
        }
    }

    /// A right operand packed as the engine packs a weight (`PackedWeight`'s
    /// layout: rows × cols in panels of 16 rows, column by column).
    struct Panels {
        let rows: Int
        let cols: Int
        let data: UnsafeMutablePointer<Float>
        var count: Int { (rows + PanelLayout.rows - 1) / PanelLayout.rows }
        private let owner: Storage

        final class Storage {
            let pointer: UnsafeMutablePointer<Float>
            init(_ n: Int) { pointer = .allocate(capacity: n) }
            deinit { pointer.deallocate() }
        }

        init(rows: Int, cols: Int, element: (Int, Int) -> Float) {
            self.rows = rows
            self.cols = cols
            let pr = PanelLayout.rows
            let count = (rows + pr - 1) / pr
            owner = Storage(count * pr * cols)
            data = owner.pointer
            for p in 0..<count {
                let base = data + p * pr * cols
                for k in 0..<cols {
                    for i in 0..<pr {
                        let r = p * pr + i
                        base[k * pr + i] = r < rows ? element(r, k) : 0
                    }
                }
            }
        }

        /// C = A · panelsᵀ for the panels in `panelRange` (all by default):
        /// output columns 16·p − columnOffset onward.
        func multiply(m: Int, a: UnsafePointer<Float>, lda: Int, c: UnsafeMutablePointer<Float>, ldc: Int, subtract: Bool = false,
                      team: ThreadTeam? = nil, panelRange: Range<Int>? = nil, columnOffset: Int = 0) {
            let range = panelRange ?? 0..<count
            let (rows, cols, data) = (rows, cols, data)
            let run = { (ps: Range<Int>) in
                guard !ps.isEmpty else { return }
                let width = min(rows, ps.upperBound * PanelLayout.rows) - ps.lowerBound * PanelLayout.rows
                if !subtract {
                    packedLinear(tokens: m, input: a, ldInput: lda, weight: UnsafeRawPointer(data), format: .f32, panels: ps, cols: cols,
                                 rows: rows, out: c - columnOffset, ldOut: ldc, wide: CPUFeatures.avx512)
                    return
                }
                // the product into scratch, then one subtraction per element
                let tmp = UnsafeMutablePointer<Float>.allocate(capacity: m * width)
                defer { tmp.deallocate() }
                let first = ps.lowerBound * PanelLayout.rows
                packedLinear(tokens: m, input: a, ldInput: lda, weight: UnsafeRawPointer(data + first * cols), format: .f32,
                             panels: 0..<ps.count, cols: cols, rows: rows - first, out: tmp, ldOut: width, wide: CPUFeatures.avx512)
                let dst = c + first - columnOffset
                for i in 0..<m { for j in 0..<width { dst[i * ldc + j] -= tmp[i * width + j] } }
            }
            let parts = min(team?.size ?? 1, range.count)
            if let team, parts > 1 {
                let per = (range.count + parts - 1) / parts
                team.forEach(parts) { i, _ in
                    let lo = range.lowerBound + i * per
                    run(lo..<min(range.upperBound, lo + per))
                }
            } else {
                run(range)
            }
        }
    }
}
