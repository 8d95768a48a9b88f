import CZstd

/// zstd frames with content checksums: every chunk of a checkpoint is one
/// frame, so corruption inside a chunk is caught when it is decompressed.
public enum Zstd {
    public static func compress(_ src: UnsafeRawBufferPointer, level: Int32 = 3) throws -> [UInt8] {
        guard let cctx = ZSTD_createCCtx() else { throw KickError("zstd: cannot create a context") }
        defer { ZSTD_freeCCtx(cctx) }
        ZSTD_CCtx_setParameter(cctx, ZSTD_c_compressionLevel, level)
        ZSTD_CCtx_setParameter(cctx, ZSTD_c_checksumFlag, 1)
        var out = [UInt8](repeating: 0, count: ZSTD_compressBound(src.count))
        let n = out.withUnsafeMutableBytes { ZSTD_compress2(cctx, $0.baseAddress, $0.count, src.baseAddress, src.count) }
        guard ZSTD_isError(n) == 0 else { throw KickError("zstd: \(String(cString: ZSTD_getErrorName(n)))") }
        out.removeSubrange(n...)
        return out
    }

    /// Decompresses one frame that must hold exactly `rawLength` bytes.
    public static func decompress(_ src: UnsafeRawBufferPointer, rawLength: Int, into dst: UnsafeMutableRawBufferPointer) throws {
        precondition(dst.count >= rawLength)
        let n = ZSTD_decompress(dst.baseAddress, rawLength, src.baseAddress, src.count)
        if ZSTD_isError(n) != 0 { throw KickError("zstd: \(String(cString: ZSTD_getErrorName(n)))") }
        guard n == rawLength else { throw KickError("zstd: frame holds \(n) bytes, directory says \(rawLength)") }
    }
}
