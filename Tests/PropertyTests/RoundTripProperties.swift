import Foundation
import PropertyBased
import Testing
@testable import KickCore
import KickTestSupport

/// Round trips that must hold for every input, checked on random ones.
@Suite struct RoundTripProperties {
    /// Any Unicode scalar but the surrogate range (not scalars), weighted
    /// towards ASCII, spaces and newlines so words and lines form.
    static let text = Gen<UInt32>.value(in: 0...0x10FFFF).map { v -> String in
        switch v % 4 {
        case 0: return String(Unicode.Scalar(0x20 + v % 95)!)
        case 1: return [" ", "\n", "  ", "\t"][Int(v / 4 % 4)]
        default: return String(Unicode.Scalar(v) ?? "\u{FFFD}")
        }
    }.array(of: 0...40).map { $0.joined() }

    static let seeds = Gen<UInt64>.value(in: 0...UInt64.max)

    @Test func configNameParsePrint() async throws {
        let methods = Gen<CompressionSpec.Method>.case
        await propertyCheck(count: 300, input: methods, Gen.int(in: 1...99), Gen.int(in: 0...5), Gen.int(in: 0...3)) { method, level, shape, b in
            var spec = CompressionSpec(method: method)
            let nm = [(1, 2), (2, 4), (4, 8), (3, 5)]
            switch method {
            case .magnitude, .wanda, .sparsegpt:
                spec.pattern = shape < 4 ? .nm(n: nm[shape].0, m: nm[shape].1) : .unstructured(Double(level) / 100)
                if method == .sparsegpt && shape == 5 { spec.quantizer = QuantizerSpec(bits: [2, 3, 4, 8][b]) }
            case .gptq, .rtn:
                spec.quantizer = QuantizerSpec(bits: [2, 3, 4, 8][b], groupSize: shape == 0 ? nil : 32 << (shape % 3), symmetric: level % 2 == 0)
                spec.actOrder = method == .gptq && shape == 5
            }
            try spec.validate()
            let parsed = try #require(try CompressionSpec.parse(configName: spec.configName))
            #expect(parsed.configName == spec.configName)
            #expect(parsed.method == spec.method && parsed.pattern == spec.pattern && parsed.quantizer == spec.quantizer)
        }
    }

    @Test func tensorCodecEveryForm() async throws {
        await propertyCheck(count: 200, input: Gen.int(in: 1...9), Gen.int(in: 1...70), Self.seeds) { rows, cols, seed in
            var rng = SeededRandom(seed: seed)
            let raw = (0..<rows * cols).map { _ in rng.unit() < 0.3 ? 0 : Float(rng.unit() * 6 - 3) }
            for v in ValueType.allCases {
                // values exactly representable at v
                let vals: [Float] = raw.map { x in var b: [UInt8] = []; v.append(x, to: &b); return b.withUnsafeBytes { v.load($0.baseAddress!, 0) } }
                for (e, bytes) in [(TensorEncoding.dense(v), TensorCodec.encodeDense(vals, v)), (.sparse(v), TensorCodec.encodeSparse(vals, v))] {
                    let back = try bytes.withUnsafeBytes { try TensorCodec.decode($0, rows: rows, cols: cols, e) }
                    #expect(back == vals, "\(e.description) \(rows)x\(cols)")
                }
                for (n, m) in [(2, 4), (1, 2), (4, 8)] {
                    let w = Magnitude.prune(Matrix(rows: rows, cols: cols, data: vals), .nm(n: n, m: m))
                    let bytes = try #require(TensorCodec.encodeNM(w, n: n, groupOf: m, v))
                    let back = try bytes.withUnsafeBytes { try TensorCodec.decode($0, rows: rows, cols: cols, .nm(n, m, v)) }
                    #expect(back == w.data, "\(n):\(m) \(v) \(rows)x\(cols)")
                }
            }
            for bits in [2, 3, 4, 8] {
                let q = RTN.quantize(Matrix(rows: rows, cols: cols, data: raw), QuantizerSpec(bits: bits, groupSize: 32, symmetric: seed % 2 == 0))
                let bytes = TensorCodec.encodeQuant(q, sparse: false)
                let e = TensorEncoding.quant(bits: bits, groupSize: q.groupSize)
                let back = try bytes.withUnsafeBytes { try TensorCodec.decode($0, rows: rows, cols: cols, e) }
                #expect(back == q.dequantized().data, "q\(bits) \(rows)x\(cols)")
            }
        }
    }

    @Test func bitPacking() async {
        await propertyCheck(count: 300, input: Gen.int(in: 1...64).array(of: 0...50), Self.seeds) { widths, seed in
            var rng = SeededRandom(seed: seed)
            let values = widths.map { w in UInt64(rng.unit() * 0x1p53) & (w == 64 ? ~0 : (1 << w) - 1) }
            var wr = BitWriter()
            for (v, w) in zip(values, widths) { wr.write(v, bits: w) }
            let bytes = wr.finish()
            #expect(bytes.count == BitWriter.byteCount(bits: widths.reduce(0, +)))
            bytes.withUnsafeBytes { b in
                var rd = BitReader(b)
                for (v, w) in zip(values, widths) { #expect(rd.read(bits: w) == v) }
            }
        }
    }

    @Test func calibrationFileWriteRead() async throws {
        await propertyCheck(count: 100, input: Gen.int(in: 1...6), Gen.int(in: 1...40), Self.seeds) { n, l, seed in
            var rng = SeededRandom(seed: seed)
            let vocab = 1 + Int(rng.unit() * 70_000)
            let set = CalibrationSet(windows: (0..<n).map { _ in (0..<l).map { _ in Int(rng.unit() * Double(vocab)) % vocab } },
                                     vocabSize: vocab, tokenizerIdentity: String(format: "%016llx", seed))
            #expect((try? CalibrationSet.decode(set.encode(), file: "p.tok")) == set)
        }
    }

    /// Byte-level BPE (the default model's GGUF vocabulary).
    static let byteLevel = try! Tokenizer(gguf: GGUFReader(path: PackageFetcher().smolLM2()))

    /// SentencePiece-style BPE with byte fallback, as `tokenizer.json` writes it.
    static let sentencePiece: Tokenizer = {
        var vocab: [String: Int] = ["<unk>": 0, "<s>": 1, "</s>": 2]
        for b in 0..<256 { vocab[String(format: "<0x%02X>", b)] = 3 + b }
        for (i, p) in ["▁", "▁t", "he", "▁the", "▁a", "in", "▁in", "er", "▁é", "t", "h", "e", "a", "i", "n", "r", "é"].enumerated() { vocab[p] = 259 + i }
        let json: [String: Any] = [
            "added_tokens": [["id": 0, "content": "<unk>", "special": true], ["id": 1, "content": "<s>", "special": true],
                             ["id": 2, "content": "</s>", "special": true]],
            "normalizer": ["type": "Sequence", "normalizers": [["type": "Prepend", "prepend": "▁"], ["type": "Replace", "pattern": ["String": " "], "content": "▁"]]],
            "pre_tokenizer": NSNull(),
            "decoder": ["type": "Sequence", "decoders": [["type": "Replace", "pattern": ["String": "▁"], "content": " "], ["type": "ByteFallback"], ["type": "Fuse"], ["type": "Strip", "content": " ", "start": 1, "stop": 0]]],
            "model": ["type": "BPE", "vocab": vocab, "merges": ["▁ t", "h e", "▁t he", "▁ a", "i n", "▁ in", "e r", "▁ é"],
                      "byte_fallback": true, "unk_token": "<unk>"],
        ]
        return try! Tokenizer(huggingFaceJSON: try! JSONSerialization.data(withJSONObject: json), tokenizerConfig: nil, config: nil, label: "sp.json")
    }()

    /// SmolLM2's vocabulary has no token for 21 bytes (six control
    /// characters, the lead bytes 0xF1 and 0xF2 of planes 4–11, and bytes
    /// UTF-8 never uses), so text holding them cannot round-trip; the
    /// property is over every scalar whose bytes all have a token.
    static let byteTokens: Set<UInt8> = {
        let have = Set(byteLevel.tokens)
        return Set((0...255).map(UInt8.init).filter { have.contains(String(ByteLevelMap.byteToScalar[Int($0)])) })
    }()

    @Test func byteLevelDecodeEncode() async {
        #expect(Self.byteTokens.count == 256 - 21)
        await propertyCheck(count: 300, input: Self.text) { raw in
            let s = String(String.UnicodeScalarView(raw.unicodeScalars.filter { String($0).utf8.allSatisfy(Self.byteTokens.contains) }))
            #expect(Self.byteLevel.decode(Self.byteLevel.encode(s)) == s)
        }
    }

    @Test func sentencePieceDecodeEncode() async {
        #expect(Self.sentencePiece.kind == .sentencePiece)
        await propertyCheck(count: 300, input: Self.text) { s in
            #expect(Self.sentencePiece.decode(Self.sentencePiece.encode(s), atStart: true) == s)
        }
    }
}
