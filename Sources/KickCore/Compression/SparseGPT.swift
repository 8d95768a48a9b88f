/// SparseGPT (Frantar & Alistarh 2023): each block of columns gets its mask
/// from w²/[H⁻¹]_jj² (unstructured: the block's smallest; N:M: per group of
/// M), and the pruned weights' error is spread over the columns to come.
/// With a quantizer it prunes and quantizes (per row) in the same walk.
public struct SparseGPT: LayerCompressor {
    public var pattern: SparsityPattern
    public var quantizer: QuantizerSpec?
    public var blocksize = 128
    public var percdamp: Float = 0.01

    public init(pattern: SparsityPattern, quantizer: QuantizerSpec? = nil, blocksize: Int = 128, percdamp: Float = 0.01) {
        self.pattern = pattern
        self.quantizer = quantizer
        self.blocksize = blocksize
        self.percdamp = percdamp
    }

    public static var needs: CalibrationNeed { .hessian }

    var walk: OBSColumnWalk { OBSColumnWalk(pattern: pattern, quantizer: quantizer, blocksize: blocksize, percdamp: percdamp) }

    public func compress(_ w: Matrix, stats: HessianAccumulator?) throws -> CompressedLinear {
        try compress(w, stats: stats, grid: nil)
    }

    /// Kept values are rounded to the source's grid inside the walk (unless
    /// a quantizer gives them a grid of its own).
    public func compress(_ w: Matrix, stats: HessianAccumulator?, grid: SourceGrid?) throws -> CompressedLinear {
        guard let stats, stats.full else { throw KickError("sparsegpt needs the inputs' Hessian") }
        var walk = self.walk
        if quantizer == nil, let grid, grid.rows == w.rows, grid.cols == w.cols { walk.grid = grid }
        return try walk.compress(w, hessian: stats.H)
    }
}
