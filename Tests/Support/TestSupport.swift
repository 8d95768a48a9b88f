import Foundation
import KickCore

/// The reference outputs in ../shared/golden (KICK_GOLDEN overrides).
public enum Golden {
    public static var dir: String {
        if let d = ProcessInfo.processInfo.environment["KICK_GOLDEN"] { return d }
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        return root.deletingLastPathComponent().appendingPathComponent("shared/golden").path
    }

    public static func json(_ rel: String) throws -> Any {
        try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir + "/" + rel)))
    }
}

/// A fresh temporary folder for one test.
public func tempDir(_ name: String) -> String {
    let d = NSTemporaryDirectory() + "kick-tests-\(name)-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
    try? FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
    return d
}

/// ‖a − b‖ / ‖b‖ in double.
public func relL2(_ a: [Float], _ b: [Float]) -> Double {
    var d = 0.0, n = 0.0
    for i in a.indices { d += Double(a[i] - b[i]) * Double(a[i] - b[i]); n += Double(b[i]) * Double(b[i]) }
    return (d / n).squareRoot()
}

/// How many positions of `a` and `b` differ, plus the difference in
/// length: different bits (so −0 and +0 differ), and, as with `==`, every
/// NaN. For `#expect(differing(a, b) == 0)`: on failure Swift Testing then
/// prints a count, where comparing the arrays themselves would describe
/// every element of both (minutes for a model's logits).
public func differing(_ a: [Float], _ b: [Float]) -> Int {
    zip(a, b).reduce(abs(a.count - b.count)) { $0 + ($1.0.bitPattern != $1.1.bitPattern || $1.0.isNaN ? 1 : 0) }
}

/// Runs one of the built kick executables as a user would: no standard
/// input, optionally in another folder; returns status, stdout and stderr.
public enum KickTool {
    public static func path(_ tool: String) -> String {
        let candidates = [
            URL(fileURLWithPath: ProcessInfo.processInfo.arguments[0]).deletingLastPathComponent().appendingPathComponent(tool).path,
            URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
                .appendingPathComponent(".build/debug/\(tool)").path,
        ]
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0) } ?? candidates[1]
    }

    public static func run(_ tool: String, _ args: [String], in dir: String? = nil) throws -> (status: Int32, out: String, err: String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: path(tool))
        p.arguments = args
        if let dir { p.currentDirectoryURL = URL(fileURLWithPath: dir) }
        let o = Pipe(), e = Pipe()
        p.standardOutput = o
        p.standardError = e
        p.standardInput = FileHandle.nullDevice
        try p.run()
        let out = o.fileHandleForReading.readDataToEndOfFile()
        let err = e.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: out, as: UTF8.self), String(decoding: err, as: UTF8.self))
    }
}

/// A tiny byte-level GGUF model (random weights, 300-token vocabulary) for
/// tests that need a real file; `metadata` is appended after the model's
/// own keys, so a repeated key overrides it.
public func tinyGGUF(_ path: String, layers: Int = 2, metadata: [(String, GGUFWriter.Value)] = [],
                     edit: (inout LlamaWeights) -> Void = { _ in }) throws -> LlamaConfig {
    let c = LlamaConfig(vocabSize: 300, hiddenSize: 32, intermediateSize: 64, numLayers: layers, numHeads: 4, numKVHeads: 2,
                        contextLength: 256, ropeStyle: .halves)
    var toks = (0..<256).map { String(ByteLevelMap.byteToScalar[$0]) } + ["<|im_start|>", "<|im_end|>"]
    toks += (toks.count..<300).map { "tok\($0)" }
    var w = LlamaWeights.random(c, seed: 3, scale: 0.5)
    edit(&w)
    try LlamaExport.gguf(c, w, to: path, extraMetadata: [
        ("tokenizer.ggml.model", .string("gpt2")), ("tokenizer.ggml.pre", .string("smollm")),
        ("tokenizer.ggml.tokens", .strings(toks)), ("tokenizer.ggml.merges", .strings([])),
        ("tokenizer.ggml.eos_token_id", .u32(257)),
    ] + metadata)
    return c
}

/// A plain ustar archive of regular files, for tests that need archives
/// kick would never write (libarchive reads them with or without zstd).
public func ustar(_ members: [(name: String, data: [UInt8])]) -> [UInt8] {
    var out: [UInt8] = []
    for (name, data) in members {
        var h = [UInt8](repeating: 0, count: 512)
        func put(_ s: String, _ at: Int) { for (i, b) in s.utf8.enumerated() { h[at + i] = b } }
        put(name, 0)
        put("0000644\0", 100); put("0000000\0", 108); put("0000000\0", 116)
        put(String(format: "%011o\0", data.count), 124)
        put("00000000000\0", 136)
        put("        ", 148)
        h[156] = UInt8(ascii: "0")
        put("ustar\0", 257); put("00", 263)
        let sum = h.reduce(0) { $0 + Int($1) }
        put(String(format: "%06o\0 ", sum), 148)
        out += h + data + [UInt8](repeating: 0, count: (512 - data.count % 512) % 512)
    }
    return out + [UInt8](repeating: 0, count: 1024)
}

/// A matrix in ggml's Q4_0, Q4_1 or Q8_0 blocks, rounded to nearest (any
/// valid blocks serve tests that compare kick's decoders with each other).
public func ggmlBlocks(_ m: Matrix, _ type: GGMLType) -> [UInt8] {
    precondition(m.cols % 32 == 0, "ggml blocks need whole 32-column rows")
    var out: [UInt8] = []
    func half(_ v: Float) { let h = floatToHalf(v); out += [UInt8(h & 0xFF), UInt8(h >> 8)] }
    for r in 0..<m.rows {
        for j in 0..<m.cols / 32 {
            let x = Array(m.data[r * m.cols + 32 * j..<r * m.cols + 32 * j + 32])
            let lo = x.min()!, hi = x.max()!, amax = max(abs(lo), abs(hi))
            switch type {
            case .q8_0:
                let d = amax / 127
                half(d)
                for v in x { out.append(UInt8(bitPattern: Int8(max(-127, min(127, d == 0 ? 0 : (v / d).rounded()))))) }
            case .q4_1:
                let d = (hi - lo) / 15
                half(d); half(lo)
                let q = x.map { UInt8(max(0, min(15, d == 0 ? 0 : ((($0 - lo) / d).rounded())))) }
                for k in 0..<16 { out.append(q[k] | q[k + 16] << 4) }
            default:
                let d = amax / 7
                half(d)
                let q = x.map { UInt8(max(0, min(15, (d == 0 ? 0 : ($0 / d).rounded()) + 8))) }
                for k in 0..<16 { out.append(q[k] | q[k + 16] << 4) }
            }
        }
    }
    return out
}

/// A quantized matrix whose columns were walked in a random order
/// (act-order): the groups are consecutive in that order, and every
/// column records its group, as GPTQ's g_idx does.
public func actOrderQuantized(_ w: Matrix, bits: Int, groupSize: Int, seed: UInt64) -> QuantizedMatrix {
    var rng = SeededRandom(seed: seed)
    let perm = Array(0..<w.cols).shuffled(using: &rng)
    var permuted = Matrix(zeros: w.rows, w.cols)
    for r in 0..<w.rows { for (j, c) in perm.enumerated() { permuted.data[r * w.cols + j] = w.data[r * w.cols + c] } }
    let q = RTNForTests.quantize(permuted, bits: bits, groupSize: groupSize)
    var codes = [UInt8](repeating: 0, count: w.rows * w.cols)
    var group = [Int32](repeating: 0, count: w.cols)
    for (j, c) in perm.enumerated() {
        group[c] = Int32(j / groupSize)
        for r in 0..<w.rows { codes[r * w.cols + c] = q.codes[r * w.cols + j] }
    }
    return QuantizedMatrix(rows: w.rows, cols: w.cols, bits: bits, groupSize: groupSize, codes: codes, scales: q.scales, zeros: q.zeros,
                           columnGroup: group)
}

enum RTNForTests {
    static func quantize(_ w: Matrix, bits: Int, groupSize: Int) -> QuantizedMatrix {
        RTN.quantize(w, QuantizerSpec(bits: bits, groupSize: groupSize))
    }
}
