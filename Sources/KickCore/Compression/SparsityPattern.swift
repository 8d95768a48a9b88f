/// Which weights a pruning method may keep.
public enum SparsityPattern: Codable, Sendable, Equatable, CustomStringConvertible {
    /// Prune this fraction in (0, 1).
    case unstructured(Double)
    /// Keep at most n of every m consecutive inputs of a row.
    case nm(n: Int, m: Int)

    public var description: String {
        switch self {
        case .unstructured(let s): return "unstructured-\(Int((s * 100).rounded()))"
        case .nm(let n, let m): return "\(n)of\(m)"
        }
    }

    public var sparsity: Double {
        switch self {
        case .unstructured(let s): return s
        case .nm(let n, let m): return 1 - Double(n) / Double(m)
        }
    }

    /// A configuration is named by its whole percent, so a sparsity must
    /// round to one between 1 and 99: 0.9999999 would prune everything and
    /// be named "…-100", a name no configuration may have.
    public func validate() throws {
        guard case .unstructured(let s) = self else { return }
        let pct = (s * 100).rounded()
        guard s.isFinite, s > 0, s < 1, pct >= 1, pct <= 99 else {
            throw KickError("sparsity \(s) must lie in [0.005, 0.995) so that it names a whole percent from 1 to 99")
        }
    }

    /// "2:4" only, for --pattern: a bare number there is a mistake, not a sparsity.
    public static func parseNM(_ s: String) throws -> SparsityPattern {
        guard s.contains(":"), case .nm = try parse(s) else {
            throw KickError("--pattern '\(KickError.quote(s))' is not N:M (keep N of every M inputs, e.g. 2:4); give --sparsity for an unstructured fraction")
        }
        return try parse(s)
    }

    /// "0.5", "50%", "2:4".
    public static func parse(_ s: String) throws -> SparsityPattern {
        if let c = s.firstIndex(of: ":") {
            guard let n = Int(s[..<c]), let m = Int(s[s.index(after: c)...]), n > 0, m > n, m <= KickFormat.maxGroup else {
                throw KickError("pattern '\(KickError.quote(s))' is not N:M with 0 < N < M ≤ \(KickFormat.maxGroup)")
            }
            return .nm(n: n, m: m)
        }
        let pct = s.hasSuffix("%")
        guard var v = Double(pct ? String(s.dropLast()) : s) else { throw KickError("sparsity '\(KickError.quote(s))' is not a number") }
        if pct { v /= 100 }
        let p = SparsityPattern.unstructured(v)
        try p.validate()
        return p
    }
}
