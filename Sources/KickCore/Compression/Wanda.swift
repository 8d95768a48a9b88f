/// Wanda: prune by |W_ij|·‖X_j‖₂, per output row (unstructured) or per
/// group of M inputs; no weight update. Needs only the inputs' column norms.
public struct Wanda: LayerCompressor {
    public var pattern: SparsityPattern
    public init(pattern: SparsityPattern) { self.pattern = pattern }

    public static var needs: CalibrationNeed { .columnNorms }

    public func compress(_ w: Matrix, stats: HessianAccumulator?) throws -> CompressedLinear {
        guard let stats else { throw KickError("wanda needs calibration inputs") }
        return Self.prune(w, columnNorms: stats.columnNorms, pattern)
    }

    public static func prune(_ w: Matrix, columnNorms: [Float], _ p: SparsityPattern) -> CompressedLinear {
        precondition(columnNorms.count == w.cols)
        var metric = w.data
        for r in 0..<w.rows { for c in 0..<w.cols { metric[r * w.cols + c] = abs(metric[r * w.cols + c]) * columnNorms[c] } }
        var out = w
        switch p {
        case .unstructured(let s):
            PruningMask.apply(PruningMask.perRow(metric, rows: w.rows, cols: w.cols, ratio: s), to: &out)
            return .pruned(out)
        case .nm(let n, let m):
            PruningMask.apply(PruningMask.nm(metric, rows: w.rows, cols: w.cols, n: n, m: m), to: &out)
            return .nm(out, n: n, m: m)
        }
    }
}
