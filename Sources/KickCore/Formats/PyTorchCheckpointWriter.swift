import Foundation

/// Writes `torch.save`'s zip format: `<archive>/data.pkl` (a protocol-2
/// pickle of an OrderedDict of `_rebuild_tensor_v2` calls), `version`, and
/// one stored member per tensor storage, 64-byte aligned as torch aligns
/// them. Members are streamed one at a time, so a multi-GB shard never sits
/// in memory; zip64 records are written once an offset or size passes
/// 4 GiB. Used by `kick-infer scale-check` to make a 7B-shaped folder, and
/// by tests (with `pickle` given raw, to make hostile files).
public struct PyTorchCheckpointWriter {
    public struct Tensor {
        public var name: String
        public var dtype: TorchDType
        public var shape: [Int]
        public init(name: String, dtype: TorchDType, shape: [Int]) {
            self.name = name
            self.dtype = dtype
            self.shape = shape
        }
        var byteCount: Int { shape.reduce(1, *) * dtype.size }
    }

    /// Writes `tensors` (contiguous, one storage each) to `path`; `bytes(i)`
    /// gives tensor i's little-endian data when its turn comes.
    public static func write(to path: String, tensors: [Tensor], bytes: (Int) throws -> [UInt8]) throws {
        let pickle = statePickle(tensors)
        try writeZip(to: path, archive: ((path as NSString).lastPathComponent as NSString).deletingPathExtension, pickle: pickle,
                     storages: tensors.indices.map { String($0) }, bytes: bytes)
    }

    /// The zip around any pickle and storages (tests write hostile pickles).
    /// - forceZip64: zip64 records for every member, as past 4 GiB (tests
    ///   the reader's zip64 path on small files).
    public static func writeZip(to path: String, archive: String, pickle: [UInt8], storages: [String], forceZip64: Bool = false,
                                bytes: (Int) throws -> [UInt8]) throws {
        try AtomicFile.write(to: path) { fh in
            var zip = ZipStreamWriter(handle: fh)
            zip.forceZip64 = forceZip64
            try zip.add("\(archive)/data.pkl", pickle)
            for (i, key) in storages.enumerated() { try zip.add("\(archive)/data/\(key)", try bytes(i)) }
            try zip.add("\(archive)/version", Array("3\n".utf8))
            try zip.finish()
        }
    }

    /// One state-dict entry as the pickle names it: a view (offset, shape,
    /// strides) of storage `key` holding `numel` elements.
    struct Entry {
        var name: String, key: String, dtype: TorchDType, numel: Int, offset: Int, shape: [Int], strides: [Int]
    }

    static func statePickle(_ tensors: [Tensor]) -> [UInt8] {
        statePickle(tensors.enumerated().map { i, t in
            var strides = [Int](repeating: 1, count: t.shape.count)
            for d in stride(from: t.shape.count - 2, through: 0, by: -1) { strides[d] = strides[d + 1] * t.shape[d + 1] }
            return Entry(name: t.name, key: String(i), dtype: t.dtype, numel: t.shape.reduce(1, *), offset: 0, shape: t.shape, strides: strides)
        })
    }

    /// `OrderedDict([(name, _rebuild_tensor_v2(storage, offset, size, stride, False, OrderedDict())), …])`.
    static func statePickle(_ entries: [Entry]) -> [UInt8] {
        var p: [UInt8] = [0x80, 2]
        func global(_ m: String, _ n: String) { p.append(0x63); p += Array("\(m)\n\(n)\n".utf8) }
        func string(_ s: String) {
            let u = Array(s.utf8)
            p.append(0x58)
            withUnsafeBytes(of: UInt32(u.count).littleEndian) { p += $0 }
            p += u
        }
        func int(_ v: Int) {
            p.append(0x8A)  // LONG1, 8 bytes: any size a tensor has
            p.append(8)
            withUnsafeBytes(of: Int64(v).littleEndian) { p += $0 }
        }
        func tuple(_ items: [Int]) { p.append(0x28); items.forEach(int); p.append(0x74) }
        global("collections", "OrderedDict"); p += [0x29, 0x52]     // OrderedDict()
        p.append(0x28)                                               // MARK
        for t in entries {
            string(t.name)
            global("torch._utils", "_rebuild_tensor_v2")
            p.append(0x28)
            p.append(0x28); string("storage"); global("torch", t.dtype.storageName); string(t.key); string("cpu")
            int(t.numel); p.append(0x74); p.append(0x51)  // (…) BINPERSID
            int(t.offset)
            tuple(t.shape)
            tuple(t.strides)
            p.append(0x89)                                           // False
            global("collections", "OrderedDict"); p += [0x29, 0x52]
            p.append(0x74); p.append(0x52)                           // TUPLE, REDUCE
        }
        p.append(0x75)                                               // SETITEMS
        p.append(0x2E)                                               // STOP
        return p
    }
}

/// A zip of stored members written front to back (local header, data; the
/// central directory at the end), with zip64 fields where needed.
struct ZipStreamWriter {
    let handle: FileHandle
    var offset = 0
    var forceZip64 = false
    var entries: [(name: [UInt8], crc: UInt32, size: Int, offset: Int)] = []

    init(handle: FileHandle) { self.handle = handle }

    mutating func put(_ b: [UInt8]) throws {
        try handle.write(contentsOf: b)
        offset += b.count
    }

    mutating func add(_ name: String, _ data: [UInt8]) throws {
        let n = Array(name.utf8)
        let crc = CRC32.checksum(data)
        let big = data.count >= 0xFFFF_FFFF || forceZip64
        var extra: [UInt8] = []
        if big { extra = le16(1) + le16(16) + le64(data.count) + le64(data.count) }
        // pad the data to 64 bytes with an extra field, as torch does
        let unpadded = offset + 30 + n.count + extra.count + 4
        let pad = (64 - unpadded % 64) % 64
        extra += le16(0x4B46) + le16(pad) + [UInt8](repeating: 0x5A, count: pad)
        let size32 = big ? 0xFFFF_FFFF : data.count
        entries.append((n, crc, data.count, offset))
        try put(le32(0x0403_4B50) + le16(big ? 45 : 20) + le16(0) + le16(0) + le16(0) + le16(0x21) + le32(Int(crc))
                + le32(size32) + le32(size32) + le16(n.count) + le16(extra.count) + n + extra)
        try put(data)
    }

    mutating func finish() throws {
        let cdStart = offset
        for e in entries {
            var fields: [UInt8] = []
            let bigSize = e.size >= 0xFFFF_FFFF || forceZip64, bigOffset = e.offset >= 0xFFFF_FFFF || forceZip64
            if bigSize { fields += le64(e.size) + le64(e.size) }
            if bigOffset { fields += le64(e.offset) }
            let extra = fields.isEmpty ? [] : le16(1) + le16(fields.count) + fields
            let size32 = bigSize ? 0xFFFF_FFFF : e.size
            try put(le32(0x0201_4B50) + le16(45) + le16(fields.isEmpty ? 20 : 45) + le16(0) + le16(0) + le16(0) + le16(0x21)
                    + le32(Int(e.crc)) + le32(size32) + le32(size32) + le16(e.name.count) + le16(extra.count) + le16(0) + le16(0)
                    + le16(0) + le32(0) + le32(bigOffset ? 0xFFFF_FFFF : e.offset) + e.name + extra)
        }
        let cdSize = offset - cdStart
        let zip64 = cdStart >= 0xFFFF_FFFF || entries.count >= 0xFFFF || forceZip64
        if zip64 {
            let rec = offset
            try put(le32(0x0606_4B50) + le64(44) + le16(45) + le16(45) + le32(0) + le32(0) + le64(entries.count) + le64(entries.count)
                    + le64(cdSize) + le64(cdStart))
            try put(le32(0x0706_4B50) + le32(0) + le64(rec) + le32(1))
        }
        try put(le32(0x0605_4B50) + le16(0) + le16(0) + le16(zip64 ? 0xFFFF : entries.count) + le16(zip64 ? 0xFFFF : entries.count)
                + le32(zip64 ? 0xFFFF_FFFF : cdSize) + le32(zip64 ? 0xFFFF_FFFF : cdStart) + le16(0))
    }

    private func le16(_ v: Int) -> [UInt8] { withUnsafeBytes(of: UInt16(truncatingIfNeeded: v).littleEndian) { Array($0) } }
    private func le32(_ v: Int) -> [UInt8] { withUnsafeBytes(of: UInt32(truncatingIfNeeded: v).littleEndian) { Array($0) } }
    private func le64(_ v: Int) -> [UInt8] { withUnsafeBytes(of: UInt64(v).littleEndian) { Array($0) } }
}

/// CRC-32 (IEEE, zip's), slicing by eight.
enum CRC32 {
    /// Eight 256-entry tables, one after another (table k at 256·k).
    static let table: [UInt32] = {
        var t = [UInt32](repeating: 0, count: 8 * 256)
        for i in 0..<256 {
            var c = UInt32(i)
            for _ in 0..<8 { c = c & 1 != 0 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
            t[i] = c
        }
        for k in 1..<8 { for i in 0..<256 { t[256 * k + i] = (t[256 * (k - 1) + i] >> 8) ^ t[Int(t[256 * (k - 1) + i] & 0xFF)] } }
        return t
    }()

    static func checksum(_ data: [UInt8]) -> UInt32 {
        var c: UInt32 = 0xFFFF_FFFF
        table.withUnsafeBufferPointer { t in
            data.withUnsafeBytes { b in
                var i = 0
                let n = b.count
                while i + 8 <= n {
                    let lo = b.loadUnaligned(fromByteOffset: i, as: UInt32.self).littleEndian ^ c
                    let hi = b.loadUnaligned(fromByteOffset: i + 4, as: UInt32.self).littleEndian
                    c = t[7 * 256 + Int(lo & 0xFF)] ^ t[6 * 256 + Int((lo >> 8) & 0xFF)] ^ t[5 * 256 + Int((lo >> 16) & 0xFF)]
                        ^ t[4 * 256 + Int(lo >> 24)] ^ t[3 * 256 + Int(hi & 0xFF)] ^ t[2 * 256 + Int((hi >> 8) & 0xFF)]
                        ^ t[256 + Int((hi >> 16) & 0xFF)] ^ t[Int(hi >> 24)]
                    i += 8
                }
                while i < n {
                    c = t[Int((c ^ UInt32(b[i])) & 0xFF)] ^ (c >> 8)
                    i += 1
                }
            }
        }
        return ~c
    }
}
