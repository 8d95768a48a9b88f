import Foundation

extension Tokenizer {
    /// The tokenizer stored in a GGUF file's `tokenizer.ggml.*` keys.
    public convenience init(gguf r: GGUFReader) throws {
        let m = r.metadata
        let path = r.path
        guard let model = m["tokenizer.ggml.model"]?.string else { throw KickError("GGUF has no tokenizer (tokenizer.ggml.model)", file: path) }
        guard let tokens = m["tokenizer.ggml.tokens"]?.strings, !tokens.isEmpty else {
            throw KickError("GGUF tokenizer has no tokens", file: path)
        }
        let rawTypes = m["tokenizer.ggml.token_type"]?.ints ?? []
        let types: [TokenType] = tokens.indices.map { i in
            i < rawTypes.count ? TokenType(rawValue: rawTypes[i]) ?? .normal : .normal
        }
        let bos = m["tokenizer.ggml.bos_token_id"]?.int
        let eos = m["tokenizer.ggml.eos_token_id"]?.int
        let unk = m["tokenizer.ggml.unknown_token_id"]?.int
        switch model {
        case "gpt2":
            guard let merges = m["tokenizer.ggml.merges"]?.strings else { throw KickError("gpt2 tokenizer has no merges", file: path) }
            let preName = m["tokenizer.ggml.pre"]?.string
            guard let pre = PreTokenizer.fromGGUF(preName) else {
                throw KickError("tokenizer.ggml.pre '\(preName ?? "")' is not one kick implements (default/gpt2, smollm, llama-bpe)", file: path)
            }
            try self.init(kind: .byteLevel, tokens: tokens, types: types, merges: try Self.splitMerges(merges, file: path), scores: nil,
                          preTokenizer: pre, bosID: bos, eosID: eos, unknownID: unk,
                          addBOS: m["tokenizer.ggml.add_bos_token"]?.bool ?? false, source: path)
        case "llama":
            guard let scores = m["tokenizer.ggml.scores"]?.doubles, scores.count == tokens.count else {
                throw KickError("llama tokenizer needs one score per token", file: path)
            }
            try self.init(kind: .sentencePiece, tokens: tokens, types: types, merges: nil, scores: scores.map(Float.init),
                          preTokenizer: nil, bosID: bos, eosID: eos, unknownID: unk,
                          addBOS: m["tokenizer.ggml.add_bos_token"]?.bool ?? true,
                          addSpacePrefix: m["tokenizer.ggml.add_space_prefix"]?.bool ?? true, source: path)
        default:
            throw KickError("tokenizer model '\(model)' is not supported (gpt2, llama)", file: path)
        }
    }

    static func splitMerges(_ merges: [String], file: String) throws -> [(String, String)] {
        try merges.enumerated().map { i, s in
            guard let sp = s.firstIndex(of: " ") else { throw KickError("merge \(i) '\(s)' has no space", file: file) }
            return (String(s[..<sp]), String(s[s.index(after: sp)...]))
        }
    }

    /// A Hugging Face `tokenizer.json` (model BPE, byte-level or
    /// Metaspace/byte-fallback), with `tokenizer_config.json` beside it for
    /// add_bos and the special tokens when present.
    public convenience init(huggingFace path: String, config: LlamaConfig? = nil) throws {
        guard let data = try RegularFile.contents(atPath: path) else {
            throw KickError("missing tokenizer.json", file: path)
        }
        let dir = (path as NSString).deletingLastPathComponent
        let tc = try RegularFile.contents(atPath: (dir as NSString).appendingPathComponent("tokenizer_config.json"))
        try self.init(huggingFaceJSON: data, tokenizerConfig: tc, config: config, label: path)
    }

    /// The same from the files' bytes (a checkpoint carries them as blobs).
    public convenience init(huggingFaceJSON data: Data, tokenizerConfig: Data?, config: LlamaConfig?, label path: String) throws {
        guard let root = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
            throw KickError("tokenizer.json is not a JSON object", file: path)
        }
        guard let model = root["model"] as? [String: Any], (model["type"] as? String ?? "BPE") == "BPE",
              let vocab = model["vocab"] as? [String: Int] else {
            throw KickError("tokenizer.json model is not BPE with a vocab", file: path)
        }
        let added = (root["added_tokens"] as? [[String: Any]]) ?? []
        let size = max((vocab.values.max() ?? -1), added.compactMap { $0["id"] as? Int }.max() ?? -1) + 1
        guard size > 0, size < 10_000_000 else { throw KickError("tokenizer.json vocabulary is empty or absurd", file: path) }
        var tokens = [String](repeating: "", count: size)
        var types = [TokenType](repeating: .unused, count: size)
        for (t, i) in vocab {
            guard i >= 0 else { throw KickError("token \(t) has negative id", file: path) }
            tokens[i] = t
            types[i] = .normal
        }
        for a in added {
            guard let id = a["id"] as? Int, let content = a["content"] as? String, id >= 0, id < size else { continue }
            tokens[id] = content
            types[id] = (a["special"] as? Bool ?? false) ? .control : .userDefined
        }
        var merges: [(String, String)] = []
        for (i, mm) in ((model["merges"] as? [Any]) ?? []).enumerated() {
            if let s = mm as? String {
                guard let sp = s.firstIndex(of: " ") else { throw KickError("merge \(i) '\(s)' has no space", file: path) }
                merges.append((String(s[..<sp]), String(s[s.index(after: sp)...])))
            } else if let p = mm as? [String], p.count == 2 {
                merges.append((p[0], p[1]))
            } else {
                throw KickError("merge \(i) is neither \"a b\" nor [a, b]", file: path)
            }
        }
        let describe = { (v: Any?) -> String in
            guard let v, !(v is NSNull) else { return "" }
            return String(data: (try? JSONSerialization.data(withJSONObject: v)) ?? Data(), encoding: .utf8) ?? ""
        }
        let pre = describe(root["pre_tokenizer"])
        let norm = describe(root["normalizer"])
        let byteFallback = model["byte_fallback"] as? Bool ?? false
        let kind: Kind
        var preTok: PreTokenizer? = nil
        if pre.contains("\"ByteLevel\"") {
            kind = .byteLevel
            if pre.contains("\"Digits\"") && pre.contains("\"individual_digits\":true") { preTok = .smollm }
            else if pre.contains("{1,3}") { preTok = .llama3 }
            else { preTok = .gpt2 }
        } else if pre.contains("\"Metaspace\"") || norm.contains("\u{2581}") || byteFallback {
            kind = .sentencePiece
            for (i, t) in tokens.enumerated() where types[i] == .normal && t.count == 6 && t.hasPrefix("<0x") && t.hasSuffix(">") {
                types[i] = .byte
            }
        } else {
            throw KickError("tokenizer.json pre-tokenizer is neither ByteLevel nor Metaspace/byte-fallback", file: path)
        }
        // tokenizer_config.json: add_bos_token, bos/eos names
        var tc: [String: Any] = [:]
        if let d = tokenizerConfig, let o = (try? JSONSerialization.jsonObject(with: d)) as? [String: Any] { tc = o }
        func tokenName(_ v: Any?) -> String? {
            if let s = v as? String { return s }
            if let d = v as? [String: Any] { return d["content"] as? String }
            return nil
        }
        let ids = Dictionary(tokens.enumerated().map { ($1, $0) }, uniquingKeysWith: { a, _ in a })
        let bos = tokenName(tc["bos_token"]).flatMap { ids[$0] } ?? config?.bosTokenID
        let eos = tokenName(tc["eos_token"]).flatMap { ids[$0] } ?? config?.eosTokenID
        let unk = (model["unk_token"] as? String).flatMap { ids[$0] }
        let post = describe(root["post_processor"])
        let addBOS = tc["add_bos_token"] as? Bool ?? (post.contains("SpecialToken") && kind == .sentencePiece)
        let addPrefix = !pre.contains("\"prepend_scheme\":\"never\"")
        try self.init(kind: kind, tokens: tokens, types: types, merges: merges, scores: nil, preTokenizer: preTok,
                      bosID: bos, eosID: eos, unknownID: unk, addBOS: addBOS, addSpacePrefix: addPrefix, source: path)
    }
}
