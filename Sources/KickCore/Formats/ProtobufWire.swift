import Foundation

/// The protobuf wire format, read field by field: enough to decode a
/// message whose schema the caller knows (SentencePiece's ModelProto)
/// without generated code. Every length is checked against the bytes left.
public struct ProtobufWire {
    public enum Value {
        case varint(UInt64)
        case fixed64(UInt64)
        case bytes(Data)
        case fixed32(UInt32)

        public var uint: UInt64? { if case .varint(let v) = self { v } else { nil } }
        public var bool: Bool? { uint.map { $0 != 0 } }
        public var int: Int? { uint.map { Int(truncatingIfNeeded: $0) } }
        public var float: Float? { if case .fixed32(let v) = self { Float(bitPattern: v) } else { nil } }
        public var data: Data? { if case .bytes(let d) = self { d } else { nil } }
        public var string: String? { data.flatMap { String(data: $0, encoding: .utf8) } }
    }

    let data: Data
    let file: String?

    public init(_ data: Data, file: String? = nil) {
        self.data = data
        self.file = file
    }

    /// Calls `body` with each field's number and value, in order.
    public func forEachField(_ body: (Int, Value) throws -> Void) throws {
        try data.withUnsafeBytes { (raw: UnsafeRawBufferPointer) in
            var i = 0
            let n = raw.count
            func varint() throws -> UInt64 {
                var v: UInt64 = 0, shift: UInt64 = 0
                while true {
                    guard i < n else { throw KickError("not a protobuf message: a varint runs past the end", file: file, code: .malformed) }
                    let b = raw[i]
                    i += 1
                    guard shift < 64 else { throw KickError("not a protobuf message: a varint longer than 10 bytes", file: file, code: .malformed) }
                    v |= UInt64(b & 0x7F) << shift
                    if b & 0x80 == 0 { return v }
                    shift += 7
                }
            }
            while i < n {
                let key = try varint()
                let field = Int(key >> 3)
                guard field > 0, field < 1 << 29 else { throw KickError("not a protobuf message: field number \(field)", file: file, code: .malformed) }
                switch key & 7 {
                case 0: try body(field, .varint(try varint()))
                case 1:
                    guard n - i >= 8 else { throw KickError("not a protobuf message: a 64-bit field runs past the end", file: file, code: .malformed) }
                    try body(field, .fixed64(raw.loadUnaligned(fromByteOffset: i, as: UInt64.self).littleEndian))
                    i += 8
                case 2:
                    let len = try varint()
                    guard len <= UInt64(n - i) else { throw KickError("not a protobuf message: a \(len)-byte field with \(n - i) bytes left", file: file, code: .malformed) }
                    try body(field, .bytes(data.subdata(in: data.startIndex + i..<data.startIndex + i + Int(len))))
                    i += Int(len)
                case 5:
                    guard n - i >= 4 else { throw KickError("not a protobuf message: a 32-bit field runs past the end", file: file, code: .malformed) }
                    try body(field, .fixed32(raw.loadUnaligned(fromByteOffset: i, as: UInt32.self).littleEndian))
                    i += 4
                default:
                    throw KickError("not a protobuf message: wire type \(key & 7) (groups are not supported)", file: file, code: .malformed)
                }
            }
        }
    }
}

/// The protobuf wire format written field by field (the inverse of
/// `ProtobufWire`): enough to write a SentencePiece ModelProto.
public struct ProtobufWriter {
    public private(set) var bytes: [UInt8] = []

    public init() {}

    mutating func varint(_ v: UInt64) {
        var v = v
        while v >= 0x80 { bytes.append(UInt8(v & 0x7F) | 0x80); v >>= 7 }
        bytes.append(UInt8(v))
    }

    public mutating func int(_ field: Int, _ v: Int) {
        varint(UInt64(field << 3))
        varint(UInt64(bitPattern: Int64(v)))
    }

    public mutating func bool(_ field: Int, _ v: Bool) { int(field, v ? 1 : 0) }

    public mutating func float(_ field: Int, _ v: Float) {
        varint(UInt64(field << 3 | 5))
        withUnsafeBytes(of: v.bitPattern.littleEndian) { bytes += $0 }
    }

    public mutating func bytes(_ field: Int, _ d: [UInt8]) {
        varint(UInt64(field << 3 | 2))
        varint(UInt64(d.count))
        bytes += d
    }

    public mutating func string(_ field: Int, _ s: String) { bytes(field, Array(s.utf8)) }
}
