import Foundation

/// The precision a checkpoint stores float values at.
public enum ValueType: String, Codable, Sendable, CaseIterable {
    case f32, f16, bf16
    public var size: Int { self == .f32 ? 4 : 2 }

    @inline(__always)
    func append(_ v: Float, to out: inout [UInt8]) {
        switch self {
        case .f32: withUnsafeBytes(of: v.bitPattern.littleEndian) { out.append(contentsOf: $0) }
        case .f16: withUnsafeBytes(of: floatToHalf(v).littleEndian) { out.append(contentsOf: $0) }
        case .bf16: withUnsafeBytes(of: floatToBF16(v).littleEndian) { out.append(contentsOf: $0) }
        }
    }

    @inline(__always)
    func load(_ p: UnsafeRawPointer, _ i: Int) -> Float {
        switch self {
        case .f32: return Float(bitPattern: UInt32(littleEndian: p.loadUnaligned(fromByteOffset: i * 4, as: UInt32.self)))
        case .f16: return halfToFloat(UInt16(littleEndian: p.loadUnaligned(fromByteOffset: i * 2, as: UInt16.self)))
        case .bf16: return bf16ToFloat(UInt16(littleEndian: p.loadUnaligned(fromByteOffset: i * 2, as: UInt16.self)))
        }
    }

    /// The value type that keeps a source encoding's precision: f32 and bf16
    /// stay; f16 and ggml's f16-scaled block types become f16.
    public static func preserving(_ t: GGMLType?) -> ValueType {
        switch t {
        case .some(.f32): return .f32
        case .some(.bf16): return .bf16
        case .none: return .f32
        default: return .f16
        }
    }
}

/// How one tensor's values are laid out before zstd. One table row per
/// kind; the layouts are in docs/checkpoint-format.md.
public struct TensorEncoding: Codable, Sendable, Equatable {
    public enum Kind: String, Codable, Sendable {
        case dense, ggml, sparse, nm, quant, sparseQuant = "sparse-quant"
        /// A pruned tensor of a ggml-quantized source (Q4_0, Q4_1, Q8_0): its
        /// kept values as codes on their source blocks' grids.
        case sparseGGML = "sparse-ggml"
        /// A pruned tensor of a Q4_1 source in the source's own blocks, its
        /// pruned entries marked by an escape code (low sparsities).
        case escapeGGML = "escape-ggml"
    }
    public var kind: Kind
    public var values: ValueType?
    public var ggmlType: String?
    public var n: Int?
    public var m: Int?
    public var bits: Int?
    public var groupSize: Int?
    /// Quantized tensors whose columns were walked out of order (act-order)
    /// store each column's group index.
    public var groupIndex: Bool?

    public static func dense(_ v: ValueType) -> Self { .init(kind: .dense, values: v) }
    public static func ggml(_ t: GGMLType) -> Self { .init(kind: .ggml, ggmlType: t.name) }
    /// With n and m when the pruning kept at most n of every m inputs (the
    /// engine then holds it N:M sparse).
    public static func sparseGGML(_ t: GGMLType, n: Int? = nil, m: Int? = nil) -> Self { .init(kind: .sparseGGML, ggmlType: t.name, n: n, m: m) }
    public static func escapeGGML(_ t: GGMLType) -> Self { .init(kind: .escapeGGML, ggmlType: t.name) }
    public static func sparse(_ v: ValueType) -> Self { .init(kind: .sparse, values: v) }
    public static func nm(_ n: Int, _ m: Int, _ v: ValueType) -> Self { .init(kind: .nm, values: v, n: n, m: m) }
    public static func quant(bits: Int, groupSize: Int, groupIndex: Bool = false, sparse: Bool = false) -> Self {
        .init(kind: sparse ? .sparseQuant : .quant, bits: bits, groupSize: groupSize, groupIndex: groupIndex ? true : nil)
    }

    public var description: String {
        switch kind {
        case .dense: return "dense-\(values?.rawValue ?? "?")"
        case .ggml: return "ggml-\(ggmlType ?? "?")"
        case .sparseGGML: return "sparse-ggml-\(ggmlType ?? "?")" + (n.map { "-\($0):\(m ?? 0)" } ?? "")
        case .escapeGGML: return "escape-ggml-\(ggmlType ?? "?")"
        case .sparse: return "sparse-\(values?.rawValue ?? "?")"
        case .nm: return "\(n ?? 0):\(m ?? 0)-\(values?.rawValue ?? "?")"
        case .quant, .sparseQuant:
            return "\(kind == .sparseQuant ? "sparse-" : "")q\(bits ?? 0)-g\(groupSize ?? 0)\(groupIndex == true ? "-gidx" : "")"
        }
    }
}

/// Integer codes with per-(row, group) scale and zero: x̂ = scale·(q − zero),
/// as GPTQ's quantizer produces them.
public struct QuantizedMatrix: Sendable, Equatable {
    public var rows: Int
    public var cols: Int
    public var bits: Int
    /// Columns per group (cols for one group per row).
    public var groupSize: Int
    /// rows × cols codes in [0, 2^bits).
    public var codes: [UInt8]
    /// rows × groups.
    public var scales: [Float]
    public var zeros: [UInt8]
    /// Group of each column when not col / groupSize (act-order).
    public var columnGroup: [Int32]?

    public init(rows: Int, cols: Int, bits: Int, groupSize: Int, codes: [UInt8], scales: [Float], zeros: [UInt8], columnGroup: [Int32]? = nil) {
        self.rows = rows; self.cols = cols; self.bits = bits; self.groupSize = groupSize
        self.codes = codes; self.scales = scales; self.zeros = zeros; self.columnGroup = columnGroup
    }

    public var groups: Int { columnGroup.map { Int(($0.max() ?? 0) + 1) } ?? (cols + groupSize - 1) / groupSize }

    @inline(__always) public func group(ofColumn c: Int) -> Int { columnGroup.map { Int($0[c]) } ?? c / groupSize }

    public func dequantized() -> Matrix {
        var out = Matrix(zeros: rows, cols)
        let g = groups
        for r in 0..<rows {
            for c in 0..<cols {
                let k = r * g + group(ofColumn: c)
                out.data[r * cols + c] = scales[k] * (Float(codes[r * cols + c]) - Float(zeros[k]))
            }
        }
        return out
    }
}

/// Encodes tensors into the checkpoint's payload layouts and back.
public enum TensorCodec {
    // MARK: float encodings

    public static func encodeDense(_ values: [Float], _ v: ValueType) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(values.count * v.size)
        for x in values { v.append(x, to: &out) }
        return out
    }

    /// Bitmask of nonzeros (row-major, LSB first), then the nonzero values.
    public static func encodeSparse(_ values: [Float], _ v: ValueType) -> [UInt8] {
        var mask = [UInt8](repeating: 0, count: (values.count + 7) / 8)
        var kept: [UInt8] = []
        for (i, x) in values.enumerated() where x != 0 {
            mask[i >> 3] |= 1 << UInt8(i & 7)
            v.append(x, to: &kept)
        }
        return mask + kept
    }

    /// N:M — per row, groups of M consecutive columns (the last may be
    /// narrower) keep k = min(N, width) positions: every group's pattern rank
    /// (⌈log2 C(width, k)⌉ bits), then every kept value. Nil when some group
    /// holds more than N nonzeros.
    public static func encodeNM(_ m: Matrix, n: Int, groupOf M: Int, _ v: ValueType) -> [UInt8]? {
        var bits = BitWriter()
        var vals: [UInt8] = []
        for r in 0..<m.rows {
            var g0 = 0
            while g0 < m.cols {
                let w = min(M, m.cols - g0), k = min(n, w)
                var pos: [Int] = []
                for j in 0..<w where m.data[r * m.cols + g0 + j] != 0 { pos.append(j) }
                if pos.count > k { return nil }
                var j = 0
                while pos.count < k { if !pos.contains(j) { pos.append(j) }; j += 1 }
                pos.sort()
                bits.write(UInt64(Combinations.rank(pos)), bits: Combinations.bits(w, k))
                for p in pos { v.append(m.data[r * m.cols + g0 + p], to: &vals) }
                g0 += M
            }
        }
        return bits.finish() + vals
    }

    // MARK: pruned tensors of ggml-quantized sources

    /// The ggml block types whose pruned tensors keep their kept values as
    /// codes on the source blocks' grids.
    public static let sparseGGMLTypes: [GGMLType] = [.q4_0, .q4_1, .q8_0]

    /// Bytes of one block's scale (and min) in the sparse-ggml layout.
    static func sparseGGMLParamBytes(_ t: GGMLType) -> Int { t == .q4_1 ? 4 : 2 }

    /// A pruned matrix whose source stored it in ggml blocks (`source`, the
    /// source tensor's payload): bitmask of nonzeros (row-major, LSB first),
    /// then every kept value's code on its source block's grid (4 bits for
    /// Q4_0/Q4_1, 8 for Q8_0), then each block's f16 scale (and min) as the
    /// source stores them. A value the method left unchanged gets its source
    /// code back, exactly; one it moved (SparseGPT's updates) is rounded to
    /// the nearest point of its block's grid. Nil for other types or when
    /// the shapes do not match.
    public static func encodeSparseGGML(_ m: Matrix, type t: GGMLType, source: [UInt8]) -> [UInt8]? {
        guard sparseGGMLTypes.contains(t), m.cols % 32 == 0, source.count == t.byteCount(elements: m.rows * m.cols) else { return nil }
        let blocks = m.cols / 32, pb = sparseGGMLParamBytes(t), bits = t == .q8_0 ? 8 : 4
        var mask = [UInt8](repeating: 0, count: (m.rows * m.cols + 7) / 8)
        var codes = BitWriter(capacityBits: m.rows * m.cols * bits)
        var params: [UInt8] = []
        params.reserveCapacity(m.rows * blocks * pb)
        for r in 0..<m.rows {
            for b in 0..<blocks {
                let at = (r * blocks + b) * t.bytesPerBlock
                params += source[at..<at + pb]
                let (d, mn) = blockParameters(source, at: at, t)
                for j in 0..<32 {
                    let i = r * m.cols + b * 32 + j, w = m.data[i]
                    guard w != 0 else { continue }
                    mask[i >> 3] |= 1 << UInt8(i & 7)
                    codes.write(UInt64(sparseGGMLCode(w, t, d: d, min: mn)), bits: bits)
                }
            }
        }
        return mask + codes.finish() + params
    }

    /// A pruned matrix of a ggml-quantized source in its source's own blocks,
    /// for sparsities too low for sparse-ggml's bitmask to pay (below about a
    /// quarter): Q4_0 and Q8_0 have a code that decodes to exactly 0, so
    /// pruned entries take it and the tensor stays plain `ggml`; Q4_1's grid
    /// need not hold 0, so it is `escape-ggml` (see `escapeZeroCode`). Kept
    /// values get their codes as in `encodeSparseGGML`. Nil for other types,
    /// mismatched shapes, or an N:M pattern (which sparse-ggml keeps).
    public static func encodePrunedBlocks(_ m: Matrix, type t: GGMLType, source: [UInt8]) -> (TensorEncoding, [UInt8])? {
        guard sparseGGMLTypes.contains(t), m.cols % 32 == 0, source.count == t.byteCount(elements: m.rows * m.cols) else { return nil }
        let blocks = m.cols / 32, bpb = t.bytesPerBlock
        var out = source
        var exceptions = ExceptionWriter()
        var code = [Int](repeating: 0, count: 32)
        for r in 0..<m.rows {
            for b in 0..<blocks {
                let at = (r * blocks + b) * bpb
                let (d, mn) = blockParameters(source, at: at, t)
                var used: UInt32 = 0, pruned: UInt32 = 0
                for j in 0..<32 {
                    let w = m.data[r * m.cols + b * 32 + j]
                    if w == 0 {
                        pruned |= 1 << UInt32(j)
                        code[j] = t == .q4_0 ? 8 : t == .q8_0 ? 128 : 0
                    } else {
                        code[j] = sparseGGMLCode(w, t, d: d, min: mn)
                        used |= 1 << UInt32(code[j])
                    }
                }
                if t == .q4_1 && pruned != 0 {
                    // flag the block (d's sign bit; d ≥ 0 in Q4_1) and give its
                    // pruned entries a code no kept entry uses
                    out[at + 1] |= 0x80
                    let order = escapeOrder(from: escapeZeroCode(d: d, min: mn))
                    if let rank = order.firstIndex(where: { used & (1 << UInt32($0)) == 0 }) {
                        let free = order[rank]
                        for j in 0..<32 where pruned & (1 << UInt32(j)) != 0 { code[j] = free }
                        if rank > 0 { exceptions.add(block: r * blocks + b, rank: rank, mask: nil) }
                    } else {
                        exceptions.add(block: r * blocks + b, rank: 0, mask: pruned)
                    }
                }
                switch t {
                case .q8_0:
                    for j in 0..<32 { out[at + 2 + j] = UInt8(truncatingIfNeeded: code[j] - 128) }
                default:
                    let q0 = at + bpb - 16
                    for j in 0..<16 { out[q0 + j] = UInt8(code[j]) | UInt8(code[j + 16]) << 4 }
                }
            }
        }
        return t == .q4_1 ? (.escapeGGML(t), out + exceptions.finish()) : (.ggml(t), out)
    }

    /// The code an escape-ggml block's pruned entries carry unless its
    /// exception says otherwise: the point of the block's grid nearest 0,
    /// −m/d rounded half away from zero, clamped to the codes (0 when d is
    /// 0 or either is NaN).
    @inline(__always)
    static func escapeZeroCode(d: Float, min mn: Float) -> Int {
        guard d > 0 else { return 0 }
        let x = (-mn / d).rounded()
        return x.isNaN ? 0 : Int(min(max(x, 0), 15))
    }

    /// The 16 codes nearest c first (the lower first on a tie): an
    /// exception names its block's zero code by its rank here, so the
    /// usual ones (next to the default) are small numbers zstd codes short.
    static func escapeOrder(from c: Int) -> [Int] { escapeOrders[c] }

    private static let escapeOrders: [[Int]] = (0..<16).map { c in
        var order = [c]
        for k in 1..<16 { for x in [c - k, c + k] where (0..<16).contains(x) { order.append(x) } }
        return order
    }

    /// escape-ggml's exception table, as three streams (each alike, so
    /// zstd finds their regularities): a uint32 count n; n block gaps (how
    /// many blocks lie between an exception's block and the previous one's,
    /// the first's index), unsigned LEB128; n ranks, a byte each (1-15: the
    /// zero code is `escapeOrder(from: default)[rank]`; 0: a mask follows);
    /// then a uint32 mask of zero entries for each rank 0, in order.
    struct ExceptionWriter {
        private var gaps: [UInt8] = [], ranks: [UInt8] = [], masks: [UInt8] = []
        private var next = 0

        mutating func add(block: Int, rank: Int, mask: UInt32?) {
            var gap = UInt(block - next)
            repeat {
                gaps.append(UInt8(gap & 0x7F) | (gap >= 0x80 ? 0x80 : 0))
                gap >>= 7
            } while gap > 0
            ranks.append(UInt8(rank))
            if let mask { withUnsafeBytes(of: mask.littleEndian) { masks.append(contentsOf: $0) } }
            next = block + 1
        }

        func finish() -> [UInt8] { withUnsafeBytes(of: UInt32(ranks.count).littleEndian) { Array($0) } + gaps + ranks + masks }
    }

    /// escape-ggml's exception table, read and checked: blocks in
    /// increasing order and in range, ranks ≤ 15, nothing left over.
    struct EscapeTable {
        var blocks: [Int] = [], ranks: [Int] = [], masks: [UInt32] = []

        init(_ p: UnsafeRawBufferPointer, from start: Int, blocks total: Int) throws {
            var at = start
            func byte() throws -> UInt8 {
                guard at < p.count else { throw KickError("escape-ggml exception table ends early") }
                defer { at += 1 }
                return p[at]
            }
            let n = Int(UInt32(littleEndian: p.loadUnaligned(fromByteOffset: at, as: UInt32.self)))
            at += 4
            guard n <= total else { throw KickError("escape-ggml lists \(n) exceptions for \(total) blocks") }
            var next = 0
            for _ in 0..<n {
                var gap = 0, shift = 0, b: UInt8
                repeat {
                    b = try byte()
                    guard shift < 35 else { throw KickError("escape-ggml block gap is too long") }
                    gap |= Int(b & 0x7F) << shift
                    shift += 7
                } while b & 0x80 != 0
                let blk = next + gap
                guard blk < total else { throw KickError("escape-ggml names block \(blk) of \(total)") }
                blocks.append(blk)
                next = blk + 1
            }
            for _ in 0..<n {
                let r = Int(try byte())
                guard r <= 15 else { throw KickError("escape-ggml zero-code rank \(r) is not 0-15") }
                ranks.append(r)
            }
            for r in ranks {
                var mask: UInt32 = 0
                if r == 0 { for k in 0..<4 { mask |= UInt32(try byte()) << UInt32(8 * k) } }
                masks.append(mask)
            }
            guard at == p.count else { throw KickError("escape-ggml has \(p.count - at) bytes after its exception table") }
        }
    }

    /// A ggml block's f16 scale and (Q4_1) f16 min, widened, from the block
    /// starting at byte `at` of a source payload (min 0 for the other types).
    @inline(__always)
    static func blockParameters(_ source: [UInt8], at: Int, _ t: GGMLType) -> (d: Float, min: Float) {
        (halfToFloat(UInt16(source[at]) | UInt16(source[at + 1]) << 8),
         t == .q4_1 ? halfToFloat(UInt16(source[at + 2]) | UInt16(source[at + 3]) << 8) : 0)
    }

    /// The code of the point of a block's grid (scale d, and min for
    /// Q4_1) nearest to w. A NaN (a NaN value or scale) has no code: it gets
    /// the one nearest 0.
    @inline(__always)
    static func sparseGGMLCode(_ w: Float, _ t: GGMLType, d: Float, min mn: Float) -> Int {
        let q: Float
        switch t {
        case .q4_1: q = d == 0 ? 0 : min(max(((w - mn) / d).rounded(), 0), 15)
        case .q4_0: q = d == 0 ? 8 : min(max((w / d).rounded() + 8, 0), 15)
        default: q = d == 0 ? 0 : min(max((w / d).rounded(), -128), 127) + 128
        }
        return q.isNaN ? (t == .q4_0 ? 8 : t == .q8_0 ? 128 : 0) : Int(q)
    }

    /// A code's value: the formulas of GGMLType's decoders, so an unchanged
    /// value decodes to the source's bits.
    @inline(__always)
    static func sparseGGMLValue(_ q: Int, _ t: GGMLType, d: Float, min mn: Float) -> Float {
        switch t {
        case .q4_1: return Float(q) * d + mn
        case .q4_0: return Float(q - 8) * d
        default: return Float(q - 128) * d
        }
    }

    // MARK: quantized encodings

    /// Codes (all, or with a mask only those ≠ zero), then f32 scales, then
    /// u8 zeros, then (act-order) a u32 group index per column.
    public static func encodeQuant(_ q: QuantizedMatrix, sparse: Bool) -> [UInt8] {
        let g = q.groups
        var mask = [UInt8](repeating: 0, count: sparse ? (q.rows * q.cols + 7) / 8 : 0)
        var codes = BitWriter(capacityBits: q.rows * q.cols * q.bits)
        for r in 0..<q.rows {
            for c in 0..<q.cols {
                let i = r * q.cols + c
                if sparse {
                    if q.codes[i] == q.zeros[r * g + q.group(ofColumn: c)] { continue }
                    mask[i >> 3] |= 1 << UInt8(i & 7)
                }
                codes.write(UInt64(q.codes[i]), bits: q.bits)
            }
        }
        var out = mask + codes.finish()
        for s in q.scales { withUnsafeBytes(of: s.bitPattern.littleEndian) { out.append(contentsOf: $0) } }
        out.append(contentsOf: q.zeros)
        if let cg = q.columnGroup { for x in cg { withUnsafeBytes(of: UInt32(x).littleEndian) { out.append(contentsOf: $0) } } }
        return out
    }

    // MARK: decoding

    /// Decodes a payload to float32 values, checking its length against the
    /// layout first: a payload of the wrong size is corrupt.
    public static func decode(_ p: UnsafeRawBufferPointer, rows: Int, cols: Int, _ e: TensorEncoding) throws -> [Float] {
        let count = rows * cols
        var out = [Float](repeating: 0, count: count)
        func need(_ n: Int) throws {
            guard p.count == n else { throw KickError("payload is \(p.count) bytes, \(e.description) of \(rows)×\(cols) needs \(n)") }
        }
        func needAtLeast(_ n: Int) throws {
            guard p.count >= n else { throw KickError("payload is \(p.count) bytes, \(e.description) of \(rows)×\(cols) needs at least \(n)") }
        }
        switch e.kind {
        case .dense:
            guard let v = e.values else { throw KickError("dense encoding lacks its value type") }
            try need(count * v.size)
            for i in 0..<count { out[i] = v.load(p.baseAddress!, i) }
        case .ggml:
            guard let t = GGMLType.supported.first(where: { $0.name == e.ggmlType }) else {
                throw KickError("unknown ggml type \(e.ggmlType ?? "none")")
            }
            guard cols % t.blockSize == 0 else { throw KickError("\(t.name) needs rows that are whole blocks") }
            try need(t.byteCount(elements: count))
            out.withUnsafeMutableBufferPointer { t.dequantize(p.baseAddress!, count, $0.baseAddress!) }
        case .sparse:
            guard let v = e.values else { throw KickError("sparse encoding lacks its value type") }
            let maskBytes = (count + 7) / 8
            try needAtLeast(maskBytes)
            var kept = 0
            for b in 0..<maskBytes { kept += p[b].nonzeroBitCount }
            try need(maskBytes + kept * v.size)
            guard count % 8 == 0 || p[maskBytes - 1] >> UInt8(count % 8) == 0 else { throw KickError("mask has bits past the end") }
            var k = 0
            let vals = p.baseAddress! + maskBytes
            for i in 0..<count where p[i >> 3] & (1 << UInt8(i & 7)) != 0 {
                out[i] = v.load(vals, k)
                k += 1
            }
        case .nm:
            guard let v = e.values, let n = e.n, let M = e.m, n > 0, M > n, M <= KickFormat.maxGroup else { throw KickError("bad N:M parameters \(e.n ?? 0):\(e.m ?? 0)") }
            var patternBits = 0, keptCount = 0
            var g0 = 0
            while g0 < cols { let w = min(M, cols - g0); patternBits += Combinations.bits(w, min(n, w)); keptCount += min(n, w); g0 += M }
            let pb = BitWriter.byteCount(bits: patternBits * rows)
            try need(pb + keptCount * rows * v.size)
            var reader = BitReader(UnsafeRawBufferPointer(rebasing: p[0..<pb]))
            let vals = p.baseAddress! + pb
            // rank → positions, tabulated once for the full width and the last group's
            let full = PatternTable(m: M, k: min(n, M))
            let tailWidth = cols % M
            let tail = tailWidth > 0 ? PatternTable(m: tailWidth, k: min(n, tailWidth)) : nil
            var k = 0
            try out.withUnsafeMutableBufferPointer { o in
                for r in 0..<rows {
                    g0 = 0
                    while g0 < cols {
                        let t = cols - g0 >= M ? full : tail!
                        let rank = Int(reader.read(bits: t.bits))
                        guard rank < t.count else { throw KickError("N:M pattern index \(rank) out of range") }
                        for j in 0..<t.k {
                            o[r * cols + g0 + t.position(rank, j)] = v.load(vals, k)
                            k += 1
                        }
                        g0 += M
                    }
                }
            }
        case .sparseGGML:
            guard let t = sparseGGMLTypes.first(where: { $0.name == e.ggmlType }) else {
                throw KickError("sparse-ggml of type \(e.ggmlType ?? "none") is not one kick writes (Q4_0, Q4_1, Q8_0)")
            }
            guard cols % 32 == 0 else { throw KickError("\(t.name) needs rows that are whole 32-column blocks") }
            let maskBytes = (count + 7) / 8, bits = t == .q8_0 ? 8 : 4, blocks = cols / 32, pb = sparseGGMLParamBytes(t)
            try needAtLeast(maskBytes)
            var kept = 0
            for b in 0..<maskBytes { kept += p[b].nonzeroBitCount }
            guard count % 8 == 0 || p[maskBytes - 1] >> UInt8(count % 8) == 0 else { throw KickError("mask has bits past the end") }
            let codeBytes = BitWriter.byteCount(bits: kept * bits)
            try need(maskBytes + codeBytes + rows * blocks * pb)
            var reader = BitReader(UnsafeRawBufferPointer(rebasing: p[maskBytes..<maskBytes + codeBytes]))
            let params = p.baseAddress! + maskBytes + codeBytes
            for r in 0..<rows {
                for b in 0..<blocks {
                    let pa = params + (r * blocks + b) * pb
                    let d = halfToFloat(UInt16(littleEndian: pa.loadUnaligned(as: UInt16.self)))
                    let mn = t == .q4_1 ? halfToFloat(UInt16(littleEndian: pa.loadUnaligned(fromByteOffset: 2, as: UInt16.self))) : 0
                    for j in 0..<32 {
                        let i = r * cols + b * 32 + j
                        guard p[i >> 3] & (1 << UInt8(i & 7)) != 0 else { continue }
                        out[i] = sparseGGMLValue(Int(reader.read(bits: bits)), t, d: d, min: mn)
                    }
                }
            }
        case .escapeGGML:
            guard e.ggmlType == GGMLType.q4_1.name else {
                throw KickError("escape-ggml of type \(e.ggmlType ?? "none") is not one kick writes (Q4_1)")
            }
            guard cols % 32 == 0 else { throw KickError("Q4_1 needs rows that are whole 32-column blocks") }
            let blocks = count / 32, blockBytes = blocks * 20
            try needAtLeast(blockBytes + 4)
            let table = try EscapeTable(p, from: blockBytes, blocks: blocks)
            var x = 0
            for blk in 0..<blocks {
                let at = blk * 20
                let raw = UInt16(littleEndian: p.loadUnaligned(fromByteOffset: at, as: UInt16.self))
                let d = halfToFloat(raw & 0x7FFF)
                let mn = halfToFloat(UInt16(littleEndian: p.loadUnaligned(fromByteOffset: at + 2, as: UInt16.self)))
                var zc = -1, zeroMask: UInt32 = 0
                if x < table.blocks.count && table.blocks[x] == blk {
                    guard raw & 0x8000 != 0 else { throw KickError("escape-ggml names block \(blk), which is not flagged") }
                    let rank = table.ranks[x]
                    (zc, zeroMask) = rank == 0 ? (16, table.masks[x]) : (escapeOrder(from: escapeZeroCode(d: d, min: mn))[rank], 0)
                    x += 1
                } else if raw & 0x8000 != 0 {
                    zc = escapeZeroCode(d: d, min: mn)
                }
                for j in 0..<32 {
                    let byte = p[at + 4 + (j & 15)], q = Int(j < 16 ? byte & 15 : byte >> 4)
                    let zero = zc == 16 ? zeroMask & (1 << UInt32(j)) != 0 : q == zc
                    out[blk * 32 + j] = zero ? 0 : sparseGGMLValue(q, .q4_1, d: d, min: mn)
                }
            }
        case .quant, .sparseQuant:
            guard let bits = e.bits, [2, 3, 4, 8].contains(bits), let gs = e.groupSize, gs > 0 else {
                throw KickError("bad quantization parameters")
            }
            let q = try decodeQuant(p, rows: rows, cols: cols, bits: bits, groupSize: gs, sparse: e.kind == .sparseQuant,
                                    groupIndex: e.groupIndex == true)
            return q.dequantized().data
        }
        return out
    }

    /// The codes, scales and zeros of a quantized payload.
    public static func decodeQuant(_ p: UnsafeRawBufferPointer, rows: Int, cols: Int, bits: Int, groupSize gs: Int,
                                   sparse: Bool, groupIndex: Bool) throws -> QuantizedMatrix {
        let count = rows * cols
        let maskBytes = sparse ? (count + 7) / 8 : 0
        guard p.count >= maskBytes else { throw KickError("payload shorter than its mask") }
        var kept = count
        if sparse {
            kept = 0
            for b in 0..<maskBytes { kept += p[b].nonzeroBitCount }
            guard count % 8 == 0 || p[maskBytes - 1] >> UInt8(count % 8) == 0 else { throw KickError("mask has bits past the end") }
        }
        let codeBytes = BitWriter.byteCount(bits: kept * bits)
        let cgBytes = groupIndex ? cols * 4 : 0
        // the group count comes from the index when there is one
        var groups = (cols + gs - 1) / gs
        var columnGroup: [Int32]? = nil
        if groupIndex {
            guard p.count >= cgBytes else { throw KickError("payload shorter than its group index") }
            let base = p.baseAddress! + p.count - cgBytes
            let cg = (0..<cols).map { Int32(bitPattern: UInt32(littleEndian: base.loadUnaligned(fromByteOffset: $0 * 4, as: UInt32.self))) }
            guard let mx = cg.max(), cg.allSatisfy({ $0 >= 0 && $0 <= mx }), Int(mx) < cols else { throw KickError("bad group index") }
            groups = Int(mx) + 1
            columnGroup = cg
        }
        let need = maskBytes + codeBytes + rows * groups * 5 + cgBytes
        guard p.count == need else { throw KickError("payload is \(p.count) bytes, q\(bits) of \(rows)×\(cols) needs \(need)") }
        var codes = [UInt8](repeating: 0, count: count)
        var zeros = [UInt8](repeating: 0, count: rows * groups)
        var scales = [Float](repeating: 0, count: rows * groups)
        let sBase = p.baseAddress! + maskBytes + codeBytes
        for i in 0..<rows * groups {
            scales[i] = Float(bitPattern: UInt32(littleEndian: sBase.loadUnaligned(fromByteOffset: i * 4, as: UInt32.self)))
            zeros[i] = sBase.load(fromByteOffset: rows * groups * 4 + i, as: UInt8.self)
            guard Int(zeros[i]) < 1 << bits || bits == 8 else { throw KickError("zero point \(zeros[i]) exceeds \(bits) bits") }
        }
        var q = QuantizedMatrix(rows: rows, cols: cols, bits: bits, groupSize: gs, codes: codes, scales: scales, zeros: zeros,
                                columnGroup: columnGroup)
        var reader = BitReader(UnsafeRawBufferPointer(rebasing: p[maskBytes..<maskBytes + codeBytes]))
        for r in 0..<rows {
            for c in 0..<cols {
                let i = r * cols + c
                if sparse && p[i >> 3] & (1 << UInt8(i & 7)) == 0 {
                    codes[i] = zeros[r * groups + q.group(ofColumn: c)]
                } else {
                    codes[i] = UInt8(reader.read(bits: bits))
                }
            }
        }
        q.codes = codes
        return q
    }
}

/// The positions of every pattern rank of k kept out of m, tabulated so N:M
/// decoding does no combinatorics per group.
struct PatternTable {
    let k: Int
    let bits: Int
    let count: Int
    private let positions: [Int]

    init(m: Int, k: Int) {
        self.k = k
        bits = Combinations.bits(m, k)
        count = Combinations.choose(m, k)
        var p: [Int] = []
        p.reserveCapacity(count * k)
        for r in 0..<count { p += Combinations.unrank(r, m: m, k: k) }
        positions = p
    }

    @inline(__always) func position(_ rank: Int, _ j: Int) -> Int { positions[rank * k + j] }
}
