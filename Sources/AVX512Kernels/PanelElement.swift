/// Loads one panel column (16 elements) as floats. Each module that runs a
/// kernel defines its own conformances, so the loads are compiled for that
/// module's processor (this one's for AVX-512, KickCore's for AVX2).
protocol PanelElement {
    static var bytes: Int { get }
    static func load16(_ p: UnsafeRawPointer) -> SIMD16<Float>
}

enum F32Element: PanelElement {
    @inline(__always) static var bytes: Int { 4 }
    @inline(__always) static func load16(_ p: UnsafeRawPointer) -> SIMD16<Float> { p.loadUnaligned(as: SIMD16<Float>.self) }
}

enum F16Element: PanelElement {
    @inline(__always) static var bytes: Int { 2 }
    /// Element by element so the compiler emits one vcvtph2ps.
    @inline(__always) static func load16(_ p: UnsafeRawPointer) -> SIMD16<Float> {
        let h = p.loadUnaligned(as: SIMD16<UInt16>.self)
        var r = SIMD16<Float>()
        for i in 0..<16 { r[i] = Float(Float16(bitPattern: h[i])) }
        return r
    }
}

enum BF16Element: PanelElement {
    @inline(__always) static var bytes: Int { 2 }
    /// bfloat16 is float32's upper half: zero-extend and shift.
    @inline(__always) static func load16(_ p: UnsafeRawPointer) -> SIMD16<Float> {
        let h = p.loadUnaligned(as: SIMD16<UInt16>.self)
        var r = SIMD16<Float>()
        for i in 0..<16 { r[i] = Float(bitPattern: UInt32(h[i]) &<< 16) }
        return r
    }
}
