import Foundation

/// The parsers of untrusted bytes, each as one entry point that takes any
/// bytes and must return (a thrown KickError is a clean refusal) without
/// trapping, hanging or leaking. The libFuzzer driver in Fuzz/ calls them
/// by name; the test suite replays the committed corpora through them.
public enum FuzzTargets {
    public static let names = ["gguf", "safetensors", "npy", "kick", "tok", "tokenizer-json", "task-jsonl", "task-log", "archive",
                               "pytorch", "sentencepiece"]

    /// Runs one input through target `name`; false for an unknown name.
    @discardableResult
    public static func run(_ name: String, _ data: Data) -> Bool {
        switch name {
        case "gguf":
            guard let r = try? GGUFReader(file: MappedFile(bytes: [UInt8](data), label: "fuzz.gguf")) else { return true }
            // what a model load does next with a reader
            if let src = try? GGUFWeightSource(reader: r) { _ = try? src.outerWeights() }
            _ = try? Tokenizer(gguf: r)
            for n in r.tensorOrder.prefix(4) { _ = try? r.floats(n) }
        case "safetensors":
            guard let r = try? SafetensorsReader(file: MappedFile(bytes: [UInt8](data), label: "fuzz.safetensors")) else { return true }
            for n in r.tensors.keys.sorted().prefix(4) { _ = try? r.floats(n) }
        case "npy":
            _ = try? Npy.parse(data, file: "fuzz.npy").matrix(file: "fuzz.npy")
        case "kick":
            guard let ck = try? KickCheckpoint(file: MappedFile(bytes: [UInt8](data), label: "fuzz.kick")) else { return true }
            _ = try? ck.verifyAll()
            _ = CheckpointSummary.summarize(ck)
        case "tok":
            _ = try? CalibrationSet.decode(data, file: "fuzz.tok")
        case "tokenizer-json":
            if let t = try? Tokenizer(huggingFaceJSON: data, tokenizerConfig: nil, config: nil, label: "fuzz/tokenizer.json") {
                let ids = t.encode("Hello, world! 123 héllo\n\t<|im_start|>", parseSpecial: true)
                _ = t.decode(ids.filter { $0 < t.tokens.count })
            }
        case "task-jsonl":
            _ = try? TaskFile.parse(data, file: "fuzz.jsonl")
            _ = try? TaskFile.parse(data, file: "fuzz.jsonl", task: "factoid")
        case "task-log":
            // every task's record type reads the same bytes
            for t in TaskRegistry.standard.tasks { parseLog(t, data) }
        case "archive":
            fuzzArchive(data)
        case "pytorch":
            // zip directory, restricted pickle, view checks, then the reads a load does
            guard let r = try? PyTorchCheckpointReader(file: MappedFile(bytes: [UInt8](data), label: "fuzz.bin")) else { return true }
            for n in r.tensors.keys.sorted().prefix(4) { _ = try? r.floats(n) }
        case "sentencepiece":
            if let m = try? SentencePieceModel(data: data, file: "fuzz/tokenizer.model"),
               let t = try? Tokenizer(sentencePiece: m, addBOS: true) {
                let ids = t.encode("Hello, world! 123 héllo\n\t  spaces", addBOS: true)
                _ = t.decode(ids.filter { $0 < t.tokens.count })
            }
        default:
            return false
        }
        return true
    }

    static func parseLog<T: KickTask>(_ task: T.Type, _ data: Data) {
        _ = try? TaskLog<T.Record>.parse(data, file: "fuzz.jsonl")
    }

    /// The archive member walk needs a file and a target folder: both are
    /// this process's own, under the temporary folder, and removed after.
    static func fuzzArchive(_ data: Data) {
        let base = NSTemporaryDirectory() + "kick-fuzz-archive-\(getpid())"
        let file = base + ".tar.zst", into = base + ".d"
        defer {
            unlink(file)
            try? FileManager.default.removeItem(atPath: into)
        }
        guard FileManager.default.createFile(atPath: file, contents: data) else { return }
        _ = try? CheckpointArchive.extract(file, into: into, maxBytes: 1 << 20)
        _ = try? ArchiveReader.readMember(archive: file, member: "kick-archive.json")
    }
}
