import Foundation

/// `<calib>.tok.manifest.json` (`kick.calib/1`): where a calibration set's
/// windows came from, and its sha256, so a rerun rebuilds it only when
/// something it depends on changed.
public struct CalibrationManifest: Codable, Sendable, Equatable {
    public static let schemaName = "kick.calib/1"
    public var schema = CalibrationManifest.schemaName
    public var toolVersion = KickVersion.string
    public var corpus: String
    public var source: CalibrationCorpus.Source
    public var samples: Int
    public var length: Int
    public var seed: UInt64
    public var tokenizer: String
    public var rule = "one window per document holding more than L tokens, documents in a seeded order, start drawn uniformly"
    public var sha256: String

    enum CodingKeys: String, CodingKey {
        case schema, corpus, source, samples, length, seed, tokenizer, rule, sha256
        case toolVersion = "tool_version"
    }

    /// `<corpus>-n<N>-l<L>-s<seed>.tok` (a C4 path is named `c4`).
    public static func fileName(corpus: String, samples: Int, length: Int, seed: UInt64) -> String {
        "\(corpus.hasPrefix("c4-json-gz:") ? "c4" : corpus)-n\(samples)-l\(length)-s\(seed).tok"
    }

    public static func path(ingest: String, corpus: String, samples: Int, length: Int, seed: UInt64) -> String {
        "\(ingest)/calib/" + fileName(corpus: corpus, samples: samples, length: length, seed: seed)
    }

    /// Builds `out` and its manifest unless both are up to date; says what it did.
    public static func build(root: String, modelPath: String, corpus: String, samples: Int, length: Int, seed: UInt64,
                             out: String, force: Bool) throws -> String {
        let bundle = try ModelBundle.open(path: modelPath)
        let manifestPath = out + ".manifest.json"
        if !force, let d = try? RegularFile.contents(atPath: manifestPath), let o = try? JSONDecoder().decode(CalibrationManifest.self, from: d),
           o.schema == schemaName, o.tokenizer == bundle.tokenizer.identity, o.corpus == corpus, o.toolVersion == KickVersion.string,
           o.samples == samples, o.length == length, o.seed == seed, (try? SHA256.hex(ofFile: out)) == o.sha256 {
            return "\(out) is up to date, nothing to do"
        }
        let (docs, source) = try CalibrationCorpus.documents(corpus, root: root, fetcher: PackageFetcher())
        let windows = try WikiCorpus.sampleWindows(docs, tokenizer: bundle.tokenizer, samples: samples, length: length, seed: seed)
        try CalibrationSet(windows: windows, vocabSize: bundle.tokenizer.vocabSize, tokenizerIdentity: bundle.tokenizer.identity).write(to: out)
        let m = CalibrationManifest(corpus: corpus, source: source, samples: samples, length: length, seed: seed,
                                    tokenizer: bundle.tokenizer.identity, sha256: try InputHash.of(path: out))
        try AtomicFile.writeJSON(m, to: manifestPath)
        return "wrote \(out) (\(samples) × \(length) tokens from \(corpus))"
    }
}
