// The streaming linear-layer kernel again, sixteen floats wide: this module
// alone is compiled for AVX-512 (skylake-avx512: F, CD, BW, DQ, VL), and
// KickCore calls it only when the processor and the OS report AVX-512.
// A 512-bit FMA does twice the work of the AVX2 one, and a decode step's
// products are bound by the FMA units, not by memory.
#if arch(x86_64)
import CPrefetch

typealias Float16x = SIMD16<Float>

@inline(__always)
private func load16(_ p: UnsafePointer<Float>) -> Float16x {
    UnsafeRawPointer(p).loadUnaligned(as: Float16x.self)
}

/// out[t, r] = Σₖ X[t, k] · W[r, k] for rows `rows` of W, as KickCore's
/// `streamedLinear` (same blocking and prefetching) but with 16 lanes and
/// a four-token by four-row register block. Each output is one 16-lane
/// chain over k in order, then its lane sum, on every path, so a token's
/// result does not depend on how many tokens share the call.
/// Needs cols % 16 == 0.
public func streamedLinear512(tokens T: Int, input X: UnsafePointer<Float>, weight W: UnsafePointer<Float>,
                              rows: Range<Int>, cols K: Int, out C: UnsafeMutablePointer<Float>, ldOut: Int) {
    precondition(K % 16 == 0, "streamedLinear512 needs a multiple of 16 columns")
    // rows per block: at most 32 and 256 KB of weight, a multiple of four
    let blockRows = max(4, min(32, (256 * 1024 / (K * 4)) & ~3))
    let tokenBlocks = (T + 3) / 4
    var b0 = rows.lowerBound
    while b0 < rows.upperBound {
        let b1 = min(rows.upperBound, b0 + blockRows)
        let next = UnsafeRawPointer(W + b1 * K)
        let nextEnd = UnsafeRawPointer(W + min(rows.upperBound, b1 + blockRows) * K)
        let calls = max(1, tokenBlocks * ((b1 - b0 + 3) / 4))
        let linesPerCall = ((nextEnd - next) / 64 + calls - 1) / calls
        var fetched = 0
        var t = 0
        while t < T {
            let n = min(4, T - t)
            var r = b0
            while r < b1 {
                for _ in 0..<linesPerCall where next + fetched < nextEnd {
                    kick_prefetch(next + fetched)
                    fetched += 64
                }
                if r + 4 <= b1 {
                    if n == 4 {
                        fourByFour(X + t * K, W + r * K, K, C + t * ldOut + r, ldOut)
                    } else {
                        for i in 0..<n { oneByFour(X + (t + i) * K, W + r * K, K, C + (t + i) * ldOut + r) }
                    }
                    r += 4
                } else {
                    for i in 0..<n { C[(t + i) * ldOut + r] = dot(X + (t + i) * K, W + r * K, K) }
                    r += 1
                }
            }
            t += n
        }
        b0 = b1
    }
}

@inline(__always)
private func dot(_ x: UnsafePointer<Float>, _ w: UnsafePointer<Float>, _ K: Int) -> Float {
    var a = Float16x()
    var k = 0
    while k < K { a = a.addingProduct(load16(x + k), load16(w + k)); k += 16 }
    return a.sum()
}

@inline(__always)
private func oneByFour(_ x: UnsafePointer<Float>, _ w0: UnsafePointer<Float>, _ K: Int, _ c: UnsafeMutablePointer<Float>) {
    let w1 = w0 + K, w2 = w1 + K, w3 = w2 + K
    var a0 = Float16x(), a1 = Float16x(), a2 = Float16x(), a3 = Float16x()
    var k = 0
    while k < K {
        let v = load16(x + k)
        a0 = a0.addingProduct(v, load16(w0 + k)); a1 = a1.addingProduct(v, load16(w1 + k))
        a2 = a2.addingProduct(v, load16(w2 + k)); a3 = a3.addingProduct(v, load16(w3 + k))
        k += 16
    }
    c[0] = a0.sum(); c[1] = a1.sum(); c[2] = a2.sum(); c[3] = a3.sum()
}

/// Sixteen accumulators, four weight vectors and an input vector: 21 of
/// the 32 AVX-512 registers.
@inline(__always)
private func fourByFour(_ x0: UnsafePointer<Float>, _ w0: UnsafePointer<Float>, _ K: Int,
                        _ c: UnsafeMutablePointer<Float>, _ ldc: Int) {
    let x1 = x0 + K, x2 = x1 + K, x3 = x2 + K
    let w1 = w0 + K, w2 = w1 + K, w3 = w2 + K
    var a00 = Float16x(), a01 = Float16x(), a02 = Float16x(), a03 = Float16x()
    var a10 = Float16x(), a11 = Float16x(), a12 = Float16x(), a13 = Float16x()
    var a20 = Float16x(), a21 = Float16x(), a22 = Float16x(), a23 = Float16x()
    var a30 = Float16x(), a31 = Float16x(), a32 = Float16x(), a33 = Float16x()
    var k = 0
    while k < K {
        let v0 = load16(w0 + k), v1 = load16(w1 + k), v2 = load16(w2 + k), v3 = load16(w3 + k)
        var x = load16(x0 + k)
        a00 = a00.addingProduct(x, v0); a01 = a01.addingProduct(x, v1); a02 = a02.addingProduct(x, v2); a03 = a03.addingProduct(x, v3)
        x = load16(x1 + k)
        a10 = a10.addingProduct(x, v0); a11 = a11.addingProduct(x, v1); a12 = a12.addingProduct(x, v2); a13 = a13.addingProduct(x, v3)
        x = load16(x2 + k)
        a20 = a20.addingProduct(x, v0); a21 = a21.addingProduct(x, v1); a22 = a22.addingProduct(x, v2); a23 = a23.addingProduct(x, v3)
        x = load16(x3 + k)
        a30 = a30.addingProduct(x, v0); a31 = a31.addingProduct(x, v1); a32 = a32.addingProduct(x, v2); a33 = a33.addingProduct(x, v3)
        k += 16
    }
    var o = c
    o[0] = a00.sum(); o[1] = a01.sum(); o[2] = a02.sum(); o[3] = a03.sum(); o += ldc
    o[0] = a10.sum(); o[1] = a11.sum(); o[2] = a12.sum(); o[3] = a13.sum(); o += ldc
    o[0] = a20.sum(); o[1] = a21.sum(); o[2] = a22.sum(); o[3] = a23.sum(); o += ldc
    o[0] = a30.sum(); o[1] = a31.sum(); o[2] = a32.sum(); o[3] = a33.sum()
}
#endif
