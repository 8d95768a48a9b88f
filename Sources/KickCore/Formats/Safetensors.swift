import Foundation

public enum SafetensorsDType: String, Sendable {
    case f32 = "F32", f16 = "F16", bf16 = "BF16"
    var size: Int { self == .f32 ? 4 : 2 }
    /// Floats narrowed to this type, little-endian (exact for values that
    /// came from it).
    public func encode(_ values: [Float]) -> [UInt8] {
        guard !values.isEmpty else { return [] }
        return [UInt8](unsafeUninitializedCapacity: values.count * size) { b, n in
            let raw = UnsafeMutableRawPointer(b.baseAddress!)
            values.withUnsafeBufferPointer { v in
                switch self {
                case .f32: for i in v.indices { raw.storeBytes(of: v[i].bitPattern.littleEndian, toByteOffset: 4 * i, as: UInt32.self) }
                case .f16: for i in v.indices { raw.storeBytes(of: floatToHalf(v[i]).littleEndian, toByteOffset: 2 * i, as: UInt16.self) }
                case .bf16: for i in v.indices { raw.storeBytes(of: floatToBF16(v[i]).littleEndian, toByteOffset: 2 * i, as: UInt16.self) }
                }
            }
            n = values.count * size
        }
    }

    var ggml: GGMLType {
        switch self {
        case .f32: return .f32
        case .f16: return .f16
        case .bf16: return .bf16
        }
    }
}

public struct SafetensorsTensorInfo: Sendable {
    public let name: String
    public let dtype: SafetensorsDType
    public let shape: [Int]
    /// Absolute offset in the file.
    public let offset: Int
    public let length: Int
    public var elementCount: Int { shape.reduce(1, *) }
}

/// Reads one `.safetensors` file through a memory map. The header is checked
/// whole (offsets inside the file, sizes that match shape × dtype, no
/// overlaps) before any tensor data is touched.
public final class SafetensorsReader: @unchecked Sendable {
    public let file: MappedFile
    public let tensors: [String: SafetensorsTensorInfo]
    public let metadata: [String: String]
    public var path: String { file.path }

    public convenience init(path: String) throws {
        try self.init(file: MappedFile(path: path))
    }

    public init(file: MappedFile) throws {
        self.file = file
        let path = file.path
        var c = ByteCursor(file.bytes, file: path)
        let n = try c.read(UInt64.self, "header length")
        guard n >= 2, n <= UInt64(min(file.size - 8, 100_000_000)) else {
            throw KickError("safetensors header length \(n) is impossible for a file of \(file.size) bytes", file: path)
        }
        let headerBytes = try c.readBytes(Int(n), "header")
        let dataStart = 8 + Int(n)
        let json: Any
        do {
            json = try JSONSerialization.jsonObject(with: Data(headerBytes))
        } catch {
            throw KickError("safetensors header is not valid JSON", file: path)
        }
        guard let dict = json as? [String: Any] else { throw KickError("safetensors header is not a JSON object", file: path) }
        var table: [String: SafetensorsTensorInfo] = [:]
        var meta: [String: String] = [:]
        var ranges: [(Int, Int, String)] = []
        let dataSize = file.size - dataStart
        for (name, value) in dict {
            if name == "__metadata__" {
                if let m = value as? [String: Any] { for (k, v) in m { meta[k] = "\(v)" } }
                continue
            }
            guard let t = value as? [String: Any], let dt = t["dtype"] as? String,
                  let shape = t["shape"] as? [Int], let offs = t["data_offsets"] as? [Int], offs.count == 2 else {
                throw KickError("tensor \(name): header entry lacks dtype, shape or data_offsets", file: path)
            }
            guard let dtype = SafetensorsDType(rawValue: dt) else {
                throw KickError("tensor \(name) has dtype \(dt); kick reads F32, F16 and BF16", file: path)
            }
            let count = try checkedElementCount(shape, of: "tensor \(name)", file: path)
            let (b, e) = (offs[0], offs[1])
            guard b >= 0, e >= b, e <= dataSize else {
                throw KickError("tensor \(name) data_offsets [\(b), \(e)] lie outside the data (\(dataSize) bytes)", file: path)
            }
            guard e - b == count * dtype.size else {
                throw KickError("tensor \(name) has \(e - b) bytes but shape \(shape) × \(dt) needs \(count * dtype.size)", file: path)
            }
            table[name] = SafetensorsTensorInfo(name: name, dtype: dtype, shape: shape, offset: dataStart + b, length: e - b)
            ranges.append((b, e, name))
        }
        ranges.sort { $0.0 < $1.0 }
        for i in ranges.indices.dropFirst() where ranges[i].0 < ranges[i - 1].1 {
            throw KickError("tensors \(ranges[i - 1].2) and \(ranges[i].2) overlap", file: path)
        }
        tensors = table
        metadata = meta
    }

    public func floats(_ name: String) throws -> [Float] {
        guard let t = tensors[name] else { throw KickError("tensor \(name) is missing", file: path) }
        let raw = try file.slice(offset: t.offset, length: t.length, what: "tensor \(name)")
        var out = [Float](repeating: 0, count: t.elementCount)
        if t.elementCount > 0 {
            out.withUnsafeMutableBufferPointer { t.dtype.ggml.dequantize(raw.baseAddress!, t.elementCount, $0.baseAddress!) }
        }
        file.release(raw)
        return out
    }

    public func matrix(_ name: String) throws -> Matrix {
        guard let t = tensors[name] else { throw KickError("tensor \(name) is missing", file: path) }
        let rows = t.shape.count >= 2 ? t.shape.dropLast().reduce(1, *) : 1
        let cols = t.shape.last ?? 1
        return Matrix(rows: rows, cols: cols, data: try floats(name))
    }
}

/// Writes a `.safetensors` file from float32 matrices (stored F32, F16 or BF16).
public enum SafetensorsWriter {
    public static func encode(_ tensors: [(name: String, shape: [Int], data: [Float])], dtype: SafetensorsDType = .f32) -> Data {
        var header: [String: Any] = ["__metadata__": ["format": "pt"]]
        var body = Data()
        for t in tensors {
            let start = body.count
            body.append(contentsOf: dtype.encode(t.data))
            header[t.name] = ["dtype": dtype.rawValue, "shape": t.shape, "data_offsets": [start, body.count]]
        }
        var json = try! JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
        while json.count % 8 != 0 { json.append(0x20) }
        var out = Data()
        withUnsafeBytes(of: UInt64(json.count).littleEndian) { out.append(contentsOf: $0) }
        out.append(json)
        out.append(body)
        return out
    }
}
