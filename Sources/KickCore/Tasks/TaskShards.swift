import Foundation

/// One of N parts of a task's items: those whose position in the task file
/// is ≡ index (mod count). A sharded run (`kick-infer run --shard I/N`)
/// logs and scores only its part, into `<task>.shard-I-of-N.jsonl` and
/// `.scores.json`; `TaskShards.merge` then joins the parts by item id into
/// `<task>.jsonl` and scores the whole, so nothing downstream knows there
/// were shards, and no verdict changes: each item is scored alone.
public struct TaskShard: Sendable, Equatable, CustomStringConvertible {
    public let index: Int
    public let count: Int

    public init(index: Int, count: Int) throws {
        guard count >= 1, index >= 0, index < count else { throw KickError("shard \(index)/\(count): needs 0 ≤ I < N", code: .invalidValue) }
        self.index = index
        self.count = count
    }

    /// "I/N".
    public init(parsing s: String) throws {
        let parts = s.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let i = Int(parts[0]), let n = Int(parts[1]) else {
            throw KickError("shard '\(KickError.quote(s))' is not I/N (e.g. 0/4)", code: .invalidValue)
        }
        try self.init(index: i, count: n)
    }

    public var description: String { "\(index)/\(count)" }
    public var suffix: String { ".shard-\(index)-of-\(count)" }

    /// Whether the unit at `position` (an item in the task file, a
    /// perplexity window) is this shard's.
    public func owns(_ position: Int) -> Bool { position % count == index }

    /// This shard's items, in task-file order.
    public func items(_ all: [TaskItem]) -> [TaskItem] {
        all.enumerated().filter { owns($0.offset) }.map(\.element)
    }
}

/// Joins shard logs into a task's log and scores it.
public enum TaskShards {
    /// Merges the `shards` logs of `task` in `options.outDir` into
    /// `<task>.jsonl` (records in task-file order, one per item) and writes
    /// `<task>.scores.json`, timing summed over the shards. Every item must be
    /// logged by its own shard: a missing item names the shard to rerun, a
    /// record in the wrong shard's log is refused.
    /// - tokenizer: the model's, for tasks that log other units than items
    ///   (perplexity's windows).
    @discardableResult
    public static func merge(task: String, shards: Int, options: SuiteOptions, contextLength: Int, tokenizer: Tokenizer,
                             registry: TaskRegistry = .standard) throws -> TaskScores {
        try merge(registry.task(named: task), shards: shards, options: options, contextLength: contextLength, tokenizer: tokenizer, registry: registry)
    }

    static func merge<T: KickTask>(_ task: T.Type, shards: Int, options: SuiteOptions, contextLength: Int, tokenizer: Tokenizer,
                                   registry: TaskRegistry) throws -> TaskScores {
        let taskPath = "\(options.ingestDir)/tasks/\(T.name).jsonl"
        let taskSHA = try SuiteRunner.checkedTaskFileHash(taskPath)
        let all = try TaskFile.read(path: taskPath, task: T.name, registry: registry)
        let window = min(options.perplexityWindow, contextLength)
        let ids = T.recordIDs(all, tokenizer: tokenizer, window: window, maxWindows: options.perplexityWindows)
        let position = Dictionary(ids.enumerated().map { ($0.element, $0.offset) }, uniquingKeysWith: { a, _ in a })
        var merged: [String: T.Record] = [:]
        var seconds = 0.0, tokens = 0
        for i in 0..<shards {
            let s = try TaskShard(index: i, count: shards)
            let path = "\(options.outDir)/\(T.name)\(s.suffix).jsonl"
            guard FileManager.default.fileExists(atPath: path) else {
                throw KickError("shard \(s) of \(T.name) has no log; run it (kick-infer run --shard \(s))", file: path, code: .notFound)
            }
            for (id, r) in try TaskLog<T.Record>.read(path: path) {
                guard let at = position[id] else { throw KickError("record \(id) is not one of the task's \(ids.count) (\(taskPath))", file: path, code: .malformed) }
                guard s.owns(at) else {
                    throw KickError("item \(id) belongs to shard \(at % shards)/\(shards), not \(s)", file: path, code: .malformed)
                }
                merged[id] = r
            }
            if let sc = try? TaskScores.read(path: "\(options.outDir)/\(T.name)\(s.suffix).scores.json") {
                seconds += sc.secondsLogged
                tokens += sc.tokensGenerated
            }
        }
        let missing = ids.filter { merged[$0] == nil }
        if let first = missing.first {
            let byShard = Set(missing.map { position[$0]! % shards }).sorted().map { "\($0)/\(shards)" }
            throw KickError("\(missing.count) of \(ids.count) records are not logged yet (first: \(first)); rerun shard(s) \(byShard.joined(separator: ", "))",
                            file: "\(options.outDir)/\(T.name).jsonl", code: .notFound)
        }
        var body = Data()
        for id in ids {
            body.append(try LogLine.encode(merged[id]!, file: taskPath))
            body.append(0x0A)
        }
        let logPath = "\(options.outDir)/\(T.name).jsonl"
        try AtomicFile.write(body, to: logPath)
        let scores = SuiteRunner.scores(T.self, all, try TaskLog<T.Record>(path: logPath), options: options, perplexityWindow: window,
                                        taskSHA: taskSHA, timing: .init(seconds: seconds, tokens: tokens))
        try scores.write(to: "\(options.outDir)/\(T.name).scores.json")
        return scores
    }
}
