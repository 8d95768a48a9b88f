import Foundation

/// What the model-level run measured, for the `kick.compress/1` manifest.
public struct LayerReport: Codable, Sendable {
    public var block: Int
    public var role: LinearRole
    public var sparsity: Double
    public var bits: Int?
    /// ‖X·Wcᵀ − X·Wᵀ‖ / ‖X·Wᵀ‖ over the inputs the layer saw; nil without calibration.
    public var relativeOutputError: Double?
    /// pruned, n:m, q<bits>-g<group>, sparse-q<bits>-g<group>
    public var form: String
}

public struct CompressionReport: Codable, Sendable {
    public var layers: [LayerReport] = []
    public var secondsPerBlock: [Double] = []
    public var seconds = 0.0
    public var peakRSSBytes = 0
    /// Where the blocks' time went, summed over the blocks.
    public var cost: BlockCost?
    public init() {}
    // the manifest's snake-case keys: "peak_rss_bytes" reads back as "peakRssBytes"
    enum CodingKeys: String, CodingKey { case layers, secondsPerBlock, seconds, peakRSSBytes = "peakRssBytes", cost }
}

/// Where compressing a block spends its time: the calibration forward
/// passes through the block's kernels, the statistics of the linear inputs
/// (Hessians or column norms), the prune or quantize walk, and the
/// per-layer output error of the manifest.
public struct BlockCost: Codable, Sendable, Equatable {
    public var forwardSeconds = 0.0
    public var statisticsSeconds = 0.0
    public var walkSeconds = 0.0
    public var layerErrorSeconds = 0.0
    public var totalSeconds = 0.0
    /// Bytes of block state the resumed passes kept (the most of any
    /// block); nil when every pass recomputed from the block's input.
    public var keptStateBytes: Int?
    public init() {}

    public static func + (a: BlockCost, b: BlockCost) -> BlockCost {
        var c = a
        if let k = b.keptStateBytes { c.keptStateBytes = max(c.keptStateBytes ?? 0, k) }
        c.forwardSeconds += b.forwardSeconds; c.statisticsSeconds += b.statisticsSeconds
        c.walkSeconds += b.walkSeconds; c.layerErrorSeconds += b.layerErrorSeconds; c.totalSeconds += b.totalSeconds
        return c
    }
}

/// Compresses a whole model one decoder block at a time (the reference
/// drivers' order): the calibration inputs of block k are the outputs of
/// block k − 1 after it was compressed. Within a block q/k/v share one
/// input and gate/up another; with `trueSequential` the inputs of o and of
/// down are captured after q/k/v and gate/up were compressed. Memory holds
/// one block plus the calibration activations, never the whole model.
public struct ModelCompressor {
    public var spec: CompressionSpec
    public var trueSequential = true
    /// Calibration sequences per block forward (bounds activation memory).
    public var samplesPerBatch = 8
    public var log: (String) -> Void = ProgressLine.write
    /// The manifest's per-layer output error needs each input's full
    /// Hessian. SparseGPT and GPTQ build it anyway; Wanda needs only column
    /// norms and builds it only when asked. nil: as the method needs.
    public var layerErrors: Bool?

    /// With true-sequential, each pass over the calibration rows resumes
    /// from the block state the previous one left (attention output,
    /// residual, down's input), so a block costs about one forward pass
    /// instead of recomputing the block from its input for each group of
    /// layers. Same bits either way; off, or when those buffers would pass
    /// `stageMemoryLimit` bytes, it recomputes.
    public var resumeStages = true
    public var stageMemoryLimit = ModelCompressor.defaultStageMemoryLimit

    /// Half of the machine's memory: room for the kept state beside the
    /// block, its Hessians and one batch's scratch (a 7B block at 128 × 2048
    /// keeps 10 GB of f16 state).
    public static var defaultStageMemoryLimit: Int { Int(ProcessInfo.processInfo.physicalMemory / 2) }
    /// How the calibration activations are kept between passes and blocks
    /// (`ActivationRows`). Only float32 keeps resumed passes bit-identical
    /// to recomputed ones: 16-bit storage rounds the resumed state.
    public var activationFormat: PanelFormat = .f16

    var computesLayerErrors: Bool { layerErrors ?? spec.needsHessian }
    var fullStatistics: Bool { spec.needsHessian || computesLayerErrors }

    public init(spec: CompressionSpec, trueSequential: Bool = true) {
        self.spec = spec
        self.trueSequential = trueSequential
    }

    static let groups: [(roles: [LinearRole], stage: BlockStage)] = [
        ([.q, .k, .v], .qkvInput), ([.o], .oInput), ([.gate, .up], .gateUpInput), ([.down], .downInput),
    ]

    public func run(bundle: ModelBundle, calibration: CalibrationSet?, to path: String, metadata: [String: String]) throws -> CompressionReport {
        try spec.validate()
        let c = bundle.config
        if spec.needsCalibration && calibration == nil {
            throw KickError("\(spec.method.rawValue) needs calibration inputs (--calib FILE.tok from kick-ingest calib)")
        }
        if let cal = calibration {
            guard cal.tokenizerIdentity == bundle.tokenizer.identity else {
                throw KickError("the calibration file was made with tokenizer \(cal.tokenizerIdentity), this model's is \(bundle.tokenizer.identity)")
            }
            guard cal.vocabSize == bundle.tokenizer.vocabSize, cal.length <= c.contextLength else {
                throw KickError("the calibration windows (vocab \(cal.vocabSize), length \(cal.length)) do not fit this model")
            }
        }
        let kernel = DecoderBlockKernel(config: c)
        var report = CompressionReport()
        let t0 = Date()
        let X = try calibration.map { try embed($0, bundle: bundle) }
        var meta = metadata
        meta["method"] = spec.method.rawValue
        if calibration != nil { meta["act_dtype"] = activationFormat.rawValue }
        meta["config"] = spec.configName
        try CheckpointEncoder.write(bundle: bundle, to: path, metadata: meta, transform: { k, original in
            let tb = Date()
            let out: [LinearRole: CompressedLinear], layers: [LayerReport]
            var cost = BlockCost()
            do {
                let grids = try sourceGrids(bundle.source, block: k, original)
                (out, layers) = try compressBlock(k, original, calibration: calibration, X: X, kernel: kernel, grids: grids, cost: &cost)
            } catch let e as KickError where e.file == nil {
                throw KickError("block \(k): \(e.message)", file: bundle.path)  // name the model the bad values came from
            }
            report.cost = (report.cost ?? BlockCost()) + cost
            report.layers += layers
            report.secondsPerBlock.append(Date().timeIntervalSince(tb))
            let el = Date().timeIntervalSince(t0)
            let left = el / Double(k + 1) * Double(c.numLayers - k - 1)
            log(String(format: "%@ %@ block %d/%d  %.1fs elapsed  ETA %.0fs", spec.configName,
                       ProgressLine.bar(k + 1, of: c.numLayers), k + 1, c.numLayers, el, left))
            return out
        })
        report.seconds = Date().timeIntervalSince(t0)
        report.peakRSSBytes = PeakMemory.residentBytes()
        return report
    }

    /// Compressing block 0, calibration included, and where its time went
    /// (what `make bench` prints).
    public func timeFirstBlock(bundle: ModelBundle, calibration: CalibrationSet?) throws -> BlockCost {
        try spec.validate()
        let X = try calibration.map { try embed($0, bundle: bundle) }
        let block = try bundle.source.validatedBlock(0)
        var cost = BlockCost()
        _ = try compressBlock(0, block, calibration: calibration, X: X, kernel: DecoderBlockKernel(config: bundle.config), cost: &cost)
        return cost
    }

    /// Compressing one block of random weights of `config`'s shape on
    /// `samples` × `length` random calibration rows (`bench-block --width`):
    /// the cost of a 7B or 13B block measured without the model.
    public func timeRandomBlock(config: LlamaConfig, samples: Int, length: Int, seed: UInt64 = 1) throws -> BlockCost {
        try spec.validate()
        var rng = SeededRandom(seed: seed)
        let H = config.hiddenSize
        var linear: [LinearRole: Matrix] = [:]
        for role in LinearRole.allCases {
            let (r, c) = LlamaBlockWeights.shape(of: role, config)
            // uniform with a standard deviation of 1/√cols, as initialized layers have
            let a = Float(3.0 / Double(c)).squareRoot()
            linear[role] = Matrix(rows: r, cols: c, data: (0..<r * c).map { _ in a * Float(rng.unit() * 2 - 1) })
        }
        let block = LlamaBlockWeights(attnNorm: [Float](repeating: 1, count: H), ffnNorm: [Float](repeating: 1, count: H), linear: linear)
        let cal = CalibrationSet(windows: Array(repeating: [Int](repeating: 0, count: length), count: samples), vocabSize: 1,
                                 tokenizerIdentity: "random")
        let X = ActivationRows(rows: samples * length, width: H, format: activationFormat)
        var row = [Float](repeating: 0, count: H)
        for r in 0..<samples * length {
            for j in 0..<H { row[j] = Float(rng.unit() * 2 - 1) }
            X.store(row: r, count: 1, from: row)
        }
        var cost = BlockCost()
        _ = try compressBlock(0, block, calibration: cal, X: X, kernel: DecoderBlockKernel(config: config), cost: &cost)
        return cost
    }

    /// The calibration windows' token embeddings: block 0's inputs, (N·L) × H.
    func embed(_ cal: CalibrationSet, bundle: ModelBundle) throws -> ActivationRows {
        let H = bundle.config.hiddenSize
        let emb = try bundle.source.matrix(.embedding)
        let X = ActivationRows(rows: cal.windows.count * cal.length, width: H, format: activationFormat)
        var r = 0
        emb.data.withUnsafeBufferPointer { e in
            for w in cal.windows {
                for t in w {
                    X.store(row: r, count: 1, from: e.baseAddress! + t * H)
                    r += 1
                }
            }
        }
        return X
    }

    /// The block's source grids where the method moves values and the source
    /// holds them in ggml blocks that a pruned checkpoint keeps (SparseGPT
    /// without a quantizer, of a Q4_0/Q4_1/Q8_0 model).
    func sourceGrids(_ source: WeightSource, block k: Int, _ original: LlamaBlockWeights) throws -> [LinearRole: SourceGrid] {
        guard spec.method == .sparsegpt, spec.quantizer == nil else { return [:] }
        var grids: [LinearRole: SourceGrid] = [:]
        for r in LinearRole.allCases {
            let role = TensorRole.linear(k, r)
            guard let t = source.sourceType(role), TensorCodec.sparseGGMLTypes.contains(t) else { continue }
            grids[r] = SourceGrid(type: t, payload: try source.storedPayload(role).1, rows: original[r].rows, cols: original[r].cols)
        }
        return grids
    }

    /// Compresses block k. With calibration, X holds the block's inputs on
    /// entry and the compressed block's outputs (the next block's inputs) on
    /// return. `grids` (`sourceGrids`) keep a moving method's values on its
    /// source's grids.
    func compressBlock(_ k: Int, _ original: LlamaBlockWeights, calibration: CalibrationSet?, X: ActivationRows?,
                       kernel: DecoderBlockKernel, grids: [LinearRole: SourceGrid] = [:],
                       cost: inout BlockCost) throws -> ([LinearRole: CompressedLinear], [LayerReport]) {
        let t0 = Date()
        var block = original
        var out: [LinearRole: CompressedLinear] = [:]
        var errors: [LinearRole: Double] = [:]
        if let cal = calibration, let X {
            let groups = trueSequential ? Self.groups.map { [$0] } : [Self.groups]
            let rows = cal.windows.count * cal.length
            let stages = trueSequential && resumeStages
                && StageBuffers.bytes(rows: rows, config: kernel.config, format: activationFormat) <= stageMemoryLimit
                ? StageBuffers(rows: rows, config: kernel.config, format: activationFormat) : nil
            if stages != nil { cost.keptStateBytes = StageBuffers.bytes(rows: rows, config: kernel.config, format: activationFormat) }
            for batch in groups {
                // statistics of these groups' inputs under the block as compressed so far
                let stats = Dictionary(uniqueKeysWithValues: batch.map { g in
                    (g.roles[0], HessianAccumulator(cols: block[g.roles[0]].cols, full: fullStatistics))
                })
                try forEachBatch(cal, X, kernel: kernel, block: EngineBlock(block), layer: k,
                                 startAt: stages == nil ? .qkvInput : batch[0].stage, stopAfter: batch.last!.stage,
                                 stages: stages, updateX: false, cost: &cost) { roles, input, rows, samples, team in
                    if let s = stats[roles[0]], batch.contains(where: { $0.roles == roles }) {
                        s.add(input, rows: rows, samples: samples, team: team)
                    }
                }
                for g in batch {
                    let s = stats[g.roles[0]]!
                    log("\(spec.configName) block \(k + 1) layers \(g.roles.map(\.rawValue).joined(separator: ","))")
                    for role in g.roles {
                        let tw = Date()
                        let compressed = try spec.compress(original[role], stats: s, grid: grids[role])
                        cost.walkSeconds += Date().timeIntervalSince(tw)
                        if computesLayerErrors {
                            let te = Date()
                            errors[role] = Self.relativeError(original[role], compressed.matrix, hessian: s.H)
                            cost.layerErrorSeconds += Date().timeIntervalSince(te)
                        }
                        out[role] = compressed
                        block[role] = compressed.matrix
                    }
                }
            }
            // the compressed block's outputs are the next block's inputs
            try forEachBatch(cal, X, kernel: kernel, block: EngineBlock(block), layer: k, startAt: stages == nil ? .qkvInput : .output,
                             stopAfter: .output, stages: stages, updateX: true, cost: &cost) { _, _, _, _, _ in }
        } else {
            let tw = Date()
            for role in LinearRole.allCases { out[role] = try spec.compress(original[role], stats: nil) }
            cost.walkSeconds += Date().timeIntervalSince(tw)
        }
        cost.totalSeconds += Date().timeIntervalSince(t0)
        let layers = LinearRole.allCases.map { role in
            let m = out[role]!.matrix
            var bits: Int?
            if case .quantized(let q, _) = out[role]! { bits = q.bits }
            return LayerReport(block: k, role: role, sparsity: Double(m.data.reduce(0) { $0 + ($1 == 0 ? 1 : 0) }) / Double(m.data.count),
                               bits: bits, relativeOutputError: errors[role], form: out[role]!.form)
        }
        return (out, layers)
    }

    /// Runs the block over every calibration window, `samplesPerBatch` at a
    /// time, handing each captured linear input to `observe`; with `updateX`
    /// the windows' hidden states are replaced by the block's outputs.
    ///
    /// The block runs on the engine's thread team with OpenBLAS on one
    /// thread, and `observe` gets the team for its own products: OpenBLAS's
    /// idle workers and the team's would otherwise fight for the cores
    /// (a SparseGPT block took 25-29 s instead of 10).
    private func forEachBatch(_ cal: CalibrationSet, _ X: ActivationRows, kernel: DecoderBlockKernel, block: EngineBlock, layer: Int,
                              startAt: BlockStage, stopAfter: BlockStage, stages: StageBuffers?, updateX: Bool, cost: inout BlockCost,
                              observe: ([LinearRole], UnsafeBufferPointer<Float>, Int, Int, ThreadTeam?) -> Void) throws {
        let team = ThreadTeam.sharedIfParallel
        let c = kernel.config
        var one = c
        one.numLayers = 1
        let L = cal.length, H = c.hiddenSize
        let positions = Array(0..<L)
        var scratch = DecoderBlockKernel.BlockScratch(config: c, tokens: L * min(samplesPerBatch, cal.windows.count))
        var s0 = 0
        while s0 < cal.windows.count {
            let n = min(samplesPerBatch, cal.windows.count - s0)
            let T = n * L
            var x = [Float](repeating: 0, count: T * H)
            x.withUnsafeMutableBufferPointer { X.load(row: s0 * L, count: T, into: $0.baseAddress!) }
            let items = (0..<n).map { _ in BatchItem(cache: KVCache(config: one, capacity: L), tokens: [Int](repeating: 0, count: L), logits: .none) }
            let rope = kernel.ropeTable(Array((0..<n).map { _ in positions }.joined()))
            let tb = Date()
            var observing = 0.0
            withoutActuallyEscaping(observe) { observe in
                BLAS.withOneThread {
                    kernel.runBlock(layer, block, x: &x, tokens: T, rope: rope, items: items, rowStart: (0..<n).map { $0 * L },
                                    scratch: &scratch, observer: { _, roles, input, rows, _ in
                                        let to = Date()
                                        observe(roles, input, rows, n, team)
                                        observing += Date().timeIntervalSince(to)
                                    },
                                    cacheLayer: 0, startAt: startAt, stopAfter: stopAfter, stages: stages?.rows(from: s0 * L), team: team)
                }
            }
            cost.statisticsSeconds += observing
            cost.forwardSeconds += Date().timeIntervalSince(tb) - observing
            if updateX { x.withUnsafeBufferPointer { X.store(row: s0 * L, count: T, from: $0.baseAddress!) } }
            s0 += n
        }
    }

    /// The calibration rows' block state between passes (one block's),
    /// in memory of its own so that pointers into it stay valid.
    final class StageBuffers {
        let attn, resid, hidden: ActivationRows

        static func bytes(rows: Int, config c: LlamaConfig, format: PanelFormat) -> Int {
            rows * (c.numHeads * c.headDim + c.hiddenSize + c.intermediateSize) * format.bytes
        }

        init(rows: Int, config c: LlamaConfig, format: PanelFormat) {
            attn = ActivationRows(rows: rows, width: c.numHeads * c.headDim, format: format)
            resid = ActivationRows(rows: rows, width: c.hiddenSize, format: format)
            hidden = ActivationRows(rows: rows, width: c.intermediateSize, format: format)
        }

        /// The rows from `row` on.
        func rows(from row: Int) -> DecoderBlockKernel.StageRows {
            DecoderBlockKernel.StageRows(format: attn.format, attn: attn.pointer(row: row), resid: resid.pointer(row: row),
                                         hidden: hidden.pointer(row: row))
        }
    }

    /// ‖ΔW·Xᵀ‖/‖W·Xᵀ‖ from the inputs' Hessian: both squared norms are
    /// traces of (·)H(·)ᵀ with the same factor, which cancels.
    static func relativeError(_ w: Matrix, _ wc: Matrix, hessian H: [Float]) -> Double {
        func quad(_ a: [Float]) -> Double {
            let r = w.rows, n = w.cols
            var ah = [Float](repeating: 0, count: r * n)
            a.withUnsafeBufferPointer { ab in
                H.withUnsafeBufferPointer { hb in
                    ah.withUnsafeMutableBufferPointer { ob in
                        PanelProduct.multiply(m: r, n: n, k: n, a: ab.baseAddress!, lda: n, b: hb.baseAddress!, ldb: n, c: ob.baseAddress!, ldc: n,
                                              team: ThreadTeam.sharedIfParallel)
                    }
                }
            }
            var s = 0.0
            for i in 0..<r * n { s += Double(ah[i]) * Double(a[i]) }
            return s
        }
        let delta = zip(wc.data, w.data).map { $0 - $1 }
        let den = quad(w.data)
        return den > 0 ? (max(0, quad(delta)) / den).squareRoot() : 0
    }
}

/// Peak resident memory of this process.
public enum PeakMemory {
    public static func residentBytes() -> Int {
        var u = rusage()
        getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &u)
        return Int(u.ru_maxrss) * 1024
    }
}
