import AVX512Kernels
import CPrefetch

/// Rows per panel, the kernels' vector width (`PanelLayout`).
private var panelRows: Int { PanelLayout.rows }

/// A linear layer's weight (rows × cols) as the engine multiplies it: in
/// panels of 16 rows, each panel stored column by column, so element (r, k)
/// sits at 16·cols·(r / 16) + 16·k + r % 16. Rows past the last are zero.
///
/// Why this layout: with it a product needs no horizontal sums and no
/// repacking. For each column k a kernel loads 16 consecutive rows' weights
/// as one vector and multiplies it by each token's X[t, k] broadcast, so
/// every output is a plain fused multiply-add chain over k in order. That
/// chain is the same for one token, a decode batch or a prefill, on AVX-512
/// or AVX2: the logits of a sequence do not depend on what shares its
/// forward pass, bit for bit. (OpenBLAS repacks a row-major weight on every
/// call, and a decode step's products are too small to hide that.)
///
/// Packing costs one pass over the weight when the engine is built; the
/// row-major matrix is not kept (the token embedding is read back by rows,
/// and is packed in its own storage).
///
/// The panels hold float32, or f16/bf16 (`PanelFormat`) for weights that
/// are 16-bit at the source: half the memory, and half the bytes a decode
/// step streams. The kernels widen them in registers, exactly, so the
/// chains and the bits are those of the float32 panels.
public struct PackedWeight: Sendable {
    public let rows: Int
    public let cols: Int
    public let format: PanelFormat
    public var panels: Int { (rows + panelRows - 1) / panelRows }
    /// Float32 panels, or 16-bit ones: exactly one of the two is non-empty.
    let data: [Float]
    let half: [UInt16]
    /// Integer codes instead of floats (quantized sources): `format` is
    /// then f32, the type the kernels widen them to.
    let codes: CodePanels?
    /// N:M sparse instead of dense (pruned checkpoints): `format` is then
    /// f32, the type the kernels widen them to.
    let nm: NMPanels?
    /// Unstructured sparse instead of dense (pruned checkpoints above the
    /// measured crossover): `format` is then f32.
    let sparse: SparsePanels?

    /// Packs a copy of `m`.
    public init(_ m: Matrix, format: PanelFormat = .f32) {
        var copy = m
        self.init(taking: &copy, format: format)
    }

    /// Packs `m`'s own storage and leaves `m` empty: no second float32 copy
    /// of a large matrix (the token embedding) while the engine is built.
    public init(taking m: inout Matrix, format: PanelFormat = .f32) {
        var d: [Float] = []
        swap(&d, &m.data)
        let (rows, cols) = (m.rows, m.cols)
        m = Matrix(rows: 0, cols: cols, data: [])
        self.init(rows: rows, cols: cols, rowMajor: d, format: format)
    }

    /// The matrices' rows one after another (fused q/k/v, gate/up). All must
    /// have the same columns. 16-bit panels are packed from the parts
    /// directly (no float32 concatenation: a 13B gate/up pair is 0.5 GB).
    public init(stacking parts: [Matrix], format: PanelFormat = .f32) {
        precondition(!parts.isEmpty && parts.allSatisfy { $0.cols == parts[0].cols }, "stacked weights need equal columns")
        let rows = parts.reduce(0) { $0 + $1.rows }, cols = parts[0].cols
        guard format == .f32 else {
            self.init(rows: rows, cols: cols, format: format, data: [], half: Self.packHalf(rows: rows, cols: cols, parts.map(\.data), format))
            return
        }
        var d: [Float] = []
        d.reserveCapacity((rows + panelRows - 1) / panelRows * panelRows * cols)
        for m in parts { d += m.data }
        self.init(rows: rows, cols: cols, rowMajor: d, format: format)
    }

    private init(rows: Int, cols: Int, rowMajor: consuming [Float], format: PanelFormat) {
        precondition(rowMajor.count == rows * cols, "weight data does not match its shape")
        if format == .f32 {
            self.init(rows: rows, cols: cols, format: format, data: Self.packInPlace(rows: rows, cols: cols, rowMajor), half: [])
        } else {
            self.init(rows: rows, cols: cols, format: format, data: [], half: Self.packHalf(rows: rows, cols: cols, [rowMajor], format))
        }
    }

    private init(rows: Int, cols: Int, format: PanelFormat, data: [Float], half: [UInt16]) {
        self.rows = rows
        self.cols = cols
        self.format = format
        self.data = data
        self.half = half
        codes = nil
        nm = nil
        sparse = nil
    }

    /// A weight held as integer codes.
    public init(codes: CodePanels) { self.init(rows: codes.rows, cols: codes.cols, codes: codes, nm: nil, sparse: nil) }

    /// A weight held as N:M sparse panels.
    public init(nm: NMPanels) { self.init(rows: nm.rows, cols: nm.cols, codes: nil, nm: nm, sparse: nil) }

    /// A weight held as unstructured sparse panels.
    public init(sparse: SparsePanels) { self.init(rows: sparse.rows, cols: sparse.cols, codes: nil, nm: nil, sparse: sparse) }

    /// One of the forms the kernels widen to float32 in registers.
    private init(rows: Int, cols: Int, codes: CodePanels?, nm: NMPanels?, sparse: SparsePanels?) {
        self.rows = rows
        self.cols = cols
        format = .f32
        data = []
        half = []
        self.codes = codes
        self.nm = nm
        self.sparse = sparse
    }

    /// How the weight is held, for reports: "f32", "f16", "bf16", or the
    /// codes' label ("Q4_1", "q4-g128").
    public var formName: String { codes?.label ?? nm?.label ?? sparse?.label ?? format.rawValue }

    /// Pads the rows to whole panels with zeros, then transposes each panel
    /// where it lies: rows 16p..<16p+16 row-major occupy exactly the floats
    /// panel p does, so one panel-sized buffer is all the extra memory.
    private static func packInPlace(rows: Int, cols: Int, _ rowMajor: consuming [Float]) -> [Float] {
        var d = rowMajor
        let panels = (rows + panelRows - 1) / panelRows
        d.append(contentsOf: repeatElement(0, count: panels * panelRows * cols - d.count))
        let block = panelRows * cols
        let tmp = UnsafeMutablePointer<Float>.allocate(capacity: block)
        defer { tmp.deallocate() }
        d.withUnsafeMutableBufferPointer { b in
            for p in 0..<panels {
                let base = b.baseAddress! + p * block
                tmp.update(from: base, count: block)
                for r in 0..<panelRows {
                    let src = tmp + r * cols
                    for k in 0..<cols { base[panelRows * k + r] = src[k] }
                }
            }
        }
        return d
    }

    /// The panels narrowed to 16 bits as they are laid out, from row-major
    /// parts whose rows follow one another.
    private static func packHalf(rows: Int, cols: Int, _ parts: [[Float]], _ format: PanelFormat) -> [UInt16] {
        let panels = (rows + panelRows - 1) / panelRows
        // each row's part and its first element there
        let rowSource = stackedRowSources(parts.map { $0.count / max(cols, 1) })
        precondition(rowSource.count == rows, "weight data does not match its shape")
        return [UInt16](unsafeUninitializedCapacity: panels * panelRows * cols) { out, n in
            for p in 0..<panels {
                let base = out.baseAddress! + p * panelRows * cols
                for r in 0..<panelRows {
                    let row = p * panelRows + r
                    guard row < rows else {
                        for k in 0..<cols { base[panelRows * k + r] = 0 }
                        continue
                    }
                    let (part, partRow) = rowSource[row], at = partRow * cols
                    parts[part].withUnsafeBufferPointer { src in
                        let s = src.baseAddress! + at
                        for k in 0..<cols { base[panelRows * k + r] = format.narrow(s[k]) }
                    }
                }
            }
            n = panels * panelRows * cols
        }
    }

    /// Bytes the panels occupy.
    public var byteCount: Int { data.count * 4 + half.count * 2 + (codes?.byteCount ?? 0) + (nm?.byteCount ?? 0) + (sparse?.byteCount ?? 0) }

    /// The panels' first byte, for the kernels.
    func withPanels<R>(_ body: (UnsafeRawPointer) -> R) -> R {
        format == .f32 ? data.withUnsafeBytes { body($0.baseAddress!) } : half.withUnsafeBytes { body($0.baseAddress!) }
    }

    /// Row r (a token's embedding when this is the embedding matrix).
    public func copyRow(_ r: Int, into out: UnsafeMutablePointer<Float>) {
        if let codes { return codes.copyRow(r, into: out) }
        if let nm { return nm.copyRow(r, into: out) }
        if let sparse { return sparse.copyRow(r, into: out) }
        let start = (r / panelRows) * panelRows * cols + r % panelRows
        if format == .f32 {
            data.withUnsafeBufferPointer { d in
                let base = d.baseAddress! + start
                for k in 0..<cols { out[k] = base[panelRows * k] }
            }
        } else {
            half.withUnsafeBufferPointer { d in
                let base = d.baseAddress! + start
                for k in 0..<cols { out[k] = format.widen(base[panelRows * k]) }
            }
        }
    }

    /// The weight back in row-major order (widened to float32).
    public var matrix: Matrix {
        var m = Matrix(zeros: rows, cols)
        m.data.withUnsafeMutableBufferPointer { b in for r in 0..<rows { copyRow(r, into: b.baseAddress! + r * cols) } }
        return m
    }

    /// Which kernel `apply` runs on this machine, for benchmark reports.
    public static var kernelName: String {
        #if arch(x86_64)
        if CPUFeatures.avx512 { return "avx512, \(PanelLayout.tilePanels * panelRows) rows x 6 tokens" }
        #endif
        return "simd16, \(panelRows) rows x 4 tokens, x 6 from \(sixTokenMinimum) tokens"
    }

    /// out (T × rows, row stride `ldOut`) = input (T × cols) · weightᵀ.
    /// With a team the panels are split into one part per thread, in
    /// multiples of three panels (the AVX-512 kernel's tile).
    public func apply(tokens T: Int, input: UnsafePointer<Float>, out: UnsafeMutablePointer<Float>, ldOut: Int? = nil,
                      team: ThreadTeam?) {
        let ld = ldOut ?? rows
        if let codes { return codes.apply(tokens: T, input: input, out: out, ldOut: ld, team: team) }
        if let nm { return nm.apply(tokens: T, input: input, out: out, ldOut: ld, team: team) }
        if let sparse { return sparse.apply(tokens: T, input: input, out: out, ldOut: ld, team: team) }
        let (rows, cols, format) = (rows, cols, format)
        withPanels { w in
            forEachPanelPart(panels: panels, team: team) { part in
                packedLinear(tokens: T, input: input, ldInput: cols, weight: w, format: format, panels: part, cols: cols, rows: rows,
                             out: out, ldOut: ld, wide: CPUFeatures.avx512)
            }
        }
    }
}

/// Runs `body` on the panels split into one part per thread of the team,
/// in multiples of three panels (the AVX-512 kernel's tile): every weight
/// form's product splits its panels this way.
func forEachPanelPart(panels: Int, team: ThreadTeam?, _ body: (Range<Int>) -> Void) {
    let tile = PanelLayout.tilePanels
    let parts = min(team?.size ?? 1, max(1, panels / tile))
    let per = ((panels + parts - 1) / parts + tile - 1) / tile * tile
    func part(_ i: Int) {
        let p0 = i * per, p1 = min(panels, p0 + per)
        if p0 < p1 { body(p0..<p1) }
    }
    if let team, parts > 1 { team.forEach(parts) { i, _ in part(i) } } else { part(0) }
}

/// For each row of matrices stacked one after another (fused q/k/v,
/// gate/up), which matrix it comes from and its row there.
func stackedRowSources(_ rowCounts: [Int]) -> [(part: Int, row: Int)] {
    var out: [(part: Int, row: Int)] = []
    out.reserveCapacity(rowCounts.reduce(0, +))
    for (i, n) in rowCounts.enumerated() { for r in 0..<n { out.append((i, r)) } }
    return out
}

/// The panels' product through the AVX-512 kernel where `wide`, for
/// whole three-panel tiles of whole rows, and through `panelLinear` for
/// the rest (a last panel or two, or one past the last row): the same
/// chains and so the same bits either way.
func packedLinear(tokens T: Int, input X: UnsafePointer<Float>, ldInput: Int,
                  weight W: UnsafeRawPointer, format: PanelFormat, panels: Range<Int>, cols K: Int, rows: Int,
                  out C: UnsafeMutablePointer<Float>, ldOut: Int, wide: Bool) {
    if !wide, T >= sixTokenMinimum {
        switch format {
        case .f32: sixTokenLinear(F32Element.self, tokens: T, input: X, ldInput: ldInput, weight: W, panels: panels, cols: K, rows: rows, out: C, ldOut: ldOut)
        case .f16: sixTokenLinear(F16Element.self, tokens: T, input: X, ldInput: ldInput, weight: W, panels: panels, cols: K, rows: rows, out: C, ldOut: ldOut)
        case .bf16: sixTokenLinear(BF16Element.self, tokens: T, input: X, ldInput: ldInput, weight: W, panels: panels, cols: K, rows: rows, out: C, ldOut: ldOut)
        }
        return
    }
    if format != .f32, T >= widenedTokens {
        widenedLinear(tokens: T, input: X, ldInput: ldInput, weight: W, format: format, panels: panels, cols: K, rows: rows,
                      out: C, ldOut: ldOut, wide: wide)
        return
    }
    var rest = panels
    #if arch(x86_64)
    if wide {
        let tiled = max(0, min(panels.upperBound, rows / panelRows) - panels.lowerBound) / PanelLayout.tilePanels * PanelLayout.tilePanels
        if tiled > 0 {
            packedLinear512(tokens: T, input: X, ldInput: ldInput, weight: W, format: format, panels: panels.lowerBound..<panels.lowerBound + tiled,
                            cols: K, out: C, ldOut: ldOut)
        }
        rest = panels.lowerBound + tiled..<panels.upperBound
    }
    #endif
    guard !rest.isEmpty else { return }
    switch format {
    case .f32: panelLinear(F32Element.self, tokens: T, input: X, ldInput: ldInput, weight: W, panels: rest, cols: K, rows: rows, out: C, ldOut: ldOut)
    case .f16: panelLinear(F16Element.self, tokens: T, input: X, ldInput: ldInput, weight: W, panels: rest, cols: K, rows: rows, out: C, ldOut: ldOut)
    case .bf16: panelLinear(BF16Element.self, tokens: T, input: X, ldInput: ldInput, weight: W, panels: rest, cols: K, rows: rows, out: C, ldOut: ldOut)
    }
}

/// From this many tokens on, 16-bit panels are widened to float32 a tile at
/// a time and multiplied by the float32 kernels: one conversion per weight
/// instead of one per weight and token group (the conversions compete with
/// the multiply-adds for the same ports, and cost prefill a fifth of its
/// speed). Decode, batched decode included, converts in registers: its
/// step is bound by the bytes it reads, and widening into a scratch cost
/// batch-16 decode a fifth of its speed when the threshold was 8.
let widenedTokens = 64

/// 16-bit panels widened tile by tile into a float32 scratch, then the
/// float32 kernels over it: the same values, chains and bits.
func widenedLinear(tokens T: Int, input X: UnsafePointer<Float>, ldInput: Int,
                   weight W: UnsafeRawPointer, format: PanelFormat, panels: Range<Int>, cols K: Int, rows: Int,
                   out C: UnsafeMutablePointer<Float>, ldOut: Int, wide: Bool) {
    let ps = panelRows * K
    widenedPanels(tokens: T, input: X, ldInput: ldInput, panels: panels, cols: K, rows: rows, out: C, ldOut: ldOut, wide: wide,
                  widen: { p, into in
                      if format == .bf16 { widen(BF16Element.self, W + 2 * p * ps, into, ps) } else { widen(F16Element.self, W + 2 * p * ps, into, ps) }
                  },
                  fewTokens: { t0, n in
                      packedLinear(tokens: n, input: X + t0 * ldInput, ldInput: ldInput, weight: W, format: format, panels: panels, cols: K,
                                   rows: rows, out: C + t0 * ldOut, ldOut: ldOut, wide: wide)
                  })
}

/// A product over panels that are widened to float32 one by one (`widen`
/// fills panel p's 16 × K floats): without AVX-512 and from
/// `sixTokenMinimum` tokens on, the six-token tile, each panel widened once
/// per token block, with `fewTokens` for the last (fewer than six) tokens;
/// otherwise a tile of panels at a time, through `packedLinear`.
func widenedPanels(tokens T: Int, input X: UnsafePointer<Float>, ldInput: Int, panels: Range<Int>, cols K: Int, rows: Int,
                   out C: UnsafeMutablePointer<Float>, ldOut: Int, wide: Bool,
                   widen: (Int, UnsafeMutablePointer<Float>) -> Void, fewTokens: (Int, Int) -> Void) {
    if !wide, T >= sixTokenMinimum {
        let scratch = UnsafeMutablePointer<Float>.allocate(capacity: panelRows * K)
        defer { scratch.deallocate() }
        sixTokenPanels(tokens: T, input: X, ldInput: ldInput, panels: panels, cols: K, rows: rows, out: C, ldOut: ldOut,
                       panel: { p in widen(p, scratch); return UnsafeRawPointer(scratch) }, fewTokens: fewTokens)
        return
    }
    let tile = PanelLayout.tilePanels, ps = panelRows * K
    let scratch = UnsafeMutablePointer<Float>.allocate(capacity: tile * ps)
    defer { scratch.deallocate() }
    var p = panels.lowerBound
    while p < panels.upperBound {
        let n = min(tile, panels.upperBound - p)
        for i in 0..<n { widen(p + i, scratch + i * ps) }
        // the chunk as panels 0..<n of a weight whose rows start at 16p
        packedLinear(tokens: T, input: X, ldInput: ldInput, weight: UnsafeRawPointer(scratch), format: .f32, panels: 0..<n, cols: K,
                     rows: rows - panelRows * p, out: C + panelRows * p, ldOut: ldOut, wide: wide)
        p += n
    }
}

/// `n` 16-bit elements (whole panel columns: a multiple of 16) to float32,
/// a column at a time through the kernels' own loads.
func widen<E: PanelElement>(_: E.Type, _ h: UnsafeRawPointer, _ out: UnsafeMutablePointer<Float>, _ n: Int) {
    precondition(n % panelRows == 0, "widening whole panel columns")
    for i in stride(from: 0, to: n, by: panelRows) {
        UnsafeMutableRawPointer(out + i).storeBytes(of: E.load16(h + i * E.bytes), as: SIMD16<Float>.self)
    }
}

/// `packedLinear512` on sixteen-float vectors that compile to two AVX2
/// registers (or four NEON ones), with the same chains and so the same
/// bits: tiles of one panel by four tokens (8 of the 16 AVX2 registers
/// accumulate), the next panel prefetched during the first token group.
/// Handles any panel, including one that runs past the last row.
func panelLinear<E: PanelElement>(_: E.Type, tokens T: Int, input X: UnsafePointer<Float>, ldInput: Int,
                                  weight W: UnsafeRawPointer, panels: Range<Int>, cols K: Int, rows: Int,
                                  out C: UnsafeMutablePointer<Float>, ldOut: Int) {
    let ps = panelRows * K * E.bytes  // bytes per panel
    var lanes = [Float](repeating: 0, count: 4 * panelRows)
    lanes.withUnsafeMutableBufferPointer { lb in
        let tmp = lb.baseAddress!
        for p in panels {
            let w = W + p * ps
            let next = p + 1 < panels.upperBound ? w + ps : nil
            let whole = panelRows * (p + 1) <= rows
            var t = 0
            while t < T {
                let n = min(4, T - t)
                // a panel past the last row goes through `tmp`
                let (c, ldc) = whole ? (C + t * ldOut + panelRows * p, ldOut) : (tmp, panelRows)
                if n == 4 {
                    panelByFour(E.self, X + t * ldInput, ldInput, w, K, c, ldc, t == 0 ? next : nil)
                } else {
                    for i in 0..<n { panelByOne(E.self, X + (t + i) * ldInput, w, K, c + i * ldc, t == 0 && i == 0 ? next : nil) }
                }
                if !whole {
                    for i in 0..<n { for j in 0..<rows - panelRows * p { C[(t + i) * ldOut + panelRows * p + j] = tmp[i * panelRows + j] } }
                }
                t += n
            }
        }
    }
}

@inline(__always)
private func store16(_ v: SIMD16<Float>, _ p: UnsafeMutablePointer<Float>) {
    UnsafeMutableRawPointer(p).storeBytes(of: v, as: SIMD16<Float>.self)
}

@inline(__always)
private func panelByFour<E: PanelElement>(_: E.Type, _ x0: UnsafePointer<Float>, _ ldx: Int, _ w: UnsafeRawPointer, _ K: Int,
                         _ c: UnsafeMutablePointer<Float>, _ ldc: Int, _ pf: UnsafeRawPointer?) {
    let x1 = x0 + ldx, x2 = x1 + ldx, x3 = x2 + ldx
    var a0 = SIMD16<Float>(), a1 = SIMD16<Float>(), a2 = SIMD16<Float>(), a3 = SIMD16<Float>()
    var k = 0, wk = w
    while k < K {
        let v = E.load16(wk)
        a0 = a0.addingProduct(SIMD16(repeating: x0[k]), v); a1 = a1.addingProduct(SIMD16(repeating: x1[k]), v)
        a2 = a2.addingProduct(SIMD16(repeating: x2[k]), v); a3 = a3.addingProduct(SIMD16(repeating: x3[k]), v)
        if let pf, E.bytes == 4 || k & 1 == 0 { kick_prefetch(pf + 16 &* E.bytes &* k) }
        k &+= 1
        wk += panelRows &* E.bytes
    }
    store16(a0, c); store16(a1, c + ldc); store16(a2, c + 2 * ldc); store16(a3, c + 3 * ldc)
}

@inline(__always)
private func panelByOne<E: PanelElement>(_: E.Type, _ x: UnsafePointer<Float>, _ w: UnsafeRawPointer, _ K: Int,
                        _ c: UnsafeMutablePointer<Float>, _ pf: UnsafeRawPointer?) {
    var a = SIMD16<Float>()
    var k = 0, wk = w
    while k < K {
        a = a.addingProduct(SIMD16(repeating: x[k]), E.load16(wk))
        if let pf, E.bytes == 4 || k & 1 == 0 { kick_prefetch(pf + 16 &* E.bytes &* k) }
        k &+= 1
        wk += panelRows &* E.bytes
    }
    store16(a, c)
}

/// From this many tokens on, without AVX-512, panels are multiplied six
/// tokens at a time by `sixTokenLinear` (prefill, calibration passes).
let sixTokenMinimum = 24

/// Panels times many tokens, with the same chains (and bits) as
/// `panelLinear`; 16-bit panels are widened one at a time per token block.
func sixTokenLinear<E: PanelElement>(_: E.Type, tokens T: Int, input X: UnsafePointer<Float>, ldInput: Int, weight W: UnsafeRawPointer,
                                     panels: Range<Int>, cols K: Int, rows: Int, out C: UnsafeMutablePointer<Float>, ldOut: Int) {
    let ps = panelRows * K * E.bytes
    let wide = UnsafeMutablePointer<Float>.allocate(capacity: E.bytes == 4 ? 0 : panelRows * K)
    defer { wide.deallocate() }
    sixTokenPanels(tokens: T, input: X, ldInput: ldInput, panels: panels, cols: K, rows: rows, out: C, ldOut: ldOut,
                   panel: { p in
                       if E.bytes == 4 { return W + p * ps }
                       widen(E.self, W + p * ps, wide, panelRows * K)
                       return UnsafeRawPointer(wide)
                   },
                   fewTokens: { t0, n in
                       panelLinear(E.self, tokens: n, input: X + t0 * ldInput, ldInput: ldInput, weight: W, panels: panels,
                                   cols: K, rows: rows, out: C + t0 * ldOut, ldOut: ldOut)
                   })
}

/// The six-token tile over float32 panels that `panel` provides (panel p's
/// floats, widened on demand): the tokens in blocks that stay in L2, each
/// block's inputs interleaved six tokens to a column (one 24-byte line per
/// step instead of six strided reads), every panel run over the block in
/// tiles of one panel by six tokens: 12 accumulators, two weight vectors
/// and one broadcast fill 15 of the 16 AVX2 registers. Measured at
/// 1.35-1.5x the four-token tile on this machine's cores (73-77 against
/// 52-56 GFLOP/s on one core, 78 the peak). The last tokens (fewer than
/// six) go to `fewTokens(first, count)`.
func sixTokenPanels(tokens T: Int, input X: UnsafePointer<Float>, ldInput: Int, panels: Range<Int>, cols K: Int, rows: Int,
                    out C: UnsafeMutablePointer<Float>, ldOut: Int,
                    panel: (Int) -> UnsafeRawPointer, fewTokens: (Int, Int) -> Void) {
    let whole6 = T / 6 * 6
    // a block of tokens whose interleaved inputs fill about half of L2
    let block = max(6, min(whole6, (256 << 10) / (K * 4) / 6 * 6))
    let packed = UnsafeMutablePointer<Float>.allocate(capacity: block * K)
    let tile = UnsafeMutablePointer<Float>.allocate(capacity: 6 * panelRows)
    defer { packed.deallocate(); tile.deallocate() }
    var t0 = 0
    while t0 < whole6 {
        let tb = min(block, whole6 - t0)
        for g in stride(from: 0, to: tb, by: 6) {
            let dst = packed + g * K
            for i in 0..<6 {
                let src = X + (t0 + g + i) * ldInput
                for k in 0..<K { dst[k * 6 + i] = src[k] }
            }
        }
        for p in panels {
            let w = panel(p)
            let whole = panelRows * (p + 1) <= rows
            for g in stride(from: 0, to: tb, by: 6) {
                let t = t0 + g
                if whole {
                    panelBySixInterleaved(packed + g * K, w, K, C + t * ldOut + panelRows * p, ldOut)
                } else {
                    panelBySixInterleaved(packed + g * K, w, K, tile, panelRows)
                    for i in 0..<6 { for j in 0..<rows - panelRows * p { C[(t + i) * ldOut + panelRows * p + j] = tile[i * panelRows + j] } }
                }
            }
        }
        t0 += tb
    }
    if whole6 < T { fewTokens(whole6, T - whole6) }
}

/// One panel by six tokens whose inputs are interleaved (x[k·6 + i] is
/// token i's column k). Not inlined: inside a larger loop the compiler
/// hoists the six broadcasts and spills accumulators.
@inline(never)
func panelBySixInterleaved(_ x: UnsafePointer<Float>, _ w: UnsafeRawPointer, _ K: Int, _ c: UnsafeMutablePointer<Float>, _ ldc: Int) {
    var a0 = SIMD8<Float>(), a1 = SIMD8<Float>(), a2 = SIMD8<Float>(), a3 = SIMD8<Float>(), a4 = SIMD8<Float>(), a5 = SIMD8<Float>()
    var b0 = SIMD8<Float>(), b1 = SIMD8<Float>(), b2 = SIMD8<Float>(), b3 = SIMD8<Float>(), b4 = SIMD8<Float>(), b5 = SIMD8<Float>()
    var k = 0, wk = w, xk = x
    while k < K {
        let lo = wk.loadUnaligned(as: SIMD8<Float>.self), hi = (wk + 32).loadUnaligned(as: SIMD8<Float>.self)
        var s = SIMD8<Float>(repeating: xk[0]); a0 = a0.addingProduct(s, lo); b0 = b0.addingProduct(s, hi)
        s = SIMD8<Float>(repeating: xk[1]); a1 = a1.addingProduct(s, lo); b1 = b1.addingProduct(s, hi)
        s = SIMD8<Float>(repeating: xk[2]); a2 = a2.addingProduct(s, lo); b2 = b2.addingProduct(s, hi)
        s = SIMD8<Float>(repeating: xk[3]); a3 = a3.addingProduct(s, lo); b3 = b3.addingProduct(s, hi)
        s = SIMD8<Float>(repeating: xk[4]); a4 = a4.addingProduct(s, lo); b4 = b4.addingProduct(s, hi)
        s = SIMD8<Float>(repeating: xk[5]); a5 = a5.addingProduct(s, lo); b5 = b5.addingProduct(s, hi)
        k &+= 1
        wk += 64
        xk += 6
    }
    @inline(__always) func put(_ a: SIMD8<Float>, _ b: SIMD8<Float>, _ p: UnsafeMutablePointer<Float>) {
        UnsafeMutableRawPointer(p).storeBytes(of: a, as: SIMD8<Float>.self)
        UnsafeMutableRawPointer(p + 8).storeBytes(of: b, as: SIMD8<Float>.self)
    }
    put(a0, b0, c); put(a1, b1, c + ldc); put(a2, b2, c + 2 * ldc); put(a3, b3, c + 3 * ldc); put(a4, b4, c + 4 * ldc); put(a5, b5, c + 5 * ldc)
}
