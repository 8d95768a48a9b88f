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
        var xn, qkv, q, attn, gateUp, hidden, tmp: [Float]
        var scores: [Float] = []
        let tokens: Int
        init(config c: LlamaConfig, tokens T: Int) {
            tokens = T
            xn = .init(repeating: 0, count: T * c.hiddenSize)
            q = .init(repeating: 0, count: T * c.numHeads * c.headDim)
            qkv = .init(repeating: 0, count: T * (c.numHeads + 2 * c.numKVHeads) * c.headDim)
            attn = q
            gateUp = .init(repeating: 0, count: 2 * T * c.intermediateSize)
            hidden = .init(repeating: 0, count: T * c.intermediateSize)
            tmp = xn
        }
    }

    /// Where a calibration pass keeps the block's intermediate values for
    /// its rows, so that the next pass (after one more group of layers was
    /// compressed) resumes there instead of recomputing the block from its
    /// input: the attention output (o's input), the residual after
    /// attention, and down's input.
    struct StageRows {
        /// How the rows are stored (narrowed on store, widened on load).
        let format: PanelFormat
        let attn: UnsafeMutableRawPointer    // T × q width
        let resid: UnsafeMutableRawPointer   // T × hidden
        let hidden: UnsafeMutableRawPointer  // T × ffn
    }

    /// One decoder block: attention then SwiGLU MLP, residuals added into x.
    /// With a team, OpenBLAS must be on one thread (`BLAS.withOneThread`).
    /// `startAt` past the first stage resumes from `stages`, which an
    /// earlier pass over the same rows filled up to that stage (`x` is then
    /// the block's input only for `gateUpInput`); every pass with `stages`
    /// stores what it computes there. The arithmetic is the same either way,
    /// so resuming gives the same bits as running from the input.
    func runBlock(_ l: Int, _ w: EngineBlock, x: inout [Float], tokens T: Int,
                  rope: (cos: [Float], sin: [Float]), items: [BatchItem], rowStart: [Int],
                  scratch s: inout BlockScratch, observer: LinearInputObserver?,
                  cacheLayer: Int? = nil, startAt: BlockStage = .qkvInput, stopAfter: BlockStage = .output,
                  stages: StageRows? = nil, team: ThreadTeam? = nil) {
        let c = config
        let cl = cacheLayer ?? l
        let H = c.hiddenSize, hd = c.headDim
        let qDim = c.numHeads * hd, F = c.intermediateSize
        precondition(startAt == .qkvInput || stages != nil, "resuming a block needs its stage rows")
        if startAt <= .oInput {
            // attention rmsnorm
            normRows(x, w.attnNorm, &s.xn, T)
            if startAt == .qkvInput, let observer { s.xn.withUnsafeBufferPointer { observer(l, [.q, .k, .v], UnsafeBufferPointer(rebasing: $0[0..<T * H]), T, H) } }
            if stopAfter == .qkvInput { return }
            // q, k and v for every token of the batch in one product; RoPE and the
            // cache append row by row; then attention per sequence
            linear(s.xn, w.qkv, &s.qkv, T, team: team)
            prepareAttention(cl, tokens: T, rope: rope, items: items, rowStart: rowStart, scratch: &s, team: team)
            attentionTasks(cl, items: items, rowStart: rowStart, scratch: &s, team: team)
            if let stages { s.attn.withUnsafeBufferPointer { stages.format.store($0.baseAddress!, count: T * qDim, to: stages.attn) } }
            if let observer { s.attn.withUnsafeBufferPointer { observer(l, [.o], UnsafeBufferPointer(rebasing: $0[0..<T * qDim]), T, qDim) } }
            if stopAfter == .oInput { return }
        } else if startAt == .gateUpInput, let stages {
            s.attn.withUnsafeMutableBufferPointer { stages.format.load(stages.attn, count: T * qDim, into: $0.baseAddress!) }
        }
        if startAt <= .gateUpInput {
            // output projection and residual
            linear(s.attn, w.o, &s.tmp, T, team: team)
            addInPlace(&x, s.tmp)
            if let stages { x.withUnsafeBufferPointer { stages.format.store($0.baseAddress!, count: T * H, to: stages.resid) } }
        } else if let stages {
            x.withUnsafeMutableBufferPointer { stages.format.load(stages.resid, count: T * H, into: $0.baseAddress!) }
        }
        if startAt <= .downInput {
            // ffn rmsnorm, gate and up in one product, SwiGLU, down projection, residual
            normRows(x, w.ffnNorm, &s.xn, T)
            if startAt <= .gateUpInput, let observer {
                s.xn.withUnsafeBufferPointer { observer(l, [.gate, .up], UnsafeBufferPointer(rebasing: $0[0..<T * H]), T, H) }
            }
            if stopAfter == .gateUpInput { return }
            linear(s.xn, w.gateUp, &s.gateUp, T, team: team)
            s.gateUp.withUnsafeBufferPointer { gu in
                s.hidden.withUnsafeMutableBufferPointer { h in
                    let G = gu.baseAddress!, Hd = h.baseAddress!
                    let row = { (t: Int) in swiglu(G + t * 2 * F, G + t * 2 * F + F, Hd + t * F, F) }
                    if let team, T > 1 { team.forEach(T) { t, _ in row(t) } } else { for t in 0..<T { row(t) } }
                }
            }
            if let stages { s.hidden.withUnsafeBufferPointer { stages.format.store($0.baseAddress!, count: T * F, to: stages.hidden) } }
            if let observer { s.hidden.withUnsafeBufferPointer { observer(l, [.down], UnsafeBufferPointer(rebasing: $0[0..<T * F]), T, F) } }
            if stopAfter == .downInput { return }
        } else if let stages {
            s.hidden.withUnsafeMutableBufferPointer { stages.format.load(stages.hidden, count: T * F, into: $0.baseAddress!) }
        }
        linear(s.hidden, w.down, &s.tmp, T, team: team)
        addInPlace(&x, s.tmp)
    }

    @inline(__always)
    func linear(_ input: [Float], _ w: PackedWeight, _ out: inout [Float], _ T: Int, team: ThreadTeam?) {
        input.withUnsafeBufferPointer { a in
            out.withUnsafeMutableBufferPointer { o in w.apply(tokens: T, input: a.baseAddress!, out: o.baseAddress!, team: team) }
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

    /// Row by row (rows are independent, so across the team): the query
    /// part of the fused q/k/v product is rotated into `s.q`, the key part
    /// rotated in place, and the key and value appended to the row's
    /// sequence's cache.
    func prepareAttention(_ l: Int, tokens T: Int, rope: (cos: [Float], sin: [Float]), items: [BatchItem], rowStart: [Int],
                          scratch s: inout BlockScratch, team: ThreadTeam?) {
        let c = config
        let hd = c.headDim, half = hd / 2, kvh = c.numKVHeads
        let qDim = c.numHeads * hd, kvDim = kvh * hd, width = qDim + 2 * kvDim
        let adjacent = c.ropeStyle == .adjacentPairs
        var rowItem = [Int](repeating: 0, count: T)
        for (i, it) in items.enumerated() { for j in 0..<it.tokens.count { rowItem[rowStart[i] + j] = i } }
        s.qkv.withUnsafeMutableBufferPointer { fb in
            s.q.withUnsafeMutableBufferPointer { qb in
                rope.cos.withUnsafeBufferPointer { cb in
                    rope.sin.withUnsafeBufferPointer { sb in
                        let F = fb.baseAddress!, Q = qb.baseAddress!, C = cb.baseAddress!, S = sb.baseAddress!
                        /// rotates `heads` heads of one row from src into dst (which may be src)
                        func rotate(_ src: UnsafeMutablePointer<Float>, _ dst: UnsafeMutablePointer<Float>, heads: Int, _ c0: UnsafePointer<Float>, _ s0: UnsafePointer<Float>) {
                            for h in 0..<heads {
                                let p = src + h * hd, o = dst + h * hd
                                if adjacent {
                                    for i in 0..<half {
                                        let a = p[2 * i], b = p[2 * i + 1]
                                        o[2 * i] = a * c0[i] - b * s0[i]
                                        o[2 * i + 1] = a * s0[i] + b * c0[i]
                                    }
                                } else {
                                    for i in 0..<half {
                                        let a = p[i], b = p[i + half]
                                        o[i] = a * c0[i] - b * s0[i]
                                        o[i + half] = a * s0[i] + b * c0[i]
                                    }
                                }
                            }
                        }
                        let rows = { (r: Range<Int>) in
                            for t in r {
                                let row = F + t * width
                                rotate(row, Q + t * qDim, heads: c.numHeads, C + t * half, S + t * half)
                                rotate(row + qDim, row + qDim, heads: kvh, C + t * half, S + t * half)
                                let i = rowItem[t]
                                let cache = items[i].cache
                                let pos = cache.length + t - rowStart[i]
                                for g in 0..<kvh {
                                    (cache.keys(layer: l, head: g) + pos * hd).update(from: row + qDim + g * hd, count: hd)
                                    (cache.values(layer: l, head: g) + pos * hd).update(from: row + qDim + kvDim + g * hd, count: hd)
                                }
                            }
                        }
                        let chunk = 8
                        if let team, T > chunk {
                            team.forEach((T + chunk - 1) / chunk) { p, _ in rows(p * chunk..<min(T, (p + 1) * chunk)) }
                        } else {
                            rows(0..<T)
                        }
                    }
                }
            }
        }
    }

    /// One piece of a layer's attention: a decoding sequence's single token
    /// (every head), or up to `prefillChunk` query rows of one head of a
    /// sequence with several new tokens. Pieces are fixed by the batch's
    /// own items, so results do not depend on who computes them.
    struct AttentionPiece {
        let item: Int
        let head: Int
        let rows: Range<Int>
    }

    static let prefillChunk = 64

    /// Causal attention of every item's new tokens over its whole cache,
    /// piece by piece, across the team when there is one.
    func attentionTasks(_ l: Int, items: [BatchItem], rowStart: [Int], scratch s: inout BlockScratch, team: ThreadTeam?) {
        var pieces: [AttentionPiece] = []
        let threads = team?.size ?? 1
        for (i, it) in items.enumerated() {
            let n = it.tokens.count
            if n == 1 {
                // a decode step: the whole item, or with fewer items than threads
                // one piece per key/value head, so no core waits on one sequence
                if items.count < threads {
                    for g in 0..<config.numKVHeads { pieces.append(.init(item: i, head: g, rows: 0..<1)) }
                } else {
                    pieces.append(.init(item: i, head: -1, rows: 0..<1))
                }
                continue
            }
            for h in 0..<config.numHeads {
                for r0 in stride(from: 0, to: n, by: Self.prefillChunk) {
                    pieces.append(.init(item: i, head: h, rows: r0..<min(n, r0 + Self.prefillChunk)))
                }
            }
        }
        let longest = items.reduce(0) { max($0, $1.cache.length + $1.tokens.count) }
        let need = max(Self.prefillChunk, config.numHeads) * longest
        if s.scores.count < threads * need { s.scores = .init(repeating: 0, count: threads * need) }
        s.q.withUnsafeBufferPointer { qb in
            s.attn.withUnsafeMutableBufferPointer { ob in
                s.scores.withUnsafeMutableBufferPointer { sb in
                    let Q = qb.baseAddress!, O = ob.baseAddress!, S = sb.baseAddress!
                    let run = { (p: Int, thread: Int) in
                        let piece = pieces[p]
                        attention(l, items[piece.item], rowStart[piece.item], piece, q: Q, out: O, scores: S + thread * need)
                    }
                    if let team, pieces.count > 1 { team.forEach(pieces.count, run) } else { for p in pieces.indices { run(p, 0) } }
                }
            }
        }
    }

    /// One attention piece; `scores` has room for max(prefillChunk, heads) × context floats.
    func attention(_ l: Int, _ it: BatchItem, _ row0: Int, _ piece: AttentionPiece,
                   q: UnsafePointer<Float>, out: UnsafeMutablePointer<Float>, scores S: UnsafeMutablePointer<Float>) {
        let c = config
        let hd = c.headDim, group = c.numHeads / c.numKVHeads
        let qDim = c.numHeads * hd
        let start = it.cache.length
        let scale = 1 / Float(hd).squareRoot()
        if it.tokens.count == 1 {
            // decode: one query per head; register-blocked loops beat thousands of tiny BLAS calls
            // head -1: every key/value head; otherwise that one (the same loop body either way)
            let heads = piece.head < 0 ? 0..<c.numKVHeads : piece.head..<piece.head + 1
            for g in heads {
                let at = row0 * qDim + g * group * hd
                decodeAttention(queries: q + at, heads: group, keys: it.cache.keys(layer: l, head: g),
                                values: it.cache.values(layer: l, head: g), positions: start + 1, headDim: hd,
                                scale: scale, scores: S, out: out + at,
                                nextKeys: g + 1 < heads.upperBound ? UnsafePointer(it.cache.keys(layer: l, head: g + 1)) : nil)
            }
            return
        }
        // rows r0..<r1 of head h: they see the cache and new tokens up to r1
        let h = piece.head, g = h / group
        let m = piece.rows.count, r0 = piece.rows.lowerBound
        let ctx = start + piece.rows.upperBound
        let K = it.cache.keys(layer: l, head: g), V = it.cache.values(layer: l, head: g)
        let Q = q + (row0 + r0) * qDim + h * hd
        // kick's own products (not OpenBLAS): the same bits on every machine,
        // which the compressor's calibration passes rely on
        PanelProduct.multiplyTransposed(m: m, n: ctx, k: hd, a: Q, lda: qDim, b: K, ldb: hd, c: S, ldc: ctx)
        for i in 0..<m {
            let row = S + i * ctx
            for j in 0..<ctx { row[j] *= scale }
            let valid = start + r0 + i + 1
            softmax(row, count: valid)
            for j in valid..<ctx { row[j] = 0 }
        }
        PanelProduct.multiply(m: m, n: hd, k: ctx, a: S, lda: ctx, b: V, ldb: hd, c: out + (row0 + r0) * qDim + h * hd, ldc: qDim)
    }
}

/// A decoder block as the engine runs it: q/k/v fused into one weight and
/// gate/up into another, so each shared input takes one matrix product.
struct EngineBlock: Sendable {
    let attnNorm: [Float]
    let ffnNorm: [Float]
    let qkv: PackedWeight
    let o: PackedWeight
    let gateUp: PackedWeight
    let down: PackedWeight

    /// A block's float32 weights packed as float32 (compression's
    /// calibration forward, models built from weights in memory).
    init(_ b: LlamaBlockWeights) {
        attnNorm = b.attnNorm
        ffnNorm = b.ffnNorm
        qkv = PackedWeight(stacking: [b[.q], b[.k], b[.v]])
        o = PackedWeight(b[.o])
        gateUp = PackedWeight(stacking: [b[.gate], b[.up]])
        down = PackedWeight(b[.down])
    }

    /// Block i straight from a source, one fused weight at a time: loading
    /// holds at most the float32 copies of gate and up beside the engine,
    /// never a whole block (0.8 GB at 7B).
    init(source: WeightSource, block i: Int, precision: WeightPrecision) throws {
        let c = source.config, file = source.path
        func load(_ roles: [LinearRole]) throws -> PackedWeight {
            // quantized sources stay codes (every part coded alike), unless asked otherwise
            if precision == .source, let coded = try codeParts(roles), let cp = CodePanels(stacking: coded) {
                return PackedWeight(codes: cp)
            }
            let parts = try roles.map { r -> Matrix in
                let m = try source.matrix(.linear(i, r))
                try LlamaBlockWeights.check(m, r, block: i, c, file: file)
                return m
            }
            // N:M pruned weights stay sparse (every part with the same pattern and value precision)
            let patterns = roles.map { source.nmPattern(.linear(i, $0)) }
            if precision == .source, let p = patterns[0], patterns.allSatisfy({ $0?.n == p.n && $0?.m == p.m && $0?.values == p.values }),
               let nm = NMPanels(stacking: parts, n: p.n, m: p.m, format: PanelFormat(rawValue: p.values.rawValue) ?? .f32) {
                return PackedWeight(nm: nm)
            }
            let format = precision.format(for: roles.map { source.sourceType(.linear(i, $0)) })
            // unstructured pruned weights stay sparse where the sparse kernel measured faster
            if precision == .source, let least = SparsePanels.minimumSparsity(format), SparsePanels.sparsity(of: parts) >= least {
                return PackedWeight(sparse: SparsePanels(stacking: parts, format: format))
            }
            return PackedWeight(stacking: parts, format: format)
        }
        func codeParts(_ roles: [LinearRole]) throws -> [CodeRows]? {
            var parts: [CodeRows] = []
            for r in roles {
                guard let cr = try source.codes(.linear(i, r)) else { return nil }
                try LlamaBlockWeights.check(rows: cr.rows, cols: cr.cols, r, block: i, c, file: file)
                parts.append(cr)
            }
            return parts
        }
        attnNorm = try source.vector(.attnNorm(i))
        ffnNorm = try source.vector(.ffnNorm(i))
        guard attnNorm.count == c.hiddenSize, ffnNorm.count == c.hiddenSize else {
            throw KickError("block \(i) norm sizes do not match hidden size \(c.hiddenSize)", file: file)
        }
        qkv = try load([.q, .k, .v])
        o = try load([.o])
        gateUp = try load([.gate, .up])
        down = try load([.down])
    }

    /// Bytes of the block's weights as held.
    var byteCount: Int { qkv.byteCount + o.byteCount + gateUp.byteCount + down.byteCount + 4 * (attnNorm.count + ffnNorm.count) }
}
