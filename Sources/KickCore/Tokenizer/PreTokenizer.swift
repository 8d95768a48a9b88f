/// The pre-tokenizers of byte-level BPE models: they cut text into chunks
/// that BPE never merges across. Written as scanners over Unicode scalars
/// (the regexes they implement are quoted on each case) so they are fast and
/// do not depend on a regex engine's Unicode tables.
public enum PreTokenizer: String, Sendable, Codable {
    /// `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`
    case gpt2
    /// `\p{N}` (each digit alone), then the gpt2 expression on what is left
    /// (llama.cpp's `smollm`, also StarCoder's; HF: Digits(individual) + ByteLevel).
    case smollm
    /// `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
    case llama3

    /// Maps llama.cpp's `tokenizer.ggml.pre` names onto the scanners kick has.
    public static func fromGGUF(_ name: String?) -> PreTokenizer? {
        switch name ?? "default" {
        case "default", "gpt-2", "gpt2", "olmo", "jais", "mpt", "poro-chat", "viking", "bloom": return .gpt2
        case "smollm", "starcoder", "refact", "command-r", "codeshell", "exaone", "minerva": return .smollm
        case "llama-bpe", "llama3", "llama-v3", "dbrx", "smaug-bpe", "falcon3": return .llama3
        default: return nil
        }
    }

    public func split(_ text: String) -> [String] {
        let s = Array(text.unicodeScalars)
        var out: [String] = []
        func emit(_ a: Int, _ b: Int) {
            var str = String.UnicodeScalarView()
            str.append(contentsOf: s[a..<b])
            out.append(String(str))
        }
        switch self {
        case .gpt2:
            Self.scanGPT2(s, 0, s.count, emit)
        case .smollm:
            var start = 0
            for i in 0..<s.count where ScalarClass.isNumber(s[i]) {
                if start < i { Self.scanGPT2(s, start, i, emit) }
                emit(i, i + 1)
                start = i + 1
            }
            if start < s.count { Self.scanGPT2(s, start, s.count, emit) }
        case .llama3:
            Self.scanLlama3(s, emit)
        }
        return out
    }

    private static func scanGPT2(_ s: [Unicode.Scalar], _ from: Int, _ to: Int, _ emit: (Int, Int) -> Void) {
        var i = from
        while i < to {
            let end = matchGPT2(s, i, to)
            emit(i, end)
            i = end
        }
    }

    /// The end of the gpt2 expression's match at i (always > i: what the
    /// expression leaves unmatched is a chunk of its own, as in llama.cpp).
    private static func matchGPT2(_ s: [Unicode.Scalar], _ i: Int, _ n: Int) -> Int {
        if s[i] == "'" && i + 1 < n {
            let c1 = s[i + 1]
            if c1 == "s" || c1 == "t" || c1 == "m" || c1 == "d" { return i + 2 }
            if i + 2 < n {
                let c2 = s[i + 2]
                if (c1 == "r" && c2 == "e") || (c1 == "v" && c2 == "e") || (c1 == "l" && c2 == "l") { return i + 3 }
            }
        }
        var j = i
        if s[j] == " " && j + 1 < n && !ScalarClass.isSpace(s[j + 1]) { j += 1 }
        if j > i || !ScalarClass.isSpace(s[j]) {
            let c = s[j]
            if ScalarClass.isLetter(c) { return run(s, j, n, ScalarClass.isLetter) }
            if ScalarClass.isNumber(c) { return run(s, j, n, ScalarClass.isNumber) }
            return run(s, j, n, ScalarClass.isOther)
        }
        // whitespace: \s+(?!\S) keeps the last space for the next word; else \s+
        let k = run(s, i, n, ScalarClass.isSpace)
        if k == n || k - i == 1 { return k }
        return k - 1
    }

    private static func scanLlama3(_ s: [Unicode.Scalar], _ emit: (Int, Int) -> Void) {
        let n = s.count
        var i = 0
        while i < n {
            let end = matchLlama3(s, i, n)
            emit(i, end)
            i = end
        }
    }

    private static func matchLlama3(_ s: [Unicode.Scalar], _ i: Int, _ n: Int) -> Int {
        func lower(_ c: Unicode.Scalar) -> Unicode.Scalar {
            (c.value >= 65 && c.value <= 90) ? Unicode.Scalar(c.value + 32)! : c
        }
        if s[i] == "'" && i + 1 < n {
            let c1 = lower(s[i + 1])
            if c1 == "s" || c1 == "t" || c1 == "m" || c1 == "d" { return i + 2 }
            if i + 2 < n {
                let c2 = lower(s[i + 2])
                if (c1 == "r" && c2 == "e") || (c1 == "v" && c2 == "e") || (c1 == "l" && c2 == "l") { return i + 3 }
            }
        }
        let c = s[i]
        let isNL = { (x: Unicode.Scalar) in x == "\r" || x == "\n" }
        // [^\r\n\p{L}\p{N}]?\p{L}+
        if ScalarClass.isLetter(c) { return run(s, i, n, ScalarClass.isLetter) }
        if !isNL(c) && !ScalarClass.isNumber(c) && i + 1 < n && ScalarClass.isLetter(s[i + 1]) {
            return run(s, i + 1, n, ScalarClass.isLetter)
        }
        // \p{N}{1,3}
        if ScalarClass.isNumber(c) {
            var j = i
            while j < n && j < i + 3 && ScalarClass.isNumber(s[j]) { j += 1 }
            return j
        }
        // ` ?[^\s\p{L}\p{N}]+[\r\n]*`
        var j = i
        if s[j] == " " && j + 1 < n && ScalarClass.isOther(s[j + 1]) { j += 1 }
        if ScalarClass.isOther(s[j]) {
            var k = run(s, j, n, ScalarClass.isOther)
            while k < n && isNL(s[k]) { k += 1 }
            return k
        }
        // whitespace
        let k = run(s, i, n, ScalarClass.isSpace)
        // \s*[\r\n]+ : up to the last newline of the run
        var lastNL = -1
        for m in i..<k where isNL(s[m]) { lastNL = m }
        if lastNL >= 0 { return lastNL + 1 }
        if k == n || k - i == 1 { return k }
        return k - 1
    }

    @inline(__always)
    private static func run(_ s: [Unicode.Scalar], _ i: Int, _ n: Int, _ p: (Unicode.Scalar) -> Bool) -> Int {
        var j = i
        while j < n && p(s[j]) { j += 1 }
        return j
    }
}

/// The Unicode classes the pre-tokenizer expressions use.
enum ScalarClass {
    @inline(__always)
    static func isSpace(_ c: Unicode.Scalar) -> Bool {
        if c.value < 128 { return c == " " || (c.value >= 9 && c.value <= 13) }
        return c.properties.isWhitespace
    }
    @inline(__always)
    static func isLetter(_ c: Unicode.Scalar) -> Bool {
        if c.value < 128 { return (c.value | 0x20) >= 97 && (c.value | 0x20) <= 122 }
        switch c.properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter: return true
        default: return false
        }
    }
    @inline(__always)
    static func isNumber(_ c: Unicode.Scalar) -> Bool {
        if c.value < 128 { return c.value >= 48 && c.value <= 57 }
        switch c.properties.generalCategory {
        case .decimalNumber, .letterNumber, .otherNumber: return true
        default: return false
        }
    }
    @inline(__always)
    static func isOther(_ c: Unicode.Scalar) -> Bool { !isSpace(c) && !isLetter(c) && !isNumber(c) }
}
