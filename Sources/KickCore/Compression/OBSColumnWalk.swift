import Foundation

/// The optimal-brain-surgeon column walk SparseGPT and GPTQ share: the
/// columns in blocks, each column pruned (SparseGPT's mask) and/or quantized
/// (GPTQ's groups) and its error spread over the columns still to come
/// through the upper Cholesky factor of H⁻¹ (IST-DASLab `fasterprune` /
/// `fasterquant`, with the paper's names: W, H, Hinv, W1, Q1, Err1).
public struct OBSColumnWalk: Sendable {
    public var pattern: SparsityPattern?
    public var quantizer: QuantizerSpec?
    /// GPTQ: walk columns by descending diag(H).
    public var actOrder = false
    /// GPTQ: every group's scale and zero from the weights before the walk.
    public var staticGroups = false
    public var blocksize = 128
    public var percdamp: Float = 0.01
    /// Kept values rounded to a ggml source's block grids as the walk goes
    /// (without a quantizer), their rounding error spread as GPTQ spreads its.
    public var grid: SourceGrid?

    public init(pattern: SparsityPattern? = nil, quantizer: QuantizerSpec? = nil, actOrder: Bool = false,
                staticGroups: Bool = false, blocksize: Int = 128, percdamp: Float = 0.01) {
        self.pattern = pattern
        self.quantizer = quantizer
        self.actOrder = actOrder
        self.staticGroups = staticGroups
        self.blocksize = blocksize
        self.percdamp = percdamp
    }

    public func validate() throws {
        guard pattern != nil || quantizer != nil else { throw KickError("nothing to do: give a sparsity pattern or a quantizer") }
        try quantizer?.validate()
        guard blocksize > 0 else { throw KickError("blocksize must be positive") }
        guard percdamp > 0 else { throw KickError("percdamp must be positive") }
        if actOrder && pattern != nil { throw KickError("act-order applies to quantization alone") }
        if case .nm(let n, let m)? = pattern, blocksize % m != 0 { throw KickError("blocksize \(blocksize) is not a multiple of M = \(m) (N:M \(n):\(m))") }
    }

    /// Compresses W (rows × cols) given the layer's input Hessian.
    public func compress(_ weight: Matrix, hessian: [Float]) throws -> CompressedLinear {
        try validate()
        let rows = weight.rows, cols = weight.cols
        precondition(hessian.count == cols * cols, "Hessian does not match the weight's columns")
        // Work on Wᵀ so that a column of W is one contiguous row of W.
        var Wt = [Float](repeating: 0, count: rows * cols)
        weight.data.withUnsafeBufferPointer { w in
            Wt.withUnsafeMutableBufferPointer { PanelProduct.transpose(w.baseAddress!, rows: rows, cols: cols, ld: cols, into: $0.baseAddress!) }
        }
        var H = hessian
        let spec = quantizer
        // per-row quantizer parameters come from W as given (before dead columns are zeroed)
        var rowParams: [(scale: Float, zero: Float)] = []
        let groupSize = spec.map { min($0.groupSize ?? cols, cols) } ?? cols
        let grouped = spec != nil && groupSize < cols
        if let spec, !grouped {
            rowParams = (0..<rows).map { r in spec.params((0..<cols).lazy.map { Wt[$0 * rows + r] }) }
        }
        // dead inputs: H_jj = 0 → H_jj = 1, W[:, j] = 0
        for j in 0..<cols where H[j * cols + j] == 0 {
            H[j * cols + j] = 1
            for r in 0..<rows { Wt[j * rows + r] = 0 }
        }
        var staticParams: [[(scale: Float, zero: Float)]] = []
        if let spec, grouped, staticGroups {
            for g0 in stride(from: 0, to: cols, by: groupSize) {
                staticParams.append((0..<rows).map { r in spec.params((g0..<min(cols, g0 + groupSize)).lazy.map { Wt[$0 * rows + r] }) })
            }
        }
        var perm = Array(0..<cols)
        if actOrder {
            perm.sort { H[$0 * cols + $0] > H[$1 * cols + $1] || (H[$0 * cols + $0] == H[$1 * cols + $1] && $0 < $1) }
            Wt = perm.flatMap { Wt[$0 * rows..<($0 + 1) * rows] }
            var Hp = [Float](repeating: 0, count: cols * cols)
            for i in 0..<cols { for j in 0..<cols { Hp[i * cols + j] = H[perm[i] * cols + perm[j]] } }
            H = Hp
        }
        var mean: Float = 0
        for j in 0..<cols { mean += H[j * cols + j] }
        let damp = percdamp * (mean / Float(cols))
        for j in 0..<cols { H[j * cols + j] += damp }
        let team = ThreadTeam.sharedIfParallel
        let Hinv = try Cholesky.upperFactorOfInverse(H, n: cols, team: team)

        var Qt = [Float](repeating: 0, count: cols * rows)
        var codes = spec != nil ? [UInt8](repeating: 0, count: cols * rows) : []
        // scale/zero per (walk-order group or row) and the group of each walked column
        var groupParams: [[(scale: Float, zero: Float)]] = []
        var walkGroup = [Int](repeating: 0, count: cols)
        var current: [(scale: Float, zero: Float)] = rowParams
        var mask = [Bool](repeating: false, count: rows * blocksize)
        var tmp = [Float](repeating: 0, count: rows * blocksize)
        for i1 in stride(from: 0, to: cols, by: blocksize) {
            let i2 = min(i1 + blocksize, cols), count = i2 - i1
            var W1 = Array(Wt[i1 * rows..<i2 * rows])
            var Err1 = [Float](repeating: 0, count: count * rows)
            for k in 0..<rows * count { mask[k] = false }
            if case .unstructured(let sparsity)? = pattern {
                // the block's mask: the int(numel·ratio) smallest w²/Hinv_jj², ties included
                for i in 0..<count {
                    let d = Hinv[(i1 + i) * cols + i1 + i]
                    for r in 0..<rows { tmp[i * rows + r] = W1[i * rows + r] * W1[i * rows + r] / (d * d) }
                }
                let sorted = tmp[0..<rows * count].sorted()
                let thresh = sorted[min(rows * count - 1, Int(Double(rows * count) * sparsity))]
                for k in 0..<rows * count { mask[k] = tmp[k] <= thresh }
            }
            for i in 0..<count {
                let col = i1 + i
                let d = Hinv[col * cols + col]
                if case .nm(let keep, let m)? = pattern, i % m == 0 {
                    let w = min(m, count - i), prune = max(0, w - keep)
                    for r in 0..<rows {
                        var scored: [(Float, Int)] = []
                        for j in 0..<w {
                            let dj = Hinv[(col + j) * cols + col + j]
                            let x = W1[(i + j) * rows + r]
                            scored.append((x * x / (dj * dj), j))
                        }
                        scored.sort { $0.0 < $1.0 || ($0.0 == $1.0 && $0.1 < $1.1) }
                        for (_, j) in scored.prefix(prune) { mask[(i + j) * rows + r] = true }
                    }
                }
                if let spec, grouped {
                    if staticGroups {
                        current = staticParams[perm[col] / groupSize]
                        walkGroup[col] = perm[col] / groupSize
                    } else {
                        if col % groupSize == 0 {
                            // from W as it stands: earlier blocks' updates, not this block's
                            let hi = min(cols, col + groupSize)
                            current = (0..<rows).map { r in spec.params((col..<hi).lazy.map { Wt[$0 * rows + r] }) }
                            groupParams.append(current)
                        }
                        walkGroup[col] = groupParams.count - 1
                    }
                }
                for r in 0..<rows {
                    let w = W1[i * rows + r]
                    var q = mask[i * rows + r] ? 0 : w
                    if let grid, spec == nil, q != 0 { q = grid.rounded(q, row: r, col: perm[col]) }
                    if let spec {
                        let p = current[r]
                        let c = spec.code(q, scale: p.scale, zero: p.zero)
                        codes[col * rows + r] = UInt8(c)
                        q = p.scale * (c - p.zero)
                    }
                    Qt[col * rows + r] = q
                    Err1[i * rows + r] = (w - q) / d
                }
                // W1[:, i+1:] -= err1 ⊗ Hinv1[i, i+1:]
                Err1.withUnsafeBufferPointer { e in
                    W1.withUnsafeMutableBufferPointer { w1 in
                        let err = e.baseAddress! + i * rows
                        for j in i + 1..<count {
                            let h = Hinv[col * cols + i1 + j]
                            let dst = w1.baseAddress! + j * rows
                            for r in 0..<rows { dst[r] -= err[r] * h }
                        }
                    }
                }
            }
            // W[:, i2:] -= Err1 · Hinv[i1:i2, i2:], as Wᵀ: rows i2.. of Wt -= Hinv[i1:i2, i2:]ᵀ · Err1ᵀ
            // (kick's own product: the same bits on every machine)
            if i2 < cols {
                let m = cols - i2
                var hT = [Float](repeating: 0, count: m * count)
                Hinv.withUnsafeBufferPointer { h in
                    hT.withUnsafeMutableBufferPointer {
                        PanelProduct.transpose(h.baseAddress! + i1 * cols + i2, rows: count, cols: m, ld: cols, into: $0.baseAddress!)
                    }
                }
                hT.withUnsafeBufferPointer { hb in
                    Err1.withUnsafeBufferPointer { eb in
                        Wt.withUnsafeMutableBufferPointer { wb in
                            PanelProduct.multiply(m: m, n: rows, k: count, a: hb.baseAddress!, lda: count, b: eb.baseAddress!, ldb: rows,
                                                  c: wb.baseAddress! + i2 * rows, ldc: rows, subtract: true, team: team)
                        }
                    }
                }
            }
        }
        // undo act-order, back to rows × cols
        var out = [Float](repeating: 0, count: rows * cols)
        var outCodes = [UInt8](repeating: 0, count: spec != nil ? rows * cols : 0)
        var columnGroup = [Int32](repeating: 0, count: cols)
        for k in 0..<cols {
            let c = perm[k]
            for r in 0..<rows {
                out[r * cols + c] = Qt[k * rows + r]
                if spec != nil { outCodes[r * cols + c] = codes[k * rows + r] }
            }
            columnGroup[c] = Int32(walkGroup[k])
        }
        let result = Matrix(rows: rows, cols: cols, data: out)
        guard let spec else {
            if case .nm(let keep, let m)? = pattern { return .nm(result, n: keep, m: m) }
            return .pruned(result)
        }
        // scales and zeros per (row, group)
        let params: [[(scale: Float, zero: Float)]] = !grouped ? [rowParams] : staticGroups ? staticParams : groupParams
        let g = params.count
        var scales = [Float](repeating: 0, count: rows * g), zeros = [UInt8](repeating: 0, count: rows * g)
        for (gi, p) in params.enumerated() {
            for r in 0..<rows { scales[r * g + gi] = p[r].scale; zeros[r * g + gi] = spec.zeroCode(p[r].zero) }
        }
        let natural = (0..<cols).allSatisfy { Int(columnGroup[$0]) == (grouped ? $0 / groupSize : 0) }
        let q = QuantizedMatrix(rows: rows, cols: cols, bits: spec.bits, groupSize: grouped ? groupSize : cols,
                                codes: outCodes, scales: scales, zeros: zeros, columnGroup: natural ? nil : columnGroup)
        return .quantized(q, sparse: pattern != nil)
    }
}
