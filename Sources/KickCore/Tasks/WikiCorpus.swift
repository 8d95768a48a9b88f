import Foundation

/// English Wikipedia text from BIG-bench's paragraph_segmentation task: the
/// stand-in for WikiText-2 (perplexity) and C4 (calibration). The English
/// documents are split once, by position, into a held-out perplexity set
/// (every 10th document) and a calibration pool (the rest), so the two never
/// overlap.
public struct WikiCorpus: Sendable {
    public static let heldOutEvery = 10

    public var documents: [String]
    /// Documents read, and those kept as English.
    public var read: Int
    public var skippedNonEnglish: Int

    public var heldOut: [String] { documents.enumerated().filter { $0.offset % Self.heldOutEvery == 0 }.map(\.element) }
    public var calibrationPool: [String] { documents.enumerated().filter { $0.offset % Self.heldOutEvery != 0 }.map(\.element) }

    /// The held-out text as one string, documents separated by blank lines.
    public var perplexityText: String { heldOut.joined(separator: "\n\n") }

    /// Parses the task file: `{"examples": [{"input": text, …}, …]}`.
    public init(taskJSON data: Data, file: String) throws {
        guard let root = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
            throw KickError("not a JSON object", file: file)
        }
        guard let examples = root["examples"] as? [[String: Any]] else { throw KickError("no examples array", file: file) }
        var docs: [String] = []
        var skipped = 0
        for (i, e) in examples.enumerated() {
            guard let text = e["input"] as? String else { throw KickError("example \(i) has no input text", file: file) }
            if LanguageFilter.isEnglish(text) { docs.append(text) } else { skipped += 1 }
        }
        documents = docs
        read = examples.count
        skippedNonEnglish = skipped
    }

    /// The corpus from the member `datasets/wiki.json` pins.
    public static func load(_ m: DatasetManifest, fetcher: PackageFetcher) throws -> WikiCorpus {
        let path = try m.fetch(fetcher)
        guard let d = try RegularFile.contents(atPath: path) else { throw KickError("cannot read", file: path) }
        return try WikiCorpus(taskJSON: d, file: path)
    }

    /// Calibration windows as the reference samples C4: for each window a
    /// random document with more than `length` tokens (each document used
    /// at most once) and a random start inside it.
    public static func sampleWindows(_ docs: [String], tokenizer: Tokenizer, samples: Int, length: Int, seed: UInt64) throws -> [[Int]] {
        var rng = SeededRandom(seed: seed)
        var order = Array(docs.indices)
        for i in stride(from: order.count - 1, to: 0, by: -1) { order.swapAt(i, Int(rng.next() % UInt64(i + 1))) }
        var out: [[Int]] = []
        for d in order where out.count < samples {
            let ids = tokenizer.encode(docs[d])
            guard ids.count > length else { continue }
            let start = Int(rng.next() % UInt64(ids.count - length))
            out.append(Array(ids[start..<start + length]))
        }
        guard out.count == samples else {
            throw KickError("only \(out.count) documents hold more than \(length) tokens; ask for fewer or shorter windows")
        }
        return out
    }
}
