import ArgumentParser
import Foundation
import KickCLI
import KickCore

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
    @Flag(inversion: .prefixedNo, help: ArgumentHelp(
        "Each layer's relative output error in the manifest (needs every input's full Hessian: default for sparsegpt and gptq, which build it anyway; wanda then builds it only for this).",
        visibility: .default))
    var layerError: Bool?
    @Flag(name: .long, help: "Run every calibration pass of a block from its input instead of resuming from the previous pass's state (same bytes; for comparison).")
    var recomputeStages = false
    @Option(name: .customLong("act-dtype"), help: ArgumentHelp(
        "How calibration activations are kept between passes and blocks: f32, f16 or bf16 (products stay float32; f16 halves the memory).",
        valueName: "f32|f16|bf16"))
    var actDtype: PanelFormat = .f16
    @Option(name: .customLong("stage-memory"), help: ArgumentHelp(
        "Most GiB the resumed passes may keep (the block state of every calibration row); past it every pass recomputes from the block's input. Default: half of this machine's memory.",
        valueName: "GiB"))
    var stageMemory: Double?

    func validate() throws {
        // a NaN or an enormous value would trap converting to bytes
        if let s = stageMemory, !(s.isFinite && s >= 0 && s <= 1_048_576) {
            throw ValidationError("--stage-memory must be a number of GiB from 0 to 1048576, not \(s)")
        }
    }

    /// The compressor these flags ask for.
    func compressor(_ spec: CompressionSpec, trueSequential: Bool = true) -> ModelCompressor {
        var mc = ModelCompressor(spec: spec, trueSequential: trueSequential)
        mc.layerErrors = layerError
        mc.resumeStages = !recomputeStages
        mc.activationFormat = actDtype
        if let stageMemory { mc.stageMemoryLimit = Int(stageMemory * Double(1 << 30)) }
        return mc
    }

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

extension PanelFormat: ExpressibleByArgument {}
