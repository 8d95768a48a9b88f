// The linear-layer kernel over panel-packed weights, sixteen floats wide:
// this module alone is compiled for AVX-512 (skylake-avx512: F, CD, BW, DQ,
// VL), and KickCore calls it only when the processor and the OS report
// AVX-512. KickCore's `packedLinear` is the same computation on eight-wide
// registers, bit for bit.
#if arch(x86_64)
import CPrefetch

typealias Float16x = SIMD16<Float>

@inline(__always)
private func load16(_ p: UnsafePointer<Float>) -> Float16x {
    UnsafeRawPointer(p).loadUnaligned(as: Float16x.self)
}

@inline(__always)
private func store16(_ v: Float16x, _ p: UnsafeMutablePointer<Float>) {
    UnsafeMutableRawPointer(p).storeBytes(of: v, as: Float16x.self)
}

/// out[t, r] = Σₖ X[t, k] · W[r, k] for the weight panels `panels`, where
/// panel p holds rows 16p..<16p+16 column by column (`PackedWeight`'s
/// layout: element (r, k) at 16·K·p + 16·k + r − 16p). Each output is one
/// fused multiply-add chain over k in order, so a token's result depends
/// neither on the other tokens of the call nor on the tiling.
///
/// Tiles of three panels (48 rows) by eight tokens keep 24 accumulators in
/// registers; per column each tile loads three weight vectors and
/// broadcasts eight inputs, with no horizontal sums. The tile's weights
/// (48 × K) stay in L2 across the token groups, and while the first group
/// runs, the next tile's weights are prefetched.
///
/// - rows: the weight's true row count; lanes past it are not written.
/// - out: T rows of stride `ldOut`, columns 16·panels.
public func packedLinear512(tokens T: Int, input X: UnsafePointer<Float>, ldInput: Int,
                            weight W: UnsafePointer<Float>, panels: Range<Int>, cols K: Int, rows: Int,
                            out C: UnsafeMutablePointer<Float>, ldOut: Int) {
    let panelStride = 16 * K
    var p = panels.lowerBound
    while p < panels.upperBound {
        let n = min(3, panels.upperBound - p)
        let w = W + p * panelStride
        let nextTile = p + n < panels.upperBound ? UnsafeRawPointer(w + n * panelStride) : nil
        let full = n == 3 && 16 * (p + 3) <= rows
        var t = 0
        while t < T {
            let pf = t == 0 ? nextTile : nil
            let x = X + t * ldInput
            if full && T - t >= 8 {
                tile3x8(x, ldInput, w, panelStride, K, C + t * ldOut + 16 * p, ldOut, pf)
                t += 8
            } else if full && T - t >= 4 {
                tile3x4(x, ldInput, w, panelStride, K, C + t * ldOut + 16 * p, ldOut, pf)
                t += 4
            } else if full {
                tile3x1(x, w, panelStride, K, C + t * ldOut + 16 * p, pf)
                t += 1
            } else {
                // a last panel or two, or one that runs past the rows
                for j in 0..<n {
                    var lanes = [Float](repeating: 0, count: 16)
                    lanes.withUnsafeMutableBufferPointer { tile1x1(x, w + j * panelStride, K, $0.baseAddress!) }
                    let r0 = 16 * (p + j)
                    for i in 0..<min(16, rows - r0) { C[t * ldOut + r0 + i] = lanes[i] }
                }
                t += 1
            }
        }
        p += n
    }
}

/// Three panels' accumulators for one token.
private struct Lanes48 {
    var a = Float16x(), b = Float16x(), c = Float16x()

    @inline(__always)
    mutating func add(_ x: Float, _ w0: Float16x, _ w1: Float16x, _ w2: Float16x) {
        let v = Float16x(repeating: x)
        a = a.addingProduct(v, w0); b = b.addingProduct(v, w1); c = c.addingProduct(v, w2)
    }

    @inline(__always)
    func store(_ o: UnsafeMutablePointer<Float>) { store16(a, o); store16(b, o + 16); store16(c, o + 32) }
}

@inline(__always)
private func prefetchColumn(_ pf: UnsafeRawPointer?, _ k: Int, _ panelStride: Int) {
    guard let pf else { return }
    let line = pf + 64 * k
    kick_prefetch(line); kick_prefetch(line + 4 * panelStride); kick_prefetch(line + 8 * panelStride)
}

@inline(__always)
private func tile3x8(_ x0: UnsafePointer<Float>, _ ldx: Int, _ w: UnsafePointer<Float>, _ ps: Int, _ K: Int,
                     _ c: UnsafeMutablePointer<Float>, _ ldc: Int, _ pf: UnsafeRawPointer?) {
    let x1 = x0 + ldx, x2 = x1 + ldx, x3 = x2 + ldx, x4 = x3 + ldx, x5 = x4 + ldx, x6 = x5 + ldx, x7 = x6 + ldx
    var r0 = Lanes48(), r1 = Lanes48(), r2 = Lanes48(), r3 = Lanes48()
    var r4 = Lanes48(), r5 = Lanes48(), r6 = Lanes48(), r7 = Lanes48()
    var k = 0
    while k < K {
        let o = 16 * k
        let w0 = load16(w + o), w1 = load16(w + ps + o), w2 = load16(w + 2 * ps + o)
        r0.add(x0[k], w0, w1, w2); r1.add(x1[k], w0, w1, w2); r2.add(x2[k], w0, w1, w2); r3.add(x3[k], w0, w1, w2)
        r4.add(x4[k], w0, w1, w2); r5.add(x5[k], w0, w1, w2); r6.add(x6[k], w0, w1, w2); r7.add(x7[k], w0, w1, w2)
        prefetchColumn(pf, k, ps)
        k += 1
    }
    r0.store(c); r1.store(c + ldc); r2.store(c + 2 * ldc); r3.store(c + 3 * ldc)
    r4.store(c + 4 * ldc); r5.store(c + 5 * ldc); r6.store(c + 6 * ldc); r7.store(c + 7 * ldc)
}

@inline(__always)
private func tile3x4(_ x0: UnsafePointer<Float>, _ ldx: Int, _ w: UnsafePointer<Float>, _ ps: Int, _ K: Int,
                     _ c: UnsafeMutablePointer<Float>, _ ldc: Int, _ pf: UnsafeRawPointer?) {
    let x1 = x0 + ldx, x2 = x1 + ldx, x3 = x2 + ldx
    var r0 = Lanes48(), r1 = Lanes48(), r2 = Lanes48(), r3 = Lanes48()
    var k = 0
    while k < K {
        let o = 16 * k
        let w0 = load16(w + o), w1 = load16(w + ps + o), w2 = load16(w + 2 * ps + o)
        r0.add(x0[k], w0, w1, w2); r1.add(x1[k], w0, w1, w2); r2.add(x2[k], w0, w1, w2); r3.add(x3[k], w0, w1, w2)
        prefetchColumn(pf, k, ps)
        k += 1
    }
    r0.store(c); r1.store(c + ldc); r2.store(c + 2 * ldc); r3.store(c + 3 * ldc)
}

@inline(__always)
private func tile3x1(_ x: UnsafePointer<Float>, _ w: UnsafePointer<Float>, _ ps: Int, _ K: Int,
                     _ c: UnsafeMutablePointer<Float>, _ pf: UnsafeRawPointer?) {
    var r = Lanes48()
    var k = 0
    while k < K {
        let o = 16 * k
        r.add(x[k], load16(w + o), load16(w + ps + o), load16(w + 2 * ps + o))
        prefetchColumn(pf, k, ps)
        k += 1
    }
    r.store(c)
}

@inline(__always)
private func tile1x1(_ x: UnsafePointer<Float>, _ w: UnsafePointer<Float>, _ K: Int, _ c: UnsafeMutablePointer<Float>) {
    var a = Float16x()
    for k in 0..<K { a = a.addingProduct(Float16x(repeating: x[k]), load16(w + 16 * k)) }
    store16(a, c)
}
#endif
