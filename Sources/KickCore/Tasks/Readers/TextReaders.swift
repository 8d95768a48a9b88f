import Foundation

/// Summarization: BIG-bench's XSum (default) and CNN/DailyMail `.story` files.
public enum SummarizationReader {
    /// small < 300 words, mid 300–800, large > 800.
    public static func bucket(words: Int) -> String { words < 300 ? "small" : words <= 800 ? "mid" : "large" }

    public static func xsum(data: Data, file: String) throws -> ReaderOutput {
        var out = ReaderOutput()
        for (i, e) in try BigBenchTask.examples(data: data, file: file).enumerated() {
            guard let article = e["input"] as? String else { throw KickError("example \(i): no input", file: file) }
            let target: String? = (e["target"] as? String) ?? (e["target"] as? [String])?.first
            guard let summary = target else { throw KickError("example \(i): no target summary", file: file) }
            if article.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty { out.skip("empty article"); continue }
            let id = e["comment"] as? String ?? "xsum-\(i)"
            out.items.append(TaskItem(id: id, task: "summarization", subset: bucket(words: wordCount(article)), context: article, golds: [summary]))
        }
        return out
    }

    /// A folder of `.story` files: the article, then `@highlight` paragraphs
    /// that together are the reference summary.
    public static func cnnDailyMail(dir: String) throws -> ReaderOutput {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: dir) else { throw KickError("not a folder of .story files", file: dir) }
        var out = ReaderOutput()
        for name in names.sorted() where name.hasSuffix(".story") {
            let file = dir + "/" + name
            guard let d = try RegularFile.contents(atPath: file), let text = String(data: d, encoding: .utf8) else {
                throw KickError("cannot read as UTF-8", file: file)
            }
            let parts = text.components(separatedBy: "@highlight")
            let article = parts[0].trimmingCharacters(in: .whitespacesAndNewlines)
            let highlights = parts.dropFirst().map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }.filter { !$0.isEmpty }
            if article.isEmpty { out.skip("empty article"); continue }
            if highlights.isEmpty { out.skip("no @highlight"); continue }
            out.items.append(TaskItem(id: String(name.dropLast(6)), task: "summarization", subset: bucket(words: wordCount(article)),
                                      context: article, golds: [highlights.map { $0.hasSuffix(".") ? $0 : $0 + "." }.joined(separator: " ")]))
        }
        guard out.items.count + out.skippedTotal > 0 else { throw KickError("no .story files", file: dir) }
        return out
    }
}

/// MT-Bench `question.jsonl`: `{"question_id", "category", "turns": [..], "reference": [..]?}`.
public enum MTBenchReader {
    public static func read(data: Data, file: String) throws -> ReaderOutput {
        var out = ReaderOutput()
        try JSONLines.objects(data: data, file: file) { o, n in
            guard let qid = o["question_id"], let cat = o["category"] as? String, let turns = o["turns"] as? [String] else {
                throw KickError("line \(n): needs question_id, category and turns", file: file)
            }
            if turns.isEmpty { out.skip("no turns"); return }
            let ref = o["reference"] as? [String] ?? []
            out.items.append(TaskItem(id: "mtbench-\(qid)", task: "instruct", subset: cat, turns: turns, golds: ref))
        }
        return out
    }
}

/// Perplexity and calibration text in the original formats.
public enum PlainTextCorpus {
    /// WikiText raw (`wiki.test.raw`): articles start at ` = Title = ` lines
    /// (one `=` each side; ` = = Section = = ` lines stay inside).
    public static func wikiTextDocuments(_ text: String) -> [String] {
        var docs: [String] = []
        var cur: [Substring] = []
        func flush() {
            let d = cur.joined(separator: "\n").trimmingCharacters(in: .whitespacesAndNewlines)
            if !d.isEmpty { docs.append(d) }
            cur = []
        }
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            let t = line.trimmingCharacters(in: .whitespaces)
            if t.hasPrefix("= "), t.hasSuffix(" ="), !t.hasPrefix("= ="), t.count > 4 { flush() }
            cur.append(line)
        }
        flush()
        return docs
    }

    /// C4 shard (`c4-*.json.gz`): one `{"text": …}` per line.
    public static func c4Documents(path: String) throws -> [String] {
        let bytes = try ArchiveReader.decompressed(path: path)
        var docs: [String] = []
        try JSONLines.objects(data: Data(bytes), file: path) { o, n in
            guard let t = o["text"] as? String else { throw KickError("line \(n): no text field", file: path) }
            docs.append(t)
        }
        return docs
    }
}
