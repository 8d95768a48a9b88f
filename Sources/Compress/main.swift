import ArgumentParser
import Foundation
import KickCLI
import KickCore

/// kick-compress: compress a model into a .kick checkpoint, and inspect
/// and archive checkpoints.
struct KickCompress: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kick-compress",
        abstract: "Compress Llama-family models into .kick checkpoints; inspect and archive them.",
        subcommands: [Layer.self, Model.self, Convert.self, Inspect.self, Archive.self, Extract.self, BenchBlock.self])
}


func logLine(_ s: String) { FileHandle.standardError.write(Data((s + "\n").utf8)) }

/// The options every compression command shares.
struct MethodOptions: ParsableArguments {
    @Option(name: .long, help: "The compression method.") var method: CompressionSpec.Method?
    @Option(name: .long, help: "A configuration name instead of the method flags (magnitude-unstructured-30, wanda-2of4-50, gptq-w4g128).") var config: String?
    @Option(name: .long, help: "Unstructured sparsity in (0, 1), e.g. 0.5.") var sparsity: Double?
    @Option(name: .long, help: "N:M pattern: keep N of every M inputs, e.g. 2:4.") var pattern: String?
    @Option(name: .long, help: "Quantization bits: 2, 3, 4 or 8.") var bits: Int?
    @Option(name: .long, help: "Columns per quantization group (default: one group per row).") var groupSize: Int?
    @Flag(name: .long, help: "Symmetric quantization.") var sym = false
    @Flag(name: .long, help: "GPTQ: walk columns by descending Hessian diagonal.") var actOrder = false
    @Flag(name: .long, help: "GPTQ: fix every group's scale and zero before the walk.") var staticGroups = false
    @Option(name: .long) var blocksize = 128
    @Option(name: .long) var percdamp: Float = 0.01

    func spec() throws -> CompressionSpec {
        if let config {
            guard method == nil, sparsity == nil, pattern == nil, bits == nil else { throw ValidationError("give --config or the method flags, not both") }
            do {
                guard let s = try CompressionSpec.parse(configName: config) else { throw ValidationError("--config dense: use kick-compress convert") }
                return s
            } catch let e as KickError { throw ValidationError(e.message) }
        }
        guard let m = method else {
            throw ValidationError("--method must be one of \(CompressionSpec.Method.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        if sparsity != nil && pattern != nil { throw ValidationError("give --sparsity or --pattern, not both") }
        var p: SparsityPattern?
        if let s = sparsity {
            p = .unstructured(s)
            do { try p!.validate() } catch let e as KickError { throw ValidationError("--" + e.message) }
        }
        if let pattern {
            do { p = try SparsityPattern.parseNM(pattern) } catch let e as KickError { throw ValidationError(e.message) }
        }
        let q = bits.map { QuantizerSpec(bits: $0, groupSize: groupSize, symmetric: sym) }
        if q == nil && (groupSize != nil || sym) { throw ValidationError("--group-size and --sym need --bits") }
        let spec = CompressionSpec(method: m, pattern: p, quantizer: q, actOrder: actOrder, staticGroups: staticGroups,
                                   blocksize: blocksize, percdamp: percdamp)
        do { try spec.validate() } catch let e as KickError { throw ValidationError(e.message) }
        return spec
    }
}

struct Layer: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Compress one linear layer: W (outputs × inputs) given calibration inputs X (tokens × inputs).")
    @OptionGroup var m: MethodOptions
    @Option(name: .long, help: "Weight .npy (outputs × inputs).") var weight: String
    @Option(name: .long, help: "Calibration inputs .npy (tokens × inputs); needed by wanda, sparsegpt and gptq.") var calib: String?
    @Option(name: .long, help: "Output .npy: the compressed weight in float32 (dequantized).") var out: String

    func validate() throws { _ = try m.spec() }

    func run() throws {
        let spec = try m.spec()
        let w = try Npy.read(path: weight).matrix(file: weight)
        guard w.data.allSatisfy(\.isFinite) else { throw KickError("the weight holds NaN or infinite values; refusing to compress it", file: weight) }
        var x: Matrix?
        if let calib {
            let c = try Npy.read(path: calib).matrix(file: calib)
            guard c.data.allSatisfy(\.isFinite) else { throw KickError("the calibration inputs hold NaN or infinite values", file: calib) }
            guard c.cols == w.cols else { throw KickError("calibration has \(c.cols) inputs, the weight \(w.cols)", file: calib) }
            x = c
        } else if spec.needsCalibration {
            throw ValidationError("\(spec.method.rawValue) needs --calib")
        }
        let t0 = Date()
        var stats: HessianAccumulator?
        if let x, spec.needsCalibration {
            let h = HessianAccumulator(cols: x.cols, full: spec.needsHessian)
            x.data.withUnsafeBufferPointer { h.add($0, rows: x.rows, samples: 1) }
            stats = h
        }
        let wc: Matrix
        do { wc = try spec.compress(w, stats: stats).matrix } catch let e as KickError where e.file == nil {
            throw KickError(e.message, file: calib ?? weight)
        }
        let seconds = Date().timeIntervalSince(t0)
        try Npy.write(Npy.Array(shape: [wc.rows, wc.cols], data: wc.data), to: out)
        var result: [String: Any] = ["out": out, "method": spec.method.rawValue, "config": spec.configName, "seconds": seconds,
                                     "sparsity": Double(wc.data.filter { $0 == 0 }.count) / Double(wc.data.count)]
        if let x {
            let a = x.timesTransposed(wc), b = x.timesTransposed(w)
            var num = 0.0, den = 0.0
            for i in a.data.indices { num += Double(a.data[i] - b.data[i]) * Double(a.data[i] - b.data[i]); den += Double(b.data[i]) * Double(b.data[i]) }
            result["relative_output_error"] = (num / den).squareRoot()
        }
        try printJSON(result)
    }
}

struct Convert: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Write a model unchanged as a .kick checkpoint (every tensor at its source precision).")
    @Option(name: .long, help: "A .gguf file, a Hugging Face folder or a .kick checkpoint.") var model: String
    @Option(name: .long, help: "Output .kick file.") var out: String
    @OptionGroup var lock: LockOptions

    func run() throws {
        let held = try OutputLock(file: out, wait: lock.wait)
        defer { withExtendedLifetime(held) {} }
        let bundle = try ModelBundle.open(path: model)
        let t0 = Date()
        try CheckpointEncoder.write(bundle: bundle, to: out, metadata: ["method": "dense"], transform: { _, _ in [:] })
        let seconds = Date().timeIntervalSince(t0)
        var report = CompressionReport()
        report.seconds = seconds
        report.peakRSSBytes = PeakMemory.residentBytes()
        try CompressManifest(spec: nil, trueSequential: false, source: .init(path: model, sha256: try InputHash.of(path: model)),
                             calibration: nil, calibrationShape: nil, checkpoint: .init(path: out, sha256: try InputHash.of(path: out)),
                             report: report).write(to: out + ".manifest.json")
        try printJSON(["out": out, "seconds": seconds])
    }
}

struct Model: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Compress every linear layer of every block, one block at a time, into DIR/model.kick with DIR/model.kick.manifest.json.")
    @OptionGroup var m: MethodOptions
    @Option(name: .long, help: "A .gguf file, a Hugging Face folder or a .kick checkpoint.") var model: String
    @Option(name: .long, help: "Calibration windows (.tok from kick-ingest calib); needed by wanda, sparsegpt and gptq.") var calib: String?
    @Flag(name: .long, help: "Capture the inputs of o and down from the uncompressed block instead of after q/k/v and gate/up are compressed.")
    var noTrueSequential = false
    @Option(name: .long, help: "Calibration windows per block forward (memory).") var samplesPerBatch = 8
    @Option(name: .long, help: "Output folder.") var out: String
    @OptionGroup var lock: LockOptions

    func validate() throws {
        let spec = try m.spec()
        if spec.needsCalibration && calib == nil { throw ValidationError("\(spec.method.rawValue) needs --calib FILE.tok") }
        guard samplesPerBatch > 0 else { throw ValidationError("--samples-per-batch must be positive") }
    }

    func run() throws {
        let spec = try m.spec()
        let held = try OutputLock(folder: out, wait: lock.wait)
        defer { withExtendedLifetime(held) {} }
        let bundle = try ModelBundle.open(path: model)
        let cal = try calib.map { try CalibrationSet.read(path: $0) }
        let path = (out as NSString).appendingPathComponent("model.kick")
        var mc = ModelCompressor(spec: spec, trueSequential: !noTrueSequential)
        mc.samplesPerBatch = samplesPerBatch
        let report = try mc.run(bundle: bundle, calibration: cal, to: path, metadata: ["true_sequential": String(!noTrueSequential)])
        let manifest = CompressManifest(spec: spec, trueSequential: !noTrueSequential,
                                        source: .init(path: model, sha256: try InputHash.of(path: model)),
                                        calibration: try calib.map { .init(path: $0, sha256: try InputHash.of(path: $0)) },
                                        calibrationShape: cal.map { [$0.windows.count, $0.length] },
                                        checkpoint: .init(path: path, sha256: try InputHash.of(path: path)),
                                        report: report)
        try manifest.write(to: path + ".manifest.json")
        if ProgressLine.isTerminal { FileHandle.standardError.write(Data("\n".utf8)) }
        try printJSON(["out": path, "config": spec.configName, "seconds": report.seconds, "peak_rss_bytes": report.peakRSSBytes])
    }
}

struct BenchBlock: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "bench-block",
        abstract: "Seconds to compress the first decoder block (calibration included); writes nothing.")
    @OptionGroup var m: MethodOptions
    @Option(name: .long) var model: String
    @Option(name: .long) var calib: String?

    func run() throws {
        let spec = try m.spec()
        let bundle = try ModelBundle.open(path: model)
        let cal = try calib.map { try CalibrationSet.read(path: $0) }
        let s = try ModelCompressor(spec: spec).timeFirstBlock(bundle: bundle, calibration: cal)
        try printJSON(["config": spec.configName, "block_seconds": s,
                   "calibration": cal.map { "\($0.windows.count) x \($0.length)" } ?? "none"])
    }
}

struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "JSON summary of a .kick checkpoint.")
    @Argument(help: "The .kick file.") var file: String
    @Flag(name: .long, help: "Also decode every tensor, verifying every checksum.") var verify = false

    func run() throws {
        let ck = try KickCheckpoint(path: file)
        var summary = CheckpointSummary.summarize(ck)
        if verify {
            let (t, b) = try ck.verifyAll()
            summary["verified"] = ["tensors": t, "blobs": b, "tokenizer": true]
        }
        try printJSON(summary)
    }
}

struct Archive: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Pack configuration folders into one .tar.zst with a sha256 manifest.")
    @Option(name: .long, help: "Output .tar.zst file.") var out: String
    @Argument(help: "Configuration folders (checkpoint, manifests, logs, scores).") var folders: [String]
    @Option(name: .long, help: "Name members by their path relative to this folder (default: by folder name).") var base: String?
    @OptionGroup var lock: LockOptions

    func validate() throws { guard !folders.isEmpty else { throw ValidationError("name at least one folder") } }

    func run() throws {
        let held = try OutputLock(file: out, wait: lock.wait)
        defer { withExtendedLifetime(held) {} }
        let m = try CheckpointArchive.create(out, folders: folders, relativeTo: base)
        try printJSON(["out": out, "members": m.members.count, "bytes": m.members.reduce(0) { $0 + $1.size }])
    }
}

struct Extract: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Unpack an archive after verifying every member's sha256; refuses paths that escape the target.")
    @Argument(help: "The .tar.zst file.") var archive: String
    @Option(name: .long, help: "Target folder.") var into: String
    @Option(name: .long, help: "Most bytes the archive may unpack to (its manifest's declared total).")
    var maxBytes = CheckpointArchive.defaultMaxBytes
    @OptionGroup var lock: LockOptions

    func run() throws {
        let held = try OutputLock(folder: into, wait: lock.wait)
        defer { withExtendedLifetime(held) {} }
        let m = try CheckpointArchive.extract(archive, into: into, maxBytes: maxBytes)
        try printJSON(["into": into, "members": m.members.count, "verified": true])
    }
}

runMain(KickCompress.self, tool: "kick-compress")
