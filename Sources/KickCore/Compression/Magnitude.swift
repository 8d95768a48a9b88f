/// Magnitude pruning: metric |W|, one threshold per weight matrix
/// (unstructured) or the largest N of every M inputs of a row.
public struct Magnitude: LayerCompressor {
    public var pattern: SparsityPattern
    public init(pattern: SparsityPattern) { self.pattern = pattern }

    public static var needs: CalibrationNeed { .none }

    public func compress(_ w: Matrix, stats: HessianAccumulator?) throws -> CompressedLinear {
        let out = Self.prune(w, pattern)
        if case .nm(let n, let m) = pattern { return .nm(out, n: n, m: m) }
        return .pruned(out)
    }

    public static func prune(_ w: Matrix, _ p: SparsityPattern) -> Matrix {
        let metric = w.data.map(abs)
        let mask: [Bool]
        switch p {
        case .unstructured(let s): mask = PruningMask.globalThreshold(metric, ratio: s)
        case .nm(let n, let m): mask = PruningMask.nm(metric, rows: w.rows, cols: w.cols, n: n, m: m)
        }
        var out = w
        PruningMask.apply(mask, to: &out)
        return out
    }
}
