import AVX512Kernels
import CPermute

/// An unstructured sparse weight as the engine holds it: per panel of 16
/// rows and per column, a 16-bit mask of the lanes (rows) kept, and the kept
/// values themselves, packed in panel, column and lane order at their source
/// precision (f16, bf16 or float32). 70% sparse f16 takes 0.3 × 16 + 1 bits
/// a weight against dense f16's 16; float32 values (a pruned ggml source's,
/// decoded) 0.3 × 32 + 1 against 32.
///
/// A decode step reads each half column's mask byte, loads the next eight
/// packed values and spreads them back to their lanes in registers (one
/// permute and one blend through a 256-entry index table), then multiply-
/// adds them as the dense kernel does: each output's chain is the dense
/// chain with zero terms (which add nothing), so the logits are those of the
/// same weights held dense, bit for bit. From four tokens on, each panel is
/// widened to dense float32 once and the float32 kernels run over all the
/// tokens.
///
/// The spreading costs two vector operations per eight weights that a dense
/// kernel does not pay, so the engine holds a weight this way only above
/// the sparsity where it measured the sparse kernel faster
/// (`minimumSparsity`).
public struct SparsePanels: Sendable {
    public let rows: Int
    public let cols: Int
    public let format: PanelFormat
    /// panels × cols masks, bit i for lane i
    let masks: [UInt16]
    /// the kept values, then eight elements of padding (the kernel loads
    /// eight at a time)
    let values: [UInt8]
    /// each panel's first value, as an element index into `values`
    let panelStart: [Int]
    /// kept / (rows × cols)
    public let density: Double

    var panels: Int { (rows + PanelLayout.rows - 1) / PanelLayout.rows }
    public var label: String { "sparse-\(format.rawValue)" }
    public var byteCount: Int { masks.count * 2 + values.count + panelStart.count * MemoryLayout<Int>.stride }

    /// The fraction of zeros from which `kick-infer` holds a pruned weight
    /// with values of this format sparse, or nil where the sparse kernel
    /// was slower than the dense one at every sparsity measured (to 95%):
    /// `kick-infer bench-linear --rows 4096 --cols 4096 --tokens 1 --form
    /// sparse<percent>-<format>` against the dense form (docs/
    /// performance.md, "Unstructured sparsity"). Dense float32 is bound by
    /// memory bandwidth at decode, so fewer bytes win from about 40%; dense
    /// 16-bit panels stream half the bytes and the spreading costs more
    /// than even 95% sparsity saves.
    public static func minimumSparsity(_ format: PanelFormat) -> Double? {
        format == .f32 ? 0.4 : nil
    }

    /// The fraction of exact zeros in the parts.
    public static func sparsity(of parts: [Matrix]) -> Double {
        var zeros = 0, total = 0
        for m in parts {
            total += m.data.count
            m.data.withUnsafeBufferPointer { d in for v in d where v == 0 { zeros += 1 } }
        }
        return total == 0 ? 0 : Double(zeros) / Double(total)
    }

    /// The parts' rows one after another (fused q/k/v, gate/up), kept
    /// values narrowed to `format` (exact for values that came from it).
    public init(stacking parts: [Matrix], format: PanelFormat) {
        precondition(!parts.isEmpty && parts.allSatisfy { $0.cols == parts[0].cols }, "stacked weights need equal columns")
        let pr = PanelLayout.rows, cols = parts[0].cols
        let rows = parts.reduce(0) { $0 + $1.rows }
        self.rows = rows
        self.cols = cols
        self.format = format
        let panels = (rows + pr - 1) / pr
        let source = stackedRowSources(parts.map(\.rows))
        var masks = [UInt16](repeating: 0, count: panels * cols)
        var values: [UInt8] = []
        var starts: [Int] = []
        starts.reserveCapacity(panels + 1)
        var kept = 0
        let eb = format.bytes
        for p in 0..<panels {
            starts.append(kept)
            let lanes = (0..<pr).map { lane -> (part: Int, at: Int)? in
                let row = p * pr + lane
                return row < rows ? (source[row].part, source[row].row * cols) : nil
            }
            for k in 0..<cols {
                var m: UInt16 = 0
                for lane in 0..<pr {
                    guard let (part, at) = lanes[lane] else { continue }
                    let v = parts[part].data[at + k]
                    guard v != 0 else { continue }
                    m |= 1 << lane
                    kept += 1
                    if format == .f32 {
                        withUnsafeBytes(of: v.bitPattern.littleEndian) { values.append(contentsOf: $0) }
                    } else {
                        let h = format.narrow(v)
                        values.append(UInt8(h & 0xFF)); values.append(UInt8(h >> 8))
                    }
                }
                masks[p * cols + k] = m
            }
        }
        starts.append(kept)
        values.append(contentsOf: repeatElement(0, count: 8 * eb))
        self.masks = masks
        self.values = values
        panelStart = starts
        density = rows * cols == 0 ? 0 : Double(kept) / Double(rows * cols)
    }

    /// Row r widened to float32.
    public func copyRow(_ r: Int, into out: UnsafeMutablePointer<Float>) {
        let pr = PanelLayout.rows, p = r / pr, lane = r % pr, eb = format.bytes
        let below = UInt16((1 << lane) - 1), bit = UInt16(1 << lane)
        values.withUnsafeBytes { v in
            var at = panelStart[p]
            for k in 0..<cols {
                let m = masks[p * cols + k]
                if m & bit != 0 {
                    let e = v.baseAddress! + (at + (m & below).nonzeroBitCount) * eb
                    out[k] = format == .f32 ? Float(bitPattern: UInt32(littleEndian: e.loadUnaligned(as: UInt32.self)))
                        : format.widen(UInt16(littleEndian: e.loadUnaligned(as: UInt16.self)))
                } else {
                    out[k] = 0
                }
                at += m.nonzeroBitCount
            }
        }
    }

    /// out (T × rows, row stride ldOut) = input (T × cols) · weightᵀ.
    func apply(tokens T: Int, input: UnsafePointer<Float>, out: UnsafeMutablePointer<Float>, ldOut: Int, team: ThreadTeam?) {
        masks.withUnsafeBufferPointer { mb in
            values.withUnsafeBytes { vb in
                panelStart.withUnsafeBufferPointer { sb in
                    sparseExpandTable.withUnsafeBufferPointer { tb in
                        forEachPanelPart(panels: panels, team: team) { part in
                            let k = SparseLinear(tokens: T, input: input, ldInput: cols, masks: mb.baseAddress!, values: vb.baseAddress!,
                                                 starts: sb.baseAddress!, table: tb.baseAddress!, cols: cols, rows: rows, panels: part,
                                                 out: out, ldOut: ldOut)
                            switch format {
                            case .f32: k.run(F32Element.self)
                            case .f16: k.run(F16Element.self)
                            case .bf16: k.run(BF16Element.self)
                            }
                        }
                    }
                }
            }
        }
    }
}

/// For each mask byte, eight lane indices: lane i's rank among the kept
/// lanes below it where bit i is set, -128 (the blend's zero) where not.
let sparseExpandTable: [Int8] = {
    var t = [Int8](repeating: Int8.min, count: 256 * 8)
    for m in 0..<256 {
        for i in 0..<8 where m & (1 << i) != 0 {
            let below: Int = m & ((1 << i) - 1)
            t[8 * m + i] = Int8(below.nonzeroBitCount)
        }
    }
    return t
}()

/// One part of an unstructured sparse product (a thread's panels).
struct SparseLinear {
    let tokens: Int
    let input: UnsafePointer<Float>
    let ldInput: Int
    let masks: UnsafePointer<UInt16>
    let values: UnsafeRawPointer
    let starts: UnsafePointer<Int>
    let table: UnsafePointer<Int8>
    let cols: Int
    let rows: Int
    let panels: Range<Int>
    let out: UnsafeMutablePointer<Float>
    let ldOut: Int

    func run<E: PanelElement>(_: E.Type) {
        let pr = PanelLayout.rows
        if tokens < 4 {
            var lanes = [Float](repeating: 0, count: pr)
            lanes.withUnsafeMutableBufferPointer { lb in
                for t in 0..<tokens {
                    let x = input + t * ldInput, o = out + t * ldOut
                    for p in panels {
                        let whole = pr * (p + 1) <= rows
                        sparsePanel(E.self, x, p, whole ? o + pr * p : lb.baseAddress!)
                        if !whole { for j in 0..<rows - pr * p { o[pr * p + j] = lb[j] } }
                    }
                }
            }
            return
        }
        widenedPanels(tokens: tokens, input: input, ldInput: ldInput, panels: panels, cols: cols, rows: rows, out: out, ldOut: ldOut,
                      wide: CPUFeatures.avx512, widen: { p, into in self.widenPanel(E.self, p, into) }) { t0, count in
            SparseLinear(tokens: count, input: input + t0 * ldInput, ldInput: ldInput, masks: masks, values: values, starts: starts,
                         table: table, cols: cols, rows: rows, panels: panels, out: out + t0 * ldOut, ldOut: ldOut).run(E.self)
        }
    }

    /// Panel p's 16 lanes of column k, dense (zeros where pruned); `at`
    /// moves past the column's kept values.
    @inline(__always)
    private func column<E: PanelElement>(_: E.Type, _ m: UInt16, _ at: inout UnsafeRawPointer) -> (SIMD8<Float>, SIMD8<Float>) {
        let lo = Int(m & 0xFF), hi = Int(m >> 8)
        let w0 = kick_expand8(E.load8(at), kick_load_sbytes8(table + 8 * lo))
        at += lo.nonzeroBitCount * E.bytes
        let w1 = kick_expand8(E.load8(at), kick_load_sbytes8(table + 8 * hi))
        at += hi.nonzeroBitCount * E.bytes
        return (w0, w1)
    }

    /// One token by one panel: the dense chain per lane, column by column.
    @inline(__always)
    private func sparsePanel<E: PanelElement>(_: E.Type, _ x: UnsafePointer<Float>, _ p: Int, _ o: UnsafeMutablePointer<Float>) {
        var a0 = SIMD8<Float>(), a1 = SIMD8<Float>()
        var at = values + starts[p] * E.bytes
        let mk = masks + p * cols
        for k in 0..<cols {
            let (w0, w1) = column(E.self, mk[k], &at)
            let xk = SIMD8<Float>(repeating: x[k])
            a0 = a0.addingProduct(xk, w0)
            a1 = a1.addingProduct(xk, w1)
        }
        UnsafeMutableRawPointer(o).storeBytes(of: SIMD16(lowHalf: a0, highHalf: a1), as: SIMD16<Float>.self)
    }

    /// The panel as dense float32 panel columns.
    private func widenPanel<E: PanelElement>(_: E.Type, _ p: Int, _ out: UnsafeMutablePointer<Float>) {
        var at = values + starts[p] * E.bytes
        let mk = masks + p * cols
        for k in 0..<cols {
            let (w0, w1) = column(E.self, mk[k], &at)
            UnsafeMutableRawPointer(out + 16 * k).storeBytes(of: SIMD16(lowHalf: w0, highHalf: w1), as: SIMD16<Float>.self)
        }
    }
}
