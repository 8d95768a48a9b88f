import Foundation

/// One tensor of a PyTorch checkpoint: where its storage lies in the file
/// and how the tensor views it.
public struct TorchTensorInfo: Sendable {
    public let name: String
    public let dtype: TorchDType
    public let shape: [Int]
    public let strides: [Int]
    /// Element offset into the storage.
    public let storageOffset: Int
    /// The storage's bytes: absolute offset in the file, and length.
    public let storageStart: Int
    public let storageLength: Int
    public var elementCount: Int { shape.reduce(1, *) }

    /// Row-major strides for the shape: the tensor is one run of the storage.
    public var isContiguous: Bool {
        var expect = 1
        for (d, s) in zip(shape, strides).reversed() where d != 1 {
            if s != expect { return false }
            expect *= d
        }
        return true
    }
}

/// Reads a `torch.save` file in the zip format (torch ≥ 1.6): the pickle
/// `archive/data.pkl` is interpreted by `RestrictedPickle`, and each tensor
/// is read in place from its stored member `archive/data/<key>` through
/// the memory map. Every tensor's view is checked against its storage when
/// the file opens, before any data is read.
public final class PyTorchCheckpointReader: @unchecked Sendable {
    public let file: MappedFile
    public let tensors: [String: TorchTensorInfo]
    public var path: String { file.path }

    public convenience init(path: String) throws {
        try self.init(file: MappedFile(path: path))
    }

    public init(file: MappedFile) throws {
        self.file = file
        let path = file.path
        let head = file.size >= 4 ? [UInt8](file.bytes.prefix(4)) : []
        if head.first == 0x80 {
            throw KickError("a legacy PyTorch file (torch.save before 1.6, not a zip); re-save it with torch >= 1.6 or convert it to safetensors",
                            file: path, code: .malformed)
        }
        guard head == [0x50, 0x4B, 0x03, 0x04] else {
            throw KickError("not a PyTorch checkpoint: a zip file starts with PK\\3\\4", file: path, code: .malformed)
        }
        let archiveDir = try ZipDirectory(file: file)
        guard let pkl = archiveDir.members.values.first(where: { $0.name.hasSuffix("/data.pkl") && !$0.name.dropLast(9).contains("/") }) else {
            throw KickError("zip has no <archive>/data.pkl: not a torch.save file", file: path, code: .malformed)
        }
        let archive = String(pkl.name.dropLast("data.pkl".count))
        if let bo = archiveDir.members[archive + "byteorder"] {
            let order = String(decoding: try file.slice(offset: bo.offset, length: bo.size, what: "byteorder"), as: UTF8.self)
            guard order.trimmingCharacters(in: .whitespacesAndNewlines) == "little" else {
                throw KickError("byte order '\(order)'; kick reads little-endian checkpoints", file: path, code: .malformed)
            }
        }
        let entries = try RestrictedPickle.stateDict(try file.slice(offset: pkl.offset, length: pkl.size, what: "data.pkl"), file: path)
        var table: [String: TorchTensorInfo] = [:]
        for (name, ref) in entries {
            guard let m = archiveDir.members[archive + "data/" + ref.storage.key] else {
                throw KickError("tensor \(name): storage data/\(ref.storage.key) is not in the zip", file: path, code: .malformed)
            }
            let dt = ref.storage.dtype
            let count = try checkedElementCount(ref.shape, of: "tensor \(name)", file: path)
            // the last element the view reaches, which the storage must hold
            var reach = ref.offset
            guard ref.offset >= 0 else { throw KickError("tensor \(name) has a negative storage offset", file: path, code: .malformed) }
            if count > 0 {
                for (d, s) in Swift.zip(ref.shape, ref.strides) {
                    guard s >= 0 else { throw KickError("tensor \(name) has a negative stride", file: path, code: .malformed) }
                    let (p, o) = (d - 1).multipliedReportingOverflow(by: s)
                    let (r, o2) = reach.addingReportingOverflow(p)
                    guard !o, !o2 else { throw KickError("tensor \(name): strides \(ref.strides) overflow", file: path, code: .malformed) }
                    reach = r
                }
            }
            let storageElements = m.size / dt.size
            guard count == 0 || reach < storageElements else {
                throw KickError("tensor \(name) (shape \(ref.shape), strides \(ref.strides), offset \(ref.offset)) needs \(reach + 1) "
                                + "elements but its storage data/\(ref.storage.key) holds \(storageElements)", file: path, code: .malformed)
            }
            // a stride-0 (broadcast) view can reach past its storage's size
            // in elements without reaching past its bytes; no weight is one
            guard count <= storageElements else {
                throw KickError("tensor \(name) (shape \(ref.shape), strides \(ref.strides)) has \(count) elements but its storage data/\(ref.storage.key) "
                                + "holds \(storageElements): a broadcast view, not a weight", file: path, code: .malformed)
            }
            table[name] = TorchTensorInfo(name: name, dtype: dt, shape: ref.shape, strides: ref.strides, storageOffset: ref.offset,
                                          storageStart: m.offset, storageLength: m.size)
        }
        tensors = table
    }

    private func info(_ name: String) throws -> TorchTensorInfo {
        guard let t = tensors[name] else { throw KickError("tensor \(name) is missing", file: path) }
        guard t.dtype.dense != nil else {
            throw KickError("tensor \(name) is \(t.dtype.rawValue); kick reads f32, f16 and bf16 weights", file: path, code: .malformed)
        }
        return t
    }

    /// A contiguous tensor's bytes as stored (nil for a strided view).
    public func contiguousBytes(_ name: String) throws -> UnsafeRawBufferPointer? {
        let t = try info(name)
        guard t.isContiguous else { return nil }
        return try file.slice(offset: t.storageStart + t.storageOffset * t.dtype.size, length: t.elementCount * t.dtype.size,
                              what: "tensor \(name)")
    }

    /// The tensor's elements in row-major order, widened to float32; a view
    /// is gathered through its strides.
    public func floats(_ name: String) throws -> [Float] {
        let t = try info(name)
        let n = t.elementCount
        let type = t.dtype.dense!.ggml
        var out = [Float](repeating: 0, count: n)
        guard n > 0 else { return out }
        if let raw = try contiguousBytes(name) {
            out.withUnsafeMutableBufferPointer { type.dequantize(raw.baseAddress!, n, $0.baseAddress!) }
            file.release(raw)
            return out
        }
        let storage = try file.slice(offset: t.storageStart, length: t.storageLength, what: "storage of \(name)")
        let size = t.dtype.size
        var index = [Int](repeating: 0, count: t.shape.count)
        for i in 0..<n {
            var e = t.storageOffset
            for d in 0..<index.count { e += index[d] * t.strides[d] }
            type.dequantize(storage.baseAddress! + e * size, 1, &out[i])
            // odometer over the shape, last dimension fastest
            var d = index.count - 1
            while d >= 0 {
                index[d] += 1
                if index[d] < t.shape[d] { break }
                index[d] = 0
                d -= 1
            }
        }
        return out
    }

    public func matrix(_ name: String) throws -> Matrix {
        let t = try info(name)
        let rows = t.shape.count >= 2 ? t.shape.dropLast().reduce(1, *) : 1
        return Matrix(rows: rows, cols: t.shape.last ?? 1, data: try floats(name))
    }
}
