import Foundation
import Testing
@testable import KickCore
import KickTestSupport

/// The fuzzing campaign's regression half: every committed corpus input
/// and every input that once crashed goes through its parser again, in the
/// test process, where a trap would fail the run. `make fuzz` grows the
/// corpora; `KICK_FUZZ_WRITE_SEEDS=1 swift test --filter writeSeeds` writes
/// the small valid files they start from.
@Suite struct FuzzCorpusTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fuzz").path

    static func inputs(_ kind: String) -> [(target: String, file: String)] {
        var out: [(String, String)] = []
        for t in FuzzTargets.names {
            let dir = "\(root)/\(kind)/\(t)"
            for f in ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).sorted() where !f.hasPrefix(".") {
                out.append((t, "\(dir)/\(f)"))
            }
        }
        return out
    }

    @Test func everyTargetHasSeeds() {
        for t in FuzzTargets.names {
            #expect(Self.inputs("corpus").contains { $0.target == t }, "no corpus for \(t)")
        }
        #expect(!FuzzTargets.run("no-such-target", Data()))
    }

    @Test func replayCorporaAndCrashes() throws {
        let all = Self.inputs("corpus") + Self.inputs("crashes")
        #expect(all.count >= FuzzTargets.names.count)
        for (t, f) in all {
            #expect(FuzzTargets.run(t, try Data(contentsOf: URL(fileURLWithPath: f))), "\(t): \(f)")
        }
    }

    @Test(.enabled(if: ProcessInfo.processInfo.environment["KICK_FUZZ_WRITE_SEEDS"] == "1"))
    func writeSeeds() throws {
        let tmp = tempDir("seeds")
        func seed(_ t: String, _ name: String, _ d: Data) throws {
            let dir = "\(Self.root)/corpus/\(t)"
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            try d.write(to: URL(fileURLWithPath: "\(dir)/seed-\(name)"))
        }
        // a small byte-level model: GGUF, and the .kick checkpoint of it
        let c = LlamaConfig(vocabSize: 272, hiddenSize: 8, intermediateSize: 16, numLayers: 1, numHeads: 2, numKVHeads: 1, contextLength: 64)
        var toks = (0..<256).map { String(ByteLevelMap.byteToScalar[$0]) } + ["<|im_start|>", "<|im_end|>"]
        toks += (toks.count..<272).map { "t\($0)" }
        try LlamaExport.gguf(c, .random(c, seed: 1), to: tmp + "/m.gguf", f16: true, extraMetadata: [
            ("tokenizer.ggml.model", .string("gpt2")), ("tokenizer.ggml.pre", .string("smollm")),
            ("tokenizer.ggml.tokens", .strings(toks)), ("tokenizer.ggml.merges", .strings(["Ġ a"])),
            ("tokenizer.ggml.eos_token_id", .u32(257)), ("tokenizer.ggml.token_type", .i32s((0..<272).map { $0 >= 256 ? 3 : 1 })),
        ])
        try seed("gguf", "tiny-model.gguf", try Data(contentsOf: URL(fileURLWithPath: tmp + "/m.gguf")))
        let bundle = try ModelBundle.open(path: tmp + "/m.gguf")
        try CheckpointEncoder.write(bundle: bundle, to: tmp + "/m.kick", metadata: ["method": "dense"], transform: { _, _ in [:] })
        try seed("kick", "tiny-model.kick", try Data(contentsOf: URL(fileURLWithPath: tmp + "/m.kick")))
        try seed("safetensors", "two.safetensors", SafetensorsWriter.encode([("a.weight", [2, 3], [1, 2, 3, 4, 5, 6]), ("b", [4], [0, 1, 2, 3])]))
        try seed("safetensors", "f16.safetensors", SafetensorsWriter.encode([("x", [2, 2], [1, -2, 0.5, 8])], dtype: .f16))
        try seed("npy", "w.npy", Npy.encode(Npy.Array(shape: [2, 3], data: [1, 2, 3, 4, 5, 6])))
        try seed("tok", "calib.tok", CalibrationSet(windows: [[1, 2, 3, 4], [5, 6, 7, 8]], vocabSize: 272, tokenizerIdentity: "0123456789abcdef").encode())
        var vocab: [String: Int] = [:]
        for b in 0..<256 { vocab[String(ByteLevelMap.byteToScalar[b])] = b }
        vocab["Ġa"] = 256
        let bl: [String: Any] = [
            "added_tokens": [["id": 257, "content": "<|im_start|>", "special": true]],
            "pre_tokenizer": ["type": "Sequence", "pretokenizers": [["type": "Digits", "individual_digits": true],
                                                                    ["type": "ByteLevel", "add_prefix_space": false, "use_regex": true]]],
            "model": ["type": "BPE", "vocab": vocab, "merges": ["Ġ a"]],
        ]
        try seed("tokenizer-json", "byte-level.json", try JSONSerialization.data(withJSONObject: bl, options: [.sortedKeys]))
        var sp: [String: Int] = ["<unk>": 0, "<s>": 1, "</s>": 2]
        for b in 0..<256 { sp[String(format: "<0x%02X>", b)] = 3 + b }
        sp["▁h"] = 259; sp["▁hi"] = 260
        let spj: [String: Any] = [
            "added_tokens": [["id": 0, "content": "<unk>", "special": true], ["id": 1, "content": "<s>", "special": true]],
            "normalizer": ["type": "Sequence", "normalizers": [["type": "Prepend", "prepend": "▁"], ["type": "Replace", "pattern": ["String": " "], "content": "▁"]]],
            "pre_tokenizer": NSNull(),
            "model": ["type": "BPE", "vocab": sp, "merges": ["▁ h", "▁h i"], "byte_fallback": true, "unk_token": "<unk>"],
        ]
        try seed("tokenizer-json", "sentencepiece.json", try JSONSerialization.data(withJSONObject: spj, options: [.sortedKeys]))
        try seed("task-jsonl", "items.jsonl", try TaskFile.encode([
            TaskItem(id: "f1", task: "factoid", subset: "all", question: "Who wrote Hamlet?", golds: ["Shakespeare", "🍐"]),
            TaskItem(id: "m1", task: "mmlu", subset: "anatomy", group: "Other", question: "Q?", choices: ["a", "b", "c", "d"], golds: ["B"],
                     shots: [.init(question: "S?", choices: ["w", "x", "y", "z"], answer: "A")]),
        ]))
        try seed("task-log", "log.jsonl", Data("{\"id\":\"f1\",\"verdicts\":{\"exact_match\":true}}\n{\"id\":\"f2\",\"output\":\"x\"}\n{\"id\":\"f3\",\"out".utf8))
        try FileManager.default.createDirectory(atPath: tmp + "/cfg", withIntermediateDirectories: true)
        try "a checkpoint".write(toFile: tmp + "/cfg/model.kick", atomically: true, encoding: .utf8)
        try "{}".write(toFile: tmp + "/cfg/scores.json", atomically: true, encoding: .utf8)
        try CheckpointArchive.create(tmp + "/a.tar.zst", folders: [tmp + "/cfg"])
        try seed("archive", "config.tar.zst", try Data(contentsOf: URL(fileURLWithPath: tmp + "/a.tar.zst")))
        let m = try JSONEncoder().encode(CheckpointArchive.Manifest(members: [.init(path: "c/a", size: 3, sha256: SHA256.hex(of: Data("abc".utf8)))]))
        try seed("archive", "plain.tar", Data(ustar([("kick-archive.json", [UInt8](m)), ("c/a", Array("abc".utf8))])))
    }
}
