import Foundation

/// The members of a zip file whose data are stored uncompressed (what
/// `torch.save` writes), located through the central directory so each can
/// be read in place from the memory map. Zip64 records are honoured: a
/// 13B shard is past 4 GiB.
public struct ZipDirectory {
    public struct Member: Sendable {
        public let name: String
        /// Absolute offset of the member's data in the file.
        public let offset: Int
        public let size: Int
    }

    public let members: [String: Member]

    public init(file: MappedFile) throws {
        let path = file.path
        let bytes = file.bytes
        func u16(_ o: Int) -> Int { Int(UInt16(littleEndian: bytes.loadUnaligned(fromByteOffset: o, as: UInt16.self))) }
        func u32(_ o: Int) -> Int { Int(UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: o, as: UInt32.self))) }
        func u64(_ o: Int) throws -> Int {
            let v = UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: o, as: UInt64.self))
            guard v <= UInt64(Int.max) else { throw KickError("zip field at byte \(o) is out of range", file: path, code: .malformed) }
            return Int(v)
        }
        // The end-of-central-directory record is the last 22 bytes, or
        // earlier by a comment of at most 65,535 bytes.
        var eocd = -1
        var o = file.size - 22
        while o >= max(0, file.size - 22 - 65_535) {
            if u32(o) == 0x0605_4B50 { eocd = o; break }
            o -= 1
        }
        guard eocd >= 0 else {
            throw KickError("not a complete zip file: no end-of-central-directory record (truncated, or not a zip)", file: path, code: .malformed)
        }
        var count = u16(eocd + 10), cdSize = u32(eocd + 12), cdOffset = u32(eocd + 16)
        if count == 0xFFFF || cdSize == 0xFFFF_FFFF || cdOffset == 0xFFFF_FFFF {
            // zip64: a locator just before the record points at the zip64 record
            let loc = eocd - 20
            guard loc >= 0, u32(loc) == 0x0706_4B50 else {
                throw KickError("zip64 sizes without a zip64 locator", file: path, code: .malformed)
            }
            let rec = try u64(loc + 8)
            guard rec >= 0, rec <= file.size - 56, u32(rec) == 0x0606_4B50 else {
                throw KickError("zip64 end-of-central-directory record missing at byte \(rec)", file: path, code: .malformed)
            }
            count = try u64(rec + 32)
            cdSize = try u64(rec + 40)
            cdOffset = try u64(rec + 48)
        }
        guard cdOffset <= file.size, cdSize <= file.size - cdOffset, count <= cdSize / 46 else {
            throw KickError("zip central directory (\(count) members, \(cdSize) bytes at \(cdOffset)) lies outside the file of \(file.size) bytes",
                            file: path, code: .malformed)
        }
        var table: [String: Member] = [:]
        var p = cdOffset
        for i in 0..<count {
            guard p + 46 <= cdOffset + cdSize, u32(p) == 0x0201_4B50 else {
                throw KickError("zip central directory entry \(i) is malformed", file: path, code: .malformed)
            }
            let method = u16(p + 10)
            var csize = u32(p + 20), usize = u32(p + 24)
            let nameLen = u16(p + 28), extraLen = u16(p + 30), commentLen = u16(p + 32)
            var local = u32(p + 42)
            let end = p + 46 + nameLen + extraLen + commentLen
            guard end <= cdOffset + cdSize else { throw KickError("zip central directory entry \(i) runs past the directory", file: path, code: .malformed) }
            let name = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[p + 46..<p + 46 + nameLen]), as: UTF8.self)
            // zip64 extra field: the 8-byte values of the fields saturated above, in order
            var e = p + 46 + nameLen
            let extraEnd = p + 46 + nameLen + extraLen
            while e + 4 <= extraEnd {
                let id = u16(e), len = u16(e + 2)
                if id == 0x0001 {
                    // a field claiming more than the extra area holds is read only as far as the area goes
                    let fieldEnd = min(e + 4 + len, extraEnd)
                    var q = e + 4
                    if usize == 0xFFFF_FFFF, q + 8 <= fieldEnd { usize = try u64(q); q += 8 }
                    if csize == 0xFFFF_FFFF, q + 8 <= fieldEnd { csize = try u64(q); q += 8 }
                    if local == 0xFFFF_FFFF, q + 8 <= fieldEnd { local = try u64(q); q += 8 }
                }
                e += 4 + len
            }
            guard method == 0, csize == usize else {
                throw KickError("zip member \(name) is compressed (method \(method)); torch.save stores members uncompressed", file: path, code: .malformed)
            }
            guard local <= file.size - 30, u32(local) == 0x0403_4B50 else {
                throw KickError("zip member \(name): no local header at byte \(local)", file: path, code: .malformed)
            }
            let data = local + 30 + u16(local + 26) + u16(local + 28)
            guard data <= file.size, usize <= file.size - data else {
                throw KickError("zip member \(name) (\(usize) bytes at \(data)) runs past the end of the file (\(file.size) bytes): truncated",
                                file: path, code: .malformed)
            }
            table[name] = Member(name: name, offset: data, size: usize)
            p = end
        }
        members = table
    }
}
