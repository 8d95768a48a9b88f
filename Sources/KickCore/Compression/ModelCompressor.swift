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
    public init() {}

    public static func + (a: BlockCost, b: BlockCost) -> BlockCost {
        var c = a
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
    public var stageMemoryLimit = 8 << 30

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
        var X = try calibration.map { try embed($0, bundle: bundle) } ?? []
        var meta = metadata
        meta["method"] = spec.method.rawValue
        meta["config"] = spec.configName
        try CheckpointEncoder.write(bundle: bundle, to: path, metadata: meta, transform: { k, original in
            let tb = Date()
            let out: [LinearRole: CompressedLinear], layers: [LayerReport]
            var cost = BlockCost()
            do { (out, layers) = try compressBlock(k, original, calibration: calibration, X: &X, kernel: kernel, cost: &cost) } catch let e as KickError where e.file == nil {
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
        var X = try calibration.map { try embed($0, bundle: bundle) } ?? []
        let block = try bundle.source.validatedBlock(0)
        var cost = BlockCost()
        _ = try compressBlock(0, block, calibration: calibration, X: &X, kernel: DecoderBlockKernel(config: bundle.config), cost: &cost)
        return cost
    }

    /// The calibration windows' token embeddings: block 0's inputs, (N·L) × H.
    public func embed(_ cal: CalibrationSet, bundle: ModelBundle) throws -> [Float] {
        let H = bundle.config.hiddenSize
        let emb = try bundle.source.matrix(.embedding)
        var X: [Float] = []
        X.reserveCapacity(cal.windows.count * cal.length * H)
        for w in cal.windows { for t in w { X.append(contentsOf: emb.data[t * H..<(t + 1) * H]) } }
        return X
    }

    /// Compresses block k. With calibration, X holds the block's inputs on
    /// entry and the compressed block's outputs (the next block's inputs) on
    /// return.
    func compressBlock(_ k: Int, _ original: LlamaBlockWeights, calibration: CalibrationSet?, X: inout [Float],
                       kernel: DecoderBlockKernel, cost: inout BlockCost) throws -> ([LinearRole: CompressedLinear], [LayerReport]) {
        let t0 = Date()
        var block = original
        var out: [LinearRole: CompressedLinear] = [:]
        var errors: [LinearRole: Double] = [:]
        if let cal = calibration {
            let groups = trueSequential ? Self.groups.map { [$0] } : [Self.groups]
            let rows = cal.windows.count * cal.length
            let stages = trueSequential && resumeStages && StageBuffers.bytes(rows: rows, config: kernel.config) <= stageMemoryLimit
                ? StageBuffers(rows: rows, config: kernel.config) : nil
            for batch in groups {
                // statistics of these groups' inputs under the block as compressed so far
                let stats = Dictionary(uniqueKeysWithValues: batch.map { g in
                    (g.roles[0], HessianAccumulator(cols: block[g.roles[0]].cols, full: fullStatistics))
                })
                try forEachBatch(cal, &X, kernel: kernel, block: EngineBlock(block), layer: k,
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
                        let compressed = try spec.compress(original[role], stats: s)
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
            try forEachBatch(cal, &X, kernel: kernel, block: EngineBlock(block), layer: k, startAt: stages == nil ? .qkvInput : .output,
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
    private func forEachBatch(_ cal: CalibrationSet, _ X: inout [Float], kernel: DecoderBlockKernel, block: EngineBlock, layer: Int,
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
            var x = Array(X[s0 * L * H..<(s0 + n) * L * H])
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
            if updateX { X.replaceSubrange(s0 * L * H..<(s0 + n) * L * H, with: x) }
            s0 += n
        }
    }

    /// The calibration rows' block state between passes (one block's),
    /// in memory of its own so that pointers into it stay valid.
    final class StageBuffers {
        let config: LlamaConfig
        let attn, resid, hidden: UnsafeMutablePointer<Float>

        static func bytes(rows: Int, config c: LlamaConfig) -> Int {
            rows * (c.numHeads * c.headDim + c.hiddenSize + c.intermediateSize) * MemoryLayout<Float>.size
        }

        init(rows: Int, config c: LlamaConfig) {
            config = c
            attn = .allocate(capacity: rows * c.numHeads * c.headDim)
            resid = .allocate(capacity: rows * c.hiddenSize)
            hidden = .allocate(capacity: rows * c.intermediateSize)
        }

        deinit { attn.deallocate(); resid.deallocate(); hidden.deallocate() }

        /// The rows from `row` on.
        func rows(from row: Int) -> DecoderBlockKernel.StageRows {
            DecoderBlockKernel.StageRows(attn: attn + row * config.numHeads * config.headDim, resid: resid + row * config.hiddenSize,
                                         hidden: hidden + row * config.intermediateSize)
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
