import ArgumentParser
import Foundation
import KickCLI
import KickCore

/// A model folder of random weights in the published layout, at any
/// shape: what `make scale-check` measures kick on at 7B size.
struct SyntheticModel: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "synthetic-model",
        abstract: "Write a Llama folder of random weights as lmsys publishes them (.bin shards + index, tokenizer.model); default shape Llama 7B (13.5 GB in f16).")
    @Option(name: .long, help: "Output folder.") var out: String
    @Option(name: .long, help: "f16, bf16 or f32.") var dtype = "f16"
    @Option(name: .long) var layers = PublishedFolderWriter.llama7B.numLayers
    @Option(name: .long) var hidden = PublishedFolderWriter.llama7B.hiddenSize
    @Option(name: .long) var ffn = PublishedFolderWriter.llama7B.intermediateSize
    @Option(name: .long) var vocab = PublishedFolderWriter.llama7B.vocabSize
    @Option(name: .long) var heads = PublishedFolderWriter.llama7B.numHeads
    @Option(name: .long, help: "Largest shard in bytes.") var maxShardBytes = 10_000_000_000
    @Option(name: .long) var seed: UInt64 = 1

    func run() throws {
        guard let t = TorchDType(rawValue: dtype), t.dense != nil else { throw ValidationError("--dtype must be f16, bf16 or f32") }
        guard vocab >= 300 else { throw ValidationError("--vocab must be at least 300 (the tokenizer's byte and special pieces)") }
        var c = PublishedFolderWriter.llama7B
        c.numLayers = layers
        c.hiddenSize = hidden
        c.intermediateSize = ffn
        c.vocabSize = vocab
        c.numHeads = heads
        c.numKVHeads = heads
        c.headDim = heads > 0 ? hidden / heads : 0
        let t0 = Date()
        let shards = try PublishedFolderWriter.write(c, to: out, dtype: t, seed: seed, maxShardBytes: maxShardBytes)
        try printJSON(["out": out, "shards": shards.joined(separator: ","), "seconds": String(format: "%.1f", Date().timeIntervalSince(t0))])
    }
}
