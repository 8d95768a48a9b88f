import CBLAS
import AVX512Kernels
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

/// Sees the input of each linear layer during a block's calibration forward
/// (compression). Rows are tokens of the whole ragged batch.
public typealias LinearInputObserver = (_ layer: Int, _ roles: [LinearRole], _ input: UnsafeBufferPointer<Float>, _ rows: Int, _ cols: Int) -> Void

/// The Llama forward pass over ragged batches: every sequence's new tokens
/// are stacked into one matrix for the linear layers (`PackedWeight`'s
/// kernels); attention runs per sequence against its own KV cache.
public final class LlamaModel: @unchecked Sendable {
    public let config: LlamaConfig
    let embedding: PackedWeight
    let finalNorm: [Float]
    let output: PackedWeight?
    let blocks: [EngineBlock]
    let kernel: DecoderBlockKernel
    private let lock = NSLock()
    /// Activation buffers kept between forwards (guarded by `lock`) and
    /// regrown only when a batch has more tokens than any before: fresh
    /// allocations each step cost page faults.
    private var scratch: DecoderBlockKernel.BlockScratch?

    public convenience init(config: LlamaConfig, weights: LlamaWeights) throws {
        try config.validate()
        try weights.validate(config, file: nil)
        try self.init(config: config, embedding: PackedWeight(weights.embedding), finalNorm: weights.finalNorm,
                      output: weights.output.map { PackedWeight($0) }, blocks: weights.blocks.map { EngineBlock($0) })
    }

    init(config: LlamaConfig, embedding: PackedWeight, finalNorm: [Float], output: PackedWeight?, blocks: [EngineBlock]) throws {
        self.config = config
        self.embedding = embedding
        self.finalNorm = finalNorm
        self.output = output
        self.blocks = blocks
        kernel = DecoderBlockKernel(config: config)
        _ = Self.heapTuned
    }

    /// glibc serves allocations above 128 KiB with fresh mmaps, so every
    /// decode step's logits rows (196 KiB each for a 49k vocabulary) cost
    /// page faults; raising the threshold keeps them on the reused heap.
    private static let heapTuned: Bool = {
        #if os(Linux)
        _ = glibcMallopt(-3, 256 << 20)  // M_MMAP_THRESHOLD
        _ = glibcMallopt(-1, 512 << 20)  // M_TRIM_THRESHOLD
        #endif
        return true
    }()

    /// Loads the embedding and head first (their float32 copies are the
    /// largest transients), then block by block, one fused weight at a
    /// time, so loading peaks at the engine's size plus about two matrices.
    /// - weights: how the weights are held (`WeightPrecision`).
    public convenience init(source: WeightSource, weights precision: WeightPrecision = .source) throws {
        let c = source.config
        try c.validate(file: source.path)
        // a coded embedding (and head) stays codes: no float32 copy of them at all
        func coded(_ role: TensorRole, _ what: String) throws -> PackedWeight? {
            guard precision == .source, let cr = try source.codes(role) else { return nil }
            guard cr.rows == c.vocabSize, cr.cols == c.hiddenSize else {
                throw KickError("\(what) has shape \(cr.rows)×\(cr.cols), config needs \(c.vocabSize)×\(c.hiddenSize)", file: source.path)
            }
            return CodePanels(stacking: [cr]).map { PackedWeight(codes: $0) }
        }
        let embedding: PackedWeight, finalNorm: [Float]
        var output: PackedWeight?
        let separateHead = !c.tieWordEmbeddings && source.has(.output)
        if let e = try coded(.embedding, "embedding") {
            embedding = e
            finalNorm = try source.vector(.finalNorm)
            guard finalNorm.count == c.hiddenSize else {
                throw KickError("final norm has \(finalNorm.count) values, config needs \(c.hiddenSize)", file: source.path)
            }
            if separateHead {
                if let o = try coded(.output, "output head") { output = o } else {
                    var m = try source.matrix(.output)
                    guard m.rows == c.vocabSize, m.cols == c.hiddenSize else {
                        throw KickError("output head has shape \(m.rows)×\(m.cols), config needs \(c.vocabSize)×\(c.hiddenSize)", file: source.path)
                    }
                    output = PackedWeight(taking: &m, format: precision.format(for: [source.sourceType(.output)]))
                }
            }
        } else {
            var w = try source.outerWeights()
            embedding = PackedWeight(taking: &w.embedding, format: precision.format(for: [source.sourceType(.embedding)]))
            finalNorm = w.finalNorm
            if var m = w.output {
                w.output = nil
                output = try coded(.output, "output head") ?? PackedWeight(taking: &m, format: precision.format(for: [source.sourceType(.output)]))
            }
        }
        // a 7B model takes a minute or more: say where loading is, every 2 s after the first 2
        let t0 = Date()
        var shown = t0
        let blocks = try (0..<c.numLayers).map { i -> EngineBlock in
            let b = try EngineBlock(source: source, block: i, precision: precision)
            let now = Date(), el = now.timeIntervalSince(t0)
            if el > 2, now.timeIntervalSince(shown) >= 2 || i + 1 == c.numLayers {
                shown = now
                ProgressLine.write(String(format: "loading %@: block %d/%d, %.0f s elapsed, ETA %.0f s", (source.path as NSString).lastPathComponent,
                                          i + 1, c.numLayers, el, el / Double(i + 1) * Double(c.numLayers - i - 1)))
                if i + 1 == c.numLayers, ProgressLine.isTerminal { FileHandle.standardError.write(Data("\n".utf8)) }
            }
            return b
        }
        try self.init(config: c, embedding: embedding, finalNorm: finalNorm, output: output, blocks: blocks)
    }

    /// Bytes of the weights as the engine holds them.
    public var weightBytes: Int {
        embedding.byteCount + (output?.byteCount ?? 0) + 4 * finalNorm.count + blocks.reduce(0) { $0 + $1.byteCount }
    }

    /// The panel formats in use, for reports ("f16", "f32+f16").
    public var weightFormats: String {
        let all = [embedding] + (output.map { [$0] } ?? []) + blocks.flatMap { [$0.qkv, $0.o, $0.gateUp, $0.down] }
        var names: [String] = []
        for w in all where !names.contains(w.formName) { names.append(w.formName) }
        return names.joined(separator: "+")
    }

    public func newCache(capacity: Int = 64) -> KVCache { KVCache(config: config, capacity: capacity) }

    /// Runs the new tokens of every item through the model, appending to each
    /// item's cache, and returns the logits each item asked for
    /// (rows = 1 for `.last`, rows = tokens for `.all`).
    public func forward(_ items: [BatchItem]) -> [Matrix?] {
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
            var t = 0
            for it in items {
                for tok in it.tokens {
                    precondition(tok >= 0 && tok < c.vocabSize, "token id \(tok) outside the vocabulary")
                    embedding.copyRow(tok, into: xb.baseAddress! + t * H)
                    t += 1
                }
            }
        }
        let rope = kernel.ropeTable(positions)
        if scratch == nil || scratch!.tokens < T { scratch = DecoderBlockKernel.BlockScratch(config: c, tokens: T) }
        // the engine's own threads split every phase
        let team = ThreadTeam.sharedIfParallel
        let run = {
            for l in 0..<c.numLayers {
                self.kernel.runBlock(l, self.blocks[l], x: &x, tokens: T, rope: rope, items: items, rowStart: rowStart,
                                     scratch: &self.scratch!, observer: nil, team: team)
            }
            for it in items { it.cache.length += it.tokens.count }
            return self.logits(x: x, items: items, rowStart: rowStart, team: team)
        }
        return team == nil ? run() : BLAS.withOneThread(run)
    }

    /// The final norm and output head for the rows each item asked for.
    private func logits(x: [Float], items: [BatchItem], rowStart: [Int], team: ThreadTeam?) -> [Matrix?] {
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
        // every element is written by the head's product
        var all = [Float](unsafeUninitializedCapacity: rows.count * c.vocabSize) { _, n in n = rows.count * c.vocabSize }
        xn.withUnsafeBufferPointer { a in
            all.withUnsafeMutableBufferPointer { o in head.apply(tokens: rows.count, input: a.baseAddress!, out: o.baseAddress!, team: team) }
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
}

#if os(Linux)
/// glibc's mallopt (malloc.h is not in the Glibc module).
@_silgen_name("mallopt") private func glibcMallopt(_ param: Int32, _ value: Int32) -> Int32
#endif
