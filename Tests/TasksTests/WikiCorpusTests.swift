import Foundation
import Testing
@testable import KickCore
import KickTestSupport

@Suite struct LanguageFilterTests {
    @Test func tellsEnglishFromItsNeighbours() {
        let samples: [(String, String?)] = [
            ("Robert Orben (born March 4, 1927) is an American professional comedy writer, although he also worked as a magician.", "en"),
            ("Eine Skyline ist die Teilansicht oder das Panorama, das eine Stadt mit ihren höchsten Bauwerken vor dem Horizont abzeichnet.", "de"),
            ("Lodi, ook wel genoemd Lodigiano, is een van de twaalf provincies in de Italiaanse regio Lombardije.", "nl"),
            ("La Bank of Ireland è una delle quattro grandi banche della Repubblica d'Irlanda e ha sede a Dublino.", "it"),
            ("Alex To, nacido el 10 de febrero de 1962 en Shanghái con el nombre de Tak Wai To, es un cantante.", "es"),
            ("Le château est situé dans la commune et il est inscrit au titre des monuments historiques par arrêté.", "fr"),
            ("Москва — столица России, город федерального значения.", nil),
            ("", nil),
        ]
        for (text, lang) in samples { #expect(LanguageFilter.guess(text) == lang, "\(text.prefix(30))") }
        // English words in a Dutch sentence do not make it English
        #expect(!LanguageFilter.isEnglish("The Rock was een Nederlandse christelijke rockband uit Zwolle en speelde stevige gitaarrock met de band."))
    }
}

@Suite struct WikiCorpusTests {
    static func task(_ docs: [String]) -> Data {
        try! JSONSerialization.data(withJSONObject: ["canary": "x", "examples": docs.map { ["input": $0, "target": "0 1"] }])
    }

    @Test func keepsEnglishAndSplitsWithoutOverlap() throws {
        let en = (0..<25).map { "Document \($0) is about the history of the town and the people who lived in it for many years." }
        let de = (0..<5).map { "Dokument \($0) ist über die Geschichte der Stadt und die Menschen, die in ihr lebten." }
        var rng = SeededRandom(seed: 3)
        let c = try WikiCorpus(taskJSON: Self.task((en + de).shuffled(using: &rng)), file: "t.json")
        #expect(c.read == 30 && c.documents.count == 25 && c.skippedNonEnglish == 5)
        #expect(c.heldOut.count == 3)
        #expect(Set(c.heldOut).isDisjoint(with: Set(c.calibrationPool)))
        #expect(c.heldOut.count + c.calibrationPool.count == c.documents.count)
        #expect(c.perplexityText == c.heldOut.joined(separator: "\n\n"))
    }

    @Test func rejectsMalformedTaskFiles() {
        #expect(throws: KickError.self) { try WikiCorpus(taskJSON: Data("[1]".utf8), file: "a.json") }
        #expect(throws: KickError.self) { try WikiCorpus(taskJSON: Data("{\"examples\": [{\"target\": 1}]}".utf8), file: "b.json") }
        #expect(throws: KickError.self) { try WikiCorpus(taskJSON: Data("{broken".utf8), file: "c.json") }
    }

    @Test func calibrationWindowsComeFromDistinctLongDocuments() throws {
        // a byte-level tokenizer with no merges: one token per byte
        var toks = (0..<256).map { String(ByteLevelMap.byteToScalar[$0]) }
        toks.append("<|endoftext|>")
        let tok = try Tokenizer(kind: .byteLevel, tokens: toks, types: toks.indices.map { $0 == 256 ? .control : .normal }, merges: [],
                                scores: nil, preTokenizer: .gpt2, bosID: nil, eosID: 256, unknownID: nil, addBOS: false)
        let docs = (0..<10).map { i in String(repeating: Character(UnicodeScalar(UInt8(97 + i))), count: i < 6 ? 100 : 10) }
        let w = try WikiCorpus.sampleWindows(docs, tokenizer: tok, samples: 6, length: 50, seed: 1)
        #expect(w.count == 6 && w.allSatisfy { $0.count == 50 })
        #expect(Set(w.map { $0[0] }).count == 6)  // six different documents
        #expect(try WikiCorpus.sampleWindows(docs, tokenizer: tok, samples: 6, length: 50, seed: 1) == w)
        #expect(throws: KickError.self) { try WikiCorpus.sampleWindows(docs, tokenizer: tok, samples: 7, length: 50, seed: 1) }
    }
}
