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

struct Layer: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Compress one linear layer: W (outputs × inputs) given calibration inputs X (tokens × inputs).")
    @OptionGroup var m: MethodOptions
    @Option(name: .long, help: "Weight .npy (outputs × inputs).") var weight: String
    @Option(name: .long, help: "Calibration inputs .npy (tokens × inputs); needed by wanda, sparsegpt and gptq.") var calib: String?
    @Option(name: .long, help: "Output .npy: the compressed weight in float32 (dequantized).") var out: String

    func validate() throws { _ = try m.spec() }

    func run() throws {
        let spec = try m.spec()
        if spec.needsCalibration && calib == nil { throw ValidationError("\(spec.method.rawValue) needs --calib") }
        let r = try SingleLayer.compress(spec, weight: weight, calib: calib)
        try Npy.write(Npy.Array(shape: [r.compressed.rows, r.compressed.cols], data: r.compressed.data), to: out)
        try printJSON(SingleLayer.Summary(out: out, method: spec.method.rawValue, config: spec.configName, seconds: r.seconds, sparsity: r.sparsity,
                                          relativeOutputError: r.relativeOutputError))
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
        var mc = m.compressor(spec, trueSequential: !noTrueSequential)
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
        abstract: "Seconds to compress the first decoder block (calibration included); writes nothing.",
        discussion: "With --width (and --ffn, --heads, --kv-heads) instead of --model, a block of random weights of that shape on --samples x --length random calibration rows: 7B is --width 4096 --ffn 11008, 13B --width 5120 --ffn 13824 --heads 40.")
    @OptionGroup var m: MethodOptions
    @Option(name: .long) var model: String?
    @Option(name: .long) var calib: String?
    @Option(name: .long, help: "Hidden size of a random block (instead of --model).") var width: Int?
    @Option(name: .long, help: "FFN size of the random block.") var ffn: Int?
    @Option(name: .long, help: "Attention heads of the random block (default: width / 128).") var heads: Int?
    @Option(name: .customLong("kv-heads"), help: "Key/value heads of the random block (default: --heads).") var kvHeads: Int?
    @Option(name: .long, help: "Random calibration sequences.") var samples = 128
    @Option(name: .long, help: "Tokens per random calibration sequence.") var length = 2048

    func validate() throws {
        guard (model == nil) != (width == nil) else { throw ValidationError("give --model (with --calib) or --width and --ffn, not both") }
        if width != nil {
            guard ffn != nil, calib == nil else { throw ValidationError("a random block needs --ffn and takes no --calib") }
            guard width! > 0, ffn! > 0, samples > 0, length > 0 else { throw ValidationError("--width, --ffn, --samples and --length must be positive") }
            let h = heads ?? width! / 128
            guard h > 0, width! % h == 0, (width! / h) % 2 == 0 else { throw ValidationError("--width \(width!) does not split into \(h) heads of an even size") }
            let kv = kvHeads ?? h
            guard kv > 0, h % kv == 0 else { throw ValidationError("--kv-heads must divide --heads") }
            // the random activations and weights must fit in memory (and their sizes in an Int)
            let memory = Double(ProcessInfo.processInfo.physicalMemory)
            guard Double(samples) * Double(length) * Double(width!) * Double(m.actDtype.bytes) <= memory,
                  Double(width!) * Double(ffn!) * 4 * 3 <= memory else {
                throw ValidationError("--samples x --length x --width or --width x --ffn do not fit this machine's memory")
            }
        }
    }

    func run() throws {
        let spec = try m.spec()
        let s: BlockCost, blocks: Int, calibration: String
        if let model {
            let bundle = try ModelBundle.open(path: model)
            let cal = try calib.map { try CalibrationSet.read(path: $0) }
            s = try m.compressor(spec).timeFirstBlock(bundle: bundle, calibration: cal)
            blocks = bundle.config.numLayers
            calibration = cal.map { "\($0.windows.count) x \($0.length)" } ?? "none"
        } else {
            let h = heads ?? width! / 128
            let config = LlamaConfig(vocabSize: 1, hiddenSize: width!, intermediateSize: ffn!, numLayers: 1, numHeads: h,
                                     numKVHeads: kvHeads ?? h, contextLength: length)
            s = try m.compressor(spec).timeRandomBlock(config: config, samples: samples, length: length)
            blocks = 1
            calibration = "\(samples) x \(length) random"
        }
        struct Output: Encodable {
            var config: String, block_seconds: Double, forward_seconds: Double, statistics_seconds: Double, walk_seconds: Double
            var layer_error_seconds: Double, calibration: String, act_dtype: String, kept_state_mb: Double?, blocks: Int, peak_rss_mb: Double
        }
        let r = { (x: Double) in (x * 1000).rounded() / 1000 }
        try printJSON(Output(config: spec.configName, block_seconds: r(s.totalSeconds), forward_seconds: r(s.forwardSeconds),
                             statistics_seconds: r(s.statisticsSeconds), walk_seconds: r(s.walkSeconds), layer_error_seconds: r(s.layerErrorSeconds),
                             calibration: calibration, act_dtype: m.actDtype.rawValue,
                             kept_state_mb: s.keptStateBytes.map { Double($0) / 1_048_576 }, blocks: blocks,
                             peak_rss_mb: Double(PeakMemory.residentBytes()) / 1_048_576))
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
            summary.verified = CheckpointSummary.Verified(tensors: t, blobs: b, tokenizer: true)
        }
        try printJSON(summary)
    }
}

runMain(KickCompress.self, tool: "kick-compress")
