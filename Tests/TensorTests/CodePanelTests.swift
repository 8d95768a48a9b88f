import Foundation
import Testing
@testable import KickCore
import KickTestSupport

/// Integer-code weights: every form widens exactly as its float32 decoder
/// does, and its products are, bit for bit, those of the widened weight
/// held as float32 panels, for any token count, partial panels included.
@Suite struct CodePanelTests {
    static let team = ThreadTeam(size: 2)
    static let shapes = [(7, 64), (50, 96), (130, 576), (48, 160)]
    static let tokenCounts = [1, 2, 3, 4, 5, 7, 8, 13, 24, 31, 64]

    static func randomMatrix(_ rows: Int, _ cols: Int, _ rng: inout SeededRandom) -> Matrix {
        Matrix(rows: rows, cols: cols, data: (0..<rows * cols).map { _ in Float(rng.next() % 2001) / 1000 - 1 })
    }

    /// The kick forms: bits, group size (nil: one per row), symmetric, act-order.
    static let quantForms: [(Int, Int?, Bool, Bool)] = [
        (4, 32, false, false), (4, 128, true, false), (4, nil, false, false), (3, 64, false, false), (2, 32, false, false),
        (8, 128, false, false), (4, 32, false, true), (3, 32, false, true),
    ]

    func check(_ w: PackedWeight, widened: Matrix, _ what: String, rng: inout SeededRandom) {
        let matrix = w.matrix
        #expect(matrix.rows == widened.rows && differing(matrix.data, widened.data) == 0, "\(what): the codes widen as the float32 decoder does")
        var row = [Float](repeating: 0, count: w.cols)
        for r in [0, w.rows / 2, w.rows - 1] {
            w.copyRow(r, into: &row)
            #expect(differing(row, Array(widened.data[r * w.cols..<(r + 1) * w.cols])) == 0, "\(what) row \(r)")
        }
        let f = PackedWeight(widened)
        for T in Self.tokenCounts {
            let x = (0..<T * w.cols).map { _ in Float(rng.next() % 2001) / 1000 - 1 }
            var a = [Float](repeating: .nan, count: T * w.rows), b = a, c = a
            w.apply(tokens: T, input: x, out: &a, team: nil)
            f.apply(tokens: T, input: x, out: &b, team: nil)
            w.apply(tokens: T, input: x, out: &c, team: Self.team)
            #expect(differing(a, b) == 0, "\(what) T \(T): codes against float32 panels")
            #expect(differing(a, c) == 0, "\(what) T \(T): one thread against two")
        }
    }

    @Test func quantizedCodesMatchTheirFloatPanels() {
        var rng = SeededRandom(seed: 21)
        for (rows, cols) in Self.shapes {
            for (bits, g, sym, act) in Self.quantForms {
                let m = Self.randomMatrix(rows, cols, &rng)
                let q = act ? actOrderQuantized(m, bits: bits, groupSize: g ?? cols, seed: rng.next())
                    : RTN.quantize(m, QuantizerSpec(bits: bits, groupSize: g, symmetric: sym))
                let w = PackedWeight(codes: CodePanels(stacking: [CodeRows(q)])!)
                #expect(w.byteCount < rows * cols * 4 * bits / 16 + 4096 + 2 * 16 * 4 * q.groups * ((rows + 15) / 16), "q\(bits) is held small")
                check(w, widened: q.dequantized(), "\(rows)x\(cols) q\(bits) g\(g ?? 0)\(sym ? " sym" : "")\(act ? " act-order" : "")", rng: &rng)
            }
        }
    }

    @Test(arguments: [GGMLType.q4_0, .q4_1, .q8_0]) func ggmlBlocksMatchTheirFloatPanels(type: GGMLType) throws {
        var rng = SeededRandom(seed: 22)
        for (rows, cols) in Self.shapes {
            let bytes = ggmlBlocks(Self.randomMatrix(rows, cols, &rng), type)
            let cr = try #require(try bytes.withUnsafeBytes { try CodeRows(ggml: $0, type: type, rows: rows, cols: cols) })
            var widened = Matrix(zeros: rows, cols)
            bytes.withUnsafeBytes { b in widened.data.withUnsafeMutableBufferPointer { type.dequantize(b.baseAddress!, rows * cols, $0.baseAddress!) } }
            let w = PackedWeight(codes: CodePanels(stacking: [cr])!)
            #expect(w.formName == type.name)
            check(w, widened: widened, "\(rows)x\(cols) \(type.name)", rng: &rng)
        }
    }

    /// Fused q/k/v and gate/up: parts of one form stack; parts that differ
    /// do not (the engine then holds floats).
    @Test func partsStackOnlyWhenAlike() {
        var rng = SeededRandom(seed: 23)
        let spec = QuantizerSpec(bits: 4, groupSize: 32)
        let parts = [Self.randomMatrix(40, 64, &rng), Self.randomMatrix(24, 64, &rng)].map { RTN.quantize($0, spec) }
        let w = PackedWeight(codes: CodePanels(stacking: parts.map(CodeRows.init))!)
        var widened = parts[0].dequantized()
        widened.data += parts[1].dequantized().data
        widened = Matrix(rows: 64, cols: 64, data: widened.data)
        check(w, widened: widened, "stacked", rng: &rng)
        #expect(CodePanels(stacking: [CodeRows(parts[0]), CodeRows(RTN.quantize(Self.randomMatrix(8, 64, &rng), QuantizerSpec(bits: 3, groupSize: 32)))]) == nil)
        #expect(CodePanels(stacking: [CodeRows(parts[0]), CodeRows(RTN.quantize(Self.randomMatrix(8, 64, &rng), QuantizerSpec(bits: 4, groupSize: 64)))]) == nil)
    }

    @Test func badGGMLPayloadsAreErrors() throws {
        #expect(throws: KickError.self) { try [UInt8](repeating: 0, count: 17).withUnsafeBytes { try CodeRows(ggml: $0, type: .q4_0, rows: 1, cols: 32) } }
        #expect(throws: KickError.self) { try [UInt8](repeating: 0, count: 18).withUnsafeBytes { try CodeRows(ggml: $0, type: .q4_0, rows: 1, cols: 16) } }
        let notCodes = try [UInt8](repeating: 0, count: 64).withUnsafeBytes { try CodeRows(ggml: $0, type: .f16, rows: 1, cols: 32) }
        #expect(notCodes == nil)
    }
}

/// N:M sparse weights: the kept values at their precision and in-group
/// positions give, bit for bit, the products of the same weights dense.
@Suite struct NMPanelTests {
    static let team = ThreadTeam(size: 2)

    /// A random matrix keeping at most n of every m columns per row (some
    /// groups keep fewer), its values exact in `format`.
    static func pruned(_ rows: Int, _ cols: Int, n: Int, m: Int, format: PanelFormat, _ rng: inout SeededRandom) -> Matrix {
        var w = Matrix(zeros: rows, cols)
        for r in 0..<rows {
            for g in 0..<cols / m {
                let keep = Array(0..<m).shuffled(using: &rng).prefix(Int(rng.next() % UInt64(n + 1)))
                for j in keep {
                    let v = Float(rng.next() % 2001) / 997 - 1
                    w.data[r * cols + g * m + j] = format == .f32 ? v : format.widen(format.narrow(v))
                }
            }
        }
        return w
    }

    @Test(arguments: [(1, 2), (2, 4), (4, 8)]) func nmPanelsMatchDensePanels(pattern: (Int, Int)) {
        var rng = SeededRandom(seed: 31)
        let (n, m) = pattern
        for format in PanelFormat.allCases {
            for (rows, cols) in [(7, 64), (50, 96), (130, 576)] {
                let w = Self.pruned(rows, cols, n: n, m: m, format: format, &rng)
                let s = PackedWeight(nm: NMPanels(stacking: [w], n: n, m: m, format: format)!)
                let d = PackedWeight(w)
                #expect(s.matrix == w, "\(n):\(m) \(format) \(rows)x\(cols) widens to its values")
                #expect(s.formName == "\(n):\(m)-\(format.rawValue)")
                expectSameProducts(s, d, team: Self.team, "\(n):\(m) \(format)", &rng)
            }
        }
    }

    @Test func onlyTrueNMWeightsPack() {
        var rng = SeededRandom(seed: 32)
        var w = Self.pruned(16, 32, n: 2, m: 4, format: .f16, &rng)
        #expect(NMPanels(stacking: [w], n: 2, m: 4, format: .f16) != nil)
        #expect(NMPanels(stacking: [Matrix(rows: 16, cols: 30, data: .init(repeating: 0, count: 480))], n: 2, m: 4, format: .f16) == nil)
        w.data[0] = 1; w.data[1] = 1; w.data[2] = 1
        #expect(NMPanels(stacking: [w], n: 2, m: 4, format: .f16) == nil, "a group with three nonzeros is not 2:4")
        let d = PackedWeight(nm: NMPanels(stacking: [Self.pruned(16, 32, n: 2, m: 4, format: .f16, &rng)], n: 2, m: 4, format: .f16)!)
        #expect(d.byteCount * 8 == 16 * 32 * 10, "2:4 of f16: 10 bits a weight")
    }
}

@Suite struct SparsePanelTests {
    static let team = ThreadTeam(size: 2)

    /// A random matrix with about `zeros` of its entries zero, its values
    /// exact in `format`.
    static func pruned(_ rows: Int, _ cols: Int, zeros: Double, format: PanelFormat, _ rng: inout SeededRandom) -> Matrix {
        Matrix(rows: rows, cols: cols, data: (0..<rows * cols).map { _ in
            let v = Float(rng.next() % 2001) / 997 - 1
            return Double(rng.next() % 1000) < zeros * 1000 ? 0 : (format == .f32 ? v : format.widen(format.narrow(v)))
        })
    }

    @Test(arguments: [0.0, 0.3, 0.7, 0.95, 1.0]) func sparsePanelsMatchDensePanels(zeros: Double) {
        var rng = SeededRandom(seed: 41)
        for format in PanelFormat.allCases {
            for (rows, cols) in [(7, 64), (50, 96), (130, 576)] {
                let w = Self.pruned(rows, cols, zeros: zeros, format: format, &rng)
                let sp = SparsePanels(stacking: [w], format: format)
                let s = PackedWeight(sparse: sp), d = PackedWeight(w)
                #expect(s.matrix == w, "\(zeros) \(format) \(rows)x\(cols) widens to its values")
                #expect(s.formName == "sparse-\(format.rawValue)")
                let kept = w.data.filter { $0 != 0 }.count
                #expect(abs(sp.density - Double(kept) / Double(rows * cols)) < 1e-12)
                // a bit a weight (whole panels) for the masks, the kept values, eight values of padding
                #expect(sp.masks.count * 16 == (rows + 15) / 16 * 16 * cols && sp.values.count == (kept + 8) * format.bytes)
                expectSameProducts(s, d, team: Self.team, "\(zeros) \(format)", &rng)
            }
        }
    }

    /// Stacked parts (fused q/k/v) hold each part's rows in order.
    @Test func stackedParts() {
        var rng = SeededRandom(seed: 42)
        let parts = [Self.pruned(20, 64, zeros: 0.6, format: .f32, &rng), Self.pruned(9, 64, zeros: 0.6, format: .f32, &rng)]
        let s = PackedWeight(sparse: SparsePanels(stacking: parts, format: .f32))
        #expect(s.matrix.data == parts[0].data + parts[1].data)
        #expect(abs(SparsePanels.sparsity(of: parts) - Double((parts[0].data + parts[1].data).filter { $0 == 0 }.count) / Double(29 * 64)) < 1e-12)
    }

    /// The index table spreads the k-th kept value to the k-th set lane
    /// and zeros the rest, for every mask byte.
    @Test func expandTable() {
        for m in 0..<256 {
            var next = 0
            for i in 0..<8 {
                let e = sparseExpandTable[8 * m + i]
                if m & (1 << i) != 0 { #expect(Int(e) == next); next += 1 } else { #expect(e < 0) }
            }
        }
    }
}

/// `form`'s products equal `dense`'s bit for bit at 1-31 tokens (the
/// in-register kernels below four, the widened panels from there), and
/// split across two threads equal one. Counts mismatches rather than
/// printing whole outputs.
func expectSameProducts(_ form: PackedWeight, _ dense: PackedWeight, team: ThreadTeam, _ label: String, _ rng: inout SeededRandom) {
    let (rows, cols) = (dense.rows, dense.cols)
    for T in [1, 2, 3, 4, 5, 8, 24, 31] {
        let x = (0..<T * cols).map { _ in Float(rng.next() % 2001) / 1000 - 1 }
        var a = [Float](repeating: .nan, count: T * rows), b = a, c = a
        form.apply(tokens: T, input: x, out: &a, team: nil)
        dense.apply(tokens: T, input: x, out: &b, team: nil)
        form.apply(tokens: T, input: x, out: &c, team: team)
        #expect(zip(a, b).filter { $0.0 != $0.1 }.isEmpty, "\(label) \(rows)x\(cols) T \(T): \(zip(a, b).filter { $0.0 != $0.1 }.count) outputs differ from dense")
        #expect(zip(a, c).filter { $0.0 != $0.1 }.isEmpty, "\(label) \(rows)x\(cols) T \(T): \(zip(a, c).filter { $0.0 != $0.1 }.count) outputs differ, one thread against two")
    }
}
