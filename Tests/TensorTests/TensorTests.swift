import Foundation
import Testing
@testable import KickCore
import KickTestSupport

@Suite struct HalfTests {
    @Test func halfRoundTripsEveryFiniteValue() {
        for bits in UInt16(0)...UInt16.max {
            let f = halfToFloat(bits)
            if f.isNaN { continue }
            #expect(floatToHalf(f) == bits, "half \(bits)")
        }
    }

    @Test func halfRoundsToNearestEven() {
        #expect(floatToHalf(1.0) == 0x3C00)
        #expect(floatToHalf(65504) == 0x7BFF)
        #expect(floatToHalf(70000) == 0x7C00)  // overflow to inf
        #expect(halfToFloat(0x0001) == Float(5.960_464_5e-8))  // smallest subnormal
        // 1 + 2^-11 is halfway between 1 and the next half: ties to even (1)
        #expect(floatToHalf(1 + 1.0 / 2048) == 0x3C00)
        #expect(floatToHalf(1 + 3.0 / 2048) == 0x3C02)
    }

    @Test func bfloat16() {
        #expect(bf16ToFloat(floatToBF16(1.5)) == 1.5)
        #expect(floatToBF16(1 + 1.0 / 256) == floatToBF16(1))  // tie to even
        #expect(bf16ToFloat(floatToBF16(-3.140625)) == -3.140625)
    }
}

@Suite struct NpyTests {
    @Test func roundTrip() throws {
        let a = Npy.Array(shape: [3, 5], data: (0..<15).map { Float($0) * 0.5 - 2 })
        let b = try Npy.parse(Npy.encode(a))
        #expect(a == b)
        let v = Npy.Array(shape: [4], data: [1, 2, 3, 4])
        #expect(try Npy.parse(Npy.encode(v)) == v)
    }

    @Test func readsFloat64() throws {
        var d = Data([0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59, 1, 0])
        var header = "{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }"
        while (10 + header.count + 1) % 64 != 0 { header += " " }
        header += "\n"
        d.append(UInt8(header.utf8.count)); d.append(0)
        d.append(Data(header.utf8))
        for v in [1.25, -2.5] { withUnsafeBytes(of: v.bitPattern.littleEndian) { d.append(contentsOf: $0) } }
        #expect(try Npy.parse(d).data == [1.25, -2.5])
    }

    @Test func rejectsMalformedFiles() {
        let good = Npy.encode(Npy.Array(shape: [2, 2], data: [1, 2, 3, 4]))
        // every truncation fails cleanly
        for n in 0..<good.count {
            #expect(throws: KickError.self) { try Npy.parse(good.prefix(n)) }
        }
        var bad = good
        bad[0] = 0
        #expect(throws: KickError.self) { try Npy.parse(bad) }
        let absurd = String(decoding: good, as: UTF8.self).replacingOccurrences(of: "(2, 2)", with: "(99999999999, 99999999999)")
        #expect(throws: KickError.self) { try Npy.parse(Data(absurd.utf8)) }
        let i4 = String(decoding: good, as: UTF8.self).replacingOccurrences(of: "<f4", with: "<i4")
        #expect(throws: KickError.self) { try Npy.parse(Data(i4.utf8)) }
    }

    @Test func readsGoldenLayer() throws {
        let w = try Npy.read(path: Golden.dir + "/layer/W.npy")
        #expect(w.shape == [96, 256])
        #expect(w.data.allSatisfy { $0.isFinite })
    }
}

@Suite struct SHA256Tests {
    @Test func knownVectors() {
        #expect(SHA256.hex(of: Data()) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(SHA256.hex(of: Data("abc".utf8)) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        let long = Data("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8)
        #expect(SHA256.hex(of: long) == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        // streaming in uneven chunks gives the same digest
        let big = Data((0..<10_000).map { UInt8($0 % 251) })
        var h = SHA256()
        var i = 0
        for step in [1, 63, 64, 65, 1000, 7] where i < big.count {
            h.update(big[i..<min(big.count, i + step)])
            i += step
        }
        h.update(big[i...])
        #expect(h.finalize().hex == SHA256.hex(of: big))
    }
}

@Suite struct BLASTests {
    @Test func gemmMatchesNaiveProduct() {
        var rng = SeededRandom(seed: 3)
        let a = Matrix(rows: 7, cols: 13, data: (0..<91).map { _ in Float(rng.unit()) - 0.5 })
        let b = Matrix(rows: 5, cols: 13, data: (0..<65).map { _ in Float(rng.unit()) - 0.5 })
        let c = a.timesTransposed(b)
        for i in 0..<7 {
            for j in 0..<5 {
                var s: Double = 0
                for k in 0..<13 { s += Double(a[i, k]) * Double(b[j, k]) }
                #expect(abs(Double(c[i, j]) - s) < 1e-5)
            }
        }
    }
}
