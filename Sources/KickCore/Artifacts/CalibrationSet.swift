import Foundation

/// Calibration windows as kick-ingest writes them (`.tok`): an 8-byte magic
/// `KICKTOK1`, then little-endian u32 N (windows), L (tokens each), vocab
/// size, a 16-character tokenizer identity, then N × L u32 token ids.
public struct CalibrationSet: Sendable, Equatable {
    public static let magic = Array("KICKTOK1".utf8)
    public var windows: [[Int]]
    public var vocabSize: Int
    public var tokenizerIdentity: String

    public init(windows: [[Int]], vocabSize: Int, tokenizerIdentity: String) {
        self.windows = windows
        self.vocabSize = vocabSize
        self.tokenizerIdentity = tokenizerIdentity
    }

    public var length: Int { windows.first?.count ?? 0 }

    public func encode() -> Data {
        var d = Data(Self.magic)
        func u32(_ v: Int) { withUnsafeBytes(of: UInt32(v).littleEndian) { d.append(contentsOf: $0) } }
        u32(windows.count); u32(length); u32(vocabSize)
        d.append(contentsOf: Array(tokenizerIdentity.utf8.prefix(16)) + [UInt8](repeating: 0x20, count: max(0, 16 - tokenizerIdentity.utf8.count)))
        for w in windows { for t in w { u32(t) } }
        return d
    }

    public func write(to path: String) throws { try AtomicFile.write(encode(), to: path) }

    public static func read(path: String) throws -> CalibrationSet {
        guard let d = try RegularFile.contents(atPath: path) else { throw KickError("cannot read calibration file", file: path) }
        return try decode(d, file: path)
    }

    /// Parses `.tok` bytes; `file` names them in errors.
    public static func decode(_ d: Data, file path: String) throws -> CalibrationSet {
        let b = [UInt8](d)
        guard b.count >= 36, Array(b[0..<8]) == magic else { throw KickError("not a kick calibration file (bad magic)", file: path) }
        func u32(_ o: Int) -> Int { Int(UInt32(b[o]) | UInt32(b[o + 1]) << 8 | UInt32(b[o + 2]) << 16 | UInt32(b[o + 3]) << 24) }
        let n = u32(8), l = u32(12), vocab = u32(16)
        let ident = String(decoding: b[20..<36], as: UTF8.self).trimmingCharacters(in: .whitespaces)
        // n and l are each below 2^32: their product can reach 2^64, so every step is checked
        let (ids, o1) = n.multipliedReportingOverflow(by: l)
        let (bytes, o2) = ids.multipliedReportingOverflow(by: 4)
        guard n > 0, l > 0, !o1, !o2, ids < 1 << 32, b.count - 36 == bytes else {
            throw KickError("calibration header says \(n) windows of \(l) tokens, the file has \(b.count - 36) bytes of ids", file: path)
        }
        var windows: [[Int]] = []
        for i in 0..<n {
            let w = (0..<l).map { u32(36 + (i * l + $0) * 4) }
            if let bad = w.first(where: { $0 >= vocab }) { throw KickError("window \(i) holds token \(bad) ≥ vocab size \(vocab)", file: path) }
            windows.append(w)
        }
        return CalibrationSet(windows: windows, vocabSize: vocab, tokenizerIdentity: ident)
    }
}
