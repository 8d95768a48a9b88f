import Foundation

/// One row of results.csv: a metric of one (config, task, subset).
public struct ResultRow: Sendable, Equatable {
    public var model: String
    public var config: String
    public var method: String
    public var pattern: String
    public var level: String
    public var bits: String
    public var task: String
    public var subset: String
    public var metric: String
    public var value: Double
    public var n: Int
    public var ciLow: Double
    public var ciHigh: Double
    /// The paired comparison with dense on the same items (nil for dense,
    /// for aggregates such as perplexity, or without both logs), and its
    /// p-value after Holm's correction over the configurations of the task.
    public var paired: PairedComparison?
    public var pHolm: Double?

    public static let columns = ["model", "config", "method", "pattern", "level", "bits", "task", "subset", "metric", "value", "n", "ci_low", "ci_high",
                                 "flips_lost", "flips_gained", "p_vs_dense", "p_holm", "diff_ci_low", "diff_ci_high"]

    public var csv: String {
        func f(_ x: Double?) -> String { x.map { $0.isNaN ? "" : String(format: "%.6g", $0) } ?? "" }
        return [model, config, method, pattern, level, bits, task, subset, metric, f(value), String(n), f(ciLow), f(ciHigh),
                paired?.flipsLost.map(String.init) ?? "", paired?.flipsGained.map(String.init) ?? "", f(paired?.p), f(pHolm),
                f(paired?.diffLow), f(paired?.diffHigh)]
            .map(Self.csvField).joined(separator: ",")
    }

    /// RFC 4180: a field holding a comma, a quote, CR or LF is quoted, its
    /// quotes doubled.
    public static func csvField(_ s: String) -> String {
        guard s.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" || $0 == "\r\n" }) else { return s }
        return "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }
}

/// What a configuration name says: method, pattern, level (sparsity %) and bits.
public struct ConfigDescription: Sendable, Equatable {
    public var name: String
    public var method: String
    public var pattern: String
    public var level: Int?
    public var bits: Int?

    public init(_ name: String) {
        self.name = name
        if let spec = try? CompressionSpec.parse(configName: name) {
            method = spec.method.rawValue
            switch spec.pattern {
            case .unstructured?: pattern = "unstructured"
            case .nm(let n, let m)?: pattern = "\(m - n):\(m)"
            case nil: pattern = spec.quantizer.map { "g\($0.groupSize ?? 0)" } ?? "none"
            }
            level = spec.pattern.map { Int(($0.sparsity * 100).rounded()) }
            bits = spec.quantizer?.bits
        } else {
            method = name == "dense" ? "dense" : "unknown"
            pattern = "none"
        }
    }

    /// Row order in tables: dense, then by method, unstructured levels up, N:M, then bits down.
    var sortKey: (Int, String, Int, Int, Int) {
        let methodRank = ["dense": 0, "magnitude": 1, "wanda": 2, "sparsegpt": 3, "gptq": 4, "rtn": 5][method] ?? 6
        return (methodRank, method, pattern == "unstructured" ? 0 : 1, level ?? 0, -(bits ?? 0))
    }
}
