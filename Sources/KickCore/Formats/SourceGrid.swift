/// The grids a ggml-quantized source tensor's values lie on (Q4_0, Q4_1,
/// Q8_0): per row and 32-column block, the block's scale (and min). A
/// method that moves values (SparseGPT's updates) rounds each kept value to
/// its block's grid as it goes, so what it walks on is what the sparse-ggml
/// encoding stores, and the rounding error is spread like the pruning error.
public struct SourceGrid: Sendable {
    public let type: GGMLType
    public let rows: Int
    public let cols: Int
    let scales: [Float]
    let mins: [Float]

    /// Nil for other types or a payload that does not match the shape.
    public init?(type t: GGMLType, payload: [UInt8], rows: Int, cols: Int) {
        guard TensorCodec.sparseGGMLTypes.contains(t), cols % 32 == 0, payload.count == t.byteCount(elements: rows * cols) else { return nil }
        let blocks = rows * cols / 32
        var d = [Float](repeating: 0, count: blocks), m = [Float](repeating: 0, count: blocks)
        for b in 0..<blocks {
            (d[b], m[b]) = TensorCodec.blockParameters(payload, at: b * t.bytesPerBlock, t)
        }
        type = t
        self.rows = rows
        self.cols = cols
        scales = d
        mins = m
    }

    /// w at its block's grid point nearest to it, as sparse-ggml stores and
    /// decodes it.
    @inline(__always)
    public func rounded(_ w: Float, row: Int, col: Int) -> Float {
        let b = row * (cols / 32) + col / 32
        let (d, mn) = (scales[b], mins[b])
        return TensorCodec.sparseGGMLValue(TensorCodec.sparseGGMLCode(w, type, d: d, min: mn), type, d: d, min: mn)
    }
}
