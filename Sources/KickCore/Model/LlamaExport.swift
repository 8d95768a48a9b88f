import Foundation

extension LlamaWeights {
    /// Random weights for a config (seeded): the tiny models tests and
    /// benchmarks build without any download.
    public static func random(_ c: LlamaConfig, seed: UInt64, scale: Float = 0.2) -> LlamaWeights {
        var rng = SeededRandom(seed: seed)
        func mat(_ r: Int, _ k: Int) -> Matrix {
            Matrix(rows: r, cols: k, data: (0..<r * k).map { _ in Float(rng.unit() * 2 - 1) * scale })
        }
        func norm(_ n: Int) -> [Float] { (0..<n).map { _ in 1 + Float(rng.unit() - 0.5) * 0.2 } }
        let q = c.numHeads * c.headDim, kv = c.numKVHeads * c.headDim
        let blocks = (0..<c.numLayers).map { _ in
            LlamaBlockWeights(attnNorm: norm(c.hiddenSize), ffnNorm: norm(c.hiddenSize), linear: [
                .q: mat(q, c.hiddenSize), .k: mat(kv, c.hiddenSize), .v: mat(kv, c.hiddenSize), .o: mat(c.hiddenSize, q),
                .gate: mat(c.intermediateSize, c.hiddenSize), .up: mat(c.intermediateSize, c.hiddenSize),
                .down: mat(c.hiddenSize, c.intermediateSize),
            ])
        }
        return LlamaWeights(embedding: mat(c.vocabSize, c.hiddenSize), blocks: blocks, finalNorm: norm(c.hiddenSize),
                            output: c.tieWordEmbeddings ? nil : mat(c.vocabSize, c.hiddenSize))
    }
}

/// Converts between RoPE conventions by permuting the rows of Q and K, as
/// llama.cpp's converter does: GGUF row (head h, 2i + j) is Hugging Face row
/// (head h, j·d/2 + i).
public enum RopePermutation {
    public static func halvesToAdjacent(_ m: Matrix, heads: Int) -> Matrix {
        let hd = m.rows / heads
        var out = m
        for h in 0..<heads {
            for i in 0..<hd / 2 {
                for j in 0..<2 {
                    let dst = h * hd + 2 * i + j, src = h * hd + j * hd / 2 + i
                    for c in 0..<m.cols { out.data[dst * m.cols + c] = m.data[src * m.cols + c] }
                }
            }
        }
        return out
    }
}

/// Writes Llama weights in the two source formats kick reads.
public enum LlamaExport {
    /// A GGUF file (llama architecture, F32 or F16 tensors, Q/K permuted to
    /// adjacent-pair RoPE). Extra metadata (a tokenizer) can be appended.
    public static func gguf(_ c: LlamaConfig, _ w: LlamaWeights, to path: String, f16: Bool = false,
                            extraMetadata: [(String, GGUFWriter.Value)] = []) throws {
        var g = GGUFWriter()
        g.metadata = [
            ("general.architecture", .string("llama")),
            ("llama.block_count", .u32(UInt32(c.numLayers))),
            ("llama.context_length", .u32(UInt32(c.contextLength))),
            ("llama.embedding_length", .u32(UInt32(c.hiddenSize))),
            ("llama.feed_forward_length", .u32(UInt32(c.intermediateSize))),
            ("llama.attention.head_count", .u32(UInt32(c.numHeads))),
            ("llama.attention.head_count_kv", .u32(UInt32(c.numKVHeads))),
            ("llama.rope.freq_base", .f32(c.ropeTheta)),
            ("llama.attention.layer_norm_rms_epsilon", .f32(c.rmsNormEps)),
            ("llama.vocab_size", .u32(UInt32(c.vocabSize))),
        ] + extraMetadata
        var t: [GGUFWriter.Tensor] = [.init(name: TensorRole.embedding.ggufName, matrix: w.embedding, f16: f16)]
        for (i, b) in w.blocks.enumerated() {
            t.append(.init(name: TensorRole.attnNorm(i).ggufName, matrix: Matrix(rows: 1, cols: b.attnNorm.count, data: b.attnNorm)))
            t.append(.init(name: TensorRole.ffnNorm(i).ggufName, matrix: Matrix(rows: 1, cols: b.ffnNorm.count, data: b.ffnNorm)))
            for r in LinearRole.allCases {
                var m = b[r]
                if c.ropeStyle == .halves && r == .q { m = RopePermutation.halvesToAdjacent(m, heads: c.numHeads) }
                if c.ropeStyle == .halves && r == .k { m = RopePermutation.halvesToAdjacent(m, heads: c.numKVHeads) }
                t.append(.init(name: TensorRole.linear(i, r).ggufName, matrix: m, f16: f16))
            }
        }
        t.append(.init(name: TensorRole.finalNorm.ggufName, matrix: Matrix(rows: 1, cols: w.finalNorm.count, data: w.finalNorm)))
        if let o = w.output { t.append(.init(name: TensorRole.output.ggufName, matrix: o, f16: f16)) }
        g.tensors = t
        try AtomicFile.write(g.encode(), to: path)
    }

    /// A Hugging Face folder: config.json and model.safetensors (weights as
    /// given, i.e. halves RoPE).
    public static func huggingFace(_ c: LlamaConfig, _ w: LlamaWeights, to dir: String, dtype: SafetensorsDType = .f32) throws {
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        var cfg = c
        cfg.ropeStyle = .halves
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys]
        try AtomicFile.write(try enc.encode(cfg), to: (dir as NSString).appendingPathComponent("config.json"))
        var tensors: [(name: String, shape: [Int], data: [Float])] = [
            (TensorRole.embedding.hfName, [w.embedding.rows, w.embedding.cols], w.embedding.data),
            (TensorRole.finalNorm.hfName, [w.finalNorm.count], w.finalNorm),
        ]
        for (i, b) in w.blocks.enumerated() {
            tensors.append((TensorRole.attnNorm(i).hfName, [b.attnNorm.count], b.attnNorm))
            tensors.append((TensorRole.ffnNorm(i).hfName, [b.ffnNorm.count], b.ffnNorm))
            for r in LinearRole.allCases { tensors.append((TensorRole.linear(i, r).hfName, [b[r].rows, b[r].cols], b[r].data)) }
        }
        if let o = w.output { tensors.append((TensorRole.output.hfName, [o.rows, o.cols], o.data)) }
        try AtomicFile.write(SafetensorsWriter.encode(tensors, dtype: dtype), to: (dir as NSString).appendingPathComponent("model.safetensors"))
    }
}
