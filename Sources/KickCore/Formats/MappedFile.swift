import Foundation

/// A read-only memory map of a whole file. Weights are read straight from the
/// map, so opening a multi-gigabyte model costs no copy.
public final class MappedFile: @unchecked Sendable {
    public let path: String
    public let size: Int
    public let base: UnsafeRawPointer?
    private let owned: Bool

    /// An in-memory copy standing in for a file (formats nested in others,
    /// such as the tokenizer GGUF inside a checkpoint).
    public init(bytes: [UInt8], label: String) {
        path = label
        size = bytes.count
        owned = true
        let p = UnsafeMutableRawPointer.allocate(byteCount: max(1, bytes.count), alignment: 64)
        bytes.withUnsafeBytes { if let b = $0.baseAddress { p.copyMemory(from: b, byteCount: bytes.count) } }
        base = UnsafeRawPointer(p)
    }

    public init(path: String) throws {
        owned = false
        self.path = path
        let fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)  // a FIFO must not block the open
        guard fd >= 0 else {
            throw KickError("cannot open: \(String(cString: strerror(errno)))", file: path)
        }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw KickError("cannot stat", file: path) }
        guard (st.st_mode & S_IFMT) == S_IFREG else { throw KickError("not a regular file", file: path, code: .refused) }
        size = Int(st.st_size)
        if size == 0 {
            base = nil
            return
        }
        let p = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0)
        guard let p, p != MAP_FAILED else {
            throw KickError("cannot memory-map: \(String(cString: strerror(errno)))", file: path)
        }
        base = UnsafeRawPointer(p)
    }

    deinit {
        if owned { base?.deallocate() } else if let base { munmap(UnsafeMutableRawPointer(mutating: base), size) }
    }

    public var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: base, count: size) }

    /// Drops the pages of `range` from this process's resident set once they
    /// are read (they stay in the page cache; a later read maps them back).
    /// A model is widened or packed tensor by tensor, so without this a
    /// 13 GB file would stay resident beside the engine built from it.
    public func release(_ range: UnsafeRawBufferPointer) {
        guard !owned, let base, let start = range.baseAddress else { return }
        let page = Self.pageSize
        let lo = (start - base + page - 1) / page * page  // whole pages only: neighbours may share the edges
        let hi = (start - base + range.count) / page * page
        if hi > lo { madvise(UnsafeMutableRawPointer(mutating: base + lo), hi - lo, Int32(MADV_DONTNEED)) }
    }

    private static let pageSize = Int(sysconf(Int32(_SC_PAGESIZE)))

    /// Tells the kernel the map will be read front to back (more readahead).
    public func adviseSequential() {
        guard !owned, let base else { return }
        madvise(UnsafeMutableRawPointer(mutating: base), size, Int32(MADV_SEQUENTIAL))
    }

    /// A bounds-checked view of [offset, offset + length).
    public func slice(offset: Int, length: Int, what: @autoclosure () -> String) throws -> UnsafeRawBufferPointer {
        guard offset >= 0, length >= 0, offset <= size, length <= size - offset else {
            throw KickError("\(what()) lies outside the file (offset \(offset), length \(length), file size \(size))", file: path, code: .malformed)
        }
        return UnsafeRawBufferPointer(start: base.map { $0 + offset }, count: length)
    }
}

/// A bounds-checked little-endian reader over raw bytes, for binary headers.
public struct ByteCursor {
    public let bytes: UnsafeRawBufferPointer
    public var offset: Int
    public let file: String

    public init(_ bytes: UnsafeRawBufferPointer, offset: Int = 0, file: String) {
        self.bytes = bytes
        self.offset = offset
        self.file = file
    }

    @inline(__always)
    public mutating func need(_ n: Int, _ what: @autoclosure () -> String) throws {
        guard n >= 0, offset <= bytes.count, n <= bytes.count - offset else {
            throw KickError("truncated while reading \(what()) at byte \(offset) (file has \(bytes.count) bytes)", file: file, code: .malformed)
        }
    }

    public mutating func read<T: FixedWidthInteger>(_: T.Type, _ what: @autoclosure () -> String) throws -> T {
        try need(MemoryLayout<T>.size, what())
        let v = bytes.loadUnaligned(fromByteOffset: offset, as: T.self)
        offset += MemoryLayout<T>.size
        return T(littleEndian: v)
    }

    public mutating func readBytes(_ n: Int, _ what: @autoclosure () -> String) throws -> UnsafeRawBufferPointer {
        try need(n, what())
        let s = UnsafeRawBufferPointer(rebasing: bytes[offset..<offset + n])
        offset += n
        return s
    }
}
