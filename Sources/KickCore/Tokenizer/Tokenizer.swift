import Foundation

/// A BPE tokenizer of either family kick meets in Llama models:
/// byte-level BPE ranked by merges (GPT-2, SmolLM2, Llama 3), or
/// SentencePiece-style BPE over characters with `▁` for space and byte
/// fallback (LLaMA, Vicuna), ranked by piece scores or by merges.
public final class Tokenizer: @unchecked Sendable {
    public enum Kind: String, Sendable, Codable {
        case byteLevel = "byte-level-bpe"
        case sentencePiece = "sentencepiece-bpe"
    }

    /// What a token is, as GGUF's token_type says.
    public enum TokenType: Int, Sendable {
        case normal = 1, unknown = 2, control = 3, userDefined = 4, unused = 5, byte = 6
    }

    public let kind: Kind
    public let tokens: [String]
    public let types: [TokenType]
    public let preTokenizer: PreTokenizer?
    public let bosID: Int?
    public let eosID: Int?
    public let unknownID: Int?
    public let addBOS: Bool
    public let addSpacePrefix: Bool
    /// SentencePiece: characters outside the vocabulary become byte tokens (else unknown).
    public let byteFallback: Bool
    /// SentencePiece: leading, trailing and repeated spaces are dropped before encoding.
    public let removeExtraWhitespaces: Bool
    /// A short hash of everything that decides the ids, so a calibration file
    /// made with one tokenizer is never read with another.
    public let identity: String

    let tokenIDs: [String: Int32]
    let merger: BPEMerger
    /// id of `<0xNN>` for each byte (SentencePiece byte fallback), -1 when absent.
    let byteTokens: [Int32]
    /// Decoded bytes of each token (specials hold their text).
    let pieces: [[UInt8]]
    /// Special strings by first byte, longest first.
    let specials: [UInt8: [(bytes: [UInt8], id: Int, control: Bool)]]
    let singleByteIDs: [Int32]

    public var vocabSize: Int { tokens.count }

    public init(kind: Kind, tokens: [String], types: [TokenType], merges: [(String, String)]?, scores: [Float]?,
                preTokenizer: PreTokenizer?, bosID: Int?, eosID: Int?, unknownID: Int?, addBOS: Bool,
                addSpacePrefix: Bool = true, byteFallback: Bool = true, removeExtraWhitespaces: Bool = false, source: String? = nil) throws {
        precondition(types.count == tokens.count)
        self.byteFallback = byteFallback
        self.removeExtraWhitespaces = removeExtraWhitespaces
        self.kind = kind
        self.tokens = tokens
        self.types = types
        self.preTokenizer = preTokenizer
        self.bosID = bosID
        self.eosID = eosID
        self.unknownID = unknownID
        self.addBOS = addBOS
        self.addSpacePrefix = addSpacePrefix
        var ids: [String: Int32] = [:]
        ids.reserveCapacity(tokens.count)
        for (i, t) in tokens.enumerated() where ids[t] == nil { ids[t] = Int32(i) }
        tokenIDs = ids
        var m = BPEMerger()
        if let merges {
            for (rank, (a, b)) in merges.enumerated() {
                guard let ia = ids[a], let ib = ids[b], let im = ids[a + b] else { continue }
                let k = BPEMerger.key(ia, ib)
                if m.pairs[k] == nil { m.pairs[k] = (Double(rank), im) }
            }
        } else if let scores {
            // SentencePiece: any normal piece splits into two pieces of the vocabulary
            for (t, text) in tokens.enumerated() where types[t] == .normal {
                let sc = Array(text.unicodeScalars)
                guard sc.count >= 2 else { continue }
                for cut in 1..<sc.count {
                    var l = String.UnicodeScalarView(); l.append(contentsOf: sc[..<cut])
                    var r = String.UnicodeScalarView(); r.append(contentsOf: sc[cut...])
                    if let il = ids[String(l)], let ir = ids[String(r)],
                       types[Int(il)] != .control, types[Int(ir)] != .control {
                        m.pairs[BPEMerger.key(il, ir)] = (-Double(scores[t]), Int32(t))
                    }
                }
            }
        } else {
            throw KickError("a BPE tokenizer needs merges or scores", file: source)
        }
        merger = m
        var bt = [Int32](repeating: -1, count: 256)
        for b in 0..<256 {
            if let id = ids[String(format: "<0x%02X>", b)] { bt[b] = id }
        }
        byteTokens = bt
        var sb = [Int32](repeating: -1, count: 256)
        if kind == .byteLevel {
            // Some vocabularies (SmolLM2's) lack a few byte characters; as in
            // llama.cpp, such bytes are dropped rather than failing.
            for b in 0..<256 { sb[b] = ids[String(ByteLevelMap.byteToScalar[b])] ?? -1 }
        }
        singleByteIDs = sb
        var pcs: [[UInt8]] = []
        pcs.reserveCapacity(tokens.count)
        var sp: [UInt8: [(bytes: [UInt8], id: Int, control: Bool)]] = [:]
        for (i, t) in tokens.enumerated() {
            let ty = types[i]
            if ty == .control || ty == .userDefined || ty == .unknown {
                pcs.append(Array(t.utf8))
                if !t.isEmpty {
                    let b = Array(t.utf8)
                    sp[b[0], default: []].append((b, i, ty != .userDefined))
                }
                continue
            }
            switch kind {
            case .byteLevel:
                var bytes: [UInt8] = []
                for s in t.unicodeScalars {
                    if let b = ByteLevelMap.scalarToByte[s.value] { bytes.append(b) } else { bytes.append(contentsOf: Array(String(s).utf8)) }
                }
                pcs.append(bytes)
            case .sentencePiece:
                if ty == .byte, t.count == 6, t.hasPrefix("<0x"), let v = UInt8(t.dropFirst(3).prefix(2), radix: 16) {
                    pcs.append([v])
                } else {
                    pcs.append(Array(t.replacingOccurrences(of: "\u{2581}", with: " ").utf8))
                }
            }
        }
        pieces = pcs
        specials = sp.mapValues { $0.sorted { $0.bytes.count > $1.bytes.count } }
        var h = SHA256()
        h.update(kind.rawValue)
        h.update(preTokenizer?.rawValue ?? "-")
        for t in tokens { h.update(t); h.update([0]) }
        if let merges { for (a, b) in merges { h.update(a); h.update(" "); h.update(b); h.update([0]) } }
        if let scores { for s in scores { h.update(String(s)) } }
        // options at their usual values leave the identity of existing vocabularies as it was
        if !byteFallback { h.update("|no-byte-fallback") }
        if removeExtraWhitespaces { h.update("|remove-extra-whitespaces") }
        identity = String(h.finalize().hex.prefix(16))
    }

    // MARK: encoding

    /// Text to ids. `parseSpecial` lets special tokens written in the text
    /// (`<|im_start|>`, `<s>`) become their ids; user-defined tokens are
    /// always matched. No BOS is added unless `addBOS` is passed.
    public func encode(_ text: String, parseSpecial: Bool = false, addBOS: Bool = false) -> [Int] {
        var out: [Int] = []
        if addBOS, let b = bosID { out.append(b) }
        let bytes = Array(text.utf8)
        var start = 0
        var i = 0
        var prevSpecial = true
        while i < bytes.count {
            if let cands = specials[bytes[i]],
               let hit = cands.first(where: { (parseSpecial || !$0.control) && hasPrefix(bytes, i, $0.bytes) }) {
                if start < i { encodeRaw(bytes[start..<i], prevSpecial: prevSpecial, into: &out) }
                out.append(hit.id)
                prevSpecial = true
                i += hit.bytes.count
                start = i
                continue
            }
            i += 1
        }
        if start < bytes.count { encodeRaw(bytes[start...], prevSpecial: prevSpecial, into: &out) }
        return out
    }

    @inline(__always)
    private func hasPrefix(_ b: [UInt8], _ i: Int, _ p: [UInt8]) -> Bool {
        guard b.count - i >= p.count else { return false }
        for j in 0..<p.count where b[i + j] != p[j] { return false }
        return true
    }

    private func encodeRaw(_ bytes: ArraySlice<UInt8>, prevSpecial: Bool, into out: inout [Int]) {
        let text = String(decoding: bytes, as: UTF8.self)
        switch kind {
        case .byteLevel:
            for chunk in (preTokenizer ?? .gpt2).split(text) {
                let ids = chunk.utf8.map { singleByteIDs[Int($0)] }
                for id in merger.merge(ids) where id >= 0 { out.append(Int(id)) }
            }
        case .sentencePiece:
            var t = text
            if removeExtraWhitespaces {
                t = t.split(separator: " ", omittingEmptySubsequences: true).joined(separator: " ")
                if t.isEmpty { return }
            }
            if addSpacePrefix && prevSpecial { t = " " + t }
            t = t.replacingOccurrences(of: " ", with: "\u{2581}")
            let scalars = Array(t.unicodeScalars)
            // unknown characters get unique negative ids: they never merge
            var ids: [Int32] = []
            ids.reserveCapacity(scalars.count)
            for (k, s) in scalars.enumerated() {
                if let id = tokenIDs[String(s)], types[Int(id)] != .control { ids.append(id) } else { ids.append(Int32(-1 - k)) }
            }
            for id in merger.merge(ids) {
                if id >= 0 { out.append(Int(id)); continue }
                let s = scalars[Int(-1 - id)]
                for b in String(s).utf8 {
                    let fb = byteTokens[Int(b)]
                    if fb >= 0 && byteFallback { out.append(Int(fb)) } else if let u = unknownID { out.append(u); break }
                }
            }
        }
    }

    // MARK: decoding

    /// Ids to bytes, exactly: a byte-level or byte-fallback token may hold
    /// part of a UTF-8 character, so bytes are the lossless form.
    /// Control tokens are left out unless `renderSpecial`.
    public func decodeBytes(_ ids: [Int], renderSpecial: Bool = false) -> [UInt8] {
        var out: [UInt8] = []
        for id in ids where id >= 0 && id < pieces.count {
            if types[id] == .control && !renderSpecial { continue }
            out.append(contentsOf: pieces[id])
        }
        return out
    }

    /// Ids to text (invalid UTF-8, e.g. a character cut between tokens,
    /// becomes U+FFFD). `atStart` drops the space SentencePiece prefixed.
    public func decode(_ ids: [Int], renderSpecial: Bool = false, atStart: Bool = false) -> String {
        var b = decodeBytes(ids, renderSpecial: renderSpecial)
        if atStart && kind == .sentencePiece && addSpacePrefix && b.first == 0x20 { b.removeFirst() }
        return String(decoding: b, as: UTF8.self)
    }

    public func id(of token: String) -> Int? { tokenIDs[token].map(Int.init) }

    public func isEndOfGeneration(_ id: Int) -> Bool {
        id == eosID || (id >= 0 && id < types.count && types[id] == .control && Self.endTokens.contains(tokens[id]))
    }

    /// Control tokens that end a turn in the chat formats kick knows.
    private static let endTokens: Set<String> = ["<|im_end|>", "<|endoftext|>", "</s>", "<|eot_id|>", "<|end_of_text|>"]
}

/// Splits UTF-8 bytes into the longest valid prefix and a trailing partial
/// character, for streaming decode and stop-string checks.
public enum UTF8Stream {
    public static func completePrefixLength(_ b: [UInt8]) -> Int {
        var i = b.count - 1
        var back = 0
        while i >= 0 && back < 4 {
            let c = b[i]
            if c & 0xC0 != 0x80 {
                let need = c < 0x80 ? 1 : c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1
                return back + 1 >= need ? b.count : i
            }
            i -= 1
            back += 1
        }
        return b.count
    }
}
