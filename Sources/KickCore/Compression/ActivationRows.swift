/// Calibration activations the compressor keeps between passes and
/// between blocks (rows × width): the block inputs of every calibration
/// row and the resumed passes' state. Stored as float32, f16 or bf16
/// (`--act-dtype`, default f16, as the reference drivers keep them):
/// half the memory, 5.4 GB instead of 10.7 for 128 × 2048 rows at 13B
/// width. Every product still runs in float32; rows are widened when a
/// pass reads them and narrowed (round to nearest even) when it writes.
final class ActivationRows: @unchecked Sendable {
    let rows: Int
    let width: Int
    let format: PanelFormat
    private let base: UnsafeMutableRawPointer

    static func bytes(rows: Int, width: Int, format: PanelFormat) -> Int { rows * width * format.bytes }

    init(rows: Int, width: Int, format: PanelFormat) {
        self.rows = rows
        self.width = width
        self.format = format
        base = .allocate(byteCount: max(1, Self.bytes(rows: rows, width: width, format: format)), alignment: 64)
    }

    deinit { base.deallocate() }

    /// Row r's first element.
    func pointer(row r: Int) -> UnsafeMutableRawPointer { base + r * width * format.bytes }

    /// Rows r..<r+n widened into `out` (n × width floats).
    func load(row r: Int, count n: Int, into out: UnsafeMutablePointer<Float>) {
        format.load(pointer(row: r), count: n * width, into: out)
    }

    /// Rows r..<r+n narrowed from `src` (n × width floats).
    func store(row r: Int, count n: Int, from src: UnsafePointer<Float>) {
        format.store(src, count: n * width, to: pointer(row: r))
    }
}

extension PanelFormat {
    /// `count` floats narrowed to this format at `dst`.
    func store(_ src: UnsafePointer<Float>, count: Int, to dst: UnsafeMutableRawPointer) {
        switch self {
        case .f32: dst.copyMemory(from: src, byteCount: count * 4)
        case .f16, .bf16:
            let d = dst.assumingMemoryBound(to: UInt16.self)
            for i in 0..<count { d[i] = narrow(src[i]) }
        }
    }

    /// `count` elements of this format at `src` widened into `dst`.
    func load(_ src: UnsafeRawPointer, count: Int, into dst: UnsafeMutablePointer<Float>) {
        switch self {
        case .f32: UnsafeMutableRawPointer(dst).copyMemory(from: src, byteCount: count * 4)
        case .f16, .bf16:
            let s = src.assumingMemoryBound(to: UInt16.self)
            for i in 0..<count { dst[i] = widen(s[i]) }
        }
    }
}
