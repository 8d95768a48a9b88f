import CBLAS
import Foundation

/// Which linear layers' input a stage of a decoder block produces, in order;
/// calibration stops a block's forward after the stage it needs.
enum BlockStage: Int, Comparable {
    case qkvInput, oInput, gateUpInput, downInput, output
    static func < (a: Self, b: Self) -> Bool { a.rawValue < b.rawValue }
}

/// The decoder block's arithmetic, shared by the engine's forward pass and
/// the block-by-block calibration of compression.
struct DecoderBlockKernel: Sendable {
    let config: LlamaConfig
    let invFreq: [Double]

    init(config: LlamaConfig) {
        self.config = config
        let hd = config.headDim
        invFreq = (0..<hd / 2).map { pow(Double(config.ropeTheta), -2.0 * Double($0) / Double(hd)) }
    }

    /// cos/sin per (token, frequency), computed in double once per forward.
    func ropeTable(_ positions: [Int]) -> (cos: [Float], sin: [Float]) {
        let half = config.headDim / 2
        var cs = [Float](repeating: 0, count: positions.count * half)
        var sn = cs
        for (t, p) in positions.enumerated() {
            for i in 0..<half {
                let a = Double(p) * invFreq[i]
                cs[t * half + i] = Float(Foundation.cos(a))
                sn[t * half + i] = Float(Foundation.sin(a))
            }
        }
        return (cs, sn)
    }

    /// Per-forward activation buffers, sized once for the batch's token count.
    struct BlockScratch {
        var xn, qkv, q, k, v, attn, gateUp, hidden, tmp: [Float]
        var scores: [Float] = []
        let tokens: Int
        init(config c: LlamaConfig, tokens T: Int) {
            tokens = T
            xn = .init(repeating: 0, count: T * c.hiddenSize)
            q = .init(repeating: 0, count: T * c.numHeads * c.headDim)
            k = .init(repeating: 0, count: T * c.numKVHeads * c.headDim)
            v = k
            qkv = .init(repeating: 0, count: q.count + 2 * k.count)
            attn = q
            gateUp = .init(repeating: 0, count: 2 * T * c.intermediateSize)
            hidden = .init(repeating: 0, count: T * c.intermediateSize)
            tmp = xn
        }
    }

    /// One decoder block: attention then SwiGLU MLP, residuals added into x.
    static let cores = ProcessInfo.processInfo.activeProcessorCount

    func runBlock(_ l: Int, _ w: EngineBlock, x: inout [Float], tokens T: Int,
                  rope: (cos: [Float], sin: [Float]), items: [BatchItem], rowStart: [Int],
                  scratch s: inout BlockScratch, observer: LinearInputObserver?,
                  cacheLayer: Int? = nil, stopAfter: BlockStage = .output) {
        let c = config
        let cl = cacheLayer ?? l
        let H = c.hiddenSize, hd = c.headDim
        let qDim = c.numHeads * hd, kvDim = c.numKVHeads * hd, F = c.intermediateSize
        // attention rmsnorm
        normRows(x, w.attnNorm, &s.xn, T)
        if let observer { s.xn.withUnsafeBufferPointer { observer(l, [.q, .k, .v], UnsafeBufferPointer(rebasing: $0[0..<T * H]), T, H) } }
        if stopAfter == .qkvInput { return }
        // q, k and v for every token of the batch in one product, then split
        linear(s.xn, w.qkv, &s.qkv, T)
        withUnsafeMutablePointer(to: &s.q) { q in
            withUnsafeMutablePointer(to: &s.k) { k in
                withUnsafeMutablePointer(to: &s.v) { v in split(s.qkv, T, [(qDim, q), (kvDim, k), (kvDim, v)]) }
            }
        }
        // RoPE on queries and keys
        applyRope(&s.q, heads: c.numHeads, T, rope)
        applyRope(&s.k, heads: c.numKVHeads, T, rope)
        // store keys/values, then attention per sequence
        for (i, it) in items.enumerated() { storeKV(cl, it, rowStart[i], s.k, s.v) }
        s.attn.withUnsafeMutableBufferPointer { ob in
            // decoding sequences (one new token each) are plain loops, independent
            // of each other: split them over the cores while BLAS threads rest
            let decoding = items.indices.filter { items[$0].tokens.count == 1 }
            if decoding.count >= 8 && Self.cores > 1 {
                let chunks = Self.cores
                let q = s.q
                nonisolated(unsafe) let out = ob
                nonisolated(unsafe) let items = items
                DispatchQueue.concurrentPerform(iterations: chunks) { k in
                    var scores: [Float] = []
                    for d in stride(from: k, to: decoding.count, by: chunks) {
                        attention(cl, items[decoding[d]], rowStart[decoding[d]], q: q, out: out, scores: &scores)
                    }
                }
                for (i, it) in items.enumerated() where it.tokens.count != 1 { attention(cl, it, rowStart[i], q: s.q, out: ob, scores: &s.scores) }
            } else {
                for (i, it) in items.enumerated() { attention(cl, it, rowStart[i], q: s.q, out: ob, scores: &s.scores) }
            }
        }
        if let observer { s.attn.withUnsafeBufferPointer { observer(l, [.o], UnsafeBufferPointer(rebasing: $0[0..<T * qDim]), T, qDim) } }
        if stopAfter == .oInput { return }
        // output projection and residual
        linear(s.attn, w.o, &s.tmp, T)
        addInPlace(&x, s.tmp)
        // ffn rmsnorm, gate and up in one product, SwiGLU, down projection, residual
        normRows(x, w.ffnNorm, &s.xn, T)
        if let observer { s.xn.withUnsafeBufferPointer { observer(l, [.gate, .up], UnsafeBufferPointer(rebasing: $0[0..<T * H]), T, H) } }
        if stopAfter == .gateUpInput { return }
        linear(s.xn, w.gateUp, &s.gateUp, T)
        s.gateUp.withUnsafeBufferPointer { gu in
            s.hidden.withUnsafeMutableBufferPointer { h in
                for t in 0..<T {
                    let g = gu.baseAddress! + t * 2 * F
                    swiglu(g, g + F, h.baseAddress! + t * F, F)
                }
            }
        }
        if let observer { s.hidden.withUnsafeBufferPointer { observer(l, [.down], UnsafeBufferPointer(rebasing: $0[0..<T * F]), T, F) } }
        if stopAfter == .downInput { return }
        linear(s.hidden, w.down, &s.tmp, T)
        addInPlace(&x, s.tmp)
    }

    /// Splits rows of a fused product into its parts.
    func split(_ fused: [Float], _ T: Int, _ parts: [(Int, UnsafeMutablePointer<[Float]>)]) {
        let width = parts.reduce(0) { $0 + $1.0 }
        fused.withUnsafeBufferPointer { f in
            var col = 0
            for (w, dst) in parts {
                dst.pointee.withUnsafeMutableBufferPointer { d in
                    for t in 0..<T { (d.baseAddress! + t * w).update(from: f.baseAddress! + t * width + col, count: w) }
                }
                col += w
            }
        }
    }

    @inline(__always)
    func linear(_ input: [Float], _ w: Matrix, _ out: inout [Float], _ T: Int) {
        input.withUnsafeBufferPointer { a in
            w.data.withUnsafeBufferPointer { b in
                out.withUnsafeMutableBufferPointer { o in
                    if T == 1 {
                        // one token: a matrix-vector product, which OpenBLAS threads and streams better
                        BLAS.gemv(rows: w.rows, cols: w.cols, a: b.baseAddress!, x: a.baseAddress!, y: o.baseAddress!)
                    } else {
                        BLAS.gemmNT(m: T, n: w.rows, k: w.cols, a: a.baseAddress!, lda: w.cols,
                                    b: b.baseAddress!, ldb: w.cols, c: o.baseAddress!, ldc: w.rows)
                    }
                }
            }
        }
    }

    func addInPlace(_ x: inout [Float], _ y: [Float]) {
        x.withUnsafeMutableBufferPointer { xb in
            y.withUnsafeBufferPointer { yb in
                for i in 0..<xb.count { xb[i] += yb[i] }
            }
        }
    }

    func normRows(_ x: [Float], _ w: [Float], _ out: inout [Float], _ T: Int) {
        let H = config.hiddenSize, eps = config.rmsNormEps
        x.withUnsafeBufferPointer { xb in
            out.withUnsafeMutableBufferPointer { ob in
                for t in 0..<T { rmsNorm(xb.baseAddress! + t * H, w, ob.baseAddress! + t * H, H, eps) }
            }
        }
    }

    func applyRope(_ m: inout [Float], heads: Int, _ T: Int, _ rope: (cos: [Float], sin: [Float])) {
        let hd = config.headDim, half = hd / 2
        let adjacent = config.ropeStyle == .adjacentPairs
        m.withUnsafeMutableBufferPointer { mb in
            rope.cos.withUnsafeBufferPointer { cs in
                rope.sin.withUnsafeBufferPointer { sn in
                    for t in 0..<T {
                        let c0 = cs.baseAddress! + t * half, s0 = sn.baseAddress! + t * half
                        for h in 0..<heads {
                            let p = mb.baseAddress! + (t * heads + h) * hd
                            if adjacent {
                                for i in 0..<half {
                                    let a = p[2 * i], b = p[2 * i + 1]
                                    p[2 * i] = a * c0[i] - b * s0[i]
                                    p[2 * i + 1] = a * s0[i] + b * c0[i]
                                }
                            } else {
                                for i in 0..<half {
                                    let a = p[i], b = p[i + half]
                                    p[i] = a * c0[i] - b * s0[i]
                                    p[i + half] = a * s0[i] + b * c0[i]
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    func storeKV(_ l: Int, _ it: BatchItem, _ row0: Int, _ k: [Float], _ v: [Float]) {
        let hd = config.headDim, kvh = config.numKVHeads
        let cache = it.cache
        k.withUnsafeBufferPointer { kb in
            v.withUnsafeBufferPointer { vb in
                for j in 0..<it.tokens.count {
                    let pos = cache.length + j
                    for g in 0..<kvh {
                        let src = ((row0 + j) * kvh + g) * hd
                        (cache.keys(layer: l, head: g) + pos * hd).update(from: kb.baseAddress! + src, count: hd)
                        (cache.values(layer: l, head: g) + pos * hd).update(from: vb.baseAddress! + src, count: hd)
                    }
                }
            }
        }
    }

    /// Causal attention of one sequence's new tokens over its whole cache.
    func attention(_ l: Int, _ it: BatchItem, _ row0: Int, q: [Float], out ob: UnsafeMutableBufferPointer<Float>, scores: inout [Float]) {
        let c = config
        let hd = c.headDim, nh = c.numHeads, group = c.numHeads / c.numKVHeads
        let qDim = nh * hd
        let n = it.tokens.count
        let start = it.cache.length
        let ctx = start + n
        let scale = 1 / Float(hd).squareRoot()
        if scores.count < n * ctx { scores = .init(repeating: 0, count: n * ctx) }
        q.withUnsafeBufferPointer { qb in
            scores.withUnsafeMutableBufferPointer { sb in
                let S = sb.baseAddress!
                for g in 0..<c.numKVHeads {
                    let K = it.cache.keys(layer: l, head: g), V = it.cache.values(layer: l, head: g)
                    if n == 1 {
                        // decode: one query per head; plain loops beat thousands of tiny BLAS calls
                        for h in g * group..<(g + 1) * group {
                            let Q = qb.baseAddress! + row0 * qDim + h * hd
                            for j in 0..<ctx { S[j] = dot(Q, K + j * hd, hd) * scale }
                            softmax(S, count: ctx)
                            let O = ob.baseAddress! + row0 * qDim + h * hd
                            O.update(repeating: 0, count: hd)
                            for j in 0..<ctx { axpy(S[j], V + j * hd, O, hd) }
                        }
                    } else {
                        for h in g * group..<(g + 1) * group {
                            let Q = qb.baseAddress! + row0 * qDim + h * hd
                            BLAS.gemmNT(m: n, n: ctx, k: hd, a: Q, lda: qDim, b: K, ldb: hd, c: S, ldc: ctx, alpha: scale)
                            for i in 0..<n {
                                let row = S + i * ctx
                                let valid = start + i + 1
                                softmax(row, count: valid)
                                for j in valid..<ctx { row[j] = 0 }
                            }
                            BLAS.gemmNN(m: n, n: hd, k: ctx, a: S, lda: ctx, b: V, ldb: hd,
                                        c: ob.baseAddress! + row0 * qDim + h * hd, ldc: qDim)
                        }
                    }
                }
            }
        }
    }
}

/// y = x / sqrt(mean(x²) + eps) · w
@inline(__always)
func rmsNorm(_ x: UnsafePointer<Float>, _ w: [Float], _ y: UnsafeMutablePointer<Float>, _ n: Int, _ eps: Float) {
    var ss: Float = 0
    for i in 0..<n { ss += x[i] * x[i] }
    let inv = 1 / (ss / Float(n) + eps).squareRoot()
    w.withUnsafeBufferPointer { wb in
        for i in 0..<n { y[i] = x[i] * inv * wb[i] }
    }
}

@inline(__always)
func dot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int) -> Float {
    var i = 0
    var acc = SIMD8<Float>()
    let ra = UnsafeRawPointer(a), rb = UnsafeRawPointer(b)
    while i + 8 <= n {
        acc += ra.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self) * rb.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self)
        i += 8
    }
    var s = acc.sum()
    while i < n { s += a[i] * b[i]; i += 1 }
    return s
}

/// y += alpha · x
@inline(__always)
func axpy(_ alpha: Float, _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ n: Int) {
    var i = 0
    let rx = UnsafeRawPointer(x), ry = UnsafeMutableRawPointer(y)
    let va = SIMD8<Float>(repeating: alpha)
    while i + 8 <= n {
        let v = ry.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self) + va * rx.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self)
        ry.storeBytes(of: v, toByteOffset: i * 4, as: SIMD8<Float>.self)
        i += 8
    }
    while i < n { y[i] += alpha * x[i]; i += 1 }
}

/// In-place softmax of `count` values.
@inline(__always)
func softmax(_ p: UnsafeMutablePointer<Float>, count: Int) {
    var mx = -Float.infinity
    for i in 0..<count { mx = max(mx, p[i]) }
    var sum: Float = 0
    for i in 0..<count {
        let e = Foundation.exp(p[i] - mx)
        p[i] = e
        sum += e
    }
    let inv = 1 / sum
    for i in 0..<count { p[i] *= inv }
}

/// A decoder block as the engine runs it: q/k/v fused into one weight and
/// gate/up into another, so each shared input takes one matrix product.
struct EngineBlock: Sendable {
    let attnNorm: [Float]
    let ffnNorm: [Float]
    let qkv: Matrix
    let o: Matrix
    let gateUp: Matrix
    let down: Matrix

    init(_ b: LlamaBlockWeights) {
        attnNorm = b.attnNorm
        ffnNorm = b.ffnNorm
        qkv = Matrix(rows: b[.q].rows + b[.k].rows + b[.v].rows, cols: b[.q].cols, data: b[.q].data + b[.k].data + b[.v].data)
        o = b[.o]
        gateUp = Matrix(rows: b[.gate].rows + b[.up].rows, cols: b[.gate].cols, data: b[.gate].data + b[.up].data)
        down = b[.down]
    }
}

