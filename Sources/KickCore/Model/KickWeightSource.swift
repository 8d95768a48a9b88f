import Foundation

/// Weights read from a `.kick` checkpoint. Tensors are named as in GGUF.
public final class KickWeightSource: WeightSource, @unchecked Sendable {
    public let checkpoint: KickCheckpoint
    public var config: LlamaConfig { checkpoint.directory.config }
    public var path: String { checkpoint.path }

    public init(checkpoint: KickCheckpoint) { self.checkpoint = checkpoint }
    public convenience init(path: String) throws { self.init(checkpoint: try KickCheckpoint(path: path)) }

    public func has(_ role: TensorRole) -> Bool { checkpoint.entry(role.ggufName) != nil }

    public func sourceType(_ role: TensorRole) -> GGMLType? {
        guard let e = checkpoint.entry(role.ggufName)?.encoding else { return nil }
        switch e.kind {
        case .ggml, .sparseGGML, .escapeGGML: return GGMLType.supported.first { $0.name == e.ggmlType }
        // pruned tensors keep their values at a float precision: f16 or bf16
        // values (a 16-bit or quantized source's) are held as 16-bit panels
        case .dense, .sparse, .nm:
            switch e.values {
            case .f16: return .f16
            case .bf16: return .bf16
            default: return .f32
            }
        default: return nil
        }
    }

    public func storedPayload(_ role: TensorRole) throws -> (TensorEncoding, [UInt8]) {
        let (e, p) = try checkpoint.payload(role.ggufName)
        return (e.encoding, p)
    }

    public func nmPattern(_ role: TensorRole) -> (n: Int, m: Int, values: ValueType)? {
        guard let e = checkpoint.entry(role.ggufName)?.encoding, let n = e.n, let m = e.m else { return nil }
        switch e.kind {
        case .nm: return e.values.map { (n, m, $0) }
        // values on a ggml source's grids are float32 values once decoded
        case .sparseGGML: return (n, m, .f32)
        default: return nil
        }
    }

    public func codes(_ role: TensorRole) throws -> CodeRows? {
        guard let t = checkpoint.entry(role.ggufName), CodeRows.isCoded(t.encoding) else { return nil }
        let (_, p) = try checkpoint.payload(role.ggufName)
        do {
            return try CodeRows.decode(t.encoding, p, rows: t.rows, cols: t.cols)
        } catch let e as KickError where e.file == nil {
            throw KickError("tensor \(role.ggufName): \(e.message)", file: path)
        }
    }

    public func matrix(_ role: TensorRole) throws -> Matrix {
        guard has(role) else { throw KickError("the \(role) (\(role.ggufName)) is missing", file: path) }
        return try checkpoint.matrix(role.ggufName)
    }
}

/// The blob form of a model's tokenizer, for a checkpoint to carry.
public enum TokenizerBlob {
    /// A GGUF file holding only a source GGUF's `tokenizer.*` keys.
    public static func fromGGUF(_ r: GGUFReader) throws -> [UInt8] {
        var g = GGUFWriter()
        for key in r.metadata.keys.sorted() where key.hasPrefix("tokenizer.") {
            let v = r.metadata[key]!
            switch v {
            case .uint(let x) where x <= UInt64(UInt32.max): g.metadata.append((key, .u32(UInt32(x))))
            case .int(let x) where x >= Int64(Int32.min) && x <= Int64(Int32.max): g.metadata.append((key, .i32(Int32(x))))
            case .float(let x): g.metadata.append((key, .f32(Float(x))))
            case .bool(let x): g.metadata.append((key, .bool(x)))
            case .string(let s): g.metadata.append((key, .string(s)))
            case .strings(let a): g.metadata.append((key, .strings(a)))
            case .array, .numbers:
                let a = v.elements!
                if a.allSatisfy({ $0.int != nil }) && key != "tokenizer.ggml.scores" {
                    g.metadata.append((key, .i32s(a.map { Int32(truncatingIfNeeded: $0.int!) })))
                } else {
                    g.metadata.append((key, .f32s(a.map { Float($0.double ?? 0) })))
                }
            default: throw KickError("tokenizer key \(key) has a value kick cannot carry", file: r.path)
            }
        }
        return [UInt8](g.encode())
    }
}
