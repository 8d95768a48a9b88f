import Foundation

/// Parses a Python list literal of strings, `['a', "b's", 'c\'d']`, as the
/// TriviaQA topic files and some BIG-bench targets write their answers.
public enum PythonListLiteral {
    public static func parse(_ s: String) -> [String]? {
        let c = Array(s.trimmingCharacters(in: .whitespaces).unicodeScalars)
        guard c.first == "[", c.last == "]" else { return nil }
        var out: [String] = []
        var i = 1
        func skipSpace() { while i < c.count - 1, c[i] == " " || c[i] == "," || c[i] == "\t" { i += 1 } }
        while true {
            skipSpace()
            if i >= c.count - 1 { return out }
            let q = c[i]
            guard q == "'" || q == "\"" else { return nil }
            i += 1
            var v = String.UnicodeScalarView()
            var closed = false
            while i < c.count - 1 {
                let ch = c[i]
                if ch == "\\", i + 1 < c.count - 1 {
                    let n = c[i + 1]
                    switch n {
                    case "n": v.append("\n")
                    case "t": v.append("\t")
                    default: v.append(n)
                    }
                    i += 2
                    continue
                }
                if ch == q { closed = true; i += 1; break }
                v.append(ch)
                i += 1
            }
            guard closed else { return nil }
            out.append(String(v))
            // after a string: only spaces, then a comma or the end
            while i < c.count - 1, c[i] == " " { i += 1 }
            if i < c.count - 1 { guard c[i] == "," else { return nil } }
        }
    }
}

/// Delimited text with `"` quoting (doubled quotes inside), as CSV and the
/// quoted lines of the TriviaQA topic TSV use. Fields may span lines.
public enum DelimitedText {
    public struct Record { public var fields: [String]; public var line: Int }

    public static func parse(_ text: String, separator: Character, file: String) throws -> [Record] {
        var records: [Record] = []
        var fields: [String] = []
        var field = ""
        var inQuotes = false
        var atFieldStart = true
        var line = 1, recordLine = 1
        var chars = text.makeIterator()
        var pending: Character? = nil
        func next() -> Character? {
            if let p = pending { pending = nil; return p }
            return chars.next()
        }
        func endRecord() {
            fields.append(field)
            field = ""
            if !(fields.count == 1 && fields[0].isEmpty) { records.append(Record(fields: fields, line: recordLine)) }
            fields = []
            atFieldStart = true
        }
        while let ch = next() {
            if inQuotes {
                if ch == "\"" {
                    if let n = next() {
                        if n == "\"" { field.append("\"") } else { inQuotes = false; pending = n }
                    } else { inQuotes = false }
                } else {
                    if ch == "\n" || ch == "\r\n" { line += 1 }
                    field.append(ch)
                }
                continue
            }
            switch ch {
            case "\"" where atFieldStart:
                inQuotes = true
                atFieldStart = false
            case separator:
                fields.append(field)
                field = ""
                atFieldStart = true
            case "\n", "\r\n", "\r":
                endRecord()
                line += 1
                recordLine = line
            default:
                field.append(ch)
                atFieldStart = false
            }
        }
        if inQuotes { throw KickError("line \(recordLine): a quoted field is never closed", file: file) }
        if !field.isEmpty || !fields.isEmpty { endRecord() }
        return records
    }
}

/// Words as the summarization buckets count them: runs of non-space characters.
public func wordCount(_ s: String) -> Int {
    s.split(whereSeparator: { $0.isWhitespace }).count
}
