import Foundation

/// The `kick.compress/1` manifest written beside every checkpoint, dense
/// (`kick-compress convert`: no spec, no calibration) or compressed.
public struct CompressManifest: Codable, Sendable {
    public static let schemaName = "kick.compress/1"
    public struct Input: Codable, Sendable {
        public var path: String
        public var sha256: String
        public init(path: String, sha256: String) { self.path = path; self.sha256 = sha256 }
    }
    public var schema = CompressManifest.schemaName
    public var toolVersion = KickVersion.string
    /// The configuration's name: `dense` or the spec's.
    public var config: String
    public var spec: CompressionSpec?
    public var trueSequential: Bool
    public var source: Input
    public var calibration: Input?
    /// [windows, tokens per window]
    public var calibrationShape: [Int]?
    public var untouched = "token embedding, RMSNorm weights and output head are kept exactly as the source stores them"
    public var checkpoint: Input
    public var report: CompressionReport

    public init(spec: CompressionSpec?, trueSequential: Bool, source: Input, calibration: Input?, calibrationShape: [Int]?,
                checkpoint: Input, report: CompressionReport) {
        self.config = spec?.configName ?? "dense"
        self.spec = spec
        self.trueSequential = trueSequential
        self.source = source
        self.calibration = calibration
        self.calibrationShape = calibrationShape
        self.checkpoint = checkpoint
        self.report = report
    }

    public func write(to path: String) throws {
        // (an output error over all-zero calibration inputs is 0/0: written "nan")
        try AtomicFile.writeJSON(self, to: path, snakeCase: true)
    }

    public static func read(path: String) throws -> CompressManifest {
        try JSONArtifact.read(CompressManifest.self, path: path, schema: schemaName, snakeCase: true)
    }
}

public enum KickVersion {
    public static let string = "0.1.0"
}
