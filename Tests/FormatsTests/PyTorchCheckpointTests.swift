import Foundation
import Testing
@testable import KickCore
import KickTestSupport

/// `torch.save` zip checkpoints: written by kick's writer, read back, and
/// hostile variants refused with errors that name the file.
@Suite struct PyTorchCheckpointTests {
    typealias Entry = PyTorchCheckpointWriter.Entry

    /// A checkpoint with a raw pickle and raw storages.
    func write(_ path: String, pickle: [UInt8], storages: [(String, [UInt8])]) throws {
        try PyTorchCheckpointWriter.writeZip(to: path, archive: "archive", pickle: pickle, storages: storages.map(\.0)) { storages[$0].1 }
    }

    func error(_ body: () throws -> Void) -> String {
        do { try body(); return "" } catch let e as KickError { return e.description } catch { return "\(error)" }
    }

    @Test func crc32OfTheCheckString() {
        #expect(CRC32.checksum(Array("123456789".utf8)) == 0xCBF4_3926)
        #expect(CRC32.checksum([]) == 0)
    }

    @Test func writesAndReadsEveryFloatType() throws {
        let dir = tempDir("torch")
        let values: [Float] = [0, 1, -2.5, 0.125, 65504, -0.0009765625]
        let types: [TorchDType] = [.f32, .f16, .bf16]
        let tensors = types.map { PyTorchCheckpointWriter.Tensor(name: "w.\($0.rawValue)", dtype: $0, shape: [2, 3]) }
        try PyTorchCheckpointWriter.write(to: dir + "/m.bin", tensors: tensors) { types[$0].dense!.encode(values) }
        let r = try PyTorchCheckpointReader(path: dir + "/m.bin")
        for t in types {
            let m = try r.matrix("w.\(t.rawValue)")
            #expect(m.rows == 2 && m.cols == 3)
            #expect(m.data == (t == .bf16 ? values.map { bf16ToFloat(floatToBF16($0)) } : values))
            #expect(r.tensors["w.\(t.rawValue)"]!.isContiguous)
        }
    }

    /// Two views into one storage, one transposed and offset: gathered
    /// through their strides.
    @Test func viewsIntoASharedStorageAreHonoured() throws {
        let dir = tempDir("torch-view")
        let storage = (0..<12).map(Float.init)
        let pickle = PyTorchCheckpointWriter.statePickle([
            Entry(name: "whole", key: "0", dtype: .f32, numel: 12, offset: 0, shape: [3, 4], strides: [4, 1]),
            Entry(name: "transposed", key: "0", dtype: .f32, numel: 12, offset: 0, shape: [4, 3], strides: [1, 4]),
            Entry(name: "tail", key: "0", dtype: .f32, numel: 12, offset: 6, shape: [2, 3], strides: [3, 1]),
        ])
        try write(dir + "/v.bin", pickle: pickle, storages: [("0", SafetensorsDType.f32.encode(storage))])
        let r = try PyTorchCheckpointReader(path: dir + "/v.bin")
        #expect(try r.matrix("whole").data == storage)
        #expect(try r.matrix("transposed").data == [0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11])
        #expect(try r.matrix("tail").data == [6, 7, 8, 9, 10, 11])
        #expect(r.tensors["transposed"]!.isContiguous == false && r.tensors["tail"]!.isContiguous)
    }

    /// `cos\nsystem\n` + ('ls',) + REDUCE: refused at the global, naming it,
    /// before any call.
    @Test func aPickleCallingOsSystemIsRefused() throws {
        let dir = tempDir("torch-evil")
        let pickle: [UInt8] = [0x80, 2] + Array("cos\nsystem\n".utf8) + [0x58, 2, 0, 0, 0] + Array("ls".utf8) + [0x85, 0x52, 0x2E]
        try write(dir + "/evil.bin", pickle: pickle, storages: [])
        let e = error { _ = try PyTorchCheckpointReader(path: dir + "/evil.bin") }
        #expect(e.contains("os.system") && e.contains("refused") && e.contains("evil.bin"), "\(e)")
        let eval: [UInt8] = [0x80, 2] + Array("cbuiltins\neval\n".utf8) + [0x58, 1, 0, 0, 0, 0x31, 0x85, 0x52, 0x2E]
        try write(dir + "/eval.bin", pickle: eval, storages: [])
        #expect(error { _ = try PyTorchCheckpointReader(path: dir + "/eval.bin") }.contains("builtins.eval"))
    }

    @Test func aTruncatedZipIsRefused() throws {
        let dir = tempDir("torch-trunc")
        try PyTorchCheckpointWriter.write(to: dir + "/m.bin", tensors: [.init(name: "w", dtype: .f32, shape: [64, 64])]) { _ in
            SafetensorsDType.f32.encode([Float](repeating: 1, count: 4096))
        }
        let whole = try Data(contentsOf: URL(fileURLWithPath: dir + "/m.bin"))
        try whole.prefix(whole.count / 2).write(to: URL(fileURLWithPath: dir + "/cut.bin"))
        let e = error { _ = try PyTorchCheckpointReader(path: dir + "/cut.bin") }
        #expect(e.contains("cut.bin") && e.contains("truncated"), "\(e)")
    }

    @Test func aStorageShorterThanItsTensorIsRefused() throws {
        let dir = tempDir("torch-short")
        let pickle = PyTorchCheckpointWriter.statePickle([Entry(name: "w", key: "0", dtype: .f16, numel: 16, offset: 0, shape: [4, 4], strides: [4, 1])])
        try write(dir + "/short.bin", pickle: pickle, storages: [("0", [UInt8](repeating: 0, count: 16))])  // 8 halves
        let e = error { _ = try PyTorchCheckpointReader(path: dir + "/short.bin") }
        #expect(e.contains("short.bin") && e.contains("needs 16 elements") && e.contains("holds 8"), "\(e)")
    }

    /// A stride-0 view claiming 2^34 elements of a one-element storage
    /// (what the fuzzer found: the reader allocated 64 GB for it).
    @Test func aBroadcastViewIsRefused() throws {
        let dir = tempDir("torch-broadcast")
        let pickle = PyTorchCheckpointWriter.statePickle([
            Entry(name: "w", key: "0", dtype: .f32, numel: 1, offset: 0, shape: [1 << 17, 1 << 17], strides: [0, 0])])
        try write(dir + "/bcast.bin", pickle: pickle, storages: [("0", [0, 0, 0, 0])])
        let e = error { _ = try PyTorchCheckpointReader(path: dir + "/bcast.bin") }
        #expect(e.contains("bcast.bin") && e.contains("broadcast view"), "\(e)")
    }

    @Test func aShapeWhoseElementCountOverflowsIsRefused() throws {
        let dir = tempDir("torch-huge")
        let pickle = PyTorchCheckpointWriter.statePickle([
            Entry(name: "w", key: "0", dtype: .f32, numel: 1, offset: 0, shape: [1 << 40, 1 << 40], strides: [1 << 40, 1])])
        try write(dir + "/huge.bin", pickle: pickle, storages: [("0", [0, 0, 0, 0])])
        let e = error { _ = try PyTorchCheckpointReader(path: dir + "/huge.bin") }
        #expect(e.contains("huge.bin") && e.contains("absurd shape"), "\(e)")
    }

    @Test func aLegacyFileSaysSo() throws {
        let dir = tempDir("torch-legacy")
        try Data([0x80, 0x02, 0x8A, 0x0A, 0x6C, 0xFC, 0x9C, 0x46, 0xF9, 0x20, 0x6A, 0xA8, 0x50, 0x19, 0x2E]).write(to: URL(fileURLWithPath: dir + "/old.bin"))
        let e = error { _ = try PyTorchCheckpointReader(path: dir + "/old.bin") }
        #expect(e.contains("old.bin") && e.contains("legacy"), "\(e)")
    }

    /// A folder whose index names a shard that is not there.
    @Test func anIndexNamingAMissingShardIsRefused() throws {
        let src = Golden.dir + "/hf-real/hf-bin-f16", dir = tempDir("torch-missing")
        for f in try FileManager.default.contentsOfDirectory(atPath: src) where f != "pytorch_model-00002-of-00002.bin" {
            try FileManager.default.copyItem(atPath: src + "/" + f, toPath: dir + "/" + f)
        }
        let e = error { _ = try ModelBundle.open(path: dir) }
        #expect(e.contains("pytorch_model.bin.index.json") && e.contains("pytorch_model-00002-of-00002.bin") && e.contains("not in the folder"), "\(e)")
    }
}

/// Synthetic published folders (what `make scale-check` writes at 7B).
@Suite struct PublishedFolderWriterTests {
    @Test func zip64RecordsAreRead() throws {
        let dir = tempDir("zip64")
        let values = (0..<300).map { Float($0) / 7 }
        let pickle = PyTorchCheckpointWriter.statePickle([PyTorchCheckpointWriter.Tensor(name: "w", dtype: .f32, shape: [3, 100])])
        try PyTorchCheckpointWriter.writeZip(to: dir + "/z.bin", archive: "z", pickle: pickle, storages: ["0"], forceZip64: true) { _ in
            SafetensorsDType.f32.encode(values)
        }
        #expect(try PyTorchCheckpointReader(path: dir + "/z.bin").matrix("w").data == values)
    }

    /// A small folder in several shards opens as a model whose tokenizer
    /// round-trips text and whose forward pass is finite.
    @Test func aSyntheticFolderOpensAndRuns() throws {
        let dir = tempDir("synthetic")
        var c = PublishedFolderWriter.llama7B
        (c.numLayers, c.hiddenSize, c.intermediateSize, c.vocabSize, c.numHeads, c.numKVHeads, c.headDim) = (2, 64, 176, 1000, 4, 4, 16)
        let shards = try PublishedFolderWriter.write(c, to: dir, maxShardBytes: 100_000)
        #expect(shards.count > 1 && shards[0] == "pytorch_model-00001-of-0000\(shards.count).bin")
        let b = try ModelBundle.open(path: dir)
        #expect(b.config.numLayers == 2 && b.tokenizer.vocabSize == 1000 && b.tokenizer.addBOS)
        let ids = b.tokenizer.encode("the cat sat on a mat 42", addBOS: true)
        #expect(ids.first == 1 && b.tokenizer.decode(Array(ids.dropFirst()), atStart: true) == "the cat sat on a mat 42")
        let m = try b.loadModel()
        #expect(m.weightFormats == "f16")
        let l = m.forward([BatchItem(cache: m.newCache(), tokens: ids, logits: .last)])[0]!
        #expect(l.data.allSatisfy { $0.isFinite })
    }
}
