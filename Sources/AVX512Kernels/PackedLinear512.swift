// The linear-layer kernel over panel-packed weights, sixteen floats wide:
// this module alone is compiled for AVX-512 (skylake-avx512: F, CD, BW, DQ,
// VL), and KickCore calls it only when the processor and the OS report
// AVX-512. KickCore's `packedLinear` is the same computation on eight-wide
// registers, bit for bit.
#if arch(x86_64)
import CPrefetch

typealias Float16x = SIMD16<Float>

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
/// Tiles of three panels (48 rows) by six tokens keep 18 accumulators in
/// registers; per column each tile loads three weight vectors and
/// broadcasts six inputs, with no horizontal sums. The tile's weights
/// (48 × K) stay in L2 across the token groups, and while the first group
/// runs, the next tile's weights are prefetched.
///
/// - weight: the panels, elements of `format`.
/// - panels: whole three-panel tiles of whole rows (`packedLinear` in
///   KickCore sends any other panel to the generic kernel).
/// - out: T rows of stride `ldOut`, columns 16·panels.
public func packedLinear512(tokens T: Int, input X: UnsafePointer<Float>, ldInput: Int,
                            weight W: UnsafeRawPointer, format: PanelFormat, panels: Range<Int>, cols K: Int,
                            out C: UnsafeMutablePointer<Float>, ldOut: Int) {
    precondition(panels.count % PanelLayout.tilePanels == 0, "packedLinear512 takes whole three-panel tiles")
    switch format {
    case .f32: tiles(F32Element.self, T, X, ldInput, W, panels, K, C, ldOut)
    case .f16: tiles(F16Element.self, T, X, ldInput, W, panels, K, C, ldOut)
    case .bf16: tiles(BF16Element.self, T, X, ldInput, W, panels, K, C, ldOut)
    }
}

/// The tiles for one element type (specialized per type).
private func tiles<E: PanelElement>(_: E.Type, _ T: Int, _ X: UnsafePointer<Float>, _ ldInput: Int, _ W: UnsafeRawPointer,
                                    _ panels: Range<Int>, _ K: Int, _ C: UnsafeMutablePointer<Float>, _ ldOut: Int) {
    let panelStride = PanelLayout.rows * K * E.bytes  // in bytes
    var p = panels.lowerBound
    while p < panels.upperBound {
        let w = W + p * panelStride
        let nextTile = p + 3 < panels.upperBound ? w + 3 * panelStride : nil
        var t = 0
        while t < T {
            let pf = t == 0 ? nextTile : nil
            let x = X + t * ldInput
            if T - t >= 2 {
                let m = min(6, T - t)
                tile3x6(E.self, m, x, ldInput, w, panelStride, K, C + t * ldOut + PanelLayout.rows * p, ldOut, pf)
                t += m
            } else {
                tile3x1(E.self, x, w, panelStride, K, C + t * ldOut + PanelLayout.rows * p, pf)
                t += 1
            }
        }
        p += PanelLayout.tilePanels
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

/// One cache line of each of the next tile's three panels per column step
/// for float32 (a column is 64 bytes); 16-bit panels have half as many
/// lines, fetched every other step.
@inline(__always)
private func prefetchColumn<E: PanelElement>(_: E.Type, _ pf: UnsafeRawPointer?, _ k: Int, _ panelStride: Int) {
    guard let pf, E.bytes == 4 || k & 1 == 0 else { return }
    let line = pf + 16 &* E.bytes &* k
    kick_prefetch(line); kick_prefetch(line + panelStride); kick_prefetch(line + 2 &* panelStride)
}

/// Six tokens, or `m` < 6 with the missing rows repeating the last one
/// (computed, not stored): a short tile still runs six independent chains
/// per panel rather than waiting on one. 18 accumulators, three weight
/// vectors and six broadcasts fit the 32 registers; eight tokens spilled.
@inline(__always)
private func tile3x6<E: PanelElement>(_: E.Type, _ m: Int, _ x0: UnsafePointer<Float>, _ ldx: Int, _ w: UnsafeRawPointer, _ ps: Int, _ K: Int,
                     _ c: UnsafeMutablePointer<Float>, _ ldc: Int, _ pf: UnsafeRawPointer?) {
    let x1 = x0 + min(1, m - 1) * ldx, x2 = x0 + min(2, m - 1) * ldx, x3 = x0 + min(3, m - 1) * ldx
    let x4 = x0 + min(4, m - 1) * ldx, x5 = x0 + min(5, m - 1) * ldx
    var r0 = Lanes48(), r1 = Lanes48(), r2 = Lanes48(), r3 = Lanes48(), r4 = Lanes48(), r5 = Lanes48()
    var k = 0, wk = w
    while k < K {
        let w0 = E.load16(wk), w1 = E.load16(wk + ps), w2 = E.load16(wk + 2 &* ps)
        r0.add(x0[k], w0, w1, w2); r1.add(x1[k], w0, w1, w2); r2.add(x2[k], w0, w1, w2)
        r3.add(x3[k], w0, w1, w2); r4.add(x4[k], w0, w1, w2); r5.add(x5[k], w0, w1, w2)
        prefetchColumn(E.self, pf, k, ps)
        k &+= 1
        wk += 16 &* E.bytes
    }
    r0.store(c); r1.store(c + ldc)
    if m > 2 { r2.store(c + 2 * ldc) }
    if m > 3 { r3.store(c + 3 * ldc) }
    if m > 4 { r4.store(c + 4 * ldc) }
    if m > 5 { r5.store(c + 5 * ldc) }
}

@inline(__always)
private func tile3x1<E: PanelElement>(_: E.Type, _ x: UnsafePointer<Float>, _ w: UnsafeRawPointer, _ ps: Int, _ K: Int,
                     _ c: UnsafeMutablePointer<Float>, _ pf: UnsafeRawPointer?) {
    var r = Lanes48()
    var k = 0, wk = w
    while k < K {
        r.add(x[k], E.load16(wk), E.load16(wk + ps), E.load16(wk + 2 &* ps))
        prefetchColumn(E.self, pf, k, ps)
        k &+= 1
        wk += 16 &* E.bytes
    }
    r.store(c)
}

#endif
