/// What a compression method needs of a layer's calibration inputs.
public enum CalibrationNeed: Sendable {
    case none
    /// ‖X_j‖₂ per input column (Wanda).
    case columnNorms
    /// H = 2XᵀX / n (SparseGPT, GPTQ).
    case hessian
}

/// One compression algorithm applied to one linear layer W (outputs ×
/// inputs), given the statistics of its inputs: one type per method, named
/// as in the reference code (`Magnitude`, `Wanda`, `SparseGPT`, `GPTQ`,
/// `RTN`). The `layer` command and the model compressor call them alike.
public protocol LayerCompressor: Sendable {
    static var needs: CalibrationNeed { get }
    func compress(_ w: Matrix, stats: HessianAccumulator?) throws -> CompressedLinear
    /// With the grids of a ggml-quantized source: a method that moves
    /// values keeps them on those grids (SparseGPT); one that keeps the
    /// source's values as they are needs nothing (the default).
    func compress(_ w: Matrix, stats: HessianAccumulator?, grid: SourceGrid?) throws -> CompressedLinear
}

extension LayerCompressor {
    public func compress(_ w: Matrix, stats: HessianAccumulator?, grid: SourceGrid?) throws -> CompressedLinear {
        try compress(w, stats: stats)
    }
}
