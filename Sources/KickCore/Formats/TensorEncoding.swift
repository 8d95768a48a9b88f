/// One table of tensor element encodings with their block traits, as ggml
/// keeps: adding an encoding adds a row, not a case to every switch.
public struct GGMLType: Sendable, Hashable, CustomStringConvertible {
    public let id: UInt32
    public let name: String
    /// Elements per block and bytes per block.
    public let blockSize: Int
    public let bytesPerBlock: Int
    /// Decodes `count` elements (a multiple of blockSize) from `src` into `dst`.
    public let dequantize: @Sendable (UnsafeRawPointer, Int, UnsafeMutablePointer<Float>) -> Void

    public static func == (a: GGMLType, b: GGMLType) -> Bool { a.id == b.id }
    public func hash(into h: inout Hasher) { h.combine(id) }
    public var description: String { name }

    public func byteCount(elements: Int) -> Int { elements / blockSize * bytesPerBlock }

    public static let f32 = GGMLType(id: 0, name: "F32", blockSize: 1, bytesPerBlock: 4) { src, n, dst in
        for i in 0..<n { dst[i] = Float(bitPattern: UInt32(littleEndian: src.loadUnaligned(fromByteOffset: i * 4, as: UInt32.self))) }
    }
    public static let f16 = GGMLType(id: 1, name: "F16", blockSize: 1, bytesPerBlock: 2) { src, n, dst in
        for i in 0..<n { dst[i] = halfToFloat(UInt16(littleEndian: src.loadUnaligned(fromByteOffset: i * 2, as: UInt16.self))) }
    }
    public static let bf16 = GGMLType(id: 30, name: "BF16", blockSize: 1, bytesPerBlock: 2) { src, n, dst in
        for i in 0..<n { dst[i] = bf16ToFloat(UInt16(littleEndian: src.loadUnaligned(fromByteOffset: i * 2, as: UInt16.self))) }
    }
    /// Q4_0: f16 d, 16 bytes of nibbles; w = (nibble − 8)·d.
    public static let q4_0 = GGMLType(id: 2, name: "Q4_0", blockSize: 32, bytesPerBlock: 18) { src, n, dst in
        for b in 0..<n / 32 {
            let p = src + b * 18
            let d = halfToFloat(UInt16(littleEndian: p.loadUnaligned(as: UInt16.self)))
            let q = p + 2
            let o = dst + b * 32
            for j in 0..<16 {
                let byte = q.load(fromByteOffset: j, as: UInt8.self)
                o[j] = Float(Int(byte & 0xF) - 8) * d
                o[j + 16] = Float(Int(byte >> 4) - 8) * d
            }
        }
    }
    /// Q4_1: f16 d, f16 m, 16 bytes of nibbles; w = nibble·d + m.
    public static let q4_1 = GGMLType(id: 3, name: "Q4_1", blockSize: 32, bytesPerBlock: 20) { src, n, dst in
        for b in 0..<n / 32 {
            let p = src + b * 20
            let d = halfToFloat(UInt16(littleEndian: p.loadUnaligned(as: UInt16.self)))
            let m = halfToFloat(UInt16(littleEndian: p.loadUnaligned(fromByteOffset: 2, as: UInt16.self)))
            let q = p + 4
            let o = dst + b * 32
            for j in 0..<16 {
                let byte = q.load(fromByteOffset: j, as: UInt8.self)
                o[j] = Float(byte & 0xF) * d + m
                o[j + 16] = Float(byte >> 4) * d + m
            }
        }
    }
    /// Q8_0: f16 d, 32 × int8; w = q·d.
    public static let q8_0 = GGMLType(id: 8, name: "Q8_0", blockSize: 32, bytesPerBlock: 34) { src, n, dst in
        for b in 0..<n / 32 {
            let p = src + b * 34
            let d = halfToFloat(UInt16(littleEndian: p.loadUnaligned(as: UInt16.self)))
            let o = dst + b * 32
            for j in 0..<32 { o[j] = Float(p.load(fromByteOffset: 2 + j, as: Int8.self)) * d }
        }
    }

    public static let supported: [GGMLType] = [.f32, .f16, .bf16, .q4_0, .q4_1, .q8_0]

    /// ggml's names for the types kick cannot decode, for error messages.
    static let knownNames: [UInt32: String] = [
        6: "Q5_0", 7: "Q5_1", 9: "Q8_1", 10: "Q2_K", 11: "Q3_K", 12: "Q4_K", 13: "Q5_K", 14: "Q6_K",
        15: "Q8_K", 16: "IQ2_XXS", 17: "IQ2_XS", 18: "IQ3_XXS", 19: "IQ1_S", 20: "IQ4_NL", 21: "IQ3_S",
        22: "IQ2_S", 23: "IQ4_XS", 24: "I8", 25: "I16", 26: "I32", 27: "I64", 28: "F64", 29: "IQ1_M",
    ]

    public static func byID(_ id: UInt32) -> GGMLType? { supported.first { $0.id == id } }
    public static func name(of id: UInt32) -> String { byID(id)?.name ?? knownNames[id] ?? "type \(id)" }
}
