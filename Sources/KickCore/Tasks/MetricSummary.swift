import Foundation

/// One metric of one subset with its n and 95% confidence interval, as
/// `<task>.scores.json` (`kick.scores/1`) and results.csv carry it.
public struct MetricSummary: Codable, Sendable, Equatable {
    public var metric: String
    public var subset: String
    public var value: Double
    public var n: Int
    public var ciLow: Double
    public var ciHigh: Double
    /// How the interval was computed.
    public var interval: String

    enum CodingKeys: String, CodingKey { case metric, subset, value, n, ciLow = "ci_low", ciHigh = "ci_high", interval }

    /// A proportion with the Wilson score interval.
    public static func proportion(_ metric: String, _ subset: String, hits: [Bool]) -> MetricSummary {
        let n = hits.count
        guard n > 0 else { return MetricSummary(metric: metric, subset: subset, value: .nan, n: 0, ciLow: .nan, ciHigh: .nan, interval: "wilson") }
        let p = Double(hits.filter { $0 }.count) / Double(n), z = 1.959964, nn = Double(n)
        let center = (p + z * z / (2 * nn)) / (1 + z * z / nn)
        let half = z * ((p * (1 - p) / nn + z * z / (4 * nn * nn)).squareRoot()) / (1 + z * z / nn)
        return MetricSummary(metric: metric, subset: subset, value: p, n: n, ciLow: max(0, center - half), ciHigh: min(1, center + half), interval: "wilson")
    }

    /// A mean with the normal interval mean ± 1.96·s/√n.
    public static func mean(_ metric: String, _ subset: String, _ xs: [Double]) -> MetricSummary {
        let n = xs.count
        guard n > 0 else { return MetricSummary(metric: metric, subset: subset, value: .nan, n: 0, ciLow: .nan, ciHigh: .nan, interval: "normal") }
        let m = xs.reduce(0, +) / Double(n)
        let v = n > 1 ? xs.reduce(0) { $0 + ($1 - m) * ($1 - m) } / Double(n - 1) : 0
        let half = 1.959964 * (v / Double(n)).squareRoot()
        return MetricSummary(metric: metric, subset: subset, value: m, n: n, ciLow: m - half, ciHigh: m + half, interval: "normal")
    }
}

/// `<task>.scores.json`.
public struct TaskScores: Codable, Sendable {
    public var schema = "kick.scores/1"
    public var toolVersion = KickVersion.string
    public var config: String
    public var task: String
    public var model: String
    public var items: Int
    public var itemsInTaskFile: Int
    public var notes: [String]
    public var metrics: [MetricSummary]
    public var secondsLogged: Double
    public var tokensGenerated: Int
    public var tokensPerSecond: Double
    /// The sha256 of the task file the items were scored from.
    public var taskFileSHA256: String?

    enum CodingKeys: String, CodingKey {
        case schema, config, task, model, items, notes, metrics
        case toolVersion = "tool_version", itemsInTaskFile = "items_in_task_file", secondsLogged = "seconds_logged"
        // generated tokens; for mmlu and perplexity the prompt tokens computed
        case tokensGenerated = "tokens", tokensPerSecond = "tokens_per_second"
        case taskFileSHA256 = "task_file_sha256"
    }

    public func write(to path: String) throws {
        try AtomicFile.writeJSON(self, to: path)
    }

    public static func read(path: String) throws -> TaskScores {
        try JSONArtifact.read(TaskScores.self, path: path, schema: "kick.scores/1", ifMissing: "cannot read")
    }
}
