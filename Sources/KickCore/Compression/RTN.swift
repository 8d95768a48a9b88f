/// Round-to-nearest: the quantizer applied to the weights as they are, no
/// Hessian — the baseline every GPTQ table needs.
public struct RTN: LayerCompressor {
    public var quantizer: QuantizerSpec
    public init(quantizer: QuantizerSpec) { self.quantizer = quantizer }

    public static var needs: CalibrationNeed { .none }

    public func compress(_ w: Matrix, stats: HessianAccumulator?) throws -> CompressedLinear {
        .quantized(Self.quantize(w, quantizer), sparse: false)
    }

    public static func quantize(_ w: Matrix, _ spec: QuantizerSpec) -> QuantizedMatrix {
        let gs = min(spec.groupSize ?? w.cols, w.cols)
        let groups = (w.cols + gs - 1) / gs
        var codes = [UInt8](repeating: 0, count: w.rows * w.cols)
        var scales = [Float](repeating: 0, count: w.rows * groups)
        var zeros = [UInt8](repeating: 0, count: w.rows * groups)
        for r in 0..<w.rows {
            for g in 0..<groups {
                let lo = r * w.cols + g * gs, hi = r * w.cols + min(w.cols, (g + 1) * gs)
                let (s, z) = spec.params(w.data[lo..<hi])
                scales[r * groups + g] = s
                zeros[r * groups + g] = spec.zeroCode(z)
                for i in lo..<hi { codes[i] = UInt8(spec.code(w.data[i], scale: s, zero: z)) }
            }
        }
        return QuantizedMatrix(rows: w.rows, cols: w.cols, bits: spec.bits, groupSize: gs, codes: codes, scales: scales, zeros: zeros)
    }
}
