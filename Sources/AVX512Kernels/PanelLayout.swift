/// The weight layout the linear kernels share: panels of `rows` rows, each
/// stored column by column, so one column of a panel is one 16-element
/// vector, widened to `SIMD16<Float>` (an AVX-512 register, two AVX2 ones).
/// The AVX-512 kernel's tile is `tilePanels` panels wide. KickCore's
/// `PackedWeight` packs to this layout and its generic kernel reads it.
public enum PanelLayout {
    @inlinable public static var rows: Int { 16 }
    @inlinable public static var tilePanels: Int { 3 }
}

/// The element type a weight's panels hold. 16-bit panels are widened to
/// float32 in registers as they are loaded (exactly: every f16 and bf16
/// value is a float32), so a product's fused multiply-add chains, and its
/// bits, are those of the same weights held as float32.
public enum PanelFormat: String, Sendable, CaseIterable {
    case f32, f16, bf16
    @inlinable public var bytes: Int { self == .f32 ? 4 : 2 }
}
