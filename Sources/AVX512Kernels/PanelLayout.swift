/// The weight layout the linear kernels share: panels of `rows` rows, each
/// stored column by column, so one column of a panel is one 16-float
/// vector (`SIMD16<Float>`, an AVX-512 register, two AVX2 ones). The
/// AVX-512 kernel's tile is `tilePanels` panels wide. KickCore's
/// `PackedWeight` packs to this layout and its generic kernel reads it.
public enum PanelLayout {
    @inlinable public static var rows: Int { 16 }
    @inlinable public static var tilePanels: Int { 3 }
}
