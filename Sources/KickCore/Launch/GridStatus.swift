import Foundation

/// `make status`: every configuration × task of a grid with its state, read
/// from the artifacts, the launcher's job records and (when Slurm is there)
/// the queue. Locally run grids show done, logged items, or not started.
public struct GridStatus {
    public struct Row: Equatable, Sendable {
        public var config: String
        public var task: String  // "compress" for the checkpoint
        public var state: String
        public var detail: String
        public var failed: Bool
    }

    public let work: String
    public let configs: [String]
    public let tasks: [String]
    /// Shards per task (1 when absent).
    public let shards: [String: Int]
    public let launcher: SlurmLauncher
    public let live: [String: SlurmJobState]

    public init(work: String, configs: [String], tasks: [String], shards: [String: Int], launcher: SlurmLauncher, live: [String: SlurmJobState]) {
        self.work = work; self.configs = configs; self.tasks = tasks; self.shards = shards
        self.launcher = launcher; self.live = live
    }

    /// `factoid:2 mmlu:16` (as make passes them).
    public static func parseShards(_ s: String) throws -> [String: Int] {
        var out: [String: Int] = [:]
        for part in s.split(whereSeparator: { $0 == " " || $0 == "," }) {
            let kv = part.split(separator: ":")
            guard kv.count == 2, let n = Int(kv[1]), n >= 1 else {
                throw KickError("'\(KickError.quote(String(part)))' is not task:N with N ≥ 1", code: .invalidValue)
            }
            out[String(kv[0])] = n
        }
        return out
    }

    public func rows() throws -> [Row] {
        var rows: [Row] = []
        for c in configs {
            rows.append(try row(c, "compress", target: "\(work)/compress/\(c)/model.kick", log: nil))
            for t in tasks {
                let scores = "\(work)/infer/\(c)/\(t).scores.json"
                let n = shards[t] ?? 1
                var r = try row(c, t, target: scores, log: n == 1 ? "\(work)/infer/\(c)/\(t).jsonl" : nil)
                if n > 1, !["done", "running", "pending"].contains(r.state) {
                    // not merged, and no merge queued: say where the shards stand
                    let parts = try (0..<n).map { i in
                        try row(c, t, target: "\(work)/infer/\(c)/\(t).shard-\(i)-of-\(n).scores.json", log: "\(work)/infer/\(c)/\(t).shard-\(i)-of-\(n).jsonl")
                    }
                    let open = parts.enumerated().filter { $0.element.state != "done" }
                    if !open.isEmpty {
                        let worst = open.first { $0.element.failed } ?? open.first { $0.element.state == "running" } ?? open.first
                        r.state = worst!.element.state
                        r.failed = parts.contains { $0.failed }
                        r.detail = "\(n - open.count)/\(n) shards done" + open.map { "; shard \($0.offset): \($0.element.state)\($0.element.detail.isEmpty ? "" : " \($0.element.detail)")" }.joined()
                    } else if r.state != "failed" {
                        r.state = "not merged"
                        r.detail = "\(n)/\(n) shards done"
                    }
                }
                rows.append(r)
            }
        }
        return rows
    }

    func row(_ c: String, _ t: String, target: String, log: String?) throws -> Row {
        switch try launcher.state(of: target, live: live) {
        case .done: return Row(config: c, task: t, state: "done", detail: "", failed: false)
        case .running(let id): return Row(config: c, task: t, state: "running", detail: "(job \(id))\(logged(log))", failed: false)
        case .pending(let id, let reason): return Row(config: c, task: t, state: "pending", detail: "(job \(id)\(reason.isEmpty ? "" : ", \(reason)"))", failed: false)
        case .failed(let id, let why, let last, let path):
            return Row(config: c, task: t, state: "failed", detail: "(job \(id), \(why))\(logged(log)): \(last ?? "no stderr") — \(path)", failed: true)
        case .notSubmitted:
            let n = loggedCount(log)
            return Row(config: c, task: t, state: n > 0 ? "incomplete" : "not started", detail: n > 0 ? "\(n) items logged" : "", failed: false)
        }
    }

    /// ", 12 items logged" for a log that holds records.
    func logged(_ log: String?) -> String {
        let n = loggedCount(log)
        return n > 0 ? ", \(n) items logged" : ""
    }

    func loggedCount(_ log: String?) -> Int {
        guard let log, let d = try? RegularFile.contents(atPath: log) else { return 0 }
        return d.reduce(0) { $0 + ($1 == 0x0A ? 1 : 0) }
    }

    /// A table: one line per configuration × task.
    public static func render(_ rows: [Row]) -> String {
        let w0 = max(6, rows.map(\.config.count).max() ?? 0), w1 = max(4, rows.map(\.task.count).max() ?? 0)
        let w2 = max(5, rows.map(\.state.count).max() ?? 0)
        func pad(_ s: String, _ w: Int) -> String { s + String(repeating: " ", count: max(0, w - s.count)) }
        var out = "\(pad("config", w0))  \(pad("task", w1))  \(pad("state", w2))  detail\n"
        for r in rows { out += "\(pad(r.config, w0))  \(pad(r.task, w1))  \(pad(r.state, w2))  \(r.detail)".trimmingCharacters(in: .whitespaces) + "\n" }
        return out
    }
}
