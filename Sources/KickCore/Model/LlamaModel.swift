import CBLAS
import Foundation

/// Which logits a sequence wants back from a forward pass.
public enum LogitsWanted: Sendable, Equatable {
    case none, last, all
    /// The last k positions of the item's tokens.
    case tail(Int)

    func rows(_ n: Int) -> Int {
        switch self {
        case .none: return 0
        case .last: return min(1, n)
        case .all: return n
        case .tail(let k): return min(max(k, 0), n)
        }
    }
}

/// One sequence's share of a ragged batch: its cache and the tokens that
/// follow what the cache already holds.
public struct BatchItem {
    public let cache: KVCache
    public let tokens: [Int]
    public let logits: LogitsWanted
    public init(cache: KVCache, tokens: [Int], logits: LogitsWanted) {
        self.cache = cache
        self.tokens = tokens
        self.logits = logits
    }
}

/// Sees the input of each linear layer during a forward pass (calibration
/// capture for compression). Rows are tokens of the whole ragged batch.
public typealias LinearInputObserver = (_ layer: Int, _ roles: [LinearRole], _ input: UnsafeBufferPointer<Float>, _ rows: Int, _ cols: Int) -> Void

/// The Llama forward pass over ragged batches: every sequence's new tokens
/// are stacked into one matrix for the linear layers (OpenBLAS SGEMM);
/// attention runs per sequence against its own KV cache.
public final class LlamaModel: @unchecked Sendable {
    public let config: LlamaConfig
    let embedding: Matrix
    let finalNorm: [Float]
    let output: Matrix?
    let blocks: [EngineBlock]
    private let invFreq: [Double]
    private let lock = NSLock()
    /// Activation buffers kept between forwards (guarded by `lock`) and
    /// regrown only when a batch has more tokens than any before: fresh
    /// allocations each step cost page faults.
    private var scratch: BlockScratch?

    public convenience init(config: LlamaConfig, weights: LlamaWeights) throws {
        try config.validate()
        try weights.validate(config, file: nil)
        try self.init(config: config, embedding: weights.embedding, finalNorm: weights.finalNorm, output: weights.output,
                      blocks: weights.blocks.map(EngineBlock.init))
    }

    init(config: LlamaConfig, embedding: Matrix, finalNorm: [Float], output: Matrix?, blocks: [EngineBlock]) throws {
        self.config = config
        self.embedding = embedding
        self.finalNorm = finalNorm
        self.output = output
        self.blocks = blocks
        let hd = config.headDim
        invFreq = (0..<hd / 2).map { pow(Double(config.ropeTheta), -2.0 * Double($0) / Double(hd)) }
    }

    /// Loads block by block, fusing as it goes, so loading peaks at the
    /// engine's size plus one block.
    public convenience init(source: WeightSource) throws {
        let c = source.config
        try c.validate(file: source.path)
        let blocks = try (0..<c.numLayers).map { EngineBlock(try source.validatedBlock($0)) }
        let w = try source.outerWeights()
        try self.init(config: c, embedding: w.embedding, finalNorm: w.finalNorm, output: w.output, blocks: blocks)
    }

    public func newCache(capacity: Int = 64) -> KVCache { KVCache(config: config, capacity: capacity) }

    /// Runs the new tokens of every item through the model, appending to each
    /// item's cache, and returns the logits each item asked for
    /// (rows = 1 for `.last`, rows = tokens for `.all`).
    public func forward(_ items: [BatchItem], observer: LinearInputObserver? = nil) -> [Matrix?] {
        lock.lock()
        defer { lock.unlock() }
        let c = config
        let H = c.hiddenSize
        let T = items.reduce(0) { $0 + $1.tokens.count }
        guard T > 0 else { return items.map { _ in nil } }
        var positions = [Int](repeating: 0, count: T)
        var rowStart = [Int](repeating: 0, count: items.count)
        var t = 0
        for (i, it) in items.enumerated() {
            rowStart[i] = t
            it.cache.reserve(it.cache.length + it.tokens.count)
            for j in 0..<it.tokens.count { positions[t] = it.cache.length + j; t += 1 }
        }
        // token embedding
        var x = [Float](repeating: 0, count: T * H)
        x.withUnsafeMutableBufferPointer { xb in
            embedding.data.withUnsafeBufferPointer { e in
                var t = 0
                for it in items {
                    for tok in it.tokens {
                        precondition(tok >= 0 && tok < c.vocabSize, "token id \(tok) outside the vocabulary")
                        (xb.baseAddress! + t * H).update(from: e.baseAddress! + tok * H, count: H)
                        t += 1
                    }
                }
            }
        }
        let rope = ropeTable(positions)
        if scratch == nil || scratch!.tokens < T { scratch = BlockScratch(config: c, tokens: T) }
        for l in 0..<c.numLayers {
            runBlock(l, blocks[l], x: &x, tokens: T, rope: rope, items: items, rowStart: rowStart,
                     scratch: &scratch!, observer: observer)
        }
        for it in items { it.cache.length += it.tokens.count }
        return logits(x: x, items: items, rowStart: rowStart)
    }

    /// The final norm and output head for the rows each item asked for.
    private func logits(x: [Float], items: [BatchItem], rowStart: [Int]) -> [Matrix?] {
        let c = config
        let H = c.hiddenSize
        var rows: [Int] = []
        for (i, it) in items.enumerated() {
            let k = it.logits.rows(it.tokens.count)
            rows.append(contentsOf: rowStart[i] + it.tokens.count - k..<rowStart[i] + it.tokens.count)
        }
        guard !rows.isEmpty else { return items.map { _ in nil } }
        var xn = [Float](repeating: 0, count: rows.count * H)
        x.withUnsafeBufferPointer { xb in
            xn.withUnsafeMutableBufferPointer { ob in
                for (r, src) in rows.enumerated() {
                    rmsNorm(xb.baseAddress! + src * H, finalNorm, ob.baseAddress! + r * H, H, c.rmsNormEps)
                }
            }
        }
        let head = output ?? embedding
        var all = [Float](repeating: 0, count: rows.count * c.vocabSize)
        xn.withUnsafeBufferPointer { a in
            head.data.withUnsafeBufferPointer { b in
                all.withUnsafeMutableBufferPointer { o in
                    BLAS.gemmNT(m: rows.count, n: c.vocabSize, k: H, a: a.baseAddress!, lda: H,
                                b: b.baseAddress!, ldb: H, c: o.baseAddress!, ldc: c.vocabSize)
                }
            }
        }
        var out: [Matrix?] = []
        var r = 0
        for it in items {
            let n = it.logits.rows(it.tokens.count)
            if n == 0 { out.append(nil); continue }
            out.append(Matrix(rows: n, cols: c.vocabSize, data: Array(all[r * c.vocabSize..<(r + n) * c.vocabSize])))
            r += n
        }
        return out
    }

    /// cos/sin per (token, frequency), computed in double once per forward.
    private func ropeTable(_ positions: [Int]) -> (cos: [Float], sin: [Float]) {
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
    func runBlock(_ l: Int, _ w: EngineBlock, x: inout [Float], tokens T: Int,
                  rope: (cos: [Float], sin: [Float]), items: [BatchItem], rowStart: [Int],
                  scratch s: inout BlockScratch, observer: LinearInputObserver?) {
        let c = config
        let H = c.hiddenSize, hd = c.headDim
        let qDim = c.numHeads * hd, kvDim = c.numKVHeads * hd, F = c.intermediateSize
        // attention rmsnorm
        normRows(x, w.attnNorm, &s.xn, T)
        if let observer { s.xn.withUnsafeBufferPointer { observer(l, [.q, .k, .v], UnsafeBufferPointer(rebasing: $0[0..<T * H]), T, H) } }
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
        for (i, it) in items.enumerated() { storeKV(l, it, rowStart[i], s.k, s.v) }
        s.attn.withUnsafeMutableBufferPointer { ob in
            for (i, it) in items.enumerated() { attention(l, it, rowStart[i], q: s.q, out: ob, scores: &s.scores) }
        }
        if let observer { s.attn.withUnsafeBufferPointer { observer(l, [.o], UnsafeBufferPointer(rebasing: $0[0..<T * qDim]), T, qDim) } }
        // output projection and residual
        linear(s.attn, w.o, &s.tmp, T)
        addInPlace(&x, s.tmp)
        // ffn rmsnorm, gate and up in one product, SwiGLU, down projection, residual
        normRows(x, w.ffnNorm, &s.xn, T)
        if let observer { s.xn.withUnsafeBufferPointer { observer(l, [.gate, .up], UnsafeBufferPointer(rebasing: $0[0..<T * H]), T, H) } }
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
        linear(s.hidden, w.down, &s.tmp, T)
        addInPlace(&x, s.tmp)
    }

    /// Splits rows of a fused product into its parts.
    private func split(_ fused: [Float], _ T: Int, _ parts: [(Int, UnsafeMutablePointer<[Float]>)]) {
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
    private func linear(_ input: [Float], _ w: Matrix, _ out: inout [Float], _ T: Int) {
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

    private func addInPlace(_ x: inout [Float], _ y: [Float]) {
        x.withUnsafeMutableBufferPointer { xb in
            y.withUnsafeBufferPointer { yb in
                for i in 0..<xb.count { xb[i] += yb[i] }
            }
        }
    }

    private func normRows(_ x: [Float], _ w: [Float], _ out: inout [Float], _ T: Int) {
        let H = config.hiddenSize, eps = config.rmsNormEps
        x.withUnsafeBufferPointer { xb in
            out.withUnsafeMutableBufferPointer { ob in
                for t in 0..<T { rmsNorm(xb.baseAddress! + t * H, w, ob.baseAddress! + t * H, H, eps) }
            }
        }
    }

    private func applyRope(_ m: inout [Float], heads: Int, _ T: Int, _ rope: (cos: [Float], sin: [Float])) {
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

    private func storeKV(_ l: Int, _ it: BatchItem, _ row0: Int, _ k: [Float], _ v: [Float]) {
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
    private func attention(_ l: Int, _ it: BatchItem, _ row0: Int, q: [Float], out ob: UnsafeMutableBufferPointer<Float>, scores: inout [Float]) {
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

