import AVX512Kernels

/// How the engine holds a model's linear weights and embedding.
public enum WeightPrecision: String, CaseIterable, Sendable, Codable {
    /// f16 and bf16 weights stay 16-bit (published checkpoints: half the
    /// memory of float32, and half the bytes per decode step); quantized
    /// weights (GPTQ/RTN codes, GGUF Q4_0/Q4_1/Q8_0) stay integer codes
    /// (`CodePanels`); everything else is held as float32.
    case source
    /// Every weight widened to float32 (the engine's behaviour before
    /// 16-bit panels; for comparison).
    case f32
    /// Every weight rounded to f16 or bf16, whatever the source (lossy for
    /// a float32 or quantized source).
    case f16, bf16

    /// The panel format for a weight made of tensors of `types` (several for
    /// a fused q/k/v or gate/up); nil types are float32.
    public func format(for types: [GGMLType?]) -> PanelFormat {
        switch self {
        case .f32: return .f32
        case .f16: return .f16
        case .bf16: return .bf16
        case .source:
            if types.allSatisfy({ $0 == .f16 }) { return .f16 }
            if types.allSatisfy({ $0 == .bf16 }) { return .bf16 }
            return .f32
        }
    }
}
