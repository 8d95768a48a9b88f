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
    public private(set) var weights: LlamaWeights
    private let invFreq: [Double]
    private let lock = NSLock()

    public init(config: LlamaConfig, weights: LlamaWeights) throws {
        try config.validate()
        try weights.validate(config, file: nil)
        self.config = config
        self.weights = weights
        let hd = config.headDim
        invFreq = (0..<hd / 2).map { pow(Double(config.ropeTheta), -2.0 * Double($0) / Double(hd)) }
    }

    public convenience init(source: WeightSource) throws {
        try self.init(config: source.config, weights: source.loadWeights())
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
            weights.embedding.data.withUnsafeBufferPointer { e in
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
        var scratch = BlockScratch(config: c, tokens: T)
        for l in 0..<c.numLayers {
            runBlock(l, weights.blocks[l], x: &x, tokens: T, rope: rope, items: items, rowStart: rowStart,
                     scratch: &scratch, observer: observer)
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
                    rmsNorm(xb.baseAddress! + src * H, weights.finalNorm, ob.baseAddress! + r * H, H, c.rmsNormEps)
                }
            }
        }
        let head = weights.output ?? weights.embedding
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
        var xn, q, k, v, attn, gate, up, tmp: [Float]
        var scores: [Float] = []
        init(config c: LlamaConfig, tokens T: Int) {
            xn = .init(repeating: 0, count: T * c.hiddenSize)
            q = .init(repeating: 0, count: T * c.numHeads * c.headDim)
            k = .init(repeating: 0, count: T * c.numKVHeads * c.headDim)
            v = k
            attn = q
            gate = .init(repeating: 0, count: T * c.intermediateSize)
            up = gate
            tmp = xn
        }
    }

    /// One decoder block: attention then SwiGLU MLP, residuals added into x.
    func runBlock(_ l: Int, _ w: LlamaBlockWeights, x: inout [Float], tokens T: Int,
                  rope: (cos: [Float], sin: [Float]), items: [BatchItem], rowStart: [Int],
                  scratch s: inout BlockScratch, observer: LinearInputObserver?) {
        let c = config
        let H = c.hiddenSize, hd = c.headDim
        let qDim = c.numHeads * hd, F = c.intermediateSize
        // attention rmsnorm
        normRows(x, w.attnNorm, &s.xn, T)
        if let observer { s.xn.withUnsafeBufferPointer { observer(l, [.q, .k, .v], $0, T, H) } }
        // qkv matmuls for every token of the batch
        linear(s.xn, w[.q], &s.q, T)
        linear(s.xn, w[.k], &s.k, T)
        linear(s.xn, w[.v], &s.v, T)
        // RoPE on queries and keys
        applyRope(&s.q, heads: c.numHeads, T, rope)
        applyRope(&s.k, heads: c.numKVHeads, T, rope)
        // store keys/values, then attention per sequence
        for (i, it) in items.enumerated() {
            storeKV(l, it, rowStart[i], s.k, s.v)
            attention(l, it, rowStart[i], q: s.q, out: &s.attn, scores: &s.scores)
        }
        if let observer { s.attn.withUnsafeBufferPointer { observer(l, [.o], $0, T, qDim) } }
        // output projection and residual
        linear(s.attn, w[.o], &s.tmp, T)
        addInPlace(&x, s.tmp)
        // ffn rmsnorm, SwiGLU, down projection, residual
        normRows(x, w.ffnNorm, &s.xn, T)
        if let observer { s.xn.withUnsafeBufferPointer { observer(l, [.gate, .up], $0, T, H) } }
        linear(s.xn, w[.gate], &s.gate, T)
        linear(s.xn, w[.up], &s.up, T)
        s.gate.withUnsafeMutableBufferPointer { g in
            s.up.withUnsafeBufferPointer { u in
                for i in 0..<T * F {
                    let a = g[i]
                    g[i] = a / (1 + Foundation.exp(-a)) * u[i]
                }
            }
        }
        if let observer { s.gate.withUnsafeBufferPointer { observer(l, [.down], $0, T, F) } }
        linear(s.gate, w[.down], &s.tmp, T)
        addInPlace(&x, s.tmp)
    }

    @inline(__always)
    private func linear(_ input: [Float], _ w: Matrix, _ out: inout [Float], _ T: Int) {
        input.withUnsafeBufferPointer { a in
            w.data.withUnsafeBufferPointer { b in
                out.withUnsafeMutableBufferPointer { o in
                    BLAS.gemmNT(m: T, n: w.rows, k: w.cols, a: a.baseAddress!, lda: w.cols,
                                b: b.baseAddress!, ldb: w.cols, c: o.baseAddress!, ldc: w.rows)
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
    private func attention(_ l: Int, _ it: BatchItem, _ row0: Int, q: [Float], out: inout [Float], scores: inout [Float]) {
        let c = config
        let hd = c.headDim, nh = c.numHeads, group = c.numHeads / c.numKVHeads
        let qDim = nh * hd
        let n = it.tokens.count
        let start = it.cache.length
        let ctx = start + n
        let scale = 1 / Float(hd).squareRoot()
        let rowsPerCall = n == 1 ? group : n
        if scores.count < rowsPerCall * ctx { scores = .init(repeating: 0, count: rowsPerCall * ctx) }
        q.withUnsafeBufferPointer { qb in
            out.withUnsafeMutableBufferPointer { ob in
                scores.withUnsafeMutableBufferPointer { sb in
                    let S = sb.baseAddress!
                    for g in 0..<c.numKVHeads {
                        let K = it.cache.keys(layer: l, head: g), V = it.cache.values(layer: l, head: g)
                        if n == 1 {
                            // decode: the group's query heads are contiguous (group × hd)
                            let Q = qb.baseAddress! + row0 * qDim + g * group * hd
                            BLAS.gemmNT(m: group, n: ctx, k: hd, a: Q, lda: hd, b: K, ldb: hd, c: S, ldc: ctx, alpha: scale)
                            for r in 0..<group { softmax(S + r * ctx, count: ctx) }
                            BLAS.gemmNN(m: group, n: hd, k: ctx, a: S, lda: ctx, b: V, ldb: hd,
                                        c: ob.baseAddress! + row0 * qDim + g * group * hd, ldc: hd)
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
