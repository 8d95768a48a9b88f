import Foundation
import Testing
@testable import KickCore
import KickTestSupport


@Suite struct GGUFTests {
    /// A tiny GGUF with one tensor of each quantized type, encoded by hand.
    func quantizedFile() -> (Data, [String: [Float]]) {
        var g = GGUFWriter()
        g.metadata = [("general.architecture", .string("test")), ("x.list", .f32s([1, 2.5])), ("x.names", .strings(["a", "bé"]))]
        var expected: [String: [Float]] = [:]
        // Q8_0: d = 0.5, q = -16...15
        var q8: [UInt8] = []
        withUnsafeBytes(of: floatToHalf(0.5).littleEndian) { q8.append(contentsOf: $0) }
        for j in 0..<32 { q8.append(UInt8(bitPattern: Int8(j - 16))) }
        expected["q8"] = (0..<32).map { Float($0 - 16) * 0.5 }
        // Q4_0: d = 0.25, nibbles j%16 (low) and 15 - j%16 (high)
        var q40: [UInt8] = []
        withUnsafeBytes(of: floatToHalf(0.25).littleEndian) { q40.append(contentsOf: $0) }
        for j in 0..<16 { q40.append(UInt8(j) | UInt8(15 - j) << 4) }
        expected["q40"] = (0..<16).map { Float($0 - 8) * 0.25 } + (0..<16).map { Float(15 - $0 - 8) * 0.25 }
        // Q4_1: d = 2, m = -1
        var q41: [UInt8] = []
        withUnsafeBytes(of: floatToHalf(2).littleEndian) { q41.append(contentsOf: $0) }
        withUnsafeBytes(of: floatToHalf(-1).littleEndian) { q41.append(contentsOf: $0) }
        for j in 0..<16 { q41.append(UInt8(j) | UInt8(j) << 4) }
        expected["q41"] = ((0..<16).map { Float($0) * 2 - 1 }) + ((0..<16).map { Float($0) * 2 - 1 })
        var bf: [UInt8] = []
        for v: Float in [1, -2, 0.5, 3] { withUnsafeBytes(of: floatToBF16(v).littleEndian) { bf.append(contentsOf: $0) } }
        expected["bf"] = [1, -2, 0.5, 3]
        g.tensors = [
            .init(name: "q8", dims: [32], typeID: 8, bytes: q8),
            .init(name: "q40", dims: [32], typeID: 2, bytes: q40),
            .init(name: "q41", dims: [32], typeID: 3, bytes: q41),
            .init(name: "bf", dims: [2, 2], typeID: 30, bytes: bf),
            .init(name: "f16", matrix: Matrix(rows: 2, cols: 3, data: [1, 2, 3, 4, 5, -6]), f16: true),
        ]
        expected["f16"] = [1, 2, 3, 4, 5, -6]
        return (g.encode(), expected)
    }

    @Test func dequantizesEveryType() throws {
        let (data, expected) = quantizedFile()
        let path = tempDir("gguf") + "/q.gguf"
        try data.write(to: URL(fileURLWithPath: path))
        let r = try GGUFReader(path: path)
        #expect(r.version == 3)
        #expect(r.metadata["x.names"]?.strings == ["a", "bé"])
        #expect(r.metadata["x.list"]?.doubles == [1, 2.5])
        for (name, want) in expected { #expect(try r.floats(name) == want, "\(name)") }
        #expect(r.tensors["f16"]!.rows == 2 && r.tensors["f16"]!.cols == 3)
    }

    @Test func everyTruncationIsAnErrorNotACrash() throws {
        let (data, _) = quantizedFile()
        let dir = tempDir("trunc")
        for n in stride(from: 0, to: data.count, by: 1) {
            let p = dir + "/t.gguf"
            try data.prefix(n).write(to: URL(fileURLWithPath: p))
            do {
                let r = try GGUFReader(path: p)
                // a cut inside padding after the last tensor can still parse; data must then be whole
                for name in r.tensorOrder { _ = try r.floats(name) }
                #expect(n >= data.count - 32, "truncated at \(n) of \(data.count) parsed")
            } catch let e as KickError {
                #expect(e.file == p)
            }
        }
    }

    @Test func rejectsBadMagicUnknownTypesAndAbsurdDims() throws {
        let dir = tempDir("bad")
        let (data, _) = quantizedFile()
        var bad = data
        bad[0] = 0x58
        try bad.write(to: URL(fileURLWithPath: dir + "/m.gguf"))
        #expect(throws: KickError.self) { try GGUFReader(path: dir + "/m.gguf") }

        var g = GGUFWriter()
        g.tensors = [.init(name: "k", dims: [256], typeID: 12, bytes: [UInt8](repeating: 0, count: 144))]
        try g.encode().write(to: URL(fileURLWithPath: dir + "/k.gguf"))
        do { _ = try GGUFReader(path: dir + "/k.gguf"); Issue.record("Q4_K accepted") } catch let e as KickError {
            #expect(e.message.contains("Q4_K") && e.message.contains("k"))
        }

        g.tensors = [.init(name: "huge", dims: [1 << 30, 1 << 30], typeID: 0, bytes: [0, 0, 0, 0])]
        try g.encode().write(to: URL(fileURLWithPath: dir + "/h.gguf"))
        #expect(throws: KickError.self) { try GGUFReader(path: dir + "/h.gguf") }

        g.tensors = [.init(name: "far", dims: [4], typeID: 0, bytes: [UInt8](repeating: 0, count: 16))]
        var d = g.encode()
        // point the tensor's offset far past the end
        let name = Data("far".utf8)
        let at = d.range(of: name)!.upperBound + 4 + 8 + 4
        d.replaceSubrange(at..<at + 8, with: withUnsafeBytes(of: UInt64(1 << 40).littleEndian) { Data($0) })
        try d.write(to: URL(fileURLWithPath: dir + "/o.gguf"))
        #expect(throws: KickError.self) { try GGUFReader(path: dir + "/o.gguf") }

        #expect(throws: KickError.self) { try GGUFReader(path: dir + "/missing.gguf") }
    }
}

@Suite struct SafetensorsTests {
    @Test func roundTripEveryDType() throws {
        let dir = tempDir("st")
        let vals: [Float] = [1, -2, 0.5, 3.25, 0, -0.125]
        for dt in [SafetensorsDType.f32, .f16, .bf16] {
            let p = dir + "/\(dt.rawValue).safetensors"
            try SafetensorsWriter.encode([("a", [2, 3], vals), ("b", [3], [1, 2, 3])], dtype: dt).write(to: URL(fileURLWithPath: p))
            let r = try SafetensorsReader(path: p)
            #expect(try r.matrix("a") == Matrix(rows: 2, cols: 3, data: vals))
            #expect(try r.floats("b") == [1, 2, 3])
        }
    }

    @Test func rejectsMalformedHeaders() throws {
        let dir = tempDir("stbad")
        let good = SafetensorsWriter.encode([("a", [2, 2], [1, 2, 3, 4])])
        for n in 0..<good.count {
            let p = dir + "/t.safetensors"
            try good.prefix(n).write(to: URL(fileURLWithPath: p))
            #expect(throws: KickError.self, "truncated at \(n)") { try SafetensorsReader(path: p) }
        }
        func header(_ json: String, body: Int = 16) -> Data {
            var d = Data()
            withUnsafeBytes(of: UInt64(json.utf8.count).littleEndian) { d.append(contentsOf: $0) }
            d.append(Data(json.utf8))
            d.append(Data(count: body))
            return d
        }
        let cases = [
            #"{"a":{"dtype":"F32","shape":[2,2],"data_offsets":[0,64]}}"#,  // past the end
            #"{"a":{"dtype":"F32","shape":[2,3],"data_offsets":[0,16]}}"#,  // size mismatch
            #"{"a":{"dtype":"I64","shape":[2],"data_offsets":[0,16]}}"#,  // unsupported dtype
            #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}"#,  // overlap
            #"{"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}"#,
            #"not json"#,
        ]
        for (i, c) in cases.enumerated() {
            let p = dir + "/c\(i).safetensors"
            try header(c).write(to: URL(fileURLWithPath: p))
            #expect(throws: KickError.self, "case \(i)") { try SafetensorsReader(path: p) }
        }
        var huge = Data()
        withUnsafeBytes(of: UInt64.max.littleEndian) { huge.append(contentsOf: $0) }
        try huge.write(to: URL(fileURLWithPath: dir + "/h.safetensors"))
        #expect(throws: KickError.self) { try SafetensorsReader(path: dir + "/h.safetensors") }
    }
}

@Suite struct ArchiveReaderTests {
    @Test func readsMembersOfZipFilesAndNestedZips() throws {
        let dir = tempDir("zip")
        try "hello inner".write(toFile: dir + "/inner.txt", atomically: true, encoding: .utf8)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["python3", "-c", """
import zipfile
with zipfile.ZipFile('\(dir)/inner.jar','w') as z: z.write('\(dir)/inner.txt','a/inner.txt')
with zipfile.ZipFile('\(dir)/outer.whl','w',zipfile.ZIP_DEFLATED) as z: z.write('\(dir)/inner.jar','pkg/inner.jar')
"""]
        try p.run()
        p.waitUntilExit()
        let jar = try ArchiveReader.readMember(archive: dir + "/outer.whl", member: "pkg/inner.jar")
        var inner: [UInt8] = []
        try ArchiveReader.streamMember(archiveBytes: jar, label: "inner.jar", member: "a/inner.txt") { inner.append(contentsOf: $0) }
        #expect(String(decoding: inner, as: UTF8.self) == "hello inner")
        #expect(throws: KickError.self) { try ArchiveReader.readMember(archive: dir + "/outer.whl", member: "nope") }
    }
}
