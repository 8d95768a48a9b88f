import AVX512Kernels
import CPermute

/// A weight as integer codes in row-major order, with an affine map per
/// (row, group of columns) that widens each code to its value: the form
/// quantized tensors come in (GPTQ/RTN codes of a `.kick` checkpoint, and
/// GGUF's Q4_0, Q4_1 and Q8_0 blocks, converted losslessly), before they
/// are packed into `CodePanels`.
public struct CodeRows: Sendable {
    /// How a code q widens with its group's pair (a, b), in the arithmetic
    /// of the float32 decoders it must reproduce bit for bit.
    public enum Affine: String, Sendable {
        /// (q − b)·a: GPTQ/RTN (a = scale, b = zero point), Q4_0 (b = 8), Q8_0 (b = 128)
        case scaleZero
        /// q·a + b, two roundings: Q4_1 (a = d, b = m)
        case scaleMin
    }

    public let rows: Int
    public let cols: Int
    public let bits: Int
    public let affine: Affine
    public let groups: Int
    /// The group of each column (act-order tensors have them out of order).
    public let columnGroup: [Int32]
    /// rows × cols codes, each below 2^bits.
    public let codes: [UInt8]
    /// rows × groups.
    public let a: [Float]
    public let b: [Float]
    /// What the codes came from ("q4-g128", "Q4_1"), for reports.
    public let label: String

    /// GPTQ/RTN codes as a checkpoint stores them (a sparse one's pruned
    /// codes are its zero points, which widen to exactly 0).
    public init(_ q: QuantizedMatrix) {
        rows = q.rows; cols = q.cols; bits = q.bits; affine = .scaleZero
        groups = q.groups
        columnGroup = (0..<q.cols).map { Int32(q.group(ofColumn: $0)) }
        codes = q.codes
        a = q.scales
        b = q.zeros.map(Float.init)
        label = "q\(q.bits)-" + (q.columnGroup != nil ? "gidx" : q.groupSize >= q.cols ? "row" : "g\(q.groupSize)")
    }

    /// The ggml block types whose codes and scales are kept as they are
    /// (Q4_0, Q4_1, Q8_0); nil for any other type.
    public init?(ggml payload: UnsafeRawBufferPointer, type: GGMLType, rows: Int, cols: Int) throws {
        guard [GGMLType.q4_0, .q4_1, .q8_0].contains(type) else { return nil }
        guard cols % 32 == 0 else { throw KickError("\(type.name) needs rows that are whole 32-column blocks, not \(cols) columns") }
        guard payload.count == type.byteCount(elements: rows * cols) else {
            throw KickError("payload is \(payload.count) bytes, \(type.name) of \(rows)×\(cols) needs \(type.byteCount(elements: rows * cols))")
        }
        let g = cols / 32
        var codes = [UInt8](repeating: 0, count: rows * cols)
        var a = [Float](repeating: 0, count: rows * g), b = a
        let p = payload.baseAddress!
        for r in 0..<rows {
            for j in 0..<g {
                let blk = p + (r * g + j) * type.bytesPerBlock
                let i = r * g + j, o = r * cols + 32 * j
                a[i] = halfToFloat(UInt16(littleEndian: blk.loadUnaligned(as: UInt16.self)))
                switch type {
                case .q8_0:
                    b[i] = 128
                    for k in 0..<32 { codes[o + k] = blk.load(fromByteOffset: 2 + k, as: UInt8.self) ^ 0x80 }
                default:
                    let q = blk + (type == .q4_1 ? 4 : 2)
                    b[i] = type == .q4_1 ? halfToFloat(UInt16(littleEndian: blk.loadUnaligned(fromByteOffset: 2, as: UInt16.self))) : 8
                    for k in 0..<16 {
                        let byte = q.load(fromByteOffset: k, as: UInt8.self)
                        codes[o + k] = byte & 0xF
                        codes[o + 16 + k] = byte >> 4
                    }
                }
            }
        }
        self.rows = rows; self.cols = cols; bits = type == .q8_0 ? 8 : 4
        affine = type == .q4_1 ? .scaleMin : .scaleZero
        groups = g
        columnGroup = (0..<cols).map { Int32($0 / 32) }
        self.codes = codes; self.a = a; self.b = b
        label = type.name
    }

    /// A tensor's codes from its stored encoding, when it is one the code
    /// kernels run (kick's quantized codes, ggml Q4_0/Q4_1/Q8_0); nil for
    /// float encodings.
    public static func decode(_ e: TensorEncoding, _ payload: [UInt8], rows: Int, cols: Int) throws -> CodeRows? {
        switch e.kind {
        case .quant, .sparseQuant:
            guard let bits = e.bits, [2, 3, 4, 8].contains(bits), let gs = e.groupSize, gs > 0 else {
                throw KickError("bad quantization parameters")
            }
            return CodeRows(try payload.withUnsafeBytes {
                try TensorCodec.decodeQuant($0, rows: rows, cols: cols, bits: bits, groupSize: gs, sparse: e.kind == .sparseQuant,
                                            groupIndex: e.groupIndex == true)
            })
        case .ggml:
            guard let t = GGMLType.supported.first(where: { $0.name == e.ggmlType }) else { return nil }
            return try payload.withUnsafeBytes { try CodeRows(ggml: $0, type: t, rows: rows, cols: cols) }
        default:
            return nil
        }
    }

    /// Whether an encoding is one `decode` turns into codes.
    public static func isCoded(_ e: TensorEncoding) -> Bool {
        switch e.kind {
        case .quant, .sparseQuant: return true
        case .ggml: return ["Q4_0", "Q4_1", "Q8_0"].contains(e.ggmlType ?? "")
        default: return false
        }
    }
}

/// A run of consecutive columns in one group: the kernels load a group's
/// affine pairs once per run. Without act-order a run is a whole group.
struct ColumnRun: Sendable {
    var start: Int32
    var end: Int32
    var group: Int32
}

/// A weight held as integer codes in `PackedWeight`'s panel layout: panels
/// of 16 rows, column by column, each column's 16 codes in 2·bits bytes
/// (4 bits: byte i holds rows i and i + 8; 2 and 3 bits: rows 0-7, then
/// rows 8-15, each eight codes packed low bits first; 8 bits: in order), and
/// per panel and group the 16 rows' affine pairs (a then b, f16 where every
/// value is exactly an f16, else float32).
///
/// The kernels widen a column's codes to float32 in registers, exactly as
/// the float32 decoder would (`Affine`), and multiply-add it as the float32
/// panels' kernels do: the same chain per output, so the same bits as the
/// same checkpoint widened to float32, for any token count. A decode step
/// reads bits/32 of the float32 weight's bytes.
public struct CodePanels: Sendable {
    public let rows: Int
    public let cols: Int
    public let bits: Int
    let affine: CodeRows.Affine
    let groups: Int
    let runs: [ColumnRun]
    let codes: [UInt8]
    let pairs32: [Float]
    let pairs16: [UInt16]
    public let label: String

    var panels: Int { (rows + PanelLayout.rows - 1) / PanelLayout.rows }
    var columnBytes: Int { 2 * bits }

    /// The parts' rows one after another (fused q/k/v, gate/up); nil when
    /// they differ in bits, affine map or column groups.
    public init?(stacking parts: [CodeRows]) {
        guard let f = parts.first, parts.allSatisfy({
            $0.cols == f.cols && $0.bits == f.bits && $0.affine == f.affine && $0.groups == f.groups && $0.columnGroup == f.columnGroup
        }) else { return nil }
        let pr = PanelLayout.rows
        rows = parts.reduce(0) { $0 + $1.rows }
        cols = f.cols; bits = f.bits; affine = f.affine; groups = f.groups
        label = parts.map(\.label).allSatisfy({ $0 == f.label }) ? f.label : "q\(f.bits)"
        var rs: [ColumnRun] = []
        for (k, g) in f.columnGroup.enumerated() {
            if let last = rs.last, last.group == g, Int(last.end) == k { rs[rs.count - 1].end += 1 } else { rs.append(ColumnRun(start: Int32(k), end: Int32(k + 1), group: g)) }
        }
        runs = rs
        let source = stackedRowSources(parts.map(\.rows))
        let panels = (rows + pr - 1) / pr, K = cols, bits = f.bits, cb = 2 * f.bits
        // 4 bytes of padding: the kernels load a half column as a UInt32
        var codes = [UInt8](repeating: 0, count: panels * K * cb + 4)
        var pa = [Float](repeating: 0, count: panels * f.groups * 2 * pr)
        for p in 0..<panels {
            for lane in 0..<pr {
                let row = p * pr + lane
                guard row < rows else { continue }
                let (part, r) = source[row]
                let src = parts[part]
                let h = lane / 8, i = lane % 8
                for k in 0..<K {
                    let q = Int(src.codes[r * K + k])
                    if bits == 4 {
                        // byte i: lane i in the low nibble, lane i + 8 in the high one
                        codes[p * K * cb + k * cb + i] |= UInt8(q << (4 * h))
                        continue
                    }
                    let at = p * K * cb + k * cb + h * bits + (i * bits) / 8
                    if bits == 8 { codes[at] = UInt8(q) } else {
                        // the code's bits may cross a byte boundary (3-bit)
                        let v = q << ((i * bits) % 8)
                        codes[at] |= UInt8(v & 0xFF)
                        if v > 0xFF { codes[at + 1] |= UInt8(v >> 8) }
                    }
                }
                for g in 0..<f.groups {
                    let at: Int = (p * f.groups + g) * 2 * pr + lane
                    let from: Int = r * f.groups + g
                    pa[at] = src.a[from]
                    pa[at + pr] = src.b[from]
                }
            }
        }
        self.codes = codes
        if pa.allSatisfy({ Float(Float16($0)) == $0 }) {
            pairs16 = pa.map { Float16($0).bitPattern }
            pairs32 = []
        } else {
            pairs32 = pa
            pairs16 = []
        }
    }

    public var byteCount: Int { codes.count + 4 * pairs32.count + 2 * pairs16.count + MemoryLayout<ColumnRun>.stride * runs.count }

    /// Row r widened to float32 (a token's embedding).
    public func copyRow(_ r: Int, into out: UnsafeMutablePointer<Float>) {
        let pr = PanelLayout.rows, p = r / pr, lane = r % pr, h = lane / 8, i = lane % 8
        let cb = columnBytes, mask = (1 << bits) - 1
        codes.withUnsafeBytes { c in
            for run in runs {
                let (a, b) = pair(panel: p, group: Int(run.group), lane: lane)
                for k in Int(run.start)..<Int(run.end) {
                    if bits == 4 {
                        let q = Float((Int(c[p * cols * cb + k * cb + i]) >> (4 * h)) & 15)
                        out[k] = affine == .scaleZero ? (q - b) * a : q * a + b
                        continue
                    }
                    let at = p * cols * cb + k * cb + h * bits + (i * bits) / 8
                    let word = Int(c[at]) | (at + 1 < c.count ? Int(c[at + 1]) << 8 : 0)
                    let q = Float(bits == 8 ? Int(c[at]) : (word >> ((i * bits) % 8)) & mask)
                    out[k] = affine == .scaleZero ? (q - b) * a : q * a + b
                }
            }
        }
    }

    private func pair(panel p: Int, group g: Int, lane: Int) -> (Float, Float) {
        let at = (p * groups + g) * 2 * PanelLayout.rows + lane
        return pairs16.isEmpty ? (pairs32[at], pairs32[at + PanelLayout.rows])
            : (Float(Float16(bitPattern: pairs16[at])), Float(Float16(bitPattern: pairs16[at + PanelLayout.rows])))
    }

    /// The weight widened to float32, row-major.
    public var matrix: Matrix {
        var m = Matrix(zeros: rows, cols)
        m.data.withUnsafeMutableBufferPointer { b in for r in 0..<rows { copyRow(r, into: b.baseAddress! + r * cols) } }
        return m
    }

    /// out (T × rows, row stride ldOut) = input (T × cols) · weightᵀ, panels
    /// split across the team as `PackedWeight.apply` splits them.
    func apply(tokens T: Int, input: UnsafePointer<Float>, out: UnsafeMutablePointer<Float>, ldOut: Int, team: ThreadTeam?) {
        codes.withUnsafeBytes { c in
            withPairs { pairs in
                runs.withUnsafeBufferPointer { runs in
                    forEachPanelPart(panels: panels, team: team) { part in
                        visit(CodeLinear(tokens: T, input: input, ldInput: cols, codes: c.baseAddress!, pairs: pairs, runs: runs,
                                         cols: cols, rows: rows, groups: groups, panels: part, out: out, ldOut: ldOut))
                    }
                }
            }
        }
    }

    private func withPairs<R>(_ body: (UnsafeRawPointer) -> R) -> R {
        pairs16.isEmpty ? pairs32.withUnsafeBytes { body($0.baseAddress!) } : pairs16.withUnsafeBytes { body($0.baseAddress!) }
    }

    /// Runs the kernel specialized for this weight's code width, affine map
    /// and pair precision.
    private func visit(_ k: CodeLinear) {
        func byAffine<C: CodeWidth>(_: C.Type) {
            switch (affine, pairs16.isEmpty) {
            case (.scaleZero, true): k.run(C.self, ScaleZero.self, F32Element.self)
            case (.scaleMin, true): k.run(C.self, ScaleMin.self, F32Element.self)
            case (.scaleZero, false): k.run(C.self, FusedScaleZero.self, F16Element.self)
            case (.scaleMin, false): k.run(C.self, FusedScaleMin.self, F16Element.self)
            }
        }
        switch bits {
        case 2: byAffine(Code2.self)
        case 3: byAffine(Code3.self)
        case 4: byAffine(Code4.self)
        default: byAffine(Code8.self)
        }
    }
}

// MARK: kernels

/// A code width: how one panel column's 16 codes load as floats.
protocol CodeWidth {
    static var bits: Int { get }
    static func load16(_ p: UnsafeRawPointer) -> SIMD16<Float>
}

/// 2 and 3 bits: each half column is one little-endian word, shifted apart
/// lane by lane (one broadcast, one variable shift and one mask per eight
/// codes, in C: `kick_load_packed16`; the Swift form compiled to scalar
/// shifts, inserts and blends).
enum Code2: CodeWidth {
    @inline(__always) static var bits: Int { 2 }
    @inline(__always) static func load16(_ p: UnsafeRawPointer) -> SIMD16<Float> { kick_load_packed16(p, 2) }
}

enum Code3: CodeWidth {
    @inline(__always) static var bits: Int { 3 }
    @inline(__always) static func load16(_ p: UnsafeRawPointer) -> SIMD16<Float> { kick_load_packed16(p, 3) }
}

/// 4 bits: byte i holds lane i (low nibble) and lane i + 8 (high): the
/// nibbles split after the bytes widen to 32-bit lanes (one load-and-widen,
/// then a mask for the low nibbles and a shift for the high ones). Widening
/// first matters: written in Swift, the compiler splits on the bytes and
/// widens twice (three more instructions per column); `kick_load_nibbles16`
/// keeps the order. Measured 1.5-3x the GFLOP/s of the Swift form on one
/// token (`kick-infer bench-linear --tokens 1`, docs/performance.md).
enum Code4: CodeWidth {
    @inline(__always) static var bits: Int { 4 }
    @inline(__always) static func load16(_ p: UnsafeRawPointer) -> SIMD16<Float> {
        kick_load_nibbles16(p)
    }
}

enum Code8: CodeWidth {
    @inline(__always) static var bits: Int { 8 }
    @inline(__always) static func load16(_ p: UnsafeRawPointer) -> SIMD16<Float> {
        let lo = SIMD8<Int32>(truncatingIfNeeded: p.loadUnaligned(as: SIMD8<UInt8>.self))
        let hi = SIMD8<Int32>(truncatingIfNeeded: (p + 8).loadUnaligned(as: SIMD8<UInt8>.self))
        return SIMD16(lowHalf: SIMD8<Float>(lo), highHalf: SIMD8<Float>(hi))
    }
}

/// The affine maps, in the same operations (and roundings) as the float32
/// decoders: `QuantizedMatrix.dequantized` and ggml's Q4_0/Q4_1/Q8_0.
/// `prepare` turns a run's stored pair (a, b) into what `widen` takes.
protocol CodeAffineMap {
    static func prepare(_ a: SIMD16<Float>, _ b: SIMD16<Float>) -> SIMD16<Float>
    static func widen(_ q: SIMD16<Float>, _ a: SIMD16<Float>, _ b: SIMD16<Float>) -> SIMD16<Float>
}

/// (q − b)·a, two operations, for float32 scales (GPTQ/RTN).
enum ScaleZero: CodeAffineMap {
    @inline(__always) static func prepare(_ a: SIMD16<Float>, _ b: SIMD16<Float>) -> SIMD16<Float> { b }
    @inline(__always) static func widen(_ q: SIMD16<Float>, _ a: SIMD16<Float>, _ b: SIMD16<Float>) -> SIMD16<Float> { (q - b) * a }
}

/// q·a + b, two roundings.
enum ScaleMin: CodeAffineMap {
    @inline(__always) static func prepare(_ a: SIMD16<Float>, _ b: SIMD16<Float>) -> SIMD16<Float> { b }
    @inline(__always) static func widen(_ q: SIMD16<Float>, _ a: SIMD16<Float>, _ b: SIMD16<Float>) -> SIMD16<Float> { q * a + b }
}

/// Either map as one fused multiply-add, for pairs stored as f16: a code
/// (8 bits at most) times an f16 scale is exact in float32 (at most 19
/// significant bits), so q·a + b rounds once either way, and (q − b)·a =
/// q·a + (−b·a) is exact, as is −b·a itself. Same values, one operation.
enum FusedScaleMin: CodeAffineMap {
    @inline(__always) static func prepare(_ a: SIMD16<Float>, _ b: SIMD16<Float>) -> SIMD16<Float> { b }
    @inline(__always) static func widen(_ q: SIMD16<Float>, _ a: SIMD16<Float>, _ c: SIMD16<Float>) -> SIMD16<Float> { c.addingProduct(q, a) }
}

enum FusedScaleZero: CodeAffineMap {
    @inline(__always) static func prepare(_ a: SIMD16<Float>, _ b: SIMD16<Float>) -> SIMD16<Float> { -(b * a) }
    @inline(__always) static func widen(_ q: SIMD16<Float>, _ a: SIMD16<Float>, _ c: SIMD16<Float>) -> SIMD16<Float> { c.addingProduct(q, a) }
}

/// Below this many tokens the codes are widened in registers for each
/// group of four tokens (decode, small batches: the step is bound by the
/// bytes it reads); from it on, each panel is widened once into a float32
/// scratch that the float32 kernels then run over all the tokens.
let codeWidenedTokens = 8

/// One part of a code-panel product (a thread's panels).
struct CodeLinear {
    let tokens: Int
    let input: UnsafePointer<Float>
    let ldInput: Int
    let codes: UnsafeRawPointer
    let pairs: UnsafeRawPointer
    let runs: UnsafeBufferPointer<ColumnRun>
    let cols: Int
    let rows: Int
    let groups: Int
    let panels: Range<Int>
    let out: UnsafeMutablePointer<Float>
    let ldOut: Int

    func run<C: CodeWidth, A: CodeAffineMap, P: PanelElement>(_: C.Type, _: A.Type, _: P.Type) {
        let pr = PanelLayout.rows, K = cols, T = tokens
        let panelCodes = K * 2 * C.bits, panelPairs = groups * 2 * pr * P.bytes
        if T < codeWidenedTokens {
            var lanes = [Float](repeating: 0, count: 4 * pr)
            lanes.withUnsafeMutableBufferPointer { lb in
                let tmp = lb.baseAddress!
                var p = panels.lowerBound
                while p < panels.upperBound {
                    let c = codes + p * panelCodes, q = pairs + p * panelPairs
                    // fewer than four tokens: two panels at a time, so that
                    // four independent chains hide the multiply-add latency
                    // (three spill the affine pairs out of the 16 registers)
                    if T < 4, p + 2 <= panels.upperBound, pr * (p + 2) <= rows {
                        for t in 0..<T {
                            codeByOneTwoPanels(C.self, A.self, P.self, input + t * ldInput, c, panelCodes, q, panelPairs, out + t * ldOut + pr * p)
                        }
                        p += 2
                        continue
                    }
                    let whole = pr * (p + 1) <= rows
                    var t = 0
                    while t < T {
                        let n = min(4, T - t)
                        let (o, ldo) = whole ? (out + t * ldOut + pr * p, ldOut) : (tmp, pr)
                        if n == 4 {
                            codeByFour(C.self, A.self, P.self, input + t * ldInput, ldInput, c, q, o, ldo)
                        } else {
                            for i in 0..<n { codeByOne(C.self, A.self, P.self, input + (t + i) * ldInput, c, q, o + i * ldo) }
                        }
                        if !whole {
                            for i in 0..<n { for j in 0..<rows - pr * p { out[(t + i) * ldOut + pr * p + j] = tmp[i * pr + j] } }
                        }
                        t += n
                    }
                    p += 1
                }
            }
            return
        }
        widenedPanels(tokens: T, input: input, ldInput: ldInput, panels: panels, cols: K, rows: rows, out: out, ldOut: ldOut,
                      wide: CPUFeatures.avx512,
                      widen: { p, into in self.widenPanel(C.self, A.self, P.self, codes + p * panelCodes, pairs + p * panelPairs, into) }) { t0, n in
            CodeLinear(tokens: n, input: input + t0 * ldInput, ldInput: ldInput, codes: codes, pairs: pairs, runs: runs, cols: cols,
                       rows: rows, groups: groups, panels: panels, out: out + t0 * ldOut, ldOut: ldOut).run(C.self, A.self, P.self)
        }
    }

    @inline(__always)
    private func widenPanel<C: CodeWidth, A: CodeAffineMap, P: PanelElement>(_: C.Type, _: A.Type, _: P.Type, _ c: UnsafeRawPointer,
                                                                           _ q: UnsafeRawPointer, _ out: UnsafeMutablePointer<Float>) {
        for run in runs {
            let pq = q + Int(run.group) * 32 * P.bytes
            let a = P.load16(pq), b = A.prepare(a, P.load16(pq + 16 * P.bytes))
            var k = Int(run.start)
            while k < Int(run.end) {
                UnsafeMutableRawPointer(out + 16 * k).storeBytes(of: A.widen(C.load16(c + k * 2 * C.bits), a, b), as: SIMD16<Float>.self)
                k &+= 1
            }
        }
    }

    @inline(__always)
    private func codeByFour<C: CodeWidth, A: CodeAffineMap, P: PanelElement>(_: C.Type, _: A.Type, _: P.Type, _ x0: UnsafePointer<Float>, _ ldx: Int,
                                                                           _ c: UnsafeRawPointer, _ q: UnsafeRawPointer,
                                                                           _ o: UnsafeMutablePointer<Float>, _ ldo: Int) {
        let x1 = x0 + ldx, x2 = x1 + ldx, x3 = x2 + ldx
        var a0 = SIMD16<Float>(), a1 = SIMD16<Float>(), a2 = SIMD16<Float>(), a3 = SIMD16<Float>()
        for run in runs {
            let pq = q + Int(run.group) * 32 * P.bytes
            let a = P.load16(pq), b = A.prepare(a, P.load16(pq + 16 * P.bytes))
            var k = Int(run.start)
            let end = Int(run.end)
            var ck = c + k * 2 * C.bits
            while k < end {
                let v = A.widen(C.load16(ck), a, b)
                a0 = a0.addingProduct(SIMD16(repeating: x0[k]), v); a1 = a1.addingProduct(SIMD16(repeating: x1[k]), v)
                a2 = a2.addingProduct(SIMD16(repeating: x2[k]), v); a3 = a3.addingProduct(SIMD16(repeating: x3[k]), v)
                k &+= 1
                ck += 2 * C.bits
            }
        }
        put16(a0, o); put16(a1, o + ldo); put16(a2, o + 2 * ldo); put16(a3, o + 3 * ldo)
    }

    @inline(__always)
    private func codeByOne<C: CodeWidth, A: CodeAffineMap, P: PanelElement>(_: C.Type, _: A.Type, _: P.Type, _ x: UnsafePointer<Float>,
                                                                          _ c: UnsafeRawPointer, _ q: UnsafeRawPointer, _ o: UnsafeMutablePointer<Float>) {
        var acc = SIMD16<Float>()
        for run in runs {
            let pq = q + Int(run.group) * 32 * P.bytes
            let a = P.load16(pq), b = A.prepare(a, P.load16(pq + 16 * P.bytes))
            var k = Int(run.start)
            let end = Int(run.end)
            var ck = c + k * 2 * C.bits
            while k < end {
                acc = acc.addingProduct(SIMD16(repeating: x[k]), A.widen(C.load16(ck), a, b))
                k &+= 1
                ck += 2 * C.bits
            }
        }
        put16(acc, o)
    }
}

extension CodeLinear {
    /// One token by two consecutive panels (`codeBytes` and `pairBytes`
    /// apart): each output's chain as in `codeByOne`.
    @inline(__always)
    func codeByOneTwoPanels<C: CodeWidth, A: CodeAffineMap, P: PanelElement>(_: C.Type, _: A.Type, _: P.Type, _ x: UnsafePointer<Float>,
                                                                           _ c: UnsafeRawPointer, _ codeBytes: Int,
                                                                           _ q: UnsafeRawPointer, _ pairBytes: Int,
                                                                           _ o: UnsafeMutablePointer<Float>) {
        var s0 = SIMD16<Float>(), s1 = SIMD16<Float>()
        for run in runs {
            let pq = q + Int(run.group) * 32 * P.bytes
            let a0 = P.load16(pq), b0 = A.prepare(a0, P.load16(pq + 16 * P.bytes))
            let a1 = P.load16(pq + pairBytes), b1 = A.prepare(a1, P.load16(pq + pairBytes + 16 * P.bytes))
            var k = Int(run.start)
            let end = Int(run.end)
            var ck = c + k * 2 * C.bits
            while k < end {
                let xk = SIMD16<Float>(repeating: x[k])
                s0 = s0.addingProduct(xk, A.widen(C.load16(ck), a0, b0))
                s1 = s1.addingProduct(xk, A.widen(C.load16(ck + codeBytes), a1, b1))
                k &+= 1
                ck += 2 * C.bits
            }
        }
        put16(s0, o); put16(s1, o + 16)
    }
}

@inline(__always)
private func put16(_ v: SIMD16<Float>, _ p: UnsafeMutablePointer<Float>) {
    UnsafeMutableRawPointer(p).storeBytes(of: v, as: SIMD16<Float>.self)
}
