import Foundation

/// NumPy `.npy` files (format 1.0–3.0): float32 and float64 arrays in C
/// order, read into float32. kick writes version 1.0 `<f4`.
public enum Npy {
    public struct Array: Sendable, Equatable {
        public var shape: [Int]
        public var data: [Float]

        public init(shape: [Int], data: [Float]) {
            self.shape = shape
            self.data = data
        }

        /// The array as a matrix. Only a 2-D array is one: a 1-D array is
        /// ambiguous (one row or one column), and an empty one has nothing
        /// to compress.
        public func matrix(file: String? = nil) throws -> Matrix {
            guard shape.count == 2 else { throw KickError("expected a 2-D array (rows × columns), found shape \(shape)", file: file) }
            guard shape[0] > 0, shape[1] > 0 else { throw KickError("the array is empty (shape \(shape))", file: file) }
            return Matrix(rows: shape[0], cols: shape[1], data: data)
        }
    }

    public static func read(path: String) throws -> Array {
        guard let bytes = try RegularFile.contents(atPath: path) else {
            throw KickError("cannot read file (missing or unreadable)", file: path)
        }
        return try parse(bytes, file: path)
    }

    public static func parse(_ bytes: Data, file: String? = nil) throws -> Array {
        let b = [UInt8](bytes)
        let magic: [UInt8] = [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59]  // \x93NUMPY
        guard b.count >= 10, Swift.Array(b[0..<6]) == magic else {
            throw KickError("not a .npy file (bad magic)", file: file)
        }
        let major = b[6]
        let headerLen: Int
        let headerStart: Int
        switch major {
        case 1:
            headerLen = Int(b[8]) | Int(b[9]) << 8
            headerStart = 10
        case 2, 3:
            guard b.count >= 12 else { throw KickError("truncated .npy header", file: file) }
            headerLen = Int(b[8]) | Int(b[9]) << 8 | Int(b[10]) << 16 | Int(b[11]) << 24
            headerStart = 12
        default:
            throw KickError("unsupported .npy version \(major)", file: file)
        }
        guard headerStart + headerLen <= b.count else {
            throw KickError("truncated .npy header (needs \(headerLen) bytes)", file: file)
        }
        guard let header = String(bytes: b[headerStart..<headerStart + headerLen], encoding: .utf8) else {
            throw KickError(".npy header is not text", file: file)
        }
        let descr = try field("descr", in: header, file: file)
        let fortran = try field("fortran_order", in: header, file: file)
        let shapeText = try field("shape", in: header, file: file)
        guard fortran.hasPrefix("False") else {
            throw KickError("Fortran-order arrays are not supported", file: file)
        }
        let dims = shapeText.trimmingCharacters(in: CharacterSet(charactersIn: "() "))
            .split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        var shape: [Int] = []
        for d in dims {
            guard let v = Int(d), v >= 0, v < 1 << 40 else {
                throw KickError("bad dimension '\(d)' in .npy shape", file: file)
            }
            shape.append(v)
        }
        let count = try checkedElementCount(shape, of: "the .npy array", file: file)
        let elem: Int
        let descrClean = descr.trimmingCharacters(in: CharacterSet(charactersIn: "'\" "))
        switch descrClean {
        case "<f4", "=f4", "f4": elem = 4
        case "<f8", "=f8", "f8": elem = 8
        default: throw KickError("unsupported .npy dtype \(descrClean) (float32/float64 little-endian only)", file: file)
        }
        let start = headerStart + headerLen
        guard b.count - start == count * elem else {
            let what = b.count - start < count * elem ? "truncated .npy data" : ".npy data longer than its shape"
            throw KickError("\(what): shape \(shape) needs \(count * elem) bytes, file has \(b.count - start)", file: file)
        }
        var out = [Float](repeating: 0, count: count)
        b.withUnsafeBytes { raw in
            let base = raw.baseAddress! + start
            if elem == 4 {
                for i in 0..<count { out[i] = Float(bitPattern: UInt32(littleEndian: base.loadUnaligned(fromByteOffset: i * 4, as: UInt32.self))) }
            } else {
                for i in 0..<count {
                    out[i] = Float(Double(bitPattern: UInt64(littleEndian: base.loadUnaligned(fromByteOffset: i * 8, as: UInt64.self))))
                }
            }
        }
        return Array(shape: shape, data: out)
    }

    private static func field(_ name: String, in header: String, file: String?) throws -> String {
        guard let r = header.range(of: "'\(name)'") ?? header.range(of: "\"\(name)\"") else {
            throw KickError(".npy header lacks '\(name)'", file: file)
        }
        var rest = header[r.upperBound...].drop { $0 == " " || $0 == ":" }
        if rest.first == "(" {
            guard let close = rest.firstIndex(of: ")") else { throw KickError(".npy shape is not closed", file: file) }
            return String(rest[...close])
        }
        if let end = rest.firstIndex(where: { $0 == "," || $0 == "}" }) { rest = rest[..<end] }
        return String(rest)
    }

    /// Encodes a float32 array as .npy version 1.0.
    public static func encode(_ a: Array) -> Data {
        let shapeText = a.shape.count == 1 ? "(\(a.shape[0]),)" : "(" + a.shape.map(String.init).joined(separator: ", ") + ")"
        var header = "{'descr': '<f4', 'fortran_order': False, 'shape': \(shapeText), }"
        let total = 10 + header.utf8.count + 1
        header += String(repeating: " ", count: (64 - total % 64) % 64) + "\n"
        var out = Data([0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59, 1, 0])
        let n = UInt16(header.utf8.count)
        out.append(UInt8(n & 0xFF)); out.append(UInt8(n >> 8))
        out.append(header.data(using: .utf8)!)
        a.data.withUnsafeBufferPointer { p in
            out.append(UnsafeBufferPointer(start: UnsafeRawPointer(p.baseAddress!).assumingMemoryBound(to: UInt8.self), count: p.count * 4))
        }
        return out
    }

    public static func write(_ a: Array, to path: String) throws {
        try AtomicFile.write(encode(a), to: path)
    }
}
