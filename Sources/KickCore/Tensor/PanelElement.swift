import AVX512Kernels

/// The panel formats (declared beside the AVX-512 kernel), under KickCore's name.
public typealias PanelFormat = AVX512Kernels.PanelFormat

/// Loads one panel column (16 elements) as floats: KickCore's copy of the
/// AVX512Kernels loads, compiled for this module's processor (AVX2), since
/// code from that module may not run here.
protocol PanelElement {
    static var bytes: Int { get }
    static func load16(_ p: UnsafeRawPointer) -> SIMD16<Float>
    static func load8(_ p: UnsafeRawPointer) -> SIMD8<Float>
}

enum F32Element: PanelElement {
    @inline(__always) static var bytes: Int { 4 }
    @inline(__always) static func load16(_ p: UnsafeRawPointer) -> SIMD16<Float> { p.loadUnaligned(as: SIMD16<Float>.self) }
    @inline(__always) static func load8(_ p: UnsafeRawPointer) -> SIMD8<Float> { p.loadUnaligned(as: SIMD8<Float>.self) }
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
    @inline(__always) static func load8(_ p: UnsafeRawPointer) -> SIMD8<Float> {
        let h = p.loadUnaligned(as: SIMD8<UInt16>.self)
        var r = SIMD8<Float>()
        for i in 0..<8 { r[i] = Float(Float16(bitPattern: h[i])) }
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
    @inline(__always) static func load8(_ p: UnsafeRawPointer) -> SIMD8<Float> {
        let h = p.loadUnaligned(as: SIMD8<UInt16>.self)
        var r = SIMD8<Float>()
        for i in 0..<8 { r[i] = Float(bitPattern: UInt32(h[i]) &<< 16) }
        return r
    }
}

extension PanelFormat {
    /// Narrows a float32 to this format's bits (round to nearest even;
    /// exact for a value that came from the format).
    @inline(__always)
    func narrow(_ v: Float) -> UInt16 {
        self == .bf16 ? floatToBF16(v) : Float16(v).bitPattern
    }

    @inline(__always)
    func widen(_ h: UInt16) -> Float {
        self == .bf16 ? bf16ToFloat(h) : Float(Float16(bitPattern: h))
    }
}
