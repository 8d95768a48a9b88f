import CPrefetch

/// Attention of one new token (a decode step) for the query heads that
/// share one KV head: scores against every cached key, softmax, and the
/// probability-weighted sum of the cached values.
///
/// Batched decoding spends most of its non-BLAS time here (a step runs it
/// once per sequence, layer and KV head), so the loops keep independent
/// accumulators in registers: four key rows at a time for the scores, and
/// 64 output floats at a time for the values. A head size that is not a
/// multiple of 8 (tiny test models) takes plain loops.
///
/// - queries: `heads` rows of `headDim`, contiguous; out: the same layout.
/// - scores: room for `heads × positions` floats.
@inline(__always)
func decodeAttention(queries q: UnsafePointer<Float>, heads: Int,
                     keys K: UnsafePointer<Float>, values V: UnsafePointer<Float>,
                     positions ctx: Int, headDim hd: Int, scale: Float,
                     scores S: UnsafeMutablePointer<Float>, out O: UnsafeMutablePointer<Float>,
                     nextKeys: UnsafePointer<Float>? = nil) {
    guard hd % 8 == 0 else {
        for h in 0..<heads {
            let p = S + h * ctx, oh = O + h * hd
            for j in 0..<ctx { p[j] = dot(q + h * hd, K + j * hd, hd) * scale }
            let inv = 1 / expShifted(p, ctx, shift: maxValue(p, ctx))
            for c in 0..<hd {
                var a: Float = 0
                for j in 0..<ctx { a += p[j] * V[j * hd + c] }
                oh[c] = a * inv
            }
        }
        return
    }
    // scores: q·k for four positions at a time, each key row reused by every head
    var j = 0
    let linesPerRow = hd * 4 / 64
    while j + 4 <= ctx {
        let k0 = K + j * hd, k1 = k0 + hd, k2 = k1 + hd, k3 = k2 + hd
        // the values of these positions, wanted after the softmax: the
        // cache is far larger than L3, so each row comes from memory
        var pv = UnsafeRawPointer(V + j * hd)
        for _ in 0..<4 * linesPerRow { kick_prefetch(pv); pv += 64 }
        for h in 0..<heads {
            let qh = q + h * hd
            var a0 = Float8(), a1 = Float8(), a2 = Float8(), a3 = Float8()
            var c = 0
            while c < hd {
                let qv = load8(qh + c)
                a0 = a0.addingProduct(qv, load8(k0 + c))
                a1 = a1.addingProduct(qv, load8(k1 + c))
                a2 = a2.addingProduct(qv, load8(k2 + c))
                a3 = a3.addingProduct(qv, load8(k3 + c))
                c += 8
            }
            let row = S + h * ctx + j
            row[0] = a0.sum() * scale
            row[1] = a1.sum() * scale
            row[2] = a2.sum() * scale
            row[3] = a3.sum() * scale
        }
        j += 4
    }
    while j < ctx {
        for h in 0..<heads { S[h * ctx + j] = dot(q + h * hd, K + j * hd, hd) * scale }
        j += 1
    }
    for h in 0..<heads {
        let p = S + h * ctx
        let inv = 1 / expShifted(p, ctx, shift: maxValue(p, ctx))
        let oh = O + h * hd
        var c0 = 0
        // 64 output floats in eight registers while the positions stream by
        while c0 + 64 <= hd {
            var a0 = Float8(), a1 = Float8(), a2 = Float8(), a3 = Float8()
            var a4 = Float8(), a5 = Float8(), a6 = Float8(), a7 = Float8()
            for j in 0..<ctx {
                if h == 0 && c0 == 0, let nk = nextKeys {
                    // the next KV head's keys, while this one's values stream by
                    var pk = UnsafeRawPointer(nk + j * hd)
                    for _ in 0..<linesPerRow { kick_prefetch(pk); pk += 64 }
                }
                let w = Float8(repeating: p[j])
                let v = V + j * hd + c0
                a0 = a0.addingProduct(w, load8(v))
                a1 = a1.addingProduct(w, load8(v + 8))
                a2 = a2.addingProduct(w, load8(v + 16))
                a3 = a3.addingProduct(w, load8(v + 24))
                a4 = a4.addingProduct(w, load8(v + 32))
                a5 = a5.addingProduct(w, load8(v + 40))
                a6 = a6.addingProduct(w, load8(v + 48))
                a7 = a7.addingProduct(w, load8(v + 56))
            }
            store8(a0 * inv, oh + c0); store8(a1 * inv, oh + c0 + 8)
            store8(a2 * inv, oh + c0 + 16); store8(a3 * inv, oh + c0 + 24)
            store8(a4 * inv, oh + c0 + 32); store8(a5 * inv, oh + c0 + 40)
            store8(a6 * inv, oh + c0 + 48); store8(a7 * inv, oh + c0 + 56)
            c0 += 64
        }
        while c0 < hd {
            var a = Float8()
            for j in 0..<ctx { a = a.addingProduct(Float8(repeating: p[j]), load8(V + j * hd + c0)) }
            store8(a * inv, oh + c0)
            c0 += 8
        }
    }
}
