import Foundation

// The engine's element-wise loops, eight floats at a time. Each result
// depends only on its own row's values, never on how many rows a batch
// holds, so batch invariance is kept.

typealias Float8 = SIMD8<Float>

@inline(__always)
func load8(_ p: UnsafePointer<Float>) -> Float8 {
    UnsafeRawPointer(p).loadUnaligned(as: Float8.self)
}

@inline(__always)
func store8(_ v: Float8, _ p: UnsafeMutablePointer<Float>) {
    UnsafeMutableRawPointer(p).storeBytes(of: v, as: Float8.self)
}

/// The lane-wise larger and smaller of two vectors as single max/min
/// instructions: the standard library's `pointwiseMax`/`pointwiseMin` stay
/// out-of-line calls with a loop over lanes (1.5% of a long decode's
/// samples under perf).
@inline(__always)
func lanewiseMax(_ a: Float8, _ b: Float8) -> Float8 {
    var r = a
    r.replace(with: b, where: b .> a)
    return r
}

@inline(__always)
func lanewiseMin(_ a: Float8, _ b: Float8) -> Float8 {
    var r = a
    r.replace(with: b, where: b .< a)
    return r
}

/// e^x for eight floats: Cody-Waite reduction by ln 2 and the Cephes
/// polynomial, within 2 ulp of `expf` on [-87.3, 88.3]. Inputs are clamped
/// to that range: below it the result is the smallest normal float rather
/// than a denormal or 0, above it about 2.4e38 rather than up to FLT_MAX or
/// +inf. SwiGLU and softmax never need more.
@inline(__always)
func exp8(_ x: Float8) -> Float8 {
    let x = lanewiseMin(lanewiseMax(x, Float8(repeating: -87.33654)), Float8(repeating: 88.37626))
    // n = round(x / ln 2): adding 1.5·2^23 leaves n in the low mantissa bits
    let shifter = Float8(repeating: 12582912)
    let big = (x * 1.44269504088896341) + shifter
    let n = big - shifter
    var r = x.addingProduct(n, Float8(repeating: -0.693359375))
    r = r.addingProduct(n, Float8(repeating: 2.12194440e-4))
    var p = Float8(repeating: 1.3981999507e-3).addingProduct(Float8(repeating: 1.9875691500e-4), r)
    p = Float8(repeating: 8.3334519073e-3).addingProduct(p, r)
    p = Float8(repeating: 4.1665795894e-2).addingProduct(p, r)
    p = Float8(repeating: 1.6666665459e-1).addingProduct(p, r)
    p = Float8(repeating: 5.0000001201e-1).addingProduct(p, r)
    let y = (r + 1).addingProduct(p, r * r)
    // 2^n through the exponent bits (n is in -126...127 after the clamp)
    let bits = (unsafeBitCast(big, to: SIMD8<Int32>.self) &- 0x4B40_0000 &+ 127) &<< 23
    return y * unsafeBitCast(bits, to: Float8.self)
}

/// out[i] = silu(gate[i]) · up[i] for n values (SwiGLU).
@inline(__always)
public func swiglu(_ gate: UnsafePointer<Float>, _ up: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>, _ n: Int) {
    var i = 0
    while i + 8 <= n {
        let a = load8(gate + i)
        store8(a / (1 + exp8(-a)) * load8(up + i), out + i)
        i += 8
    }
    while i < n {
        let a = gate[i]
        out[i] = a / (1 + Foundation.exp(-a)) * up[i]
        i += 1
    }
}

/// The sum of a[i]·b[i], in eight lanes then across them.
@inline(__always)
func dot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int) -> Float {
    var i = 0
    var acc = Float8()
    while i + 8 <= n {
        acc = acc.addingProduct(load8(a + i), load8(b + i))
        i += 8
    }
    var s = acc.sum()
    while i < n { s += a[i] * b[i]; i += 1 }
    return s
}

/// y = x / sqrt(mean(x²) + eps) · w
@inline(__always)
func rmsNorm(_ x: UnsafePointer<Float>, _ w: [Float], _ y: UnsafeMutablePointer<Float>, _ n: Int, _ eps: Float) {
    let inv = 1 / (dot(x, x, n) / Float(n) + eps).squareRoot()
    w.withUnsafeBufferPointer { wb in
        let wp = wb.baseAddress!
        var i = 0
        while i + 8 <= n {
            store8(load8(x + i) * inv * load8(wp + i), y + i)
            i += 8
        }
        while i < n { y[i] = x[i] * inv * wp[i]; i += 1 }
    }
}

/// The largest of `count` values.
@inline(__always)
func maxValue(_ p: UnsafePointer<Float>, _ count: Int) -> Float {
    var i = 0
    var m8 = Float8(repeating: -.infinity)
    while i + 8 <= count {
        m8 = lanewiseMax(m8, load8(p + i))
        i += 8
    }
    var m = m8.max()
    while i < count { m = max(m, p[i]); i += 1 }
    return m
}

/// p[i] = e^(p[i] - shift) in place; returns their sum.
@inline(__always)
func expShifted(_ p: UnsafeMutablePointer<Float>, _ count: Int, shift: Float) -> Float {
    var i = 0
    var s8 = Float8()
    while i + 8 <= count {
        let e = exp8(load8(p + i) - shift)
        store8(e, p + i)
        s8 += e
        i += 8
    }
    var s = s8.sum()
    while i < count {
        let e = Foundation.exp(p[i] - shift)
        p[i] = e
        s += e
        i += 1
    }
    return s
}

/// In-place softmax of `count` values.
@inline(__always)
func softmax(_ p: UnsafeMutablePointer<Float>, count: Int) {
    let inv = 1 / expShifted(p, count, shift: maxValue(p, count))
    var i = 0
    while i + 8 <= count {
        store8(load8(p + i) * inv, p + i)
        i += 8
    }
    while i < count { p[i] *= inv; i += 1 }
}
