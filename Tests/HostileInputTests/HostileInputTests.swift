import Foundation
import Testing
@testable import KickCore
import KickTestSupport

/// Issue 13's findings, one test each: before its fix, each of these
/// trapped (SIGILL), hung, wrote outside its place or scored wrongly.
@Suite(.serialized) struct HostileInputTests {
    static func npy(_ shape: [Int], _ data: [Float]) -> Data { Npy.encode(Npy.Array(shape: shape, data: data)) }

    // MARK: 1. crashes

    @Test func nonFiniteJSONIsNullNotATrap() throws {
        let d = try JSONOutput.data(["a": Double.nan, "b": [1.0, Double.infinity], "c": "x"])
        let o = try JSONSerialization.jsonObject(with: d) as! [String: Any]
        #expect(o["a"] is NSNull)
        #expect((o["b"] as! [Any])[1] is NSNull)
        #expect(o["c"] as? String == "x")
    }

    @Test func perplexityOfTooShortTextIsAnError() throws {
        let dir = tempDir("ppl-short")
        _ = try tinyGGUF(dir + "/m.gguf")
        try "hi".write(toFile: dir + "/t.txt", atomically: true, encoding: .utf8)
        var r = try KickTool.run("kick-infer", ["perplexity", "--model", dir + "/m.gguf", "--text-file", dir + "/t.txt", "--window", "16"])
        #expect(r.status == 1)
        #expect(r.err.contains("kick-infer: error: \(dir)/t.txt: the text has"))
        r = try KickTool.run("kick-infer", ["perplexity", "--model", dir + "/m.gguf", "--text-file", dir + "/t.txt", "--max-windows", "0"])
        #expect(r.status != 0 && r.status < 128)
        #expect(r.err.hasPrefix("kick-infer: error: --max-windows must be at least 1"))
    }

    @Test func emptyAndOneDimensionalNpyWeightsAreRefused() throws {
        #expect(throws: KickError.self) { try Npy.parse(Self.npy([0, 4], [])).matrix() }
        #expect(throws: KickError.self) { try Npy.parse(Self.npy([4], [1, 2, 3, 4])).matrix() }
        var longer = Self.npy([2, 2], [1, 2, 3, 4])
        longer.append(contentsOf: [0, 0, 0, 0])
        let e = #expect(throws: KickError.self) { try Npy.parse(longer) }
        #expect(e?.message.contains("longer than its shape") == true)
    }

    @Test func layerWithZeroCalibrationWritesNullAndNaNCalibrationNamesTheFile() throws {
        let dir = tempDir("layer-calib")
        try Self.npy([4, 8], (0..<32).map { Float($0) / 10 - 1.5 }).write(to: URL(fileURLWithPath: dir + "/w.npy"))
        try Self.npy([16, 8], [Float](repeating: 0, count: 128)).write(to: URL(fileURLWithPath: dir + "/zero.npy"))
        var nan = [Float](repeating: 1, count: 128); nan[5] = .nan
        try Self.npy([16, 8], nan).write(to: URL(fileURLWithPath: dir + "/nan.npy"))
        for method in ["wanda", "sparsegpt"] {
            let r = try KickTool.run("kick-compress", ["layer", "--method", method, "--sparsity", "0.5", "--weight", dir + "/w.npy",
                                                       "--calib", dir + "/zero.npy", "--out", dir + "/o.npy"])
            #expect(r.status == 0, "\(method): \(r.err)")
            #expect(r.out.contains("\"relative_output_error\":null"))
            #expect(r.err.contains("warning: relative_output_error is not a finite number"))
        }
        for args in [["--method", "gptq", "--bits", "4"], ["--method", "wanda", "--sparsity", "0.5"], ["--method", "sparsegpt", "--sparsity", "0.5"]] {
            let r = try KickTool.run("kick-compress", ["layer"] + args + ["--weight", dir + "/w.npy", "--calib", dir + "/nan.npy", "--out", dir + "/o.npy"])
            #expect(r.status == 1)
            #expect(r.err.hasPrefix("kick-compress: error: \(dir)/nan.npy: the calibration inputs hold NaN"))
        }
    }

    @Test func aModelWithNaNWeightsRunsToNullsAndIsNotCompressed() throws {
        let dir = tempDir("nan-model")
        _ = try tinyGGUF(dir + "/nan.gguf") { $0.blocks[0].linear[.q]!.data[3] = .nan }
        var r = try KickTool.run("kick-infer", ["perplexity", "--model", dir + "/nan.gguf", "--tokens", "1,2,3,4"])
        #expect(r.status == 0, "\(r.err)")
        #expect(r.out.contains("\"perplexity\":null"))
        #expect(r.err.contains("warning: perplexity is not a finite number; written as null"))
        r = try KickTool.run("kick-compress", ["model", "--method", "magnitude", "--sparsity", "0.5", "--model", dir + "/nan.gguf", "--out", dir + "/o"])
        #expect(r.status == 1)
        #expect(r.err.hasPrefix("kick-compress: error: \(dir)/nan.gguf: block 0: the weight holds NaN"), "\(r.err)")
        #expect(!FileManager.default.fileExists(atPath: dir + "/o/model.kick"))
    }

    @Test func nanWeightsAreRefusedBeforeAnyAlgebra() throws {
        var w = Matrix(rows: 2, cols: 4, data: [1, 2, 3, 4, 5, 6, 7, .nan])
        for spec in [CompressionSpec(method: .magnitude, pattern: .unstructured(0.5)),
                     CompressionSpec(method: .rtn, quantizer: QuantizerSpec(bits: 4))] {
            #expect(throws: KickError.self) { try spec.compress(w, stats: nil) }
        }
        w.data[7] = 8
        let h = HessianAccumulator(cols: 4, full: true)
        let x: [Float] = [1, .infinity, 0, 1]
        x.withUnsafeBufferPointer { h.add($0, rows: 1, samples: 1) }
        let e = #expect(throws: KickError.self) { try CompressionSpec(method: .gptq, quantizer: QuantizerSpec(bits: 4)).compress(w, stats: h) }
        #expect(e?.message.contains("calibration inputs hold NaN or infinite") == true)
    }

    @Test func quantizerNeverTrapsOnNaN() {
        let q = QuantizerSpec(bits: 4)
        #expect(q.code(.nan, scale: 0.1, zero: 8) == 8)
        #expect(q.zeroCode(.nan) == 0)
        let m = RTN.quantize(Matrix(rows: 1, cols: 4, data: [.nan, 1, -1, 0.5]), q)
        #expect(m.codes.count == 4)
    }

    @Test func zeroHeadsAndBadRopeThetaAreRefused() throws {
        let dir = tempDir("config")
        _ = try tinyGGUF(dir + "/h0.gguf", metadata: [("llama.attention.head_count", .u32(0))])
        #expect(throws: KickError.self) { try ModelBundle.open(path: dir + "/h0.gguf") }
        _ = try tinyGGUF(dir + "/r0.gguf", metadata: [("llama.rope.freq_base", .f32(0))])
        let e = #expect(throws: KickError.self) { try ModelBundle.open(path: dir + "/r0.gguf") }
        #expect(e?.code == .invalidValue && e?.message.contains("rope theta") == true)
        let json = #"{"vocab_size":300,"hidden_size":32,"intermediate_size":64,"num_hidden_layers":1,"num_attention_heads":0,"rms_norm_eps":1e-5}"#
        let c = try JSONDecoder().decode(LlamaConfig.self, from: Data(json.utf8))
        #expect(throws: KickError.self) { try c.validate() }
        var bad = LlamaConfig(vocabSize: 300, hiddenSize: 32, intermediateSize: 64, numLayers: 1, numHeads: 4, numKVHeads: 2, headDim: 16)
        #expect(throws: KickError.self) { try bad.validate() }  // 4 × 16 ≠ 32
        bad.headDim = 8; bad.rmsNormEps = .nan
        #expect(throws: KickError.self) { try bad.validate() }
    }

    @Test func tokHeaderNear2To32IsAnErrorNotAnOverflow() {
        var d = Data(CalibrationSet.magic)
        for v: UInt32 in [0xFFFF_FFFF, 0xFFFF_FFFF, 300] { withUnsafeBytes(of: v.littleEndian) { d.append(contentsOf: $0) } }
        d.append(contentsOf: [UInt8](repeating: 0x20, count: 16) + [0, 0, 0, 0])
        let e = #expect(throws: KickError.self) { try CalibrationSet.decode(d, file: "x.tok") }
        #expect(e?.message.contains("calibration header says") == true)
    }

    // MARK: 2. hang

    @Test func fifoWhereAFileShouldBeIsRefusedAtOnce() throws {
        let dir = tempDir("fifo")
        for name in ["model.safetensors", "w.npy", "m.gguf", "c.tok"] { #expect(mkfifo(dir + "/" + name, 0o644) == 0) }
        try #"{"architectures":["LlamaForCausalLM"],"vocab_size":300,"hidden_size":32,"intermediate_size":64,"num_hidden_layers":1,"num_attention_heads":4}"#
            .write(toFile: dir + "/config.json", atomically: true, encoding: .utf8)
        let t0 = Date()
        #expect(try #require(#expect(throws: KickError.self) { try MappedFile(path: dir + "/model.safetensors") }).code == .refused)
        #expect(throws: KickError.self) { try Npy.read(path: dir + "/w.npy") }
        #expect(throws: KickError.self) { try ModelBundle.open(path: dir + "/m.gguf") }
        #expect(throws: KickError.self) { try CalibrationSet.read(path: dir + "/c.tok") }
        #expect(throws: KickError.self) { try HFWeightSource(directory: dir) }
        // an index whose shard is a FIFO: the case that hung
        let sharded = dir + "/sharded"
        try FileManager.default.createDirectory(atPath: sharded, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: dir + "/config.json", toPath: sharded + "/config.json")
        try #"{"weight_map":{"model.embed_tokens.weight":"model-00001-of-00001.safetensors"}}"#
            .write(toFile: sharded + "/model.safetensors.index.json", atomically: true, encoding: .utf8)
        #expect(mkfifo(sharded + "/model-00001-of-00001.safetensors", 0o644) == 0)
        let e = #expect(throws: KickError.self) { try HFWeightSource(directory: sharded) }
        #expect(e?.code == .refused && e?.file == sharded + "/model-00001-of-00001.safetensors")
        #expect(Date().timeIntervalSince(t0) < 5)
    }

    // MARK: 3. files outside the target

    @Test func extractRefusesToWriteThroughASymlinkInTheTarget() throws {
        let dir = tempDir("extract-link")
        try FileManager.default.createDirectory(atPath: dir + "/src/cfg", withIntermediateDirectories: true)
        try "weights".write(toFile: dir + "/src/cfg/a.txt", atomically: true, encoding: .utf8)
        try CheckpointArchive.create(dir + "/a.tar.zst", folders: [dir + "/src/cfg"])
        try FileManager.default.createDirectory(atPath: dir + "/elsewhere", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: dir + "/T", withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: dir + "/T/cfg", withDestinationPath: dir + "/elsewhere")
        let e = #expect(throws: KickError.self) { try CheckpointArchive.extract(dir + "/a.tar.zst", into: dir + "/T") }
        #expect(e?.code == .refused && e?.file == dir + "/T/cfg")
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir + "/elsewhere").isEmpty)
        // a link at the file's own name is refused too
        try FileManager.default.removeItem(atPath: dir + "/T/cfg")
        try FileManager.default.createDirectory(atPath: dir + "/T/cfg", withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: dir + "/T/cfg/a.txt", withDestinationPath: dir + "/elsewhere/x")
        #expect(throws: KickError.self) { try CheckpointArchive.extract(dir + "/a.tar.zst", into: dir + "/T") }
        #expect(!FileManager.default.fileExists(atPath: dir + "/elsewhere/x"))
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir + "/T").filter { $0.hasPrefix(".kick-extract") }.isEmpty)
    }

    @Test func outRefusesToReplaceNonRegularFiles() throws {
        let dir = tempDir("out-nonregular")
        #expect(mkfifo(dir + "/fifo", 0o644) == 0)
        try FileManager.default.createSymbolicLink(atPath: dir + "/link", withDestinationPath: dir + "/target")
        for p in ["/fifo", "/link"] {
            let e = #expect(throws: KickError.self) { try AtomicFile.write("x", to: dir + p) }
            #expect(e?.code == .refused)
        }
        #expect(!FileManager.default.fileExists(atPath: dir + "/target"))
        var st = stat()
        #expect(lstat(dir + "/fifo", &st) == 0 && (st.st_mode & S_IFMT) == S_IFIFO)
        try "x".write(toFile: dir + "/file", atomically: true, encoding: .utf8)
        let r = try KickTool.run("kick-compress", ["archive", "--out", "/dev/null", dir])
        #expect(r.status == 1)
        #expect(r.err.contains("/dev/null: is not a regular file"))
        #expect(!FileManager.default.fileExists(atPath: "/dev/.null.lock"))
    }

    // MARK: 4. archive bombs

    @Test func extractionNeverWritesMoreThanAMemberDeclares() throws {
        let dir = tempDir("bomb")
        let manifest = try JSONEncoder().encode(CheckpointArchive.Manifest(members: [.init(path: "c/a.bin", size: 10, sha256: String(repeating: "0", count: 64))]))
        let big = [UInt8](repeating: 0, count: 3 << 20)
        try Data(ustar([("kick-archive.json", [UInt8](manifest)), ("c/a.bin", big)])).write(to: URL(fileURLWithPath: dir + "/bomb.tar"))
        let e = #expect(throws: KickError.self) { try CheckpointArchive.extract(dir + "/bomb.tar", into: dir + "/T") }
        #expect(e?.code == .refused && e?.message.contains("more than the 10 bytes") == true)
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir + "/T").filter { !$0.hasPrefix(".kick.lock") }.isEmpty)
        // the manifest last (older archives): still read first, still bounded
        try Data(ustar([("c/a.bin", big), ("kick-archive.json", [UInt8](manifest))])).write(to: URL(fileURLWithPath: dir + "/late.tar"))
        #expect(throws: KickError.self) { try CheckpointArchive.extract(dir + "/late.tar", into: dir + "/T") }
        // a member the manifest does not declare
        try Data(ustar([("kick-archive.json", [UInt8](manifest)), ("c/other.bin", [1, 2])])).write(to: URL(fileURLWithPath: dir + "/undeclared.tar"))
        let u = #expect(throws: KickError.self) { try CheckpointArchive.extract(dir + "/undeclared.tar", into: dir + "/T") }
        #expect(u?.message.contains("no declared size") == true)
        // a declared total over the cap, refused before anything is written
        let huge = try JSONEncoder().encode(CheckpointArchive.Manifest(members: [.init(path: "c/a.bin", size: 10 << 30, sha256: "")]))
        try Data(ustar([("kick-archive.json", [UInt8](huge))])).write(to: URL(fileURLWithPath: dir + "/huge.tar"))
        let h = #expect(throws: KickError.self) { try CheckpointArchive.extract(dir + "/huge.tar", into: dir + "/T", maxBytes: 1 << 30) }
        #expect(h?.message.contains("over the limit") == true)
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir + "/T").filter { $0.hasPrefix(".kick-extract") }.isEmpty)
    }

    @Test func staleStagingAndTemporariesAreCleanedAtTheNextRun() throws {
        let dir = tempDir("stale")
        // pid 2^22+7 is above Linux's pid_max default: no such process
        let dead = 4_194_311
        try FileManager.default.createDirectory(atPath: dir + "/T/.kick-extract-\(dead)", withIntermediateDirectories: true)
        try "x".write(toFile: dir + "/T/.model.kick.tmp-\(dead)", atomically: false, encoding: .utf8)
        try "x".write(toFile: dir + "/T/.a.jsonl.tmp-\(dead)@\(AtomicFile.hostName)", atomically: false, encoding: .utf8)
        try "keep".write(toFile: dir + "/T/.model.kick.tmp-\(getpid())", atomically: false, encoding: .utf8)
        // another node's writer on a shared filesystem: its pid means nothing here
        try "keep".write(toFile: dir + "/T/.b.jsonl.tmp-\(dead)@node-17.cluster", atomically: false, encoding: .utf8)
        let held = try OutputLock(folder: dir + "/T")
        let left = try FileManager.default.contentsOfDirectory(atPath: dir + "/T").sorted()
        #expect(left == [".b.jsonl.tmp-\(dead)@node-17.cluster", ".kick.lock", ".model.kick.tmp-\(getpid())"])
        withExtendedLifetime(held) {}
    }

    @Test func archivesPutTheirManifestFirst() throws {
        let dir = tempDir("manifest-first")
        try FileManager.default.createDirectory(atPath: dir + "/cfg", withIntermediateDirectories: true)
        try "a".write(toFile: dir + "/cfg/a.txt", atomically: true, encoding: .utf8)
        try CheckpointArchive.create(dir + "/x.tar.zst", folders: [dir + "/cfg"])
        var names: [String] = []
        for n in ["kick-archive.json", "cfg/a.txt"] {
            try ArchiveReader.streamMember(archive: dir + "/x.tar.zst", member: n) { _ in }
            names.append(n)
        }
        let first = try ArchiveReader.firstMemberName(archive: dir + "/x.tar.zst")
        #expect(first == "kick-archive.json")
        let m = try CheckpointArchive.extract(dir + "/x.tar.zst", into: dir + "/out")
        #expect(m.members.map(\.path) == ["cfg/a.txt"])
        #expect(try String(contentsOfFile: dir + "/out/cfg/a.txt", encoding: .utf8) == "a")
    }

    // MARK: 5. concurrent runs

    @Test func aSecondWriterOfTheSameFolderFailsAtOnceOrWaits() throws {
        let dir = tempDir("lock")
        let taken = DispatchSemaphore(value: 0)
        Thread.detachNewThread {
            let first = try! OutputLock(folder: dir)
            taken.signal()
            Thread.sleep(forTimeInterval: 0.3)
            withExtendedLifetime(first) {}
        }
        taken.wait()
        let e = #expect(throws: KickError.self) { try OutputLock(folder: dir) }
        #expect(e?.code == .inUse)
        #expect(e?.description == "\(dir): in use by process \(getpid()); wait for it, or pass --wait")
        let t0 = Date()
        let second = try OutputLock(folder: dir, wait: true)
        #expect(Date().timeIntervalSince(t0) < 10)
        withExtendedLifetime(second) {}
    }

    /// Runs lock each task log (shard), not the folder: the same task is
    /// refused at once, another task of the folder goes ahead.
    @Test func twoRunsOfOneTaskLogAreRefused() throws {
        let dir = tempDir("lock-cli")
        let held = try OutputLock(file: dir + "/out/mmlu.shard-1-of-2.jsonl")
        let args = ["run", "--model", dir + "/none.gguf", "--ingest", dir, "--config", "dense", "--out", dir + "/out", "--tasks", "factoid,mmlu"]
        let r = try KickTool.run("kick-infer", args + ["--shard", "1/2"])
        #expect(r.status == 1)
        #expect(r.err == "kick-infer: error: \(dir)/out/mmlu.shard-1-of-2.jsonl: in use by process \(getpid()); wait for it, or pass --wait\n")
        let other = try KickTool.run("kick-infer", args + ["--shard", "0/2"])
        #expect(other.status == 1 && !other.err.contains("in use"), "\(other.err)")
        let merge = try KickTool.run("kick-infer", ["merge", "--model", dir + "/none.gguf", "--ingest", dir, "--config", "dense", "--out", dir + "/out",
                                                    "--shards", "2", "--tasks", "mmlu"])
        #expect(merge.status == 1 && !merge.err.contains("in use"), "\(merge.err)")
        withExtendedLifetime(held) {}
    }

    struct BareRecord: TaskRecord { var id: String; var subset: String }

    @Test func taskLogReportsAMalformedMiddleLineAndDropsATornLastOne() throws {
        let dir = tempDir("tasklog")
        try "{\"id\":\"a\",\"subset\":\"all\",\"schema\":\"kick.log/1\"}\n{\"finish\":\"length\",\"golds\":[\"Wa{\"finish\n{\"id\":\"b\",\"subset\":\"all\",\"schema\":\"kick.log/1\"}\n".write(toFile: dir + "/m.jsonl", atomically: true, encoding: .utf8)
        let e = #expect(throws: KickError.self) { try TaskLog<BareRecord>(path: dir + "/m.jsonl") }
        #expect(e?.message.hasPrefix("line 2 is not a log record") == true && e?.code == .malformed)
        let lines = "{\"id\":\"a\",\"subset\":\"all\",\"schema\":\"kick.log/1\"}\n{\"id\":\"b\",\"subset\":\"all\",\"schema\":\"kick.log/1\"}\n"
        try (lines + "{\"id\":\"c\",\"x\":[1,").write(toFile: dir + "/t.jsonl", atomically: true, encoding: .utf8)
        let log = try TaskLog<BareRecord>(path: dir + "/t.jsonl")
        #expect(log.order == ["a", "b"])
        #expect(try String(contentsOfFile: dir + "/t.jsonl", encoding: .utf8) == lines)
    }

    /// A log of one task read as another's (a renamed file, a renamed key) is
    /// refused with the field that is missing, never read as empty verdicts.
    @Test func aLogRecordOfTheWrongShapeNamesTheMissingField() throws {
        let dir = tempDir("tasklog-shape")
        let line = "{\"schema\":\"kick.log/1\",\"id\":\"q\",\"subset\":\"all\",\"golds\":[],\"prompt\":\"p\",\"output\":\"o\",\"answer\":\"o\",\"seconds\":1}\n"
        try (line + line.replacingOccurrences(of: "\"q\"", with: "\"r\"")).write(toFile: dir + "/factoid.jsonl", atomically: true, encoding: .utf8)
        let e = #expect(throws: KickError.self) { try TaskLog<FactoidTask.Record>.read(path: dir + "/factoid.jsonl") }
        #expect(e?.description.contains("line 1 is not a log record") == true && e?.description.contains("verdicts") == true)
        // a log of another version, or from before logs had one, is refused with its line
        try "{\"schema\":\"kick.log/9\",\"id\":\"q\"}\n{\"id\":\"r\"}\n".write(toFile: dir + "/v.jsonl", atomically: true, encoding: .utf8)
        let v = #expect(throws: KickError.self) { try TaskLog<FactoidTask.Record>.read(path: dir + "/v.jsonl") }
        #expect(v?.message == "line 1 is not a log record (schema kick.log/9 is not kick.log/1); the log is corrupt: remove that line, or rerun with --fresh")
    }

    // MARK: 6. scoring

    @Test func aGoldThatNormalizesToNothingNeverMatches() {
        #expect(!TextMetrics.exactMatch("", golds: ["🍐"]))
        #expect(!TextMetrics.exactMatch("", golds: ["The"]))
        #expect(TextMetrics.tokenF1("", golds: ["🍐"]) == 0)
        #expect(TextMetrics.tokenF1("pear", golds: ["🍐", "pear"]) == 1)
        #expect(TextMetrics.exactMatch("a pear", golds: ["🍐", "Pear"]))
        #expect(TextMetrics.isEmptyAfterNormalization("🍐"))
    }

    @Test func badTaskItemsAndEmptyTaskFilesAreRefused() throws {
        func line(_ it: TaskItem) throws -> String { String(decoding: try TaskFile.encode([it]), as: UTF8.self) }
        let good = TaskItem(id: "q1", task: "factoid", subset: "all", question: "Who?", golds: ["Ann"])
        var noQuestion = good; noQuestion.id = "q2"; noQuestion.question = " "
        var noGolds = good; noGolds.id = "q3"; noGolds.golds = []
        var other = good; other.id = "q4"; other.task = "mmlu"
        for (bad, want) in [(noQuestion, "missing or empty question"), (noGolds, "golds: []"), (other, "in the factoid task file"), (good, "appears twice")] {
            let d = Data((try line(good) + line(bad)).utf8)
            let e = #expect(throws: KickError.self) { try TaskFile.parse(d, file: "f.jsonl", task: "factoid") }
            #expect(e?.message.contains(want) == true, "\(want): \(e?.message ?? "")")
            #expect(e?.message.hasPrefix("line 2:") == true)
        }
        let e = #expect(throws: KickError.self) { try TaskFile.parse(Data("\n".utf8), file: "f.jsonl") }
        #expect(e?.message.contains("no items") == true)
    }

    @Test func anEditedTaskFileIsRefusedAndScoresRecordTheTaskFileHash() throws {
        let dir = tempDir("task-sha")
        let path = dir + "/factoid.jsonl"
        try TaskFile.write([TaskItem(id: "q1", task: "factoid", subset: "all", question: "Who?", golds: ["Ann"])], to: path)
        let sha = try SHA256.hex(ofFile: path)
        try AtomicFile.write("{\"schema\": \"kick.task/1\", \"sha256\": \"\(sha)\"}", to: path + ".manifest.json")
        let old = #expect(throws: KickError.self) { try SuiteRunner.checkedTaskFileHash(path) }
        #expect(old?.description == "\(path).manifest.json: schema kick.task/1 is not kick.task-manifest/1; rerun kick-ingest (or make ingest FORCE=1) with this kick")
        try AtomicFile.writeJSON(TaskManifest(task: "factoid", profile: "p", inputs: [], inputsHash: "", sources: [:], counts: [:], notes: [], itemsAvailable: 1,
                                              items: 1, sample: "all", subsets: ["all": 1], sha256: sha, seconds: 0), to: path + ".manifest.json")
        #expect(try SuiteRunner.checkedTaskFileHash(path) == sha)
        try TaskFile.write([TaskItem(id: "q1", task: "factoid", subset: "all", question: "Who?", golds: ["Bob"])], to: path)
        let e = #expect(throws: KickError.self) { try SuiteRunner.checkedTaskFileHash(path) }
        #expect(e?.message.contains("changed after ingest") == true)
    }

    // MARK: 7. resource bounds

    @Test func aHugeMetadataArrayIsHeldAsItsBytes() throws {
        let dir = tempDir("gguf-array")
        // magic, version 3, no tensors, one key: "big", a u8 array of 4 MiB
        let n = 4 << 20
        var d = Data("GGUF".utf8)
        func u64(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { d.append(contentsOf: $0) } }
        func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { d.append(contentsOf: $0) } }
        u32(3); u64(0); u64(1)
        u64(3); d.append(contentsOf: Array("big".utf8)); u32(9); u32(0); u64(UInt64(n)); d.append(contentsOf: [UInt8](repeating: 7, count: n))
        try d.write(to: URL(fileURLWithPath: dir + "/a.gguf"))
        let r = try GGUFReader(path: dir + "/a.gguf")
        guard case .numbers(let type, let raw)? = r.metadata["big"] else { Issue.record("not held as bytes"); return }
        #expect(type == 0 && raw.count == n)
        #expect(r.metadata["big"]?.ints?.prefix(2) == [7, 7])
    }

    // MARK: 8. messages

    @Test func messagesEscapeControlBytesAndStayShort() {
        let raw = "tensor \u{1}\u{7f}" + String(repeating: "\u{0}x", count: 20_000)
        let e = KickError("bad name \(KickError.quote(raw))", file: "m.gguf")
        #expect(e.description.contains("\\x01\\x7f"))
        #expect(!e.description.unicodeScalars.contains { $0.value < 0x20 && $0 != "\n" })
        #expect(e.description.utf8.count < 600)
        #expect(KickError("x \(String(repeating: "\u{1}", count: 100_000))").description.utf8.count < 4100)
    }

    @Test func systemErrorsAreWordedNotDumped() {
        #expect(KickError(describing: CocoaError(.fileWriteVolumeReadOnly), file: "a").description == "a: read-only file system")
        #expect(KickError(describing: CocoaError(.fileWriteVolumeReadOnly), file: "a").code == .io)
        #expect(KickError(describing: CocoaError(.fileWriteVolumeReadOnly), file: "a").cause != nil)
        #expect(KickError(describing: CocoaError(.fileWriteOutOfSpace), file: "a").description == "a: no space left on device")
        #expect(KickError(describing: POSIXError(.ENAMETOOLONG), file: "a").description == "a: file name too long")
        #expect(KickError(describing: POSIXError(.EROFS), file: "a").description == "a: read-only file system")
    }

    @Test func commandLineErrorsNameTheTool() throws {
        for (tool, args) in [("kick-infer", ["logits", "--tokens", "1"]), ("kick-compress", ["inspect"]), ("kick-report", []), ("kick-ingest", ["tasks"])] {
            let r = try KickTool.run(tool, args)
            #expect(r.status != 0 && r.status < 128)
            #expect(r.err.hasPrefix("\(tool): error: "), "\(tool): \(r.err)")
            #expect(!r.err.contains("Error: "))
        }
        let r = try KickTool.run("kick-compress", ["model", "--method", "magnitude", "--pattern", "abc", "--model", "m", "--out", "o"])
        #expect(r.err.hasPrefix("kick-compress: error: --pattern 'abc' is not N:M"))
        // the compressor's numeric flags: NaN, negative, enormous or malformed values are refused, never a trap
        for bad in [["--stage-memory", "nan"], ["--stage-memory", "-1"], ["--stage-memory", "1e300"], ["--act-dtype", "f8"]] {
            let b = try KickTool.run("kick-compress", ["model", "--method", "magnitude", "--sparsity", "0.5", "--model", "m", "--out", "o"] + bad)
            #expect(b.status != 0 && b.status < 128, "\(bad): \(b.err)")
            #expect(b.err.hasPrefix("kick-compress: error: "), "\(bad): \(b.err)")
        }
        for bad in [["--width", "4096", "--ffn", "11008", "--samples", "100000000", "--length", "100000000"],
                    ["--width", "99999999999", "--ffn", "99999999999"], ["--width", "0", "--ffn", "8"], ["--width", "100", "--ffn", "8", "--heads", "3"]] {
            let b = try KickTool.run("kick-compress", ["bench-block", "--method", "magnitude", "--sparsity", "0.5"] + bad)
            #expect(b.status != 0 && b.status < 128, "\(bad): \(b.err)")
            #expect(b.err.hasPrefix("kick-compress: error: "), "\(bad): \(b.err)")
        }
    }

    @Test func aBareOutFileNameWorks() throws {
        let dir = tempDir("bare-out")
        _ = try tinyGGUF(dir + "/m.gguf")
        var r = try KickTool.run("kick-compress", ["convert", "--model", "m.gguf", "--out", "c.kick"], in: dir)
        #expect(r.status == 0, "\(r.err)")
        // the dense manifest comes from the same writer as a compressed one's
        let m = try CompressManifest.read(path: dir + "/c.kick.manifest.json")
        #expect(m.config == "dense" && m.spec == nil && m.report.seconds > 0)
        try FileManager.default.createDirectory(atPath: dir + "/cfg", withIntermediateDirectories: true)
        try "x".write(toFile: dir + "/cfg/a", atomically: true, encoding: .utf8)
        r = try KickTool.run("kick-compress", ["archive", "--out", "c.tar.zst", "cfg"], in: dir)
        #expect(r.status == 0, "\(r.err)")
        #expect(FileManager.default.fileExists(atPath: dir + "/c.tar.zst"))
    }

    // MARK: 9. values that slipped through

    @Test func valuesThatSlippedThroughAreRefused() throws {
        #expect(throws: KickError.self) { try SparsityPattern.parse("0.9999999") }
        #expect(throws: KickError.self) { try CompressionSpec(method: .magnitude, pattern: .unstructured(0.9999999)).validate() }
        #expect(throws: KickError.self) { try CompressionSpec(method: .magnitude, pattern: .unstructured(.nan)).validate() }
        let dir = tempDir("values")
        _ = try tinyGGUF(dir + "/m.gguf")
        var r = try KickTool.run("kick-infer", ["logits", "--model", dir + "/m.gguf", "--tokens", "1,,2", "--out", dir + "/l.npy"])
        #expect(r.status != 0 && r.err.contains("--tokens: '' is not a token id"))
        r = try KickTool.run("kick-infer", ["generate", "--model", dir + "/m.gguf", "--tokens", "1", "--temperature", "nan"])
        #expect(r.status != 0 && r.err.contains("--temperature must be a finite number"))
        r = try KickTool.run("kick-compress", ["model", "--method", "magnitude", "--sparsity", "0.9999999", "--model", dir + "/m.gguf", "--out", dir + "/o"])
        #expect(r.status != 0 && r.err.contains("whole percent"))
        // a config saying one layer over weights of two
        _ = try tinyGGUF(dir + "/l1.gguf", metadata: [("llama.block_count", .u32(1))])
        let e = #expect(throws: KickError.self) { try ModelBundle.open(path: dir + "/l1.gguf") }
        #expect(e?.message.contains("the config says 1 layers") == true)
    }

    @Test func aMalformedScoresFileIsAnErrorInTheReport() throws {
        let dir = tempDir("report-bad")
        try FileManager.default.createDirectory(atPath: dir + "/infer/dense", withIntermediateDirectories: true)
        try "{not json".write(toFile: dir + "/infer/dense/factoid.scores.json", atomically: true, encoding: .utf8)
        let b = ReportBuilder(work: dir, outDir: dir + "/report", configs: ["dense"], model: "m")
        let e = #expect(throws: KickError.self) { try b.load() }
        #expect(e?.file == dir + "/infer/dense/factoid.scores.json")
        // a scores file of another schema version is refused, not misread
        let s = TaskScores(config: "dense", task: "factoid", model: "m", items: 1, itemsInTaskFile: 1, notes: [], metrics: [],
                           secondsLogged: 0, tokensGenerated: 0, tokensPerSecond: 0)
        try s.write(to: dir + "/s.json")
        #expect(try TaskScores.read(path: dir + "/s.json").task == "factoid")
        let v2 = try String(contentsOfFile: dir + "/s.json", encoding: .utf8).replacingOccurrences(of: "kick.scores/1", with: "kick.scores/2")
        try v2.write(toFile: dir + "/s2.json", atomically: true, encoding: .utf8)
        let v = #expect(throws: KickError.self) { try TaskScores.read(path: dir + "/s2.json") }
        #expect(v?.message.contains("is not kick.scores/1") == true)
    }

    /// The cost stage's bench results: truncated or of the wrong shape is an
    /// error naming the file; one older than its checkpoint is left out.
    @Test func aMalformedCostFileIsAnErrorInTheReport() throws {
        let dir = tempDir("report-cost")
        try FileManager.default.createDirectory(atPath: dir + "/cost", withIntermediateDirectories: true)
        let b = ReportBuilder(work: dir, outDir: dir + "/report", configs: ["dense"], model: "m")
        for bad in ["{\"weights\": \"f32\", \"weight_mb\": ", "[1, 2]", "{\"weight_mb\": \"NaN\"}"] {
            try bad.write(toFile: dir + "/cost/dense.json", atomically: true, encoding: .utf8)
            let e = #expect(throws: KickError.self) { try b.load() }
            #expect(e?.file == dir + "/cost/dense.json", "\(bad)")
        }
    }

    /// A NaN among a pruned tensor's values, or a NaN scale in its source
    /// blocks, gets a code (the one nearest 0) rather than trapping.
    @Test func nanValuesAndScalesEncodeAsSourceCodes() throws {
        for t in [GGMLType.q4_0, .q4_1, .q8_0] {
            var src = ggmlBlocks(Matrix(rows: 2, cols: 32, data: (0..<64).map { Float($0 % 7) - 3 }), t)
            src[0] = 0xFF; src[1] = 0x7F  // the first block's scale: an f16 NaN
            var m = Matrix(rows: 2, cols: 32, data: (0..<64).map { Float($0 % 7) - 3 })
            m.data[40] = .nan
            let p = try #require(TensorCodec.encodeSparseGGML(m, type: t, source: src))
            let back = try p.withUnsafeBytes { try TensorCodec.decode($0, rows: 2, cols: 32, .sparseGGML(t)) }
            #expect(back.count == 64)
            // the source's own blocks (low sparsity), and a NaN min too
            if t == .q4_1 { src[22] = 0xFF; src[23] = 0x7F }
            let (e, b) = try #require(TensorCodec.encodePrunedBlocks(m, type: t, source: src))
            let blocks = try b.withUnsafeBytes { try TensorCodec.decode($0, rows: 2, cols: 32, e) }
            #expect(blocks.count == 64)
        }
    }

    // MARK: 10. inspect --verify

    @Test func verifyCatchesACorruptTokenizerBlob() throws {
        let dir = tempDir("verify")
        _ = try tinyGGUF(dir + "/m.gguf")
        let r0 = try KickTool.run("kick-compress", ["convert", "--model", dir + "/m.gguf", "--out", dir + "/c.kick"])
        #expect(r0.status == 0)
        let ck = try KickCheckpoint(path: dir + "/c.kick")
        let chunk = ck.directory.blobs[0].chunks[0]
        var bytes = try Data(contentsOf: URL(fileURLWithPath: dir + "/c.kick"))
        bytes[chunk.offset + chunk.length / 2] ^= 0xFF
        try bytes.write(to: URL(fileURLWithPath: dir + "/bad.kick"))
        let r = try KickTool.run("kick-compress", ["inspect", "--verify", dir + "/bad.kick"])
        #expect(r.status == 1)
        #expect(r.err.contains("blob"), "\(r.err)")
        let ok = try KickTool.run("kick-compress", ["inspect", "--verify", dir + "/c.kick"])
        #expect(ok.status == 0 && ok.out.contains("\"verified\""))
    }

    // MARK: kick's own artifacts read back typed

    @Test func modelJSONWithARenamedKeyOrAnotherSchemaIsAnError() throws {
        let dir = tempDir("model-json")
        _ = try tinyGGUF(dir + "/m.gguf")
        let r = try ModelResolver(root: dir).resolve(dir + "/m.gguf", modelDir: nil)
        #expect(try IngestedModel.write(r, to: dir + "/model.json", force: false))
        #expect(try !IngestedModel.write(r, to: dir + "/model.json", force: false))  // up to date
        let m = try IngestedModel.read(path: dir + "/model.json")
        #expect(m.sequenceLength == 256 && m.tokenizer.vocabSize == 300 && m.config.numLayers == 2)
        let text = try String(contentsOfFile: dir + "/model.json", encoding: .utf8)
        try text.replacingOccurrences(of: "\"sequence_length\"", with: "\"seq_len\"").write(toFile: dir + "/renamed.json", atomically: true, encoding: .utf8)
        let e = #expect(throws: KickError.self) { try IngestedModel.read(path: dir + "/renamed.json") }
        #expect(e?.file == dir + "/renamed.json")
        #expect(e?.message == "not a kick.ingest-model/2 file: missing field 'sequence_length'")
        try text.replacingOccurrences(of: "kick.ingest-model/2", with: "kick.ingest-model/3").write(toFile: dir + "/v2.json", atomically: true, encoding: .utf8)
        let v = #expect(throws: KickError.self) { try IngestedModel.read(path: dir + "/v2.json") }
        #expect(v?.message.contains("is not kick.ingest-model/2") == true)
    }

    /// bench-linear's weight forms: a malformed or impossible one is an
    /// error naming it, never a trap (percent out of range, N ≥ M, M not
    /// dividing the columns, a missing or unknown format).
    @Test func malformedBenchWeightFormsAreErrors() throws {
        for form in ["sparse-f16", "sparse101-f16", "sparse-5-f16", "sparse50", "sparse50-f64", "4:4-f16", "0:4-f16", "2:3-f16",
                     "2:4", ":4-f16", "2:4-f16-x", ""] {
            let e = #expect(throws: KickError.self, "\(form)") { try EngineBenchmark.randomWeight(rows: 16, cols: 30, form: form) }
            #expect(e?.message.contains("unknown weight form") == true, "\(form)")
        }
        #expect(try EngineBenchmark.randomWeight(rows: 16, cols: 64, form: "sparse0-bf16").formName == "sparse-bf16")
        #expect(try EngineBenchmark.randomWeight(rows: 16, cols: 64, form: "sparse100-f32").formName == "sparse-f32")
    }
}
