import Foundation

/// A GGUF metadata value.
public enum GGUFValue: Sendable, Equatable {
    case uint(UInt64)
    case int(Int64)
    case float(Double)
    case bool(Bool)
    case string(String)
    case array([GGUFValue])
    case strings([String])  // arrays of strings are common (vocabularies) and kept flat
    /// A numeric array kept as its file bytes (element type, little-endian
    /// raw data), decoded on access: an array as long as the file then
    /// costs the file's size in memory, not 25 bytes per element.
    case numbers(type: UInt32, raw: [UInt8])

    /// Bytes per element of GGUF's scalar types (nil: not a scalar type).
    static func scalarSize(_ type: UInt32) -> Int? {
        switch type {
        case 0, 1, 7: return 1
        case 2, 3: return 2
        case 4, 5, 6: return 4
        case 10, 11, 12: return 8
        default: return nil
        }
    }

    /// The elements of an array value, decoded.
    public var elements: [GGUFValue]? {
        switch self {
        case .array(let a): return a
        case .numbers(let type, let raw):
            let size = Self.scalarSize(type)!
            return raw.withUnsafeBytes { b in
                (0..<raw.count / size).map { i in
                    var c = ByteCursor(UnsafeRawBufferPointer(rebasing: b[i * size..<(i + 1) * size]), file: "")
                    return (try? GGUFReader.readValue(&c, type: type, key: "", depth: 0)) ?? .uint(0)
                }
            }
        default: return nil
        }
    }

    public var int: Int? {
        switch self {
        case .uint(let v): return v <= UInt64(Int.max) ? Int(v) : nil
        case .int(let v): return Int(v)
        default: return nil
        }
    }
    public var double: Double? {
        switch self {
        case .float(let v): return v
        case .uint(let v): return Double(v)
        case .int(let v): return Double(v)
        default: return nil
        }
    }
    public var string: String? { if case .string(let s) = self { return s } else { return nil } }
    public var bool: Bool? { if case .bool(let b) = self { return b } else { return nil } }
    public var strings: [String]? { if case .strings(let s) = self { return s } else { return nil } }
    public var doubles: [Double]? { elements?.compactMap(\.double) }
    public var ints: [Int]? { elements?.compactMap(\.int) }
}

public struct GGUFTensorInfo: Sendable {
    public let name: String
    /// ggml order: the fastest-varying dimension first.
    public let dims: [Int]
    public let type: GGMLType
    /// Absolute offset of the tensor's bytes in the file.
    public let offset: Int
    public var elementCount: Int { dims.reduce(1, *) }
    public var byteCount: Int { type.byteCount(elements: elementCount) }
    /// (rows, cols) of the row-major matrix: cols = dims[0].
    public var rows: Int { dims.dropFirst().reduce(1, *) }
    public var cols: Int { dims.first ?? 1 }
}

/// Reads GGUF v2/v3 files through a memory map. Knows the file format and
/// nothing of models; `LlamaLoader` maps tensor names to roles.
public final class GGUFReader: @unchecked Sendable {
    public let file: MappedFile
    public let version: UInt32
    public let metadata: [String: GGUFValue]
    public let tensors: [String: GGUFTensorInfo]
    public let tensorOrder: [String]
    public let alignment: Int
    public var path: String { file.path }

    public convenience init(path: String) throws {
        try self.init(file: MappedFile(path: path))
    }

    public init(file: MappedFile) throws {
        self.file = file
        let path = file.path
        var c = ByteCursor(file.bytes, file: path)
        let magic = try c.read(UInt32.self, "magic")
        guard magic == 0x4655_4747 else { throw KickError("not a GGUF file (bad magic)", file: path) }
        version = try c.read(UInt32.self, "version")
        guard version == 2 || version == 3 else {
            throw KickError("unsupported GGUF version \(version) (2 and 3 are read)", file: path)
        }
        let tensorCount = try c.read(UInt64.self, "tensor count")
        let kvCount = try c.read(UInt64.self, "metadata count")
        // Every entry takes at least a few bytes: counts beyond the file size are corrupt.
        guard tensorCount < UInt64(file.size / 8 + 1), kvCount < UInt64(file.size / 8 + 1) else {
            throw KickError("absurd GGUF counts (\(tensorCount) tensors, \(kvCount) metadata keys)", file: path)
        }
        var meta: [String: GGUFValue] = [:]
        for _ in 0..<kvCount {
            let key = try Self.readString(&c, "metadata key")
            let type = try c.read(UInt32.self, "type of \(key)")
            meta[key] = try Self.readValue(&c, type: type, key: key, depth: 0)
        }
        metadata = meta
        let align = meta["general.alignment"]?.int ?? 32
        guard align > 0, align & (align - 1) == 0 else {
            throw KickError("general.alignment \(align) is not a power of two", file: path)
        }
        alignment = align
        var infos: [(String, [Int], UInt32, UInt64)] = []
        for i in 0..<tensorCount {
            let name = try Self.readString(&c, "name of tensor \(i)")
            let nd = try c.read(UInt32.self, "dimension count of \(name)")
            guard nd >= 1, nd <= 4 else { throw KickError("tensor \(name) has \(nd) dimensions", file: path) }
            var dims: [Int] = []
            for _ in 0..<nd {
                let d = try c.read(UInt64.self, "dimensions of \(name)")
                guard d > 0, d < 1 << 36 else { throw KickError("tensor \(name) has absurd dimension \(d)", file: path) }
                dims.append(Int(d))
            }
            let type = try c.read(UInt32.self, "type of \(name)")
            let off = try c.read(UInt64.self, "offset of \(name)")
            infos.append((name, dims, type, off))
        }
        let dataStart = (c.offset + align - 1) / align * align
        var table: [String: GGUFTensorInfo] = [:]
        var order: [String] = []
        for (name, dims, typeID, off) in infos {
            guard let type = GGMLType.byID(typeID) else {
                throw KickError("tensor \(name) has type \(GGMLType.name(of: typeID)), which kick cannot decode (F32, F16, BF16, Q4_0, Q4_1, Q8_0 are supported)", file: path)
            }
            let n = try checkedElementCount(dims, of: "tensor \(name)", file: path)
            guard n % type.blockSize == 0, dims[0] % type.blockSize == 0 else {
                throw KickError("tensor \(name) row length \(dims[0]) is not a multiple of the \(type.name) block size \(type.blockSize)", file: path)
            }
            guard off < UInt64(file.size) else {
                throw KickError("tensor \(name) offset \(off) lies outside the file", file: path)
            }
            let info = GGUFTensorInfo(name: name, dims: dims, type: type, offset: dataStart + Int(off))
            _ = try file.slice(offset: info.offset, length: info.byteCount, what: "tensor \(name)")
            guard table[name] == nil else { throw KickError("tensor \(name) appears twice", file: path) }
            table[name] = info
            order.append(name)
        }
        tensors = table
        tensorOrder = order
    }

    static func readString(_ c: inout ByteCursor, _ what: @autoclosure () -> String) throws -> String {
        let n = try c.read(UInt64.self, what())
        guard n < UInt64(c.bytes.count) else {
            throw KickError("\(what()) has absurd length \(n)", file: c.file)
        }
        let raw = try c.readBytes(Int(n), what())
        return String(decoding: raw, as: UTF8.self)
    }

    static func readValue(_ c: inout ByteCursor, type: UInt32, key: String, depth: Int) throws -> GGUFValue {
        switch type {
        case 0: return .uint(UInt64(try c.read(UInt8.self, key)))
        case 1: return .int(Int64(try c.read(Int8.self, key)))
        case 2: return .uint(UInt64(try c.read(UInt16.self, key)))
        case 3: return .int(Int64(try c.read(Int16.self, key)))
        case 4: return .uint(UInt64(try c.read(UInt32.self, key)))
        case 5: return .int(Int64(try c.read(Int32.self, key)))
        case 6: return .float(Double(Float(bitPattern: try c.read(UInt32.self, key))))
        case 7: return .bool(try c.read(UInt8.self, key) != 0)
        case 8: return .string(try readString(&c, key))
        case 10: return .uint(try c.read(UInt64.self, key))
        case 11: return .int(try c.read(Int64.self, key))
        case 12: return .float(Double(bitPattern: try c.read(UInt64.self, key)))
        case 9:
            guard depth < 4 else { throw KickError("metadata \(key) nests arrays too deeply", file: c.file) }
            let elemType = try c.read(UInt32.self, "element type of \(key)")
            let count = try c.read(UInt64.self, "length of \(key)")
            guard count <= UInt64(c.bytes.count - c.offset) else {
                throw KickError("metadata array \(key) has absurd length \(count)", file: c.file)
            }
            if let size = GGUFValue.scalarSize(elemType) {
                let (bytes, o) = Int(count).multipliedReportingOverflow(by: size)
                guard !o else { throw KickError("metadata array \(key) has absurd length \(count)", file: c.file) }
                return .numbers(type: elemType, raw: Array(try c.readBytes(bytes, "array \(key)")))
            }
            if elemType == 8 {
                // each string takes at least its 8-byte length: a larger count is corrupt
                guard count <= UInt64((c.bytes.count - c.offset) / 8) else {
                    throw KickError("metadata array \(key) has absurd length \(count)", file: c.file)
                }
                var out: [String] = []
                out.reserveCapacity(Int(count))
                for _ in 0..<count { out.append(try readString(&c, key)) }
                return .strings(out)
            }
            // nested arrays: each takes at least its 12-byte type and length
            guard count <= UInt64((c.bytes.count - c.offset) / 12) else {
                throw KickError("metadata array \(key) has absurd length \(count)", file: c.file)
            }
            var out: [GGUFValue] = []
            out.reserveCapacity(Int(count))
            for _ in 0..<count { out.append(try readValue(&c, type: elemType, key: key, depth: depth + 1)) }
            return .array(out)
        default:
            throw KickError("metadata \(key) has unknown value type \(type)", file: c.file)
        }
    }

    public func info(_ name: String) throws -> GGUFTensorInfo {
        guard let t = tensors[name] else { throw KickError("tensor \(name) is missing", file: path) }
        return t
    }

    /// The tensor's raw (encoded) bytes, straight from the map.
    public func rawBytes(_ name: String) throws -> UnsafeRawBufferPointer {
        let t = try info(name)
        return try file.slice(offset: t.offset, length: t.byteCount, what: "tensor \(name)")
    }

    /// Dequantizes a whole tensor to float32 (row-major, cols = dims[0]).
    public func floats(_ name: String) throws -> [Float] {
        let t = try info(name)
        let raw = try rawBytes(name)
        var out = [Float](repeating: 0, count: t.elementCount)
        out.withUnsafeMutableBufferPointer { dst in
            t.type.dequantize(raw.baseAddress!, t.elementCount, dst.baseAddress!)
        }
        file.release(raw)
        return out
    }

    public func matrix(_ name: String) throws -> Matrix {
        let t = try info(name)
        return Matrix(rows: t.rows, cols: t.cols, data: try floats(name))
    }
}

/// Writes GGUF v3 files: used by tests to make tiny models and by tools that
/// export. Tensors are written F32, F16 or pre-encoded bytes.
public struct GGUFWriter {
    public enum Value {
        case u32(UInt32), i32(Int32), f32(Float), bool(Bool), string(String)
        case strings([String]), f32s([Float]), i32s([Int32])
    }
    public struct Tensor {
        public var name: String
        public var dims: [Int]  // ggml order, fastest first
        public var typeID: UInt32
        public var bytes: [UInt8]
        public init(name: String, dims: [Int], typeID: UInt32, bytes: [UInt8]) {
            self.name = name; self.dims = dims; self.typeID = typeID; self.bytes = bytes
        }
        /// A float32 matrix (rows × cols) stored as F32 or F16.
        public init(name: String, matrix m: Matrix, f16: Bool = false) {
            self.name = name
            self.dims = m.rows == 1 ? [m.cols] : [m.cols, m.rows]
            self.typeID = f16 ? 1 : 0
            var b: [UInt8] = []
            b.reserveCapacity(m.data.count * (f16 ? 2 : 4))
            for v in m.data {
                if f16 { withUnsafeBytes(of: floatToHalf(v).littleEndian) { b.append(contentsOf: $0) } }
                else { withUnsafeBytes(of: v.bitPattern.littleEndian) { b.append(contentsOf: $0) } }
            }
            self.bytes = b
        }
    }

    public var metadata: [(String, Value)] = []
    public var tensors: [Tensor] = []
    public var alignment = 32

    public init() {}

    public func encode() -> Data {
        var out = Data()
        func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) } }
        func u64(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) } }
        func str(_ s: String) { u64(UInt64(s.utf8.count)); out.append(contentsOf: Array(s.utf8)) }
        u32(0x4655_4747); u32(3); u64(UInt64(tensors.count)); u64(UInt64(metadata.count))
        for (k, v) in metadata {
            str(k)
            switch v {
            case .u32(let x): u32(4); u32(x)
            case .i32(let x): u32(5); u32(UInt32(bitPattern: x))
            case .f32(let x): u32(6); u32(x.bitPattern)
            case .bool(let x): u32(7); out.append(x ? 1 : 0)
            case .string(let s): u32(8); str(s)
            case .strings(let a): u32(9); u32(8); u64(UInt64(a.count)); a.forEach(str)
            case .f32s(let a): u32(9); u32(6); u64(UInt64(a.count)); a.forEach { u32($0.bitPattern) }
            case .i32s(let a): u32(9); u32(5); u64(UInt64(a.count)); a.forEach { u32(UInt32(bitPattern: $0)) }
            }
        }
        var offset = 0
        var offsets: [Int] = []
        for t in tensors {
            offsets.append(offset)
            offset += (t.bytes.count + alignment - 1) / alignment * alignment
        }
        for (t, off) in zip(tensors, offsets) {
            str(t.name); u32(UInt32(t.dims.count)); t.dims.forEach { u64(UInt64($0)) }
            u32(t.typeID); u64(UInt64(off))
        }
        while out.count % alignment != 0 { out.append(0) }
        for t in tensors {
            out.append(contentsOf: t.bytes)
            while out.count % alignment != 0 { out.append(0) }
        }
        return out
    }
}
