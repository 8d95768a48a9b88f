import Foundation

/// Writes a Llama model folder in the layout lmsys and Meta's conversions
/// publish: `config.json`, `pytorch_model-0000N-of-0000M.bin` shards with
/// `pytorch_model.bin.index.json`, SentencePiece `tokenizer.model`,
/// `tokenizer_config.json`, `special_tokens_map.json`, `generation_config.json`.
/// Weights are random (uniform with the standard deviation `initStd`, as
/// Hugging Face initializes Llama; norms at 1), generated tensor by tensor
/// and streamed into the shards, so a 13.5 GB 7B folder never sits in
/// memory. `make scale-check` measures kick on such a folder.
public enum PublishedFolderWriter {
    /// Llama 7B's shape (the published `config.json`), or any other.
    public static let llama7B = LlamaConfig(vocabSize: 32000, hiddenSize: 4096, intermediateSize: 11008, numLayers: 32, numHeads: 32,
                                            numKVHeads: 32, rmsNormEps: 1e-6, contextLength: 2048, ropeStyle: .halves,
                                            bosTokenID: 1, eosTokenID: 2)

    /// The tensors in Hugging Face's order, with their shapes.
    static func tensors(_ c: LlamaConfig) -> [(role: TensorRole, shape: [Int])] {
        var out: [(TensorRole, [Int])] = [(.embedding, [c.vocabSize, c.hiddenSize])]
        for i in 0..<c.numLayers {
            for r in LinearRole.allCases {
                let s = LlamaBlockWeights.shape(of: r, c)
                out.append((.linear(i, r), [s.rows, s.cols]))
            }
            out.append((.attnNorm(i), [c.hiddenSize]))
            out.append((.ffnNorm(i), [c.hiddenSize]))
        }
        out.append((.finalNorm, [c.hiddenSize]))
        if !c.tieWordEmbeddings { out.append((.output, [c.vocabSize, c.hiddenSize])) }
        return out
    }

    /// Writes the folder; returns the shard names. Shards are cut before a
    /// tensor that would take one past `maxShardBytes` (lmsys's are ~10 GB,
    /// past zip64's 4 GiB limit, as these may be too).
    @discardableResult
    public static func write(_ c: LlamaConfig, to dir: String, dtype: TorchDType = .f16, seed: UInt64 = 1,
                             maxShardBytes: Int = 10_000_000_000, initStd: Float = 0.02) throws -> [String] {
        guard let dense = dtype.dense else { throw KickError("a model folder holds f32, f16 or bf16 weights, not \(dtype.rawValue)", file: dir) }
        try c.validate(file: dir)
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let all = tensors(c)
        // cut into shards by size
        var shards: [[Int]] = [[]]
        var size = 0
        for (i, t) in all.enumerated() {
            let b = t.shape.reduce(1, *) * dtype.size
            if size + b > maxShardBytes, !shards[shards.count - 1].isEmpty { shards.append([]); size = 0 }
            shards[shards.count - 1].append(i)
            size += b
        }
        let names = shards.indices.map { String(format: "pytorch_model-%05d-of-%05d.bin", $0 + 1, shards.count) }
        let total = all.reduce(0) { $0 + $1.shape.reduce(1, *) * dtype.size }
        let progress = ByteProgress(label: "writing \(names.count) shard(s) of random \(dtype.rawValue) weights", total: total)
        let amplitude = initStd * Float(3).squareRoot()  // uniform on [-a, a] has standard deviation a/√3
        for (s, members) in shards.enumerated() {
            let specs = members.map { PyTorchCheckpointWriter.Tensor(name: all[$0].role.hfName, dtype: dtype, shape: all[$0].shape) }
            try PyTorchCheckpointWriter.write(to: (dir as NSString).appendingPathComponent(names[s]), tensors: specs) { k in
                let t = all[members[k]]
                let n = t.shape.reduce(1, *)
                var rng = SeededRandom(seed: seed &+ UInt64(members[k]) &* 0x9E37_79B9)
                let values: [Float]
                if t.shape.count == 1 {
                    values = [Float](repeating: 1, count: n)
                } else {
                    values = [Float](unsafeUninitializedCapacity: n) { b, count in
                        // two 24-bit uniforms per draw
                        var i = 0
                        while i < n {
                            let r = rng.next()
                            b[i] = (Float(r & 0xFF_FFFF) / 8_388_608 - 1) * amplitude
                            if i + 1 < n { b[i + 1] = (Float((r >> 32) & 0xFF_FFFF) / 8_388_608 - 1) * amplitude }
                            i += 2
                        }
                        count = n
                    }
                }
                progress.advance(bytes: n * dtype.size)
                return dense.encode(values)
            }
        }
        // the index, config and tokenizer files as published
        var weightMap: [String: String] = [:]
        for (s, members) in shards.enumerated() { for i in members { weightMap[all[i].role.hfName] = names[s] } }
        struct Index: Encodable {
            var metadata: [String: Int]
            var weight_map: [String: String]
        }
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys]
        func path(_ f: String) -> String { (dir as NSString).appendingPathComponent(f) }
        try AtomicFile.write(try enc.encode(Index(metadata: ["total_size": total], weight_map: weightMap)), to: path("pytorch_model.bin.index.json"))
        var cfg = c
        cfg.ropeStyle = .halves
        try AtomicFile.write(try enc.encode(cfg), to: path("config.json"))
        try AtomicFile.write(SentencePieceModel.synthetic(size: c.vocabSize).encoded(), to: path("tokenizer.model"))
        try AtomicFile.write(#"{"add_bos_token": true, "add_eos_token": false, "tokenizer_class": "LlamaTokenizer"}"#, to: path("tokenizer_config.json"))
        try AtomicFile.write(#"{"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>"}"#, to: path("special_tokens_map.json"))
        try AtomicFile.write(#"{"bos_token_id": 1, "eos_token_id": 2}"#, to: path("generation_config.json"))
        return names
    }
}
