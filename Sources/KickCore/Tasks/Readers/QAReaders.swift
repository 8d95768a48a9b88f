import Foundation

/// Trivia questions with answer aliases: the DPR TriviaQA topic file
/// (default) and FreebaseQA JSON (the paper's original).
public enum TriviaTopicsReader {
    /// `question<TAB>['alias', …]` per line; some lines are CSV-quoted.
    public static func read(text: String, file: String, task: String, subset: String) throws -> ReaderOutput {
        var out = ReaderOutput()
        for r in try DelimitedText.parse(text, separator: "\t", file: file) {
            guard r.fields.count == 2 else { throw KickError("line \(r.line): expected question<TAB>answers, got \(r.fields.count) fields", file: file) }
            let q = r.fields[0].trimmingCharacters(in: .whitespaces)
            guard let golds = PythonListLiteral.parse(r.fields[1]) else {
                throw KickError("line \(r.line): answers are not a Python list of strings: \(r.fields[1].prefix(60))", file: file)
            }
            let g = golds.filter { !$0.trimmingCharacters(in: .whitespaces).isEmpty }
            if q.isEmpty { out.skip("empty question"); continue }
            if g.isEmpty { out.skip("no answer"); continue }
            out.items.append(TaskItem(id: "tqa-\(r.line)", task: task, subset: subset, question: q, golds: g))
        }
        return out
    }
}

public enum FreebaseQAReader {
    /// `{"Questions": [{"Question-ID", "RawQuestion", "Parses": [{"Answers": [{"AnswersName": [...]}]}]}]}`.
    public static func read(data: Data, file: String) throws -> ReaderOutput {
        guard let root = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else { throw KickError("not a JSON object", file: file) }
        guard let qs = root["Questions"] as? [[String: Any]] else { throw KickError("no Questions array", file: file) }
        var out = ReaderOutput()
        for (i, q) in qs.enumerated() {
            guard let raw = q["RawQuestion"] as? String ?? q["ProcessedQuestion"] as? String else {
                throw KickError("question \(i): no RawQuestion", file: file)
            }
            var golds: [String] = []
            for p in q["Parses"] as? [[String: Any]] ?? [] {
                for a in p["Answers"] as? [[String: Any]] ?? [] {
                    for n in a["AnswersName"] as? [String] ?? [] where !golds.contains(n) { golds.append(n) }
                }
            }
            if golds.isEmpty { out.skip("no answer"); continue }
            let id = q["Question-ID"] as? String ?? "fbqa-\(i)"
            out.items.append(TaskItem(id: id, task: "factoid", subset: "all", question: raw, golds: golds))
        }
        return out
    }
}

/// Open-book QA: BIG-bench's quoref subtask (default) and TriviaQA rc with
/// evidence (the paper's original).
public enum QuorefReader {
    /// `{"examples": [{"input": "Passage: … Question: …", "target": [...]}]}`.
    public static func read(data: Data, file: String) throws -> ReaderOutput {
        let examples = try BigBenchTask.examples(data: data, file: file)
        var out = ReaderOutput()
        for (i, e) in examples.enumerated() {
            guard let input = e["input"] as? String else { throw KickError("example \(i): no input", file: file) }
            guard let qr = input.range(of: "\nQuestion:", options: .backwards) ?? input.range(of: "Question:", options: .backwards) else {
                throw KickError("example \(i): input has no 'Question:'", file: file)
            }
            var passage = String(input[..<qr.lowerBound])
            if passage.hasPrefix("Passage:") { passage = String(passage.dropFirst("Passage:".count)) }
            passage = passage.trimmingCharacters(in: .whitespacesAndNewlines)
            let question = input[qr.upperBound...].trimmingCharacters(in: .whitespacesAndNewlines)
            var raw: [String]
            switch e["target"] {
            case let s as String: raw = PythonListLiteral.parse(s) ?? [s]
            case let a as [String]: raw = a.flatMap { PythonListLiteral.parse($0) ?? [$0] }
            default: throw KickError("example \(i): target is neither a string nor a list of strings", file: file)
            }
            let golds = raw.map(stripTrailingPeriod).filter { !$0.isEmpty }
            if passage.isEmpty || question.isEmpty { out.skip("empty passage or question"); continue }
            if golds.isEmpty { out.skip("no answer"); continue }
            out.items.append(TaskItem(id: "quoref-\(i)", task: "icrqa", subset: "open", question: question, context: passage, golds: golds))
        }
        return out
    }

    /// Every quoref target carries one appended period: "Catherine." →
    /// "Catherine", "Dr. Nelson." → "Dr. Nelson", "3.3." → "3.3"; an
    /// abbreviation's own period stays ("U.S.A.", "G.L.O.W.").
    public static func stripTrailingPeriod(_ s: String) -> String {
        var t = s.trimmingCharacters(in: .whitespaces)
        let c = Array(t)
        let abbreviation = c.count >= 3 && c[c.count - 2].isUppercase && c[c.count - 3] == "."
        if t.hasSuffix("."), !abbreviation { t.removeLast() }
        return t.trimmingCharacters(in: .whitespaces)
    }
}

public enum TriviaQARCReader {
    public static let evidenceCharacters = 3072

    /// TriviaQA rc (`{"Data": [{"Question", "QuestionId", "Answer": {"Aliases", "Value"}, "EntityPages": [{"Filename"}], "SearchResults": [...]}]}`).
    /// Evidence: the first entity page (or search result) file under
    /// `evidenceDir` (`wikipedia/…` or `web/…`), else a search result's
    /// description; cut to its first 3072 characters as the paper does.
    public static func read(data: Data, file: String, evidenceDir: String?) throws -> ReaderOutput {
        guard let root = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else { throw KickError("not a JSON object", file: file) }
        guard let rows = root["Data"] as? [[String: Any]] else { throw KickError("no Data array", file: file) }
        var out = ReaderOutput()
        for (i, r) in rows.enumerated() {
            guard let q = r["Question"] as? String else { throw KickError("item \(i): no Question", file: file) }
            guard let ans = r["Answer"] as? [String: Any] else { throw KickError("item \(i): no Answer", file: file) }
            var golds = ans["Aliases"] as? [String] ?? []
            if let v = ans["Value"] as? String, !golds.contains(v) { golds.insert(v, at: 0) }
            var evidence: String? = nil
            let pages = (r["EntityPages"] as? [[String: Any]] ?? []).map { ("wikipedia", $0) } + (r["SearchResults"] as? [[String: Any]] ?? []).map { ("web", $0) }
            for (kind, p) in pages where evidence == nil {
                if let dir = evidenceDir, let f = p["Filename"] as? String,
                   let d = try RegularFile.contents(atPath: "\(dir)/\(kind)/\(f)"), let t = String(data: d, encoding: .utf8) {
                    evidence = t
                } else if let desc = p["Description"] as? String, !desc.isEmpty {
                    evidence = desc
                }
            }
            guard let ev = evidence else { out.skip("no evidence"); continue }
            if golds.isEmpty { out.skip("no answer"); continue }
            let id = r["QuestionId"] as? String ?? "tqarc-\(i)"
            out.items.append(TaskItem(id: id, task: "icrqa", subset: "open", question: q, context: String(ev.prefix(evidenceCharacters)), golds: golds))
        }
        return out
    }
}

/// BIG-bench `task.json`: the examples array (the canary string is never copied).
public enum BigBenchTask {
    public static func examples(data: Data, file: String) throws -> [[String: Any]] {
        guard let root = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else { throw KickError("not a JSON object", file: file) }
        guard let ex = root["examples"] as? [[String: Any]] else { throw KickError("no examples array", file: file) }
        return ex
    }
}
