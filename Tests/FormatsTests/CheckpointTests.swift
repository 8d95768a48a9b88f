import Foundation
import Testing
@testable import KickCore
import KickTestSupport

@Suite struct CheckpointTests {
    static let config = LlamaConfig(vocabSize: 16, hiddenSize: 8, intermediateSize: 12, numLayers: 1, numHeads: 2, numKVHeads: 1)
    static let tok = KickFormat.TokenizerRef(kind: "gguf", blobs: [], identity: "test")

    /// Values exactly representable at `v`, with some zeros.
    static func values(_ n: Int, _ v: ValueType, zeroEvery: Int, seed: UInt64) -> [Float] {
        var rng = SeededRandom(seed: seed)
        return (0..<n).map { i in
            if zeroEvery > 0 && i % zeroEvery == 0 { return 0 }
            let x = Float(rng.unit() * 4 - 2)
            var b: [UInt8] = []
            v.append(x == 0 ? 0.5 : x, to: &b)
            return b.withUnsafeBytes { v.load($0.baseAddress!, 0) }
        }
    }

    /// Every encoding × value type on odd shapes, all zeros and no zeros.
    static func cases() -> [(String, [Int], CompressedLinear?, TensorEncoding?, [Float])] {
        var out: [(String, [Int], CompressedLinear?, TensorEncoding?, [Float])] = []
        for v in ValueType.allCases {
            for (rows, cols) in [(7, 13), (3, 37), (1, 5)] {
                for zeroEvery in [0, 1, 3] {
                    let vals = values(rows * cols, v, zeroEvery: zeroEvery, seed: UInt64(rows * cols + zeroEvery))
                    let tag = "\(v)-\(rows)x\(cols)-z\(zeroEvery)"
                    out.append(("dense-\(tag)", [rows, cols], nil, .dense(v), vals))
                    out.append(("sparse-\(tag)", [rows, cols], nil, .sparse(v), vals))
                    for (n, m) in [(2, 4), (1, 2), (4, 8), (3, 5)] {
                        let w = Magnitude.prune(Matrix(rows: rows, cols: cols, data: vals), .nm(n: n, m: m))
                        out.append(("nm\(n)\(m)-\(tag)", [rows, cols], .nm(w, n: n, m: m), nil, w.data))
                    }
                }
            }
        }
        for bits in [2, 3, 4, 8] {
            for (rows, cols, gs) in [(5, 13, 4), (3, 37, 37), (2, 130, 64)] {
                for sym in [false, true] {
                    let w = Matrix(rows: rows, cols: cols, data: values(rows * cols, .f32, zeroEvery: 4, seed: UInt64(bits * cols)))
                    let q = RTN.quantize(w, QuantizerSpec(bits: bits, groupSize: gs, symmetric: sym))
                    out.append(("q\(bits)-\(rows)x\(cols)-g\(gs)-\(sym)", [rows, cols], .quantized(q, sparse: false), nil, q.dequantized().data))
                    var pruned = q
                    for i in stride(from: 0, to: pruned.codes.count, by: 2) { pruned.codes[i] = pruned.zeros[(i / cols) * pruned.groups + (i % cols) / gs] }
                    out.append(("sq\(bits)-\(rows)x\(cols)-g\(gs)-\(sym)", [rows, cols], .quantized(pruned, sparse: true), nil, pruned.dequantized().data))
                }
            }
            // act-order style group index
            var q = RTN.quantize(Matrix(rows: 2, cols: 6, data: values(12, .f32, zeroEvery: 0, seed: 9)), QuantizerSpec(bits: bits, groupSize: 3))
            q.columnGroup = [1, 0, 1, 0, 0, 1]
            out.append(("gidx\(bits)", [2, 6], .quantized(q, sparse: false), nil, q.dequantized().data))
        }
        return out
    }

    static func write(_ path: String, _ cs: [(String, [Int], CompressedLinear?, TensorEncoding?, [Float])], chunk: Int = KickFormat.defaultChunk) throws {
        let w = try KickCheckpointWriter(path: path, chunkSize: chunk)
        for (name, shape, cl, enc, vals) in cs {
            let (e, p): (TensorEncoding, [UInt8])
            if let cl { (e, p) = CheckpointEncoder.encode(cl, values: .f32) }
            else if enc!.kind == .dense { (e, p) = (enc!, TensorCodec.encodeDense(vals, enc!.values!)) }
            else { (e, p) = (enc!, TensorCodec.encodeSparse(vals, enc!.values!)) }
            try w.addTensor(name: name, shape: shape, encoding: e, payload: p, zeros: vals.filter { $0 == 0 }.count)
        }
        try w.addBlob(name: "note", bytes: Array("hello".utf8))
        try w.finish(config: config, chatTemplate: .chatml, tokenizer: tok, metadata: ["k": "v"])
    }

    @Test func everyEncodingRoundTripsBitForBit() throws {
        let path = tempDir("ck") + "/rt.kick"
        let cs = Self.cases()
        try Self.write(path, cs, chunk: 1024)  // small chunks: large tensors span several
        let ck = try KickCheckpoint(path: path)
        for (name, shape, cl, _, want) in cs {
            let got = try ck.floats(name)
            #expect(got.map(\.bitPattern) == want.map(\.bitPattern), "\(name)")
            #expect(ck.entry(name)!.shape == shape)
            if case .nm(_, let n, let m) = cl { #expect(ck.entry(name)!.encoding == .nm(n, m, .f32), "\(name)") }
            if case .quantized(let q, let sparse) = cl {
                let (e, p) = try ck.payload(name)
                let back = try p.withUnsafeBytes { try TensorCodec.decodeQuant($0, rows: q.rows, cols: q.cols, bits: q.bits, groupSize: q.groupSize,
                                                                              sparse: sparse, groupIndex: e.encoding.groupIndex == true) }
                #expect(back == q, "codes of \(name)")
            }
        }
        #expect(try ck.blob("note") == Array("hello".utf8))
        #expect(ck.directory.metadata["k"] == "v")
    }

    @Test func nmPatternsCostFewerBitsThanPositions() {
        // 2:4 numbers the 6 patterns of a group in 3 bits, not 2 × 2
        #expect(Combinations.bits(4, 2) == 3)
        for m in 2...8 {
            for k in 0...m {
                for r in 0..<Combinations.choose(m, k) {
                    #expect(Combinations.rank(Combinations.unrank(r, m: m, k: k)) == r)
                }
            }
        }
    }

    /// Every byte flipped, every header truncation: all detected, none crash.
    @Test func corruptionIsAlwaysDetected() throws {
        let dir = tempDir("corrupt")
        let good = dir + "/good.kick"
        let small = Array(Self.cases().filter { $0.0.hasSuffix("1x5-z3") || $0.0.hasPrefix("q4-5x13-g4") || $0.0 == "gidx2" }.prefix(6))
        try Self.write(good, small, chunk: 64)
        let bytes = try Data(contentsOf: URL(fileURLWithPath: good))
        func opensClean(_ d: Data) -> Bool {
            let p = dir + "/bad.kick"
            try! d.write(to: URL(fileURLWithPath: p))
            do {
                let ck = try KickCheckpoint(path: p)
                for n in ck.tensorNames { _ = try ck.floats(n) }
                _ = try ck.blob("note")
                return true
            } catch let e as KickError {
                #expect(e.file == p)
                return false
            } catch {
                Issue.record("unexpected error \(error)")
                return false
            }
        }
        #expect(opensClean(bytes))
        var undetected: [Int] = []
        for i in 0..<bytes.count {
            var d = bytes
            d[i] ^= 0x10
            if opensClean(d) { undetected.append(i) }
        }
        #expect(undetected.isEmpty, "flips at \(undetected) went unnoticed (file \(bytes.count) bytes)")
        for n in 0..<(KickFormat.headerSize + 16) { #expect(!opensClean(bytes.prefix(n))) }
        #expect(!opensClean(bytes.dropLast()))
        #expect(!opensClean(bytes + Data([0])))
    }

    @Test func unknownVersionAndEncodingAreNamed() throws {
        let dir = tempDir("ver")
        try Self.write(dir + "/a.kick", Array(Self.cases().prefix(2)))
        var d = try Data(contentsOf: URL(fileURLWithPath: dir + "/a.kick"))
        d[8] = 2
        try d.write(to: URL(fileURLWithPath: dir + "/v2.kick"))
        do { _ = try KickCheckpoint(path: dir + "/v2.kick"); Issue.record("version 2 accepted") } catch let e as KickError {
            #expect(e.message.contains("version 2"))
        }
        #expect(throws: KickError.self) { try KickCheckpoint(path: dir + "/missing.kick") }
    }

    /// A tiny model written as a checkpoint runs the same as its source, and
    /// a compressed one carries its tokenizer and decodes to what was encoded.
    @Test func modelCheckpointsLoadIntoTheEngine() throws {
        let c = LlamaConfig(vocabSize: 300, hiddenSize: 32, intermediateSize: 48, numLayers: 2, numHeads: 4, numKVHeads: 2,
                            contextLength: 64, ropeStyle: .halves)
        let w = LlamaWeights.random(c, seed: 3)
        let dir = tempDir("ckmodel")
        // a byte-level tokenizer inside the GGUF so the checkpoint can carry it
        var toks = (0..<256).map { String(ByteLevelMap.byteToScalar[$0]) } + ["<|im_start|>", "<|im_end|>"]
        toks += (toks.count..<300).map { "tok\($0)" }
        let types = (0..<300).map { $0 == 256 || $0 == 257 ? Int32(3) : Int32(1) }
        try LlamaExport.gguf(c, w, to: dir + "/m.gguf", f16: true, extraMetadata: [
            ("tokenizer.ggml.model", .string("gpt2")), ("tokenizer.ggml.pre", .string("smollm")),
            ("tokenizer.ggml.tokens", .strings(toks)), ("tokenizer.ggml.token_type", .i32s(types)),
            ("tokenizer.ggml.merges", .strings([])), ("tokenizer.ggml.eos_token_id", .u32(257)),
        ])
        let bundle = try ModelBundle.open(path: dir + "/m.gguf")
        try CheckpointEncoder.write(bundle: bundle, to: dir + "/dense.kick", metadata: [:], transform: { _, _ in [:] })
        let ck = try ModelBundle.open(path: dir + "/dense.kick")
        #expect(ck.tokenizer.identity == bundle.tokenizer.identity)
        #expect(ck.chatTemplate == .chatml)
        #expect(ck.source.sourceType(.linear(0, .q)) == .f16)
        let ids = [5, 77, 120, 3, 256, 9]
        let a = try bundle.loadModel(), b = try ck.loadModel()
        let la = a.forward([BatchItem(cache: a.newCache(), tokens: ids, logits: .all)])[0]!
        let lb = b.forward([BatchItem(cache: b.newCache(), tokens: ids, logits: .all)])[0]!
        #expect(la.data == lb.data)

        try CheckpointEncoder.write(bundle: bundle, to: dir + "/q.kick", metadata: [:], transform: { _, blk in
            [.q: .nm(Magnitude.prune(blk[.q], .nm(n: 2, m: 4)), n: 2, m: 4),
             .down: .quantized(RTN.quantize(blk[.down], QuantizerSpec(bits: 4, groupSize: 16)), sparse: false)]
        })
        let q = try KickCheckpoint(path: dir + "/q.kick")
        #expect(q.entry("blk.1.attn_q.weight")!.encoding == .nm(2, 4, .f16))
        #expect(q.entry("blk.1.ffn_down.weight")!.encoding.kind == .quant)
        #expect(q.entry("blk.1.attn_k.weight")!.encoding == .dense(.f16))
        let orig = try bundle.source.matrix(.linear(1, .down))
        #expect(try q.matrix("blk.1.ffn_down.weight") == RTN.quantize(orig, QuantizerSpec(bits: 4, groupSize: 16)).dequantized())
        // no half file is left when writing fails midway
        #expect(throws: KickError.self) {
            try CheckpointEncoder.write(bundle: bundle, to: dir + "/fail.kick", metadata: [:], transform: { i, _ in
                if i == 1 { throw KickError("stop") }
                return [:]
            })
        }
        let left = try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.contains("fail") }
        #expect(left.isEmpty, "\(left)")
    }
}
