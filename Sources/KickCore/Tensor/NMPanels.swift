import AVX512Kernels
import CPermute

/// An N:M sparse weight (each row keeps at most N of every M consecutive
/// inputs; M of 2, 4 or 8) as the engine holds it: per panel of 16 rows and
/// per group of M columns, the N kept values of each row at their source
/// precision (f16, bf16 or float32), slot by slot (16 lanes each), then the
/// slots' in-group positions, a byte per lane for each pair of slots (the
/// even slot's position in bits 0-2, the odd one's in bits 3-5). 2:4 of f16
/// takes 10 bits a weight against dense f16's 16.
///
/// A decode step loads each group's M inputs once and permutes them into
/// every lane's kept positions in registers (one permute per 8 lanes and
/// slot), then multiply-adds the kept values: each output's chain is the
/// dense chain without its zero terms (which add nothing), in the same
/// column order, so the logits are those of the same weights held dense.
/// From four tokens on, each panel is widened to dense float32 once and the
/// float32 kernels run over all the tokens.
public struct NMPanels: Sendable {
    public let rows: Int
    public let cols: Int
    public let n: Int
    public let m: Int
    public let format: PanelFormat
    let bytes: [UInt8]

    var panels: Int { (rows + PanelLayout.rows - 1) / PanelLayout.rows }
    var groups: Int { cols / m }
    var groupBytes: Int { n * 16 * format.bytes + (n + 1) / 2 * 16 }
    public var label: String { "\(n):\(m)-\(format.rawValue)" }
    public var byteCount: Int { bytes.count }

    /// The parts' rows one after another; nil unless every group of every
    /// row holds at most n nonzeros, M is 2, 4 or 8 and divides the columns.
    public init?(stacking parts: [Matrix], n: Int, m: Int, format: PanelFormat) {
        guard [2, 4, 8].contains(m), n >= 1, n < m, let f = parts.first, f.cols % m == 0, parts.allSatisfy({ $0.cols == f.cols }) else { return nil }
        let pr = PanelLayout.rows, cols = f.cols, groups = cols / m
        rows = parts.reduce(0) { $0 + $1.rows }
        self.cols = cols; self.n = n; self.m = m; self.format = format
        let eb = format.bytes, gb = n * 16 * eb + (n + 1) / 2 * 16
        let panels = (rows + pr - 1) / pr
        let source = stackedRowSources(parts.map(\.rows))
        var out = [UInt8](repeating: 0, count: panels * groups * gb)
        for p in 0..<panels {
            for lane in 0..<pr {
                let row = p * pr + lane
                guard row < rows else { continue }
                let (part, r) = source[row]
                let src = parts[part]
                for g in 0..<groups {
                    var pos: [Int] = []
                    for j in 0..<m where src.data[r * cols + g * m + j] != 0 { pos.append(j) }
                    guard pos.count <= n else { return nil }
                    // pad with zero-valued slots at unused positions
                    var j = 0
                    while pos.count < n { if !pos.contains(j) { pos.append(j) }; j += 1 }
                    let base = (p * groups + g) * gb
                    for (s, q) in pos.enumerated() {
                        let v = src.data[r * cols + g * m + q]
                        let at = base + (s * 16 + lane) * eb
                        switch format {
                        case .f32: withUnsafeBytes(of: v.bitPattern) { for b in 0..<4 { out[at + b] = $0[b] } }
                        default:
                            let h = format.narrow(v)
                            out[at] = UInt8(h & 0xFF); out[at + 1] = UInt8(h >> 8)
                        }
                        out[base + n * 16 * eb + (s / 2) * 16 + lane] |= UInt8(q << (3 * (s % 2)))
                    }
                }
            }
        }
        bytes = out
    }

    /// Row r widened to float32.
    public func copyRow(_ r: Int, into out: UnsafeMutablePointer<Float>) {
        let pr = PanelLayout.rows, p = r / pr, lane = r % pr, eb = format.bytes, gb = groupBytes
        for k in 0..<cols { out[k] = 0 }
        bytes.withUnsafeBytes { b in
            for g in 0..<groups {
                let base = (p * groups + g) * gb
                for s in 0..<n {
                    let q = Int(b[base + n * 16 * eb + (s / 2) * 16 + lane] >> (3 * (s % 2))) & 7
                    let at = b.baseAddress! + base + (s * 16 + lane) * eb
                    let v = format == .f32 ? Float(bitPattern: at.loadUnaligned(as: UInt32.self)) : format.widen(at.loadUnaligned(as: UInt16.self))
                    if v != 0 { out[g * m + q] = v }
                }
            }
        }
    }

    /// out (T × rows, row stride ldOut) = input (T × cols) · weightᵀ.
    func apply(tokens T: Int, input: UnsafePointer<Float>, out: UnsafeMutablePointer<Float>, ldOut: Int, team: ThreadTeam?) {
        bytes.withUnsafeBytes { b in
            forEachPanelPart(panels: panels, team: team) { part in
                let k = NMLinear(tokens: T, input: input, ldInput: self.cols, weight: b.baseAddress!, cols: self.cols, rows: self.rows,
                                 n: self.n, groupBytes: self.groupBytes, panels: part, out: out, ldOut: ldOut)
                switch (self.format, self.m) {
                case (.f16, 4): k.run(F16Element.self, Group4.self)
                case (.f16, 8): k.run(F16Element.self, Group8.self)
                case (.f16, _): k.run(F16Element.self, Group2.self)
                case (.bf16, 4): k.run(BF16Element.self, Group4.self)
                case (.bf16, 8): k.run(BF16Element.self, Group8.self)
                case (.bf16, _): k.run(BF16Element.self, Group2.self)
                case (_, 4): k.run(F32Element.self, Group4.self)
                case (_, 8): k.run(F32Element.self, Group8.self)
                default: k.run(F32Element.self, Group2.self)
                }
            }
        }
    }
}

/// A group width: its M inputs loaded into the low lanes of an 8-lane vector.
protocol NMGroupWidth {
    static var m: Int { get }
    static func inputs(_ x: UnsafePointer<Float>) -> SIMD8<Float>
}

enum Group2: NMGroupWidth {
    @inline(__always) static var m: Int { 2 }
    @inline(__always) static func inputs(_ x: UnsafePointer<Float>) -> SIMD8<Float> {
        let v = UnsafeRawPointer(x).loadUnaligned(as: SIMD2<Float>.self)
        let v4 = SIMD4(lowHalf: v, highHalf: v)
        return SIMD8(lowHalf: v4, highHalf: v4)
    }
}

enum Group4: NMGroupWidth {
    @inline(__always) static var m: Int { 4 }
    @inline(__always) static func inputs(_ x: UnsafePointer<Float>) -> SIMD8<Float> {
        let v = UnsafeRawPointer(x).loadUnaligned(as: SIMD4<Float>.self)
        return SIMD8(lowHalf: v, highHalf: v)
    }
}

enum Group8: NMGroupWidth {
    @inline(__always) static var m: Int { 8 }
    @inline(__always) static func inputs(_ x: UnsafePointer<Float>) -> SIMD8<Float> { UnsafeRawPointer(x).loadUnaligned(as: SIMD8<Float>.self) }
}

/// One part of an N:M product (a thread's panels).
struct NMLinear {
    let tokens: Int
    let input: UnsafePointer<Float>
    let ldInput: Int
    let weight: UnsafeRawPointer
    let cols: Int
    let rows: Int
    let n: Int
    let groupBytes: Int
    let panels: Range<Int>
    let out: UnsafeMutablePointer<Float>
    let ldOut: Int

    func run<E: PanelElement, G: NMGroupWidth>(_: E.Type, _: G.Type) {
        let pr = PanelLayout.rows, groups = cols / G.m, panelBytes = groups * groupBytes
        if tokens < 4 {
            var lanes = [Float](repeating: 0, count: 2 * pr)
            lanes.withUnsafeMutableBufferPointer { lb in
                let tmp = lb.baseAddress!
                for t in 0..<tokens {
                    let x = input + t * ldInput, o = out + t * ldOut
                    var p = panels.lowerBound
                    while p < panels.upperBound {
                        let two = p + 2 <= panels.upperBound && pr * (p + 2) <= rows
                        let whole = pr * (p + 1) <= rows
                        let dst = two || whole ? o + pr * p : tmp
                        nmPanels(E.self, G.self, x, weight + p * panelBytes, two ? panelBytes : 0, groups, dst)
                        if !two && !whole { for j in 0..<rows - pr * p { o[pr * p + j] = tmp[j] } }
                        p += two ? 2 : 1
                    }
                }
            }
            return
        }
        widenedPanels(tokens: tokens, input: input, ldInput: ldInput, panels: panels, cols: cols, rows: rows, out: out, ldOut: ldOut,
                      wide: CPUFeatures.avx512,
                      widen: { p, into in self.widenPanel(E.self, G.self, self.weight + p * panelBytes, groups, into) }) { t0, count in
            NMLinear(tokens: count, input: input + t0 * ldInput, ldInput: ldInput, weight: weight, cols: cols, rows: rows, n: n,
                     groupBytes: groupBytes, panels: panels, out: out + t0 * ldOut, ldOut: ldOut).run(E.self, G.self)
        }
    }

    /// One token by one panel (`second` = 0) or two consecutive panels
    /// (`second` bytes apart: two independent chains per lane).
    @inline(__always)
    private func nmPanels<E: PanelElement, G: NMGroupWidth>(_: E.Type, _: G.Type, _ x: UnsafePointer<Float>, _ w: UnsafeRawPointer,
                                                             _ second: Int, _ groups: Int, _ o: UnsafeMutablePointer<Float>) {
        var a0 = SIMD16<Float>(), a1 = SIMD16<Float>()
        let valueBytes = n * 16 * E.bytes
        var g = 0, wg = w
        if n == 2 {
            // both slots' positions share a byte per lane: loaded once, the
            // first slot's used as they are (vpermps reads only an index's
            // low three bits), the second's shifted down
            while g < groups {
                let xg = G.inputs(x + g * G.m)
                let ib = wg + valueBytes
                let i0 = kick_load_bytes8(ib), i1 = kick_load_bytes8(ib + 8)
                a0 = a0.addingProduct(SIMD16(lowHalf: kick_permute8(xg, i0), highHalf: kick_permute8(xg, i1)), E.load16(wg))
                a0 = a0.addingProduct(SIMD16(lowHalf: kick_permute8(xg, i0 &>> 3), highHalf: kick_permute8(xg, i1 &>> 3)),
                                      E.load16(wg + 16 * E.bytes))
                if second != 0 {
                    let j0 = kick_load_bytes8(ib + second), j1 = kick_load_bytes8(ib + second + 8)
                    a1 = a1.addingProduct(SIMD16(lowHalf: kick_permute8(xg, j0), highHalf: kick_permute8(xg, j1)), E.load16(wg + second))
                    a1 = a1.addingProduct(SIMD16(lowHalf: kick_permute8(xg, j0 &>> 3), highHalf: kick_permute8(xg, j1 &>> 3)),
                                          E.load16(wg + second + 16 * E.bytes))
                }
                g &+= 1
                wg += groupBytes
            }
        }
        while g < groups {
            let xg = G.inputs(x + g * G.m)
            for s in 0..<n {
                let ib = wg + valueBytes + (s >> 1) * 16, shift = SIMD8<Int32>(repeating: Int32(3 * (s & 1)))
                let i0 = kick_load_bytes8(ib) &>> shift
                let i1 = kick_load_bytes8(ib + 8) &>> shift
                let xs = SIMD16(lowHalf: kick_permute8(xg, i0), highHalf: kick_permute8(xg, i1))
                a0 = a0.addingProduct(xs, E.load16(wg + s * 16 * E.bytes))
                if second != 0 {
                    let jb = ib + second
                    let j0 = kick_load_bytes8(jb) &>> shift
                    let j1 = kick_load_bytes8(jb + 8) &>> shift
                    let ys = SIMD16(lowHalf: kick_permute8(xg, j0), highHalf: kick_permute8(xg, j1))
                    a1 = a1.addingProduct(ys, E.load16(wg + second + s * 16 * E.bytes))
                }
            }
            g &+= 1
            wg += groupBytes
        }
        UnsafeMutableRawPointer(o).storeBytes(of: a0, as: SIMD16<Float>.self)
        if second != 0 { UnsafeMutableRawPointer(o + 16).storeBytes(of: a1, as: SIMD16<Float>.self) }
    }

    /// The panel as dense float32 panel columns (zeros where pruned).
    private func widenPanel<E: PanelElement, G: NMGroupWidth>(_: E.Type, _: G.Type, _ w: UnsafeRawPointer, _ groups: Int,
                                                               _ out: UnsafeMutablePointer<Float>) {
        out.initialize(repeating: 0, count: 16 * cols)
        let valueBytes = n * 16 * E.bytes
        var lanes = SIMD16<Float>()
        for g in 0..<groups {
            let wg = w + g * groupBytes
            for s in 0..<n {
                lanes = E.load16(wg + s * 16 * E.bytes)
                let ib = wg + valueBytes + (s >> 1) * 16, shift = 3 * (s & 1)
                let col = out + 16 * g * G.m
                withUnsafeBytes(of: &lanes) { lb in
                    let v = lb.baseAddress!.assumingMemoryBound(to: Float.self)
                    for lane in 0..<16 where v[lane] != 0 {
                        col[16 * Int((ib.load(fromByteOffset: lane, as: UInt8.self) >> shift) & 7) + lane] = v[lane]
                    }
                }
            }
        }
    }
}
