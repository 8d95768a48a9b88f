import Foundation

/// The `kick.compress/1` manifest written beside a compressed checkpoint.
public struct CompressManifest: Codable, Sendable {
    public struct Input: Codable, Sendable {
        public var path: String
        public var sha256: String
        public init(path: String, sha256: String) { self.path = path; self.sha256 = sha256 }
    }
    public var schema = "kick.compress/1"
    public var toolVersion = KickVersion.string
    public var spec: CompressionSpec
    public var trueSequential: Bool
    public var source: Input
    public var calibration: Input?
    /// [windows, tokens per window]
    public var calibrationShape: [Int]?
    public var untouched = "token embedding, RMSNorm weights and output head are kept exactly as the source stores them"
    public var checkpoint: Input
    public var report: CompressionReport

    public init(spec: CompressionSpec, trueSequential: Bool, source: Input, calibration: Input?, calibrationShape: [Int]?,
                checkpoint: Input, report: CompressionReport) {
        self.spec = spec
        self.trueSequential = trueSequential
        self.source = source
        self.calibration = calibration
        self.calibrationShape = calibrationShape
        self.checkpoint = checkpoint
        self.report = report
    }

    public func write(to path: String) throws {
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys]
        enc.keyEncodingStrategy = .convertToSnakeCase
        // an output error over all-zero calibration inputs is 0/0
        enc.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        try AtomicFile.write(try enc.encode(self), to: path)
    }
}

public enum KickVersion {
    public static let string = "0.1.0"
}
