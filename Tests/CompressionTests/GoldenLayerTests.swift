import Foundation
import Testing
@testable import KickCore
import KickTestSupport

/// One layer through every method, against the reference implementations'
/// outputs in ../shared/golden/layer.
@Suite struct GoldenLayerTests {
    static let W = try! Npy.read(path: Golden.dir + "/layer/W.npy").matrix()
    static let X = try! Npy.read(path: Golden.dir + "/layer/X.npy").matrix()
    nonisolated(unsafe) static let cases = (try! Golden.json("layer/cases.json") as! [String: Any])["cases"] as! [String: [String: Any]]

    static func spec(_ c: [String: Any]) -> CompressionSpec {
        let method = CompressionSpec.Method(rawValue: c["method"] as! String)!
        var pattern: SparsityPattern?
        if let s = c["sparsity"] as? Double { pattern = .unstructured(s) }
        if let n = c["n"] as? Int, let m = c["m"] as? Int { pattern = .nm(n: m - n, m: m) }  // the reference names N pruned of M
        var q: QuantizerSpec?
        if let b = c["bits"] as? Int {
            let g = c["groupsize"] as! Int
            q = QuantizerSpec(bits: b, groupSize: g < 0 ? nil : g, symmetric: c["sym"] as? Bool ?? false)
        }
        return CompressionSpec(method: method, pattern: pattern, quantizer: q, actOrder: c["actorder"] as? Bool ?? false,
                               blocksize: c["blocksize"] as? Int ?? 128, percdamp: Float(c["percdamp"] as? Double ?? 0.01))
    }

    static func stats(full: Bool) -> HessianAccumulator {
        let h = HessianAccumulator(cols: X.cols, full: full)
        X.data.withUnsafeBufferPointer { h.add($0, rows: X.rows, samples: 1) }
        return h
    }

    static func outputError(_ wc: Matrix) -> Double {
        let a = X.timesTransposed(wc), b = X.timesTransposed(W)
        return zip(a.data, b.data).reduce(0.0) { $0 + Double($1.0 - $1.1) * Double($1.0 - $1.1) }
    }

    @Test(arguments: cases.keys.sorted())
    func matchesReference(_ name: String) throws {
        let c = Self.cases[name]!
        let spec = Self.spec(c)
        try spec.validate()
        let got = try spec.compress(Self.W, stats: spec.needsCalibration ? Self.stats(full: spec.needsHessian) : nil).matrix
        let want = try Npy.read(path: Golden.dir + "/layer/\(name).npy").matrix()
        let zeros = Double(got.data.filter { $0 == 0 }.count) / Double(got.data.count)
        switch spec.method {
        case .magnitude, .wanda:
            // the same mask, and kept weights untouched
            #expect(got.data.map { $0 == 0 } == want.data.map { $0 == 0 }, "mask of \(name)")
            #expect(got == want)
        default:
            let rel = relL2(got.data, want.data)
            #expect(rel <= 1e-3, "\(name): relative difference \(rel)")
            // a handful of mask flips or one-step quantization differences at most
            let maskFlips = zip(got.data, want.data).filter { ($0.0 == 0) != ($0.1 == 0) }.count
            let far = zip(got.data, want.data).filter { abs($0.0 - $0.1) > 1e-3 * max(1, abs($0.1)) }.count
            #expect(maskFlips <= 8 && far <= 16, "\(name): \(maskFlips) mask flips, \(far) entries off")
            let err = Self.outputError(got), wantErr = c["output_sq_error"] as! Double
            #expect(abs(err - wantErr) / wantErr < 0.01, "\(name): output error \(err) vs \(wantErr)")
        }
        #expect(abs(zeros - (c["zeros_fraction"] as! Double)) < 2e-3, "\(name): zeros \(zeros)")
    }

    /// SparseGPT on a Q4_1 source: kept values rounded to the source's grid
    /// inside the walk are all on the grid (so the sparse-ggml checkpoint
    /// stores exactly what the walk ended with), and the layer loses less
    /// output than walking free and rounding after.
    @Test func sparseGPTOnASourceGrid() throws {
        let (rows, cols) = (Self.W.rows, Self.W.cols)
        try #require(cols % 32 == 0)
        let payload = ggmlBlocks(Self.W, .q4_1)
        let grid = try #require(SourceGrid(type: .q4_1, payload: payload, rows: rows, cols: cols))
        var source = Self.W
        for i in source.data.indices { source.data[i] = grid.rounded(source.data[i], row: i / cols, col: i % cols) }
        let spec = CompressionSpec(method: .sparsegpt, pattern: .unstructured(0.5))
        let inWalk = try spec.compress(source, stats: Self.stats(full: true), grid: grid).matrix
        var after = try spec.compress(source, stats: Self.stats(full: true)).matrix
        for i in after.data.indices where after.data[i] != 0 { after.data[i] = grid.rounded(after.data[i], row: i / cols, col: i % cols) }
        let offGrid = inWalk.data.indices.filter { inWalk.data[$0] != 0 && inWalk.data[$0] != grid.rounded(inWalk.data[$0], row: $0 / cols, col: $0 % cols) }.count
        #expect(offGrid == 0, "kept values off the grid")
        #expect(Double(inWalk.data.filter { $0 == 0 }.count) >= 0.5 * Double(rows * cols))
        let encoded = try #require(TensorCodec.encodeSparseGGML(inWalk, type: .q4_1, source: payload))
        let decoded = try encoded.withUnsafeBytes { try TensorCodec.decode($0, rows: rows, cols: cols, .sparseGGML(.q4_1)) }
        #expect(decoded == inWalk.data, "sparse-ggml stores the walk's values exactly")
        func loss(_ wc: Matrix) -> Double {
            let a = Self.X.timesTransposed(wc), b = Self.X.timesTransposed(source)
            return zip(a.data, b.data).reduce(0.0) { $0 + Double($1.0 - $1.1) * Double($1.0 - $1.1) }
        }
        #expect(loss(inWalk) < loss(after), "in the walk \(loss(inWalk)), after it \(loss(after))")
    }
}
