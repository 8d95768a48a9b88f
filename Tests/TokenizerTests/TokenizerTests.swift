import Foundation
import Testing
@testable import KickCore
import KickTestSupport


@Suite struct SmolLM2TokenizerTests {
    static let tokenizer: Tokenizer = try! Tokenizer(gguf: GGUFReader(path: PackageFetcher().smolLM2()))

    static func cases() throws -> [[String: Any]] {
        try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: Golden.dir + "/smollm2/tokenizer.json"))) as! [[String: Any]]
    }

    @Test func everyGoldenCaseExact() throws {
        let t = Self.tokenizer
        #expect(t.kind == .byteLevel && t.preTokenizer == .smollm && !t.addBOS)
        for c in try Self.cases() {
            let text = c["text"] as! String
            #expect(t.encode(text) == c["ids"] as! [Int], "ids of \(text.debugDescription)")
            #expect(t.encode(text, parseSpecial: true) == c["ids_special"] as! [Int], "ids_special of \(text.debugDescription)")
        }
    }

    @Test func decodeIsExact() throws {
        let t = Self.tokenizer
        for c in try Self.cases() {
            let text = c["text"] as! String
            #expect(t.decode(t.encode(text)) == text)
            #expect(t.decode(t.encode(text, parseSpecial: true), renderSpecial: true) == text)
        }
        // an emoji split across byte tokens: each piece alone is partial UTF-8, the bytes are exact
        let ids = t.encode("🤖")
        #expect(ids.count > 1)
        var bytes: [UInt8] = []
        for id in ids { bytes += t.decodeBytes([id]) }
        #expect(bytes == Array("🤖".utf8))
        #expect(UTF8Stream.completePrefixLength(t.decodeBytes([ids[0]])) == 0)
    }
}

/// A tiny SentencePiece vocabulary in the GGUF `llama` layout, the kind
/// LLaMA and Vicuna use: `▁` for space, scores decide merges, byte fallback.
@Suite struct SentencePieceTests {
    static func tokenizer() throws -> Tokenizer {
        var tokens = ["<unk>", "<s>", "</s>"]
        var types: [Tokenizer.TokenType] = [.unknown, .control, .control]
        for b in 0..<256 { tokens.append(String(format: "<0x%02X>", b)); types.append(.byte) }
        let pieces = ["▁", "h", "e", "l", "o", "w", "r", "d", "he", "ll", "llo", "hello", "▁hello", "▁w", "or", "▁wor", "ld", "▁world", "é"]
        let scores: [Float] = [0, -1, -1, -1, -1, -1, -1, -1, -2, -3, -4, -5, -6, -7, -8, -9, -10, -11, -1]
        tokens += pieces
        types += pieces.map { _ in .normal }
        let allScores = [Float](repeating: 0, count: 3 + 256) + scores
        return try Tokenizer(kind: .sentencePiece, tokens: tokens, types: types, merges: nil, scores: allScores,
                             preTokenizer: nil, bosID: 1, eosID: 2, unknownID: 0, addBOS: true, addSpacePrefix: true)
    }

    @Test func mergesByScoreWithSpacePrefixAndByteFallback() throws {
        let t = try Self.tokenizer()
        let id = { t.id(of: $0)! }
        #expect(t.encode("hello world") == [id("▁hello"), id("▁world")])
        #expect(t.encode("hello world", addBOS: true).first == 1)
        // "ü" is not in the vocabulary: its two UTF-8 bytes fall back to <0xC3> <0xBC>
        #expect(t.encode("ü") == [id("▁"), id("<0xC3>"), id("<0xBC>")])
        #expect(t.decode(t.encode("hello wörld"), atStart: true) == "hello wörld")
        // special tokens only when asked; a space prefix follows them
        #expect(t.encode("<s>hello", parseSpecial: true) == [1, id("▁hello")])
        #expect(!t.encode("<s>hello").contains(1))
        #expect(t.decode([1, id("▁hello")]) == " hello")
    }

    @Test func huggingFaceMetaspaceTokenizerJSON() throws {
        let dir = NSTemporaryDirectory() + "kick-hftok-\(getpid())"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        var vocab: [String: Int] = ["<unk>": 0, "<s>": 1, "</s>": 2]
        for b in 0..<256 { vocab[String(format: "<0x%02X>", b)] = 3 + b }
        for (i, p) in ["▁", "h", "i", "▁h", "▁hi", "!"].enumerated() { vocab[p] = 259 + i }
        let json: [String: Any] = [
            "added_tokens": [["id": 0, "content": "<unk>", "special": true], ["id": 1, "content": "<s>", "special": true],
                             ["id": 2, "content": "</s>", "special": true]],
            "normalizer": ["type": "Sequence", "normalizers": [["type": "Prepend", "prepend": "▁"],
                                                                ["type": "Replace", "pattern": ["String": " "], "content": "▁"]]],
            "pre_tokenizer": NSNull(),
            "model": ["type": "BPE", "vocab": vocab, "merges": ["▁ h", "▁h i"], "byte_fallback": true, "unk_token": "<unk>"],
        ]
        try JSONSerialization.data(withJSONObject: json).write(to: URL(fileURLWithPath: dir + "/tokenizer.json"))
        try #"{"add_bos_token": true, "bos_token": "<s>", "eos_token": "</s>"}"#.write(toFile: dir + "/tokenizer_config.json", atomically: true, encoding: .utf8)
        let t = try Tokenizer(huggingFace: dir + "/tokenizer.json")
        #expect(t.kind == .sentencePiece && t.addBOS && t.bosID == 1 && t.eosID == 2)
        #expect(t.encode("hi hi!") == [263, 263, 264])
        #expect(t.encode("\n") == [259, 3 + 10])
        #expect(t.decode(t.encode("hi hi!\n"), atStart: true) == "hi hi!\n")
    }

    @Test func huggingFaceByteLevelTokenizerJSON() throws {
        let dir = NSTemporaryDirectory() + "kick-hfbl-\(getpid())"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        var vocab: [String: Int] = [:]
        for b in 0..<256 { vocab[String(ByteLevelMap.byteToScalar[b])] = b }
        vocab["Ġa"] = 256; vocab["Ġab"] = 257
        let json: [String: Any] = [
            "added_tokens": [["id": 258, "content": "<|im_start|>", "special": true]],
            "pre_tokenizer": ["type": "Sequence", "pretokenizers": [["type": "Digits", "individual_digits": true],
                                                                    ["type": "ByteLevel", "add_prefix_space": false, "use_regex": true]]],
            "model": ["type": "BPE", "vocab": vocab, "merges": ["Ġ a", "Ġa b"]],
        ]
        try JSONSerialization.data(withJSONObject: json).write(to: URL(fileURLWithPath: dir + "/tokenizer.json"))
        let t = try Tokenizer(huggingFace: dir + "/tokenizer.json")
        #expect(t.kind == .byteLevel && t.preTokenizer == .smollm)
        #expect(t.encode("x ab 12") == [120, 257, 32, 49, 50])
        #expect(t.encode("<|im_start|>x", parseSpecial: true) == [258, 120])
    }
}

@Suite struct PreTokenizerTests {
    @Test func gpt2Splits() {
        #expect(PreTokenizer.gpt2.split("Hello world's  end 123!?") == ["Hello", " world", "'s", " ", " end", " 123", "!?"])
        #expect(PreTokenizer.gpt2.split("a\t\tb  ") == ["a", "\t", "\t", "b", "  "])
    }

    @Test func smollmSplitsDigits() {
        #expect(PreTokenizer.smollm.split("in 2026!") == ["in", " ", "2", "0", "2", "6", "!"])
    }

    @Test func llama3Splits() {
        #expect(PreTokenizer.llama3.split("I'VE got 12345 apples\n\n  ok") == ["I", "'VE", " got", " ", "123", "45", " apples", "\n\n", " ", " ok"])
        #expect(PreTokenizer.llama3.split("(hello)") == ["(hello", ")"])
    }

    @Test func chatTemplates() {
        let msgs: [ChatTemplate.Message] = [.init(role: "user", content: "Hi")]
        #expect(ChatTemplate.chatml.render(msgs, defaultSystem: "S") == "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n")
        #expect(ChatTemplate.vicuna.render(msgs + [.init(role: "assistant", content: "Yo"), .init(role: "user", content: "Q")])
                == ChatTemplate.vicunaSystem + " USER: Hi ASSISTANT: Yo</s> USER: Q ASSISTANT:")
    }
}

/// SentencePiece's tokenizer.model as LLaMA folders ship it, against the
/// trainer's own encode and decode (../shared/golden/hf-real).
@Suite struct SentencePieceModelTests {
    static let dir = Golden.dir + "/hf-real"

    @Test func everyGoldenCaseMatchesIdsPiecesAndDecode() throws {
        let m = try SentencePieceModel(path: Self.dir + "/tokenizer.model")
        #expect(m.modelType == .bpe && m.byteFallback && m.splitDigits && m.addDummyPrefix && m.unknownID == 0 && m.bosID == 1 && m.eosID == 2)
        let tok = try Tokenizer(sentencePiece: m)
        #expect(tok.vocabSize == 3100 && tok.addBOS)
        struct Case: Decodable { var text: String; var ids: [Int]; var pieces: [String]; var decoded: String }
        struct Cases: Decodable { var cases: [Case] }
        let cases = try JSONDecoder().decode(Cases.self, from: Data(contentsOf: URL(fileURLWithPath: Self.dir + "/tokenizer_cases.json"))).cases
        #expect(cases.count == 24)
        for c in cases {
            let ids = tok.encode(c.text)
            #expect(ids == c.ids, "\(c.text.debugDescription)")
            #expect(ids.map { tok.tokens[$0] } == c.pieces, "\(c.text.debugDescription)")
            #expect(tok.decode(c.ids, atStart: true) == c.decoded, "\(c.text.debugDescription)")
            #expect(tok.encode(c.text, addBOS: true) == [1] + c.ids)
        }
    }

    @Test func notAModelProtoIsRefusedNamingTheFile() throws {
        let dir = tempDir("spm")
        for (name, bytes) in [("text", Array("{\"model\": \"bpe\"}".utf8)), ("truncated", [0x0A, 0x20, 0x0A]), ("empty", [])] as [(String, [UInt8])] {
            let e = #expect(throws: KickError.self) { try SentencePieceModel(data: Data(bytes), file: "\(dir)/\(name).model") }
            #expect(e?.description.hasPrefix("\(dir)/\(name).model: not a") == true || e?.description.contains("not a SentencePiece model") == true, "\(name): \(e?.description ?? "")")
            #expect(e?.code == .malformed)
        }
        // hostile ModelProtos: each refused with its reason, none traps
        func piece(_ text: String, score: UInt32 = 0, type: UInt8 = 1) -> [UInt8] {
            let body: [UInt8] = [0x0A, UInt8(text.utf8.count)] + Array(text.utf8) + [0x15] + withUnsafeBytes(of: score.littleEndian, Array.init) + [0x18, type]
            return [0x0A, UInt8(body.count)] + body
        }
        let bpe: [UInt8] = [0x12, 0x02, 0x18, 0x02]  // trainer spec: model_type BPE
        let cases: [(String, [UInt8], String)] = [
            ("nan-score", piece("a", score: Float.nan.bitPattern) + bpe, "has score nan"),
            ("inf-score", piece("a", score: Float.infinity.bitPattern) + bpe, "has score inf"),
            ("bad-type", piece("a", type: 9) + bpe, "has type 9"),
            ("long-varint", [0x08] + [UInt8](repeating: 0xFF, count: 11) + [0x01], "longer than 10 bytes"),
            ("group", [0x0B], "wire type 3"),
            ("oversized", [0x0A, 0xFF, 0xFF, 0xFF, 0xFF, 0x0F, 0x00], "bytes left"),
            ("unk-out-of-range", piece("a") + bpe + [0x12, 0x03, 0xC0, 0x02, 0x05], "unk id 5 is outside the 1 pieces"),
            ("unigram", piece("a"), "model type unigram is not supported"),
        ]
        for (name, bytes, want) in cases {
            let e = #expect(throws: KickError.self) { try SentencePieceModel(data: Data(bytes), file: "\(dir)/\(name).model") }
            #expect(e?.description.contains(want) == true, "\(name): \(e?.description ?? "no error")")
        }
    }
}
