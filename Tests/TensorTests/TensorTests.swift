import Foundation
import Testing
@testable import KickCore
import KickTestSupport

@Suite struct HalfTests {
    @Test func halfRoundTripsEveryFiniteValue() {
        for bits in UInt16(0)...UInt16.max {
            let f = halfToFloat(bits)
            if f.isNaN { continue }
            #expect(floatToHalf(f) == bits, "half \(bits)")
        }
    }

    @Test func halfRoundsToNearestEven() {
        #expect(floatToHalf(1.0) == 0x3C00)
        #expect(floatToHalf(65504) == 0x7BFF)
        #expect(floatToHalf(70000) == 0x7C00)  // overflow to inf
        #expect(halfToFloat(0x0001) == Float(5.960_464_5e-8))  // smallest subnormal
        // 1 + 2^-11 is halfway between 1 and the next half: ties to even (1)
        #expect(floatToHalf(1 + 1.0 / 2048) == 0x3C00)
        #expect(floatToHalf(1 + 3.0 / 2048) == 0x3C02)
    }

    @Test func bfloat16() {
        #expect(bf16ToFloat(floatToBF16(1.5)) == 1.5)
        #expect(floatToBF16(1 + 1.0 / 256) == floatToBF16(1))  // tie to even
        #expect(bf16ToFloat(floatToBF16(-3.140625)) == -3.140625)
    }
}

@Suite struct NpyTests {
    @Test func roundTrip() throws {
        let a = Npy.Array(shape: [3, 5], data: (0..<15).map { Float($0) * 0.5 - 2 })
        let b = try Npy.parse(Npy.encode(a))
        #expect(a == b)
        let v = Npy.Array(shape: [4], data: [1, 2, 3, 4])
        #expect(try Npy.parse(Npy.encode(v)) == v)
    }

    @Test func readsFloat64() throws {
        var d = Data([0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59, 1, 0])
        var header = "{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }"
        while (10 + header.count + 1) % 64 != 0 { header += " " }
        header += "\n"
        d.append(UInt8(header.utf8.count)); d.append(0)
        d.append(Data(header.utf8))
        for v in [1.25, -2.5] { withUnsafeBytes(of: v.bitPattern.littleEndian) { d.append(contentsOf: $0) } }
        #expect(try Npy.parse(d).data == [1.25, -2.5])
    }

    @Test func rejectsMalformedFiles() {
        let good = Npy.encode(Npy.Array(shape: [2, 2], data: [1, 2, 3, 4]))
        // every truncation fails cleanly
        for n in 0..<good.count {
            #expect(throws: KickError.self) { try Npy.parse(good.prefix(n)) }
        }
        var bad = good
        bad[0] = 0
        #expect(throws: KickError.self) { try Npy.parse(bad) }
        let absurd = String(decoding: good, as: UTF8.self).replacingOccurrences(of: "(2, 2)", with: "(99999999999, 99999999999)")
        #expect(throws: KickError.self) { try Npy.parse(Data(absurd.utf8)) }
        let i4 = String(decoding: good, as: UTF8.self).replacingOccurrences(of: "<f4", with: "<i4")
        #expect(throws: KickError.self) { try Npy.parse(Data(i4.utf8)) }
    }

    @Test func readsGoldenLayer() throws {
        let w = try Npy.read(path: Golden.dir + "/layer/W.npy")
        #expect(w.shape == [96, 256])
        #expect(w.data.allSatisfy { $0.isFinite })
    }
}

@Suite struct SHA256Tests {
    @Test func knownVectors() {
        #expect(SHA256.hex(of: Data()) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(SHA256.hex(of: Data("abc".utf8)) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        let long = Data("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8)
        #expect(SHA256.hex(of: long) == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        // streaming in uneven chunks gives the same digest
        let big = Data((0..<10_000).map { UInt8($0 % 251) })
        var h = SHA256()
        var i = 0
        for step in [1, 63, 64, 65, 1000, 7] where i < big.count {
            h.update(big[i..<min(big.count, i + step)])
            i += step
        }
        h.update(big[i...])
        #expect(h.finalize().hex == SHA256.hex(of: big))
    }
}

@Suite struct BLASTests {
    @Test func gemmMatchesNaiveProduct() {
        var rng = SeededRandom(seed: 3)
        let a = Matrix(rows: 7, cols: 13, data: (0..<91).map { _ in Float(rng.unit()) - 0.5 })
        let b = Matrix(rows: 5, cols: 13, data: (0..<65).map { _ in Float(rng.unit()) - 0.5 })
        let c = a.timesTransposed(b)
        for i in 0..<7 {
            for j in 0..<5 {
                var s: Double = 0
                for k in 0..<13 { s += Double(a[i, k]) * Double(b[j, k]) }
                #expect(abs(Double(c[i, j]) - s) < 1e-5)
            }
        }
    }
}

@Suite struct VectorKernelTests {
    @Test func exp8IsWithinTwoUlpOfExpf() {
        var worst: Float = 0
        var x: Float = -87
        while x < 88.3 {
            let v = Float8(x, x + 0.013, x + 0.029, x + 0.031, x + 0.047, x + 0.053, x + 0.061, x + 0.07)
            let e = exp8(v)
            for i in 0..<8 {
                let ref = Foundation.exp(v[i])
                worst = max(worst, abs(e[i] - ref) / ref.ulp)
            }
            x += 0.0917
        }
        #expect(worst <= 2, "worst error \(worst) ulp")
        let edges = exp8(Float8(-200, -87.5, 0, 1, 89, 200, -0.0, 1e-8))
        #expect(edges[0] > 0 && edges[0] < 1.2e-38)
        #expect(edges[2] == 1 && edges[3] == Foundation.exp(Float(1)) && edges[6] == 1)
        #expect(edges[4] > 2e38 && edges[4].isFinite && edges[5] == edges[4])
    }

    @Test func swigluSoftmaxAndNormMatchScalarFormulas() {
        let n = 37  // SIMD body and scalar tail
        let g = (0..<n).map { Float($0) * 0.37 - 6 }, u = (0..<n).map { Float($0 % 5) - 2 }
        var out = [Float](repeating: 0, count: n)
        swiglu(g, u, &out, n)
        for i in 0..<n {
            let ref = g[i] / (1 + Foundation.exp(-g[i])) * u[i]
            #expect(abs(out[i] - ref) <= 4 * max(abs(ref), 1e-30).ulp, "swiglu \(i)")
        }
        var p = g
        softmax(&p, count: n)
        let mx = g.max()!, z = g.reduce(0) { $0 + Foundation.exp(Double($1 - mx)) }
        for i in 0..<n { #expect(abs(Double(p[i]) - Foundation.exp(Double(g[i] - mx)) / z) < 1e-6) }
        var y = [Float](repeating: 0, count: n)
        rmsNorm(g, u, &y, n, 1e-5)
        let inv = 1 / (g.reduce(0) { $0 + Double($1) * Double($1) } / Double(n) + 1e-5).squareRoot()
        for i in 0..<n { #expect(abs(Double(y[i]) - Double(g[i]) * inv * Double(u[i])) < 1e-5) }
    }

    /// The register-blocked decode attention against a plain double-precision
    /// softmax(q·K/√d)·V, for head sizes on and off the 8- and 64-float paths.
    @Test func decodeAttentionMatchesDefinition() {
        var rng = SeededRandom(seed: 3)
        func r() -> Float { Float(rng.next() % 2001) / 1000 - 1 }
        for (hd, ctx, heads) in [(64, 37, 3), (128, 5, 2), (24, 9, 1), (6, 11, 2)] {
            let q = (0..<heads * hd).map { _ in r() }
            let K = (0..<ctx * hd).map { _ in r() }, V = (0..<ctx * hd).map { _ in r() }
            var S = [Float](repeating: 0, count: heads * ctx), O = [Float](repeating: 0, count: heads * hd)
            let scale = 1 / Float(hd).squareRoot()
            decodeAttention(queries: q, heads: heads, keys: K, values: V, positions: ctx, headDim: hd, scale: scale, scores: &S, out: &O)
            for h in 0..<heads {
                let s = (0..<ctx).map { j in (0..<hd).reduce(0.0) { $0 + Double(q[h * hd + $1]) * Double(K[j * hd + $1]) } * Double(scale) }
                let m = s.max()!, e = s.map { Foundation.exp($0 - m) }, z = e.reduce(0, +)
                for c in 0..<hd {
                    let ref = (0..<ctx).reduce(0.0) { $0 + e[$1] / z * Double(V[$1 * hd + c]) }
                    #expect(abs(Double(O[h * hd + c]) - ref) < 1e-5, "hd \(hd) head \(h) col \(c)")
                }
            }
        }
    }
}

@Suite struct ThreadTeamTests {
    @Test func everyPartRunsOnceOnSomeThread() {
        let team = ThreadTeam(size: 3)
        for parts in [1, 2, 3, 7, 100] {
            let counts = UnsafeMutableBufferPointer<Int>.allocate(capacity: parts)
            counts.initialize(repeating: 0)
            defer { counts.deallocate() }
            team.forEach(parts) { p, thread in
                precondition(thread >= 0 && thread < 3)
                counts[p] += 1
            }
            #expect(counts.allSatisfy { $0 == 1 }, "parts \(parts)")
        }
    }

    @Test func nestedCallsRunOnTheCallingThread() {
        let team = ThreadTeam(size: 2)
        let sums = UnsafeMutableBufferPointer<Int>.allocate(capacity: 4)
        sums.initialize(repeating: 0)
        defer { sums.deallocate() }
        team.forEach(4) { p, _ in
            var local = 0
            team.forEach(10) { q, _ in local += q }
            sums[p] = local
        }
        #expect(Array(sums) == [45, 45, 45, 45])
    }

    /// OpenBLAS is on one thread inside `withOneThread`, nested too; the
    /// count the team is sized from is the one the process started with.
    /// (Whether the count comes back afterwards is not checked here: other
    /// tests run forwards concurrently.)
    @Test func oneThreadScope() {
        BLAS.withOneThread {
            #expect(BLAS.threads == 1)
            BLAS.withOneThread { #expect(BLAS.threads == 1) }
            #expect(BLAS.threads == 1)
            #expect(BLAS.configuredThreads >= 1)
            #expect(ThreadTeam.shared.size == BLAS.configuredThreads)
        }
    }
}

/// A panel kernel's signature: tokens, input, ldInput, packed weight,
/// its format, panels, cols, rows, out, ldOut.
typealias PanelKernel = (Int, UnsafePointer<Float>, Int, UnsafeRawPointer, PanelFormat, Range<Int>, Int, Int,
                         UnsafeMutablePointer<Float>, Int) -> Void

/// KickCore's generic kernel for any format.
func genericPanelKernel(_ T: Int, _ x: UnsafePointer<Float>, _ ldx: Int, _ w: UnsafeRawPointer, _ f: PanelFormat, _ p: Range<Int>,
                        _ K: Int, _ rows: Int, _ out: UnsafeMutablePointer<Float>, _ ld: Int) {
    switch f {
    case .f32: panelLinear(F32Element.self, tokens: T, input: x, ldInput: ldx, weight: w, panels: p, cols: K, rows: rows, out: out, ldOut: ld)
    case .f16: panelLinear(F16Element.self, tokens: T, input: x, ldInput: ldx, weight: w, panels: p, cols: K, rows: rows, out: out, ldOut: ld)
    case .bf16: panelLinear(BF16Element.self, tokens: T, input: x, ldInput: ldx, weight: w, panels: p, cols: K, rows: rows, out: out, ldOut: ld)
    }
}

/// Against a double-precision X·Wᵀ for token counts on and off every tile
/// (1-19 tokens) and row counts on and off the panels and three-panel tiles;
/// each token's outputs bit for bit the same whatever the token count; and
/// a panel range writes only its own columns.
func checkPanelKernel(_ kernel: PanelKernel, shapes: [(rows: Int, cols: Int)], seed: UInt64, format: PanelFormat = .f32) -> [[Float]] {
    var rng = SeededRandom(seed: seed)
    func r() -> Float { Float(rng.next() % 2001) / 1000 - 1 }
    var all: [[Float]] = []
    for (rows, K) in shapes {
        let w = PackedWeight(Matrix(rows: rows, cols: K, data: (0..<rows * K).map { _ in r() }), format: format)
        let m = w.matrix  // the weights as held (rounded to 16 bits for those formats)
        let x = (0..<19 * K).map { _ in r() }
        var byCount: [[Float]] = []
        for T in 1...19 {
            var out = [Float](repeating: .nan, count: T * rows)
            w.withPanels { kernel(T, x, K, $0, format, 0..<w.panels, K, rows, &out, rows) }
            for t in 0..<T {
                for j in 0..<rows {
                    let ref = (0..<K).reduce(0.0) { $0 + Double(x[t * K + $1]) * Double(m[j, $1]) }
                    #expect(abs(Double(out[t * rows + j]) - ref) <= 1e-5 * Double(K), "rows \(rows) K \(K) T \(T) t \(t) j \(j)")
                }
            }
            byCount.append(out)
        }
        for T in 1...19 {
            #expect(Array(byCount[T - 1]) == Array(byCount[18][0..<T * rows]), "\(T) tokens, rows \(rows)")
        }
        all.append(byCount[18])
        guard w.panels > 2 else { continue }
        var part = [Float](repeating: -7, count: 5 * rows)
        w.withPanels { kernel(5, x, K, $0, format, 1..<w.panels - 1, K, rows, &part, rows) }
        for t in 0..<5 {
            let own = t * rows + 16..<t * rows + 16 * (w.panels - 1)
            #expect(part[t * rows..<own.lowerBound].allSatisfy { $0 == -7 } && part[own.upperBound..<(t + 1) * rows].allSatisfy { $0 == -7 })
            #expect(Array(part[own]) == Array(byCount[4][own]))
        }
    }
    return all
}

@Suite struct PackedWeightTests {
    static let shapes = [(7, 8), (48, 24), (50, 24), (130, 576), (96, 1536)]

    @Test func packsAndUnpacksRows() {
        var rng = SeededRandom(seed: 3)
        let parts = [(7, 5), (16, 5), (50, 5)].map { Matrix(rows: $0.0, cols: $0.1, data: (0..<$0.0 * $0.1).map { _ in Float(rng.next() % 100) }) }
        for m in parts {
            let p = PackedWeight(m)
            #expect(p.matrix == m)
            #expect(p.data.count == p.panels * 16 * m.cols)
            // small integers are exact in every format
            for f in [PanelFormat.f16, .bf16] { #expect(PackedWeight(m, format: f).matrix == m) }
            var own = m
            let taken = PackedWeight(taking: &own)
            #expect(taken.data == p.data && own.rows == 0 && own.data.isEmpty)
        }
        let stacked = PackedWeight(stacking: parts)
        #expect(stacked.matrix.data == parts.flatMap(\.data))
        var row = [Float](repeating: 0, count: 5)
        stacked.copyRow(30, into: &row)
        #expect(row == Array(parts[2].data[7 * 5..<8 * 5]))
    }

    @Test(arguments: PanelFormat.allCases) func genericKernelMatchesReferenceAndIgnoresTokenCount(format: PanelFormat) {
        _ = checkPanelKernel(genericPanelKernel, shapes: Self.shapes, seed: 11, format: format)
    }

    /// The AVX-512 path, where the processor has it (whole three-panel tiles
    /// through the AVX-512 kernel, the shapes' other panels through the
    /// generic one): the same checks, and the same bits as the generic kernel.
    @Test(.enabled(if: CPUFeatures.avx512), arguments: PanelFormat.allCases) func avx512KernelMatchesGenericBitForBit(format: PanelFormat) {
        let wide = checkPanelKernel({ packedLinear(tokens: $0, input: $1, ldInput: $2, weight: $3, format: $4, panels: $5, cols: $6, rows: $7,
                                                   out: $8, ldOut: $9, wide: true) }, shapes: Self.shapes, seed: 13, format: format)
        let narrow = checkPanelKernel(genericPanelKernel, shapes: Self.shapes, seed: 13, format: format)
        #expect(wide == narrow)
    }

    /// 16-bit panels widen exactly: a product over f16 or bf16 panels is,
    /// bit for bit, the product over float32 panels of the same (rounded)
    /// values, on every kernel, for every token count.
    @Test(arguments: [PanelFormat.f16, .bf16]) func halfPanelsEqualFloatPanelsOfTheSameValues(format: PanelFormat) {
        var rng = SeededRandom(seed: 17)
        for (rows, K) in Self.shapes {
            let h = PackedWeight(Matrix(rows: rows, cols: K, data: (0..<rows * K).map { _ in Float(rng.next() % 2001) / 997 - 1 }), format: format)
            let f = PackedWeight(h.matrix)
            #expect(h.byteCount * 2 == f.byteCount && h.format == format)
            for T in [1, 4, 7, 19, widenedTokens, widenedTokens + 7] {  // in registers, and widened tile by tile
                let x = (0..<T * K).map { _ in Float(rng.next() % 2001) / 1000 - 1 }
                var a = [Float](repeating: 0, count: T * rows), b = a
                h.apply(tokens: T, input: x, out: &a, team: nil)
                f.apply(tokens: T, input: x, out: &b, team: nil)
                #expect(a == b, "\(format) rows \(rows) K \(K) T \(T)")
            }
        }
    }

    /// Splitting the panels across a team gives the same numbers as one
    /// thread, into an output wider than the weight too.
    @Test func teamSplitEqualsOneThread() {
        let team = ThreadTeam(size: 2)
        var rng = SeededRandom(seed: 5)
        let rows = 200, cols = 48
        let w = PackedWeight(Matrix(rows: rows, cols: cols, data: (0..<rows * cols).map { _ in Float(rng.next() % 1000) / 500 - 1 }))
        for T in [1, 5, 40] {
            let x = (0..<T * cols).map { _ in Float(rng.next() % 1000) / 500 - 1 }
            var one = [Float](repeating: 0, count: T * (rows + 3)), split = one
            w.apply(tokens: T, input: x, out: &one, ldOut: rows + 3, team: nil)
            w.apply(tokens: T, input: x, out: &split, ldOut: rows + 3, team: team)
            #expect(one == split, "tokens \(T)")
            #expect((0..<T).allSatisfy { t in one[t * (rows + 3) + rows..<(t + 1) * (rows + 3)].allSatisfy { $0 == 0 } })
        }
    }
}
