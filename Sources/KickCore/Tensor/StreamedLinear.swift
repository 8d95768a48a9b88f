import CPrefetch

/// A linear layer for a few tokens (a decode step's batch): out = X · Wᵀ
/// with the weight read straight from its row-major storage, once.
///
/// Why not SGEMM here: for few token rows OpenBLAS spends a third of the
/// time repacking the weight on every call (it cannot keep a packed copy),
/// a copy that waits on memory while the FMA units idle. This kernel takes
/// the weight in blocks of rows small enough for L2, asks for the next
/// block while it multiplies this one, and runs each block against the
/// tokens four at a time from L1. Each output is one dot product over the
/// columns in a fixed order, so a token's result does not depend on how
/// many other tokens share the call.
///
/// - input: T × cols row-major; weight: rows × cols row-major, of which
///   `rows` are computed; out: T rows of stride `ldOut`.
/// - Needs cols % 8 == 0.
func streamedLinear(tokens T: Int, input X: UnsafePointer<Float>, weight W: UnsafePointer<Float>,
                    rows: Range<Int>, cols K: Int, out C: UnsafeMutablePointer<Float>, ldOut: Int) {
    precondition(K % 8 == 0, "streamedLinear needs a multiple of 8 columns")
    // rows per block: at most 32 and 256 KB of weight, an even count
    // (32 measured 5-10% faster than 16 or 64 on SmolLM2's layers)
    let blockRows = max(2, min(32, (256 * 1024 / (K * 4)) & ~1))
    let tokenBlocks = (T + 3) / 4
    var b0 = rows.lowerBound
    while b0 < rows.upperBound {
        let b1 = min(rows.upperBound, b0 + blockRows)
        // the next block, spread over this block's kernel calls
        let next = UnsafeRawPointer(W + b1 * K)
        let nextEnd = UnsafeRawPointer(W + min(rows.upperBound, b1 + blockRows) * K)
        let calls = max(1, tokenBlocks * ((b1 - b0 + 1) / 2))
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
                if r + 2 <= b1 && n == 4 {
                    fourByTwo(X + t * K, W + r * K, K, C + t * ldOut + r, ldOut)
                    r += 2
                } else if r + 4 <= b1 {
                    for i in 0..<n { oneByFour(X + (t + i) * K, W + r * K, K, C + (t + i) * ldOut + r) }
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

/// One token by four weight rows (the last tokens of a call): four
/// independent chains, each summed exactly as `fourByTwo` sums it.
@inline(__always)
private func oneByFour(_ x: UnsafePointer<Float>, _ w0: UnsafePointer<Float>, _ K: Int, _ c: UnsafeMutablePointer<Float>) {
    let w1 = w0 + K, w2 = w1 + K, w3 = w2 + K
    var a0 = Float8(), a1 = Float8(), a2 = Float8(), a3 = Float8()
    var k = 0
    while k < K {
        let v = load8(x + k)
        a0 = a0.addingProduct(v, load8(w0 + k)); a1 = a1.addingProduct(v, load8(w1 + k))
        a2 = a2.addingProduct(v, load8(w2 + k)); a3 = a3.addingProduct(v, load8(w3 + k))
        k += 8
    }
    c[0] = a0.sum(); c[1] = a1.sum(); c[2] = a2.sum(); c[3] = a3.sum()
}

/// Four tokens by two weight rows: eight accumulators, which with the two
/// weight vectors and an input vector fit the 16 AVX registers.
@inline(__always)
private func fourByTwo(_ x0: UnsafePointer<Float>, _ w0: UnsafePointer<Float>, _ K: Int,
                       _ c: UnsafeMutablePointer<Float>, _ ldc: Int) {
    let x1 = x0 + K, x2 = x1 + K, x3 = x2 + K, w1 = w0 + K
    var a00 = Float8(), a01 = Float8(), a10 = Float8(), a11 = Float8()
    var a20 = Float8(), a21 = Float8(), a30 = Float8(), a31 = Float8()
    var k = 0
    while k < K {
        let v0 = load8(w0 + k), v1 = load8(w1 + k)
        var x = load8(x0 + k)
        a00 = a00.addingProduct(x, v0); a01 = a01.addingProduct(x, v1)
        x = load8(x1 + k)
        a10 = a10.addingProduct(x, v0); a11 = a11.addingProduct(x, v1)
        x = load8(x2 + k)
        a20 = a20.addingProduct(x, v0); a21 = a21.addingProduct(x, v1)
        x = load8(x3 + k)
        a30 = a30.addingProduct(x, v0); a31 = a31.addingProduct(x, v1)
        k += 8
    }
    c[0] = a00.sum(); c[1] = a01.sum()
    c[ldc] = a10.sum(); c[ldc + 1] = a11.sum()
    c[2 * ldc] = a20.sum(); c[2 * ldc + 1] = a21.sum()
    c[3 * ldc] = a30.sum(); c[3 * ldc + 1] = a31.sum()
}
