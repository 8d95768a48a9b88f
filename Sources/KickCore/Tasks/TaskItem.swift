import Foundation

/// One scored item of a task, as every reader writes it and kick-infer reads
/// it (`kick.task/1`, one JSON object per line). Only the fields a task's
/// prompt needs are set.
public struct TaskItem: Codable, Sendable, Equatable {
    public var id: String
    /// factoid, mmlu, icrqa, summarization, instruct, perplexity.
    public var task: String
    /// MMLU subject, summarization bucket, MT-Bench category, icrqa open/closed.
    public var subset: String
    /// A coarser grouping where the task has one (MMLU discipline).
    public var group: String?
    public var question: String?
    public var choices: [String]?
    /// Passage, article, evidence or document text.
    public var context: String?
    /// MT-Bench's turns.
    public var turns: [String]?
    public var golds: [String]
    /// MMLU few-shot examples, fixed at ingest so every run uses the same.
    public var shots: [Shot]?

    public struct Shot: Codable, Sendable, Equatable {
        public var question: String
        public var choices: [String]
        public var answer: String
        public init(question: String, choices: [String], answer: String) {
            self.question = question
            self.choices = choices
            self.answer = answer
        }
    }

    public init(id: String, task: String, subset: String, group: String? = nil, question: String? = nil, choices: [String]? = nil,
                context: String? = nil, turns: [String]? = nil, golds: [String], shots: [Shot]? = nil) {
        self.id = id
        self.task = task
        self.subset = subset
        self.group = group
        self.question = question
        self.choices = choices
        self.context = context
        self.turns = turns
        self.golds = golds
        self.shots = shots
    }
}

/// What a reader produced: the items, and how many records it skipped and why.
public struct ReaderOutput: Sendable {
    public var items: [TaskItem]
    public var skipped: [String: Int]
    public init(items: [TaskItem] = [], skipped: [String: Int] = [:]) {
        self.items = items
        self.skipped = skipped
    }
    public mutating func skip(_ reason: String) { skipped[reason, default: 0] += 1 }
    public var skippedTotal: Int { skipped.values.reduce(0, +) }
}

/// Task files: JSON lines, written atomically, read with the line of any bad record named.
public enum TaskFile {
    public static let schema = "kick.task/1"

    public static func encode(_ items: [TaskItem]) throws -> Data {
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        var d = Data()
        for it in items {
            d.append(try enc.encode(it))
            d.append(0x0A)
        }
        return d
    }

    public static func write(_ items: [TaskItem], to path: String) throws {
        try AtomicFile.write(try encode(items), to: path)
    }

    /// Every item of a task file, each checked: it belongs to `task` (when
    /// given), has the fields its task reads, and an id no other item has.
    /// An empty file is an error, not a task of no items.
    public static func read(path: String, task: String? = nil, registry: TaskRegistry = .standard) throws -> [TaskItem] {
        guard let d = try RegularFile.contents(atPath: path) else { throw KickError("task file not found", file: path) }
        return try parse(d, file: path, task: task, registry: registry)
    }

    /// Parses task-file bytes; `file` names them in errors.
    public static func parse(_ d: Data, file path: String, task: String? = nil, registry: TaskRegistry = .standard) throws -> [TaskItem] {
        let dec = JSONDecoder()
        var out: [TaskItem] = []
        var seen: Set<String> = []
        try JSONLines.forEach(data: d) { line, n in
            let item: TaskItem
            do { item = try dec.decode(TaskItem.self, from: line) } catch {
                throw KickError("line \(n): not a \(schema) item (\(KickError.decoding(error)))", file: path)
            }
            if let problem = item.problem(expectedTask: task, registry: registry) { throw KickError("line \(n): \(problem)", file: path) }
            guard seen.insert(item.id).inserted else { throw KickError("line \(n): id '\(KickError.quote(item.id))' appears twice", file: path) }
            out.append(item)
        }
        guard !out.isEmpty else { throw KickError("the task file holds no items", file: path) }
        return out
    }
}

extension TaskItem {
    /// What makes this item unusable for its task, or nil: the checks every
    /// item gets, then its task's own (`KickTask.problem`).
    func problem(expectedTask: String?, registry: TaskRegistry = .standard) -> String? {
        if id.isEmpty { return "empty id" }
        if let t = expectedTask, task != t { return "item '\(KickError.quote(id))' is a '\(KickError.quote(task))' item in the \(t) task file" }
        return registry.tasks.first { $0.name == task }?.problem(with: self)
    }

    static func isBlank(_ s: String?) -> Bool { (s ?? "").trimmingCharacters(in: .whitespacesAndNewlines).isEmpty }

    /// The item's question is missing or empty.
    public var questionProblem: String? {
        Self.isBlank(question) ? "item '\(KickError.quote(id))' has a missing or empty question" : nil
    }

    /// The item's text (passage, article, document) is missing or empty.
    public var textProblem: String? {
        Self.isBlank(context) ? "item '\(KickError.quote(id))' has a missing or empty text" : nil
    }

    /// The item has no gold answer, or only empty ones.
    public var goldProblem: String? {
        if golds.isEmpty { return "item '\(KickError.quote(id))' has no gold answer (golds: [])" }
        if golds.allSatisfy({ Self.isBlank($0) }) { return "item '\(KickError.quote(id))' has only empty gold answers" }
        return nil
    }
}

/// Iterates the non-empty lines of a JSON-lines file with their 1-based numbers.
public enum JSONLines {
    public static func forEach(data: Data, _ body: (Data, Int) throws -> Void) rethrows {
        var n = 0
        var start = data.startIndex
        while start < data.endIndex {
            let end = data[start...].firstIndex(of: 0x0A) ?? data.endIndex
            n += 1
            var line = data[start..<end]
            if line.last == 0x0D { line = line.dropLast() }
            if !line.allSatisfy({ $0 == 0x20 || $0 == 0x09 }) { try body(Data(line), n) }
            start = end < data.endIndex ? data.index(after: end) : end
        }
    }

    public static func forEach(path: String, _ body: (Data, Int) throws -> Void) throws {
        guard let d = try RegularFile.contents(atPath: path) else { throw KickError("cannot read", file: path) }
        try forEach(data: d, body)
    }

    /// Each line as a JSON object; a line that is not one is an error naming file and line.
    public static func objects(data: Data, file: String, _ body: ([String: Any], Int) throws -> Void) throws {
        try forEach(data: data) { line, n in
            guard let o = (try? JSONSerialization.jsonObject(with: line)) as? [String: Any] else {
                throw KickError("line \(n): not a JSON object", file: file)
            }
            try body(o, n)
        }
    }
}
