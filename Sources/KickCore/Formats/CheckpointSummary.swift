import Foundation

/// What `kick-compress inspect` prints: per tensor its encoding, zeros and
/// bits, and totals against the same tensors stored as dense f16.
public struct CheckpointSummary: Codable, Sendable {
    public struct Tensor: Codable, Sendable {
        public var name: String
        public var shape: [Int]
        public var encoding: String
        public var zerosFraction: Double
        public var bitsPerWeight: Double
        public var packedBytes: Int
        public var compressedBytes: Int
        enum CodingKeys: String, CodingKey {
            case name, shape, encoding, zerosFraction = "zeros_fraction", bitsPerWeight = "bits_per_weight", packedBytes = "packed_bytes", compressedBytes = "compressed_bytes"
        }
    }

    public struct Totals: Codable, Sendable {
        public var elements = 0
        public var zeros = 0
        public var packedBytes = 0
        public var compressedBytes = 0
        public var f16Bytes: Int { elements * 2 }
        public var zerosFraction: Double { Double(zeros) / Double(max(1, elements)) }
        public var packedVsF16: Double { Double(packedBytes) / Double(max(1, f16Bytes)) }
        public var compressedVsF16: Double { Double(compressedBytes) / Double(max(1, f16Bytes)) }

        enum CodingKeys: String, CodingKey {
            case elements, zerosFraction = "zeros_fraction", packedBytes = "packed_bytes", compressedBytes = "compressed_bytes", f16Bytes = "f16_bytes"
            case packedVsF16 = "packed_vs_f16", compressedVsF16 = "compressed_vs_f16"
        }

        public init() {}

        public init(from decoder: Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            elements = try c.decode(Int.self, forKey: .elements)
            packedBytes = try c.decode(Int.self, forKey: .packedBytes)
            compressedBytes = try c.decode(Int.self, forKey: .compressedBytes)
            zeros = Int((try c.decode(Double.self, forKey: .zerosFraction) * Double(elements)).rounded())
        }

        public func encode(to encoder: Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(elements, forKey: .elements)
            try c.encode(zerosFraction, forKey: .zerosFraction)
            try c.encode(packedBytes, forKey: .packedBytes)
            try c.encode(compressedBytes, forKey: .compressedBytes)
            try c.encode(f16Bytes, forKey: .f16Bytes)
            try c.encode(packedVsF16, forKey: .packedVsF16)
            try c.encode(compressedVsF16, forKey: .compressedVsF16)
        }
    }

    /// `inspect --verify`: what was decoded and checked.
    public struct Verified: Codable, Sendable {
        public var tensors: Int
        public var blobs: Int
        public var tokenizer: Bool
        public init(tensors: Int, blobs: Int, tokenizer: Bool) {
            self.tensors = tensors
            self.blobs = blobs
            self.tokenizer = tokenizer
        }
    }

    public var formatVersion: Int
    public var file: String
    public var fileBytes: Int
    public var config: LlamaConfig
    public var chatTemplate: String
    public var metadata: [String: String]
    public var tensors: [Tensor]
    public var totals: Totals
    /// The decoder blocks' matrices only (what compression changes).
    public var projectionTotals: Totals
    public var verified: Verified?

    enum CodingKeys: String, CodingKey {
        case file, config, metadata, tensors, totals, verified
        case formatVersion = "format_version", fileBytes = "file_bytes", chatTemplate = "chat_template", projectionTotals = "projection_totals"
    }

    public static func summarize(_ ck: KickCheckpoint) -> CheckpointSummary {
        var rows: [Tensor] = []
        var all = Totals(), proj = Totals()
        for t in ck.directory.tensors {
            rows.append(Tensor(name: t.name, shape: t.shape, encoding: t.encoding.description, zerosFraction: Double(t.zeros) / Double(max(1, t.elements)),
                               bitsPerWeight: Double(t.size * 8) / Double(max(1, t.elements)), packedBytes: t.size, compressedBytes: t.compressedBytes))
            for isProj in [false, true] where !isProj || t.name.hasPrefix("blk.") && !t.name.hasSuffix("norm.weight") {
                var x = isProj ? proj : all
                x.elements += t.elements; x.packedBytes += t.size; x.compressedBytes += t.compressedBytes; x.zeros += t.zeros
                if isProj { proj = x } else { all = x }
            }
        }
        return CheckpointSummary(formatVersion: Int(ck.directory.version), file: ck.path, fileBytes: ck.file.size, config: ck.directory.config,
                                 chatTemplate: ck.directory.chatTemplate.rawValue, metadata: ck.directory.metadata, tensors: rows, totals: all,
                                 projectionTotals: proj)
    }
}
