import Foundation
import Testing
@testable import KickCore
import KickTestSupport

/// Runs the built kick-infer binary as a user would.
enum CLI {
    static var binary: String {
        let candidates = [
            URL(fileURLWithPath: ProcessInfo.processInfo.arguments[0]).deletingLastPathComponent().appendingPathComponent("kick-infer").path,
            URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
                .appendingPathComponent(".build/debug/kick-infer").path,
        ]
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0) } ?? candidates[1]
    }

    static func run(_ args: [String]) throws -> (status: Int32, out: String, err: String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: binary)
        p.arguments = args
        let o = Pipe(), e = Pipe()
        p.standardOutput = o
        p.standardError = e
        try p.run()
        let out = o.fileHandleForReading.readDataToEndOfFile()
        let err = e.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: out, as: UTF8.self), String(decoding: err, as: UTF8.self))
    }
}

@Suite(.serialized) struct InferCLITests {
    static let model = try! PackageFetcher().smolLM2()

    @Test func tokenizeGenerateLogitsPerplexity() throws {
        let dir = NSTemporaryDirectory() + "kick-cli-\(getpid())"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try "\"The capital of France is\"\n\"<|im_start|>user\"\n".write(toFile: dir + "/t.jsonl", atomically: true, encoding: .utf8)
        var r = try CLI.run(["tokenize", "--model", Self.model, "--jsonl", dir + "/t.jsonl", "--parse-special"])
        #expect(r.status == 0)
        #expect(r.out == "[504,3575,282,4649,314]\n[1,4093]\n")

        r = try CLI.run(["generate", "--model", Self.model, "--tokens", "504,3575,282,4649,314", "--max-new-tokens", "4"])
        #expect(r.status == 0, "\(r.err)")
        let g = try JSONSerialization.jsonObject(with: Data(r.out.utf8)) as! [String: Any]
        #expect(g["tokens"] as? [Int] == [7042, 30, 198, 198])
        #expect(g["text"] as? String == " Paris.\n\n")

        r = try CLI.run(["logits", "--model", Self.model, "--tokens", "504,3575", "--out", dir + "/l.npy"])
        #expect(r.status == 0)
        #expect(try Npy.read(path: dir + "/l.npy").shape == [2, 49152])

        r = try CLI.run(["perplexity", "--model", Self.model, "--tokens", "504,3575,282,4649,314"])
        let p = try JSONSerialization.jsonObject(with: Data(r.out.utf8)) as! [String: Any]
        #expect((p["perplexity"] as! Double) > 1 && p["scored_tokens"] as? Int == 4)
    }

    @Test func badInputGivesAClearErrorAndNonZeroExit() throws {
        var r = try CLI.run(["generate", "--model", "/nonexistent/model.gguf", "--tokens", "1,2"])
        #expect(r.status != 0)
        #expect(r.err.contains("/nonexistent/model.gguf") && r.err.contains("not found"))
        r = try CLI.run(["generate", "--model", Self.model, "--tokens", "1,x"])
        #expect(r.status != 0 && r.err.contains("'x'"))
        r = try CLI.run(["generate", "--model", Self.model, "--tokens", "1", "--prompt", "a"])
        #expect(r.status != 0 && r.err.contains("exactly one"))
        r = try CLI.run(["logits", "--model", Self.model, "--tokens", "99999999", "--out", "/tmp/x.npy"])
        #expect(r.status != 0 && r.err.contains("outside the vocabulary"))
        r = try CLI.run(["frobnicate"])
        #expect(r.status != 0)
        let notGGUF = NSTemporaryDirectory() + "kick-notgguf-\(getpid()).gguf"
        try "hello".write(toFile: notGGUF, atomically: true, encoding: .utf8)
        r = try CLI.run(["perplexity", "--model", notGGUF, "--tokens", "1,2"])
        #expect(r.status != 0 && r.err.contains(notGGUF) && r.err.contains("bad magic"))
    }
}
