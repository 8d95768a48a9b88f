import Foundation
import Testing
@testable import KickCore
import KickTestSupport

/// Quantized checkpoints run on the integer-code kernels: on the golden
/// model's three reference sequences their logits are those of the same
/// checkpoint widened to float32 (within 1e-5 relative, and in fact to the
/// bit), alone, batched together and decoded token by token.
@Suite struct CodedWeightsTests {
    static let folder = Golden.dir + "/hf-real/hf-bin-f32"

    static func sequences() throws -> [[Int]] {
        let ref = try Golden.json("hf-real/reference.json") as! [String: Any]
        return (ref["logits"] as! [Any]).map { ($0 as! [String: Any])["ids"] as! [Int] }
    }

    /// The golden model with every linear layer quantized by `quantize`, as a .kick checkpoint.
    static func checkpoint(_ name: String, _ quantize: @escaping (Matrix) -> QuantizedMatrix) throws -> String {
        let path = tempDir("coded-\(name)") + "/m.kick"
        let bundle = try ModelBundle.open(path: folder)
        try CheckpointEncoder.write(bundle: bundle, to: path, metadata: [:], transform: { _, blk in
            Dictionary(uniqueKeysWithValues: LinearRole.allCases.map { ($0, CompressedLinear.quantized(quantize(blk[$0]), sparse: false)) })
        })
        return path
    }

    /// The golden model as a GGUF whose linear layers (and embedding and
    /// head) are ggml blocks of `type`, block by block; down (176 columns,
    /// not whole blocks) stays float32.
    static func gguf(_ types: [GGMLType]) throws -> String {
        let path = tempDir("coded-gguf-\(types.map(\.name).joined(separator: "-"))") + "/m.gguf"
        let src = try HFWeightSource(directory: folder)
        let c = src.config
        let w = try src.loadWeights()
        var g = GGUFWriter()
        g.metadata = [
            ("general.architecture", .string("llama")), ("llama.block_count", .u32(UInt32(c.numLayers))),
            ("llama.context_length", .u32(UInt32(c.contextLength))), ("llama.embedding_length", .u32(UInt32(c.hiddenSize))),
            ("llama.feed_forward_length", .u32(UInt32(c.intermediateSize))), ("llama.attention.head_count", .u32(UInt32(c.numHeads))),
            ("llama.attention.head_count_kv", .u32(UInt32(c.numKVHeads))), ("llama.rope.freq_base", .f32(c.ropeTheta)),
            ("llama.attention.layer_norm_rms_epsilon", .f32(c.rmsNormEps)), ("llama.vocab_size", .u32(UInt32(c.vocabSize))),
        ]
        // a byte-level tokenizer of the model's vocabulary size, so the file opens as a bundle
        var toks = (0..<256).map { String(ByteLevelMap.byteToScalar[$0]) } + ["<|im_start|>", "<|im_end|>"]
        toks += (toks.count..<c.vocabSize).map { "tok\($0)" }
        g.metadata += [("tokenizer.ggml.model", .string("gpt2")), ("tokenizer.ggml.pre", .string("smollm")),
                       ("tokenizer.ggml.tokens", .strings(toks)), ("tokenizer.ggml.merges", .strings([])), ("tokenizer.ggml.eos_token_id", .u32(257))]
        func blocks(_ name: String, _ m: Matrix, _ t: GGMLType) -> GGUFWriter.Tensor {
            GGUFWriter.Tensor(name: name, dims: [m.cols, m.rows], typeID: t.id, bytes: ggmlBlocks(m, t))
        }
        var t = [blocks(TensorRole.embedding.ggufName, w.embedding, .q8_0)]
        for (i, b) in w.blocks.enumerated() {
            t.append(.init(name: TensorRole.attnNorm(i).ggufName, matrix: Matrix(rows: 1, cols: b.attnNorm.count, data: b.attnNorm)))
            t.append(.init(name: TensorRole.ffnNorm(i).ggufName, matrix: Matrix(rows: 1, cols: b.ffnNorm.count, data: b.ffnNorm)))
            for r in LinearRole.allCases {
                var m = b[r]
                if r == .q { m = RopePermutation.halvesToAdjacent(m, heads: c.numHeads) }
                if r == .k { m = RopePermutation.halvesToAdjacent(m, heads: c.numKVHeads) }
                t.append(r == .down ? .init(name: TensorRole.linear(i, r).ggufName, matrix: m) : blocks(TensorRole.linear(i, r).ggufName, m, types[i % types.count]))
            }
        }
        t.append(.init(name: TensorRole.finalNorm.ggufName, matrix: Matrix(rows: 1, cols: w.finalNorm.count, data: w.finalNorm)))
        t.append(blocks(TensorRole.output.ggufName, w.output!, .q4_1))
        g.tensors = t
        try AtomicFile.write(g.encode(), to: path)
        return path
    }

    func checkCodedEqualsWidened(_ source: WeightSource, expectForms: [String], smallerBy: Int = 3) throws {
        let coded = try LlamaModel(source: source, weights: .source)
        let wide = try LlamaModel(source: source, weights: .f32)
        for f in expectForms { #expect(coded.weightFormats.contains(f), "\(coded.weightFormats) holds \(f)") }
        #expect(wide.weightFormats == "f32")
        let blockBytes = { (m: LlamaModel) in m.blocks.reduce(0) { $0 + $1.byteCount } }
        #expect(blockBytes(coded) * smallerBy < blockBytes(wide), "blocks as codes: \(blockBytes(coded)) bytes, as float32: \(blockBytes(wide))")
        let seqs = try Self.sequences()
        func alone(_ m: LlamaModel, _ ids: [Int]) -> [Float] { m.forward([BatchItem(cache: m.newCache(), tokens: ids, logits: .all)])[0]!.data }
        var byCoded: [[Float]] = []
        for ids in seqs {
            let a = alone(coded, ids), b = alone(wide, ids)
            #expect(relL2(a, b) <= 1e-5)
            #expect(differing(a, b) == 0, "\(ids.count) tokens: codes and float32 differ (relative L2 \(relL2(a, b)))")
            byCoded.append(a)
        }
        // all three in one ragged batch
        let batched = coded.forward(seqs.map { BatchItem(cache: coded.newCache(), tokens: $0, logits: .all) })
        for (i, l) in batched.enumerated() { #expect(differing(l!.data, byCoded[i]) == 0, "sequence \(i) batched (relative L2 \(relL2(l!.data, byCoded[i])))") }
        // token by token (one-token steps: the in-register kernels), against the float32 panels' steps
        func steps(_ m: LlamaModel, _ ids: [Int]) -> [Float] {
            let cache = m.newCache()
            return ids.flatMap { m.forward([BatchItem(cache: cache, tokens: [$0], logits: .last)])[0]!.data }
        }
        let a = steps(coded, seqs[0]), b = steps(wide, seqs[0])
        #expect(differing(a, b) == 0, "token by token (relative L2 \(relL2(a, b)))")
    }

    @Test(arguments: ["q4-g32", "q4-row-sym", "q3-g64", "q2-g32", "q8-g32", "q4-g32-actorder"])
    func kickCodes(form: String) throws {
        let bits = Int(form.dropFirst().prefix(1))!
        let path = try Self.checkpoint(form) { w in
            if form.hasSuffix("actorder") { return actOrderQuantized(w, bits: bits, groupSize: 32, seed: 7) }
            if form.contains("row") { return RTN.quantize(w, QuantizerSpec(bits: bits, groupSize: nil, symmetric: true)) }
            return RTN.quantize(w, QuantizerSpec(bits: bits, groupSize: Int(form.split(separator: "g").last!)!))
        }
        try checkCodedEqualsWidened(KickWeightSource(path: path), expectForms: ["q\(bits)-"])
    }

    /// A magnitude 2:4 (and 4:8) checkpoint of the f16 golden model runs on
    /// the N:M kernels, with the logits of its weights held dense.
    @Test(arguments: [(2, 4), (4, 8), (1, 2)]) func nmSparse(pattern: (Int, Int)) throws {
        let (n, m) = pattern
        let path = tempDir("coded-nm-\(n)of\(m)") + "/m.kick"
        let bundle = try ModelBundle.open(path: Golden.dir + "/hf-real/hf-bin-f16")
        try CheckpointEncoder.write(bundle: bundle, to: path, metadata: [:], transform: { _, blk in
            Dictionary(uniqueKeysWithValues: LinearRole.allCases.map { ($0, CompressedLinear.nm(Magnitude.prune(blk[$0], .nm(n: n, m: m)), n: n, m: m)) })
        })
        let src = try KickWeightSource(path: path)
        #expect(src.nmPattern(.linear(0, .q))?.values == .f16)
        let sparse = try LlamaModel(source: src, weights: .source)
        #expect(sparse.weightFormats.contains("\(n):\(m)-f16"), "\(sparse.weightFormats)")
        let wide = try LlamaModel(source: src, weights: .f32)
        for ids in try Self.sequences() {
            let a = sparse.forward([BatchItem(cache: sparse.newCache(), tokens: ids, logits: .all)])[0]!.data
            let b = wide.forward([BatchItem(cache: wide.newCache(), tokens: ids, logits: .all)])[0]!.data
            #expect(differing(a, b) == 0, "\(n):\(m): relative L2 \(relL2(a, b))")
        }
        let cache = sparse.newCache(), wcache = wide.newCache()
        let ids = try Self.sequences()[1]
        let a = ids.flatMap { sparse.forward([BatchItem(cache: cache, tokens: [$0], logits: .last)])[0]!.data }
        let b = ids.flatMap { wide.forward([BatchItem(cache: wcache, tokens: [$0], logits: .last)])[0]!.data }
        #expect(differing(a, b) == 0, "\(n):\(m) token by token: relative L2 \(relL2(a, b))")
    }

    @Test func ggufBlockTypes() throws {
        // block 0 Q4_0, block 1 Q4_1, block 2 Q8_0; embedding Q8_0, head Q4_1
        let path = try Self.gguf([.q4_0, .q4_1, .q8_0])
        try checkCodedEqualsWidened(GGUFWeightSource(path: path), expectForms: ["Q4_0", "Q4_1", "Q8_0", "f32"], smallerBy: 2)
    }
}

/// Pruned tensors of a ggml-quantized source keep their kept values as
/// codes on the source's blocks: a magnitude result decodes to exactly the
/// source's values where kept, a moved value to its block's grid, and the
/// checkpoint is smaller than the dense one it came from.
@Suite struct SparseGGMLTests {
    @Test(arguments: [GGMLType.q4_0, .q4_1, .q8_0]) func keptValuesKeepTheirSourceCodes(type: GGMLType) throws {
        var rng = SeededRandom(seed: 41)
        let (rows, cols) = (24, 96)
        let src = ggmlBlocks(Matrix(rows: rows, cols: cols, data: (0..<rows * cols).map { _ in Float(rng.next() % 2001) / 1000 - 1 }), type)
        var dense = [Float](repeating: 0, count: rows * cols)
        src.withUnsafeBytes { b in dense.withUnsafeMutableBufferPointer { type.dequantize(b.baseAddress!, rows * cols, $0.baseAddress!) } }
        let pruned = Magnitude.prune(Matrix(rows: rows, cols: cols, data: dense), .unstructured(0.5))
        let p = try #require(TensorCodec.encodeSparseGGML(pruned, type: type, source: src))
        let back = try p.withUnsafeBytes { try TensorCodec.decode($0, rows: rows, cols: cols, .sparseGGML(type)) }
        #expect(back == pruned.data, "unchanged kept values decode to the source's bits")
        #expect(p.count < src.count, "\(p.count) bytes against the source's \(src.count)")
        // moved values land on their block's grid, within half a step
        var moved = pruned
        for i in moved.data.indices where moved.data[i] != 0 { moved.data[i] *= 1.03 }
        let q = try TensorCodec.encodeSparseGGML(moved, type: type, source: src)!.withUnsafeBytes {
            try TensorCodec.decode($0, rows: rows, cols: cols, .sparseGGML(type))
        }
        let step = (0..<rows * cols / 32).map { b in halfToFloat(UInt16(src[b * type.bytesPerBlock]) | UInt16(src[b * type.bytesPerBlock + 1]) << 8) }
        for i in moved.data.indices where moved.data[i] != 0 {
            #expect(abs(q[i] - moved.data[i]) <= abs(step[i / 32]) * 0.5 + 1e-6 || q[i] == 0 || abs(moved.data[i]) > abs(step[i / 32]) * 7, "\(i)")
        }
        // a wrong length is an error, not a crash
        #expect(throws: KickError.self) { try p.dropLast().withUnsafeBytes { try TensorCodec.decode(UnsafeRawBufferPointer($0), rows: rows, cols: cols, .sparseGGML(type)) } }
    }

    /// At low sparsity the source's own blocks are smaller than a bitmask
    /// and the kept codes: the same values, Q4_0/Q8_0 as plain ggml (their
    /// zero code is 0), Q4_1 flagged with an escape code, or, where a kept
    /// entry uses the block's zero code, an exception naming a free code or
    /// (all 16 used) a mask of the zeros.
    @Test(arguments: [GGMLType.q4_0, .q4_1, .q8_0]) func lowSparsityKeepsTheSourceBlocks(type: GGMLType) throws {
        var rng = SeededRandom(seed: 43)
        let (rows, cols) = (24, 96)
        var values = (0..<rows * cols).map { _ in Float(rng.next() % 2001) / 1000 - 1 }
        // row 0's first block holds every Q4_1 code twice, so pruning one entry leaves all 16 used
        for j in 0..<32 { values[j] = Float(j % 16) / 10 }
        let src = ggmlBlocks(Matrix(rows: rows, cols: cols, data: values), type)
        var dense = [Float](repeating: 0, count: rows * cols)
        src.withUnsafeBytes { b in dense.withUnsafeMutableBufferPointer { type.dequantize(b.baseAddress!, rows * cols, $0.baseAddress!) } }
        // magnitude's mask, a random one (kept entries on the zero code), and moved values
        var random = Matrix(rows: rows, cols: cols, data: dense)
        for i in random.data.indices where (i >= 32 && rng.next() % 10 == 0) || i == 5 { random.data[i] = 0 }
        var moved = random
        for i in moved.data.indices where moved.data[i] != 0 && i % 3 == 0 { moved.data[i] *= 1.03 }
        for (label, pruned) in [("magnitude", Magnitude.prune(Matrix(rows: rows, cols: cols, data: dense), .unstructured(0.1))), ("random", random), ("moved", moved)] {
            let (e, p) = try #require(TensorCodec.encodePrunedBlocks(pruned, type: type, source: src))
            #expect(e == (type == .q4_1 ? .escapeGGML(type) : .ggml(type)))
            let back = try p.withUnsafeBytes { try TensorCodec.decode($0, rows: rows, cols: cols, e) }
            let viaMask = try TensorCodec.encodeSparseGGML(pruned, type: type, source: src)!.withUnsafeBytes {
                try TensorCodec.decode($0, rows: rows, cols: cols, .sparseGGML(type))
            }
            #expect(differing(back, viaMask) == 0, "\(label): the blocks decode to sparse-ggml's values")
            if label == "magnitude" { #expect(differing(back, pruned.data) == 0, "unchanged kept values decode to the source's bits") }
            if type == .q4_1 {
                let table = try p.withUnsafeBytes { try TensorCodec.EscapeTable($0, from: src.count, blocks: rows * cols / 32) }
                if label != "magnitude" {
                    #expect(table.ranks.contains(0) && table.ranks.contains { $0 > 0 }, "\(label): both kinds of exception \(table.ranks)")
                }
                // 72 blocks: every gap is one byte
                #expect(p.count == src.count + 4 + table.ranks.count * 2 + table.ranks.filter { $0 == 0 }.count * 4)
                // a wrong or truncated table is an error naming the problem, not a trap
                var bad = p
                bad[src.count] &+= 1
                #expect(throws: KickError.self) { try bad.withUnsafeBytes { try TensorCodec.decode($0, rows: rows, cols: cols, e) } }
                #expect(throws: KickError.self) { try p.dropLast().withUnsafeBytes { try TensorCodec.decode(UnsafeRawBufferPointer($0), rows: rows, cols: cols, e) } }
                if let first = table.blocks.first {
                    var unflagged = p
                    unflagged[first * 20 + 1] &= 0x7F
                    #expect(throws: KickError.self) { try unflagged.withUnsafeBytes { try TensorCodec.decode($0, rows: rows, cols: cols, e) } }
                }
            } else {
                #expect(p.count == src.count)
            }
        }
        // N:M-free only: the writer keeps sparse-ggml for patterns; and a wrong source size is nil
        #expect(TensorCodec.encodePrunedBlocks(random, type: type, source: Array(src.dropLast())) == nil)
    }

    /// 10% of a quantized source: the source's blocks, no larger than the
    /// dense checkpoint; Q4_0 and Q8_0 stay ggml and run on their codes.
    @Test func lowSparsityCheckpointIsNoLargerThanItsDense() throws {
        let gguf = try CodedWeightsTests.gguf([.q4_1, .q4_0, .q8_0])
        let bundle = try ModelBundle.open(path: gguf)
        let dir = tempDir("escape-ggml")
        try CheckpointEncoder.write(bundle: bundle, to: dir + "/dense.kick", metadata: [:], transform: { _, _ in [:] })
        try CheckpointEncoder.write(bundle: bundle, to: dir + "/m.kick", metadata: [:], transform: { _, blk in
            Dictionary(uniqueKeysWithValues: LinearRole.allCases.map { ($0, CompressedLinear.pruned(Magnitude.prune(blk[$0], .unstructured(0.1)))) })
        })
        let ck = try KickCheckpoint(path: dir + "/m.kick"), dense = try KickCheckpoint(path: dir + "/dense.kick")
        #expect(ck.entry("blk.0.attn_q.weight")!.encoding == .escapeGGML(.q4_1))
        #expect(ck.entry("blk.1.attn_q.weight")!.encoding == .ggml(.q4_0))
        #expect(ck.entry("blk.2.ffn_up.weight")!.encoding == .ggml(.q8_0))
        let src = try GGUFWeightSource(path: gguf)
        for i in 0..<3 {
            for r in [LinearRole.q, .gate] {
                let name = TensorRole.linear(i, r).ggufName
                let want = Magnitude.prune(try src.matrix(.linear(i, r)), .unstructured(0.1))
                #expect(differing(try ck.matrix(name).data, want.data) == 0, "\(name)")
            }
        }
        #expect(ck.file.size <= dense.file.size, "\(ck.file.size) bytes against dense's \(dense.file.size)")
        try CodedWeightsTests().checkCodedEqualsWidened(KickWeightSource(path: dir + "/m.kick"), expectForms: ["Q4_0", "Q8_0"], smallerBy: 1)
    }

    @Test func prunedCheckpointOfAQuantizedSourceIsSmallerThanItsDense() throws {
        let gguf = try CodedWeightsTests.gguf([.q4_1, .q4_0, .q8_0])
        let bundle = try ModelBundle.open(path: gguf)
        let dir = tempDir("sparse-ggml")
        try CheckpointEncoder.write(bundle: bundle, to: dir + "/dense.kick", metadata: [:], transform: { _, _ in [:] })
        try CheckpointEncoder.write(bundle: bundle, to: dir + "/m.kick", metadata: [:], transform: { _, blk in
            Dictionary(uniqueKeysWithValues: [LinearRole.q, .k, .v, .o, .gate, .up].map { ($0, CompressedLinear.pruned(Magnitude.prune(blk[$0], .unstructured(0.5)))) })
        })
        let ck = try KickCheckpoint(path: dir + "/m.kick"), dense = try KickCheckpoint(path: dir + "/dense.kick")
        #expect(ck.entry("blk.0.attn_q.weight")!.encoding == .sparseGGML(.q4_1))
        #expect(ck.entry("blk.2.ffn_up.weight")!.encoding == .sparseGGML(.q8_0))
        let src = try GGUFWeightSource(path: gguf)
        for i in 0..<3 {
            for r in [LinearRole.q, .gate] {
                let name = TensorRole.linear(i, r).ggufName
                #expect(ck.entry(name)!.size < dense.entry(name)!.size, "\(name)")
                #expect(try ck.matrix(name) == Magnitude.prune(src.matrix(.linear(i, r)), .unstructured(0.5)), "\(name)")
            }
        }
        #expect(ck.file.size < dense.file.size)
        // unstructured 50% of float32 values is past the sparse kernel's crossover: held sparse, same logits
        try CodedWeightsTests().checkCodedEqualsWidened(KickWeightSource(path: dir + "/m.kick"), expectForms: ["sparse-f32"], smallerBy: 1)
        // 2:4 of a quantized source: sparse-ggml that says its pattern, held N:M sparse
        try CheckpointEncoder.write(bundle: bundle, to: dir + "/nm.kick", metadata: [:], transform: { _, blk in
            Dictionary(uniqueKeysWithValues: [LinearRole.q, .k, .v, .o, .gate, .up].map { ($0, CompressedLinear.nm(Magnitude.prune(blk[$0], .nm(n: 2, m: 4)), n: 2, m: 4)) })
        })
        let nm = try KickWeightSource(path: dir + "/nm.kick")
        #expect(nm.checkpoint.entry("blk.0.attn_q.weight")!.encoding == .sparseGGML(.q4_1, n: 2, m: 4))
        let sparse = try LlamaModel(source: nm, weights: .source), wide = try LlamaModel(source: nm, weights: .f32)
        #expect(sparse.weightFormats.contains("2:4-f32"), "\(sparse.weightFormats)")
        let ids = try CodedWeightsTests.sequences()[0]
        let a = sparse.forward([BatchItem(cache: sparse.newCache(), tokens: ids, logits: .all)])[0]!.data
        let b = wide.forward([BatchItem(cache: wide.newCache(), tokens: ids, logits: .all)])[0]!.data
        #expect(differing(a, b) == 0, "relative L2 \(relL2(a, b))")
    }
}
