import CArchive
import Foundation

/// Reads members out of zip and tar archives through libarchive, streaming:
/// a member nested in a member (a jar inside a wheel) is read from memory
/// without ever being written to disk.
public enum ArchiveReader {
    /// Calls `body` with each chunk of the named member's bytes; throws if
    /// the member is absent.
    public static func streamMember(archive path: String, member: String, _ body: (UnsafeRawBufferPointer) throws -> Void) throws {
        try withReader(path) { try stream($0, label: path, member: member, body) }
    }

    /// A libarchive reader over a file, any format and filter, freed after `body`.
    static func withReader<T>(_ path: String, _ body: (OpaquePointer) throws -> T) throws -> T {
        let a = try newReader(label: path)
        defer { archive_read_free(a) }
        guard archive_read_open_filename(a, path, 1 << 20) == ARCHIVE_OK else {
            throw KickError("cannot open archive: \(String(cString: archive_error_string(a)))", file: path)
        }
        return try body(a)
    }

    private static func newReader(label: String) throws -> OpaquePointer {
        guard let a = archive_read_new() else { throw KickError("libarchive: cannot allocate a reader", file: label) }
        archive_read_support_format_all(a)
        archive_read_support_filter_all(a)
        return a
    }

    /// The same, for an archive held in memory.
    public static func streamMember(archiveBytes: [UInt8], label: String, member: String, _ body: (UnsafeRawBufferPointer) throws -> Void) throws {
        let a = try newReader(label: label)
        defer { archive_read_free(a) }
        try archiveBytes.withUnsafeBytes { buf in
            guard archive_read_open_memory(a, buf.baseAddress, buf.count) == ARCHIVE_OK else {
                throw KickError("cannot open archive: \(String(cString: archive_error_string(a)))", file: label)
            }
            try stream(a, label: label, member: member, body)
        }
    }

    /// A whole file through libarchive's filters only (gzip, zstd, …, or
    /// none): the C4 `json.gz` shards.
    public static func decompressed(path: String) throws -> [UInt8] {
        guard let a = archive_read_new() else { throw KickError("libarchive: cannot allocate a reader", file: path) }
        defer { archive_read_free(a) }
        archive_read_support_format_raw(a)
        archive_read_support_filter_all(a)
        guard archive_read_open_filename(a, path, 1 << 20) == ARCHIVE_OK else {
            throw KickError("cannot open: \(String(cString: archive_error_string(a)))", file: path)
        }
        var entry: OpaquePointer?
        guard archive_read_next_header(a, &entry) == ARCHIVE_OK else {
            throw KickError("cannot read: \(String(cString: archive_error_string(a)))", file: path)
        }
        var out: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 1 << 20)
        while true {
            let n = buf.withUnsafeMutableBytes { archive_read_data(a, $0.baseAddress, $0.count) }
            if n == 0 { return out }
            guard n > 0 else { throw KickError("corrupt compressed data: \(String(cString: archive_error_string(a)))", file: path) }
            out.append(contentsOf: buf[0..<n])
        }
    }

    /// The name of an archive's first member (kick puts its manifest there).
    public static func firstMemberName(archive path: String) throws -> String? {
        try withReader(path) { a in
            var entry: OpaquePointer?
            guard archive_read_next_header(a, &entry) == ARCHIVE_OK, let e = entry else { return nil }
            return archive_entry_pathname(e).map { String(cString: $0) }
        }
    }

    public static func readMember(archive path: String, member: String) throws -> [UInt8] {
        var out: [UInt8] = []
        try streamMember(archive: path, member: member) { out.append(contentsOf: $0) }
        return out
    }

    private static func stream(_ a: OpaquePointer, label: String, member: String, _ body: (UnsafeRawBufferPointer) throws -> Void) throws {
        var found = false
        try forEachEntry(a, label: label) { _, name in
            guard name == member else { archive_read_data_skip(a); return true }
            try readData(a, label: label, member: member, body)
            found = true
            return false
        }
        if !found { throw KickError("archive has no member \(member)", file: label) }
    }

    /// Walks an open reader's entries: `body` gets each entry and its path
    /// and returns whether to go on (it must read or skip the entry's data).
    static func forEachEntry(_ a: OpaquePointer, label: String, _ body: (OpaquePointer, String) throws -> Bool) throws {
        var entry: OpaquePointer?
        while true {
            let r = archive_read_next_header(a, &entry)
            if r == ARCHIVE_EOF { return }
            guard r == ARCHIVE_OK || r == ARCHIVE_WARN, let e = entry else {
                throw KickError("corrupt archive: \(String(cString: archive_error_string(a)))", file: label)
            }
            guard try body(e, archive_entry_pathname(e).map { String(cString: $0) } ?? "") else { return }
        }
    }

    /// The current entry's data, chunk by chunk.
    static func readData(_ a: OpaquePointer, label: String, member: String, _ body: (UnsafeRawBufferPointer) throws -> Void) throws {
        var buf = [UInt8](repeating: 0, count: 1 << 20)
        while true {
            let n = buf.withUnsafeMutableBytes { archive_read_data(a, $0.baseAddress, $0.count) }
            if n == 0 { return }
            guard n > 0 else { throw KickError("corrupt member \(member): \(String(cString: archive_error_string(a)))", file: label) }
            try buf.withUnsafeBytes { try body(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
        }
    }
}
