/// Packs unsigned values of a fixed bit width, least-significant bit first,
/// into bytes: the codes of quantized and N:M tensors.
public struct BitWriter {
    public private(set) var bytes: [UInt8] = []
    private var acc: UInt64 = 0
    private var filled = 0

    public init(capacityBits: Int = 0) { bytes.reserveCapacity((capacityBits + 7) / 8) }

    @inline(__always)
    public mutating func write(_ value: UInt64, bits: Int) {
        guard bits > 0 else { return }
        acc |= (value & (bits == 64 ? ~0 : (1 << UInt64(bits)) - 1)) << UInt64(filled)
        filled += bits
        while filled >= 8 {
            bytes.append(UInt8(truncatingIfNeeded: acc))
            acc >>= 8
            filled -= 8
        }
    }

    /// Pads the last byte with zero bits and returns the bytes.
    public mutating func finish() -> [UInt8] {
        if filled > 0 { bytes.append(UInt8(truncatingIfNeeded: acc)); acc = 0; filled = 0 }
        return bytes
    }

    public static func byteCount(bits: Int) -> Int { (bits + 7) / 8 }
}

/// Reads what BitWriter wrote, bounds-checked against its byte range.
public struct BitReader {
    private let bytes: UnsafeRawBufferPointer
    private var bitPos = 0

    public init(_ bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    @inline(__always)
    public mutating func read(bits: Int) -> UInt64 {
        var v: UInt64 = 0
        var got = 0
        while got < bits {
            let byte = bitPos >> 3, off = bitPos & 7
            let take = min(8 - off, bits - got)
            let b = UInt64(bytes[byte] >> UInt8(off)) & ((1 << UInt64(take)) - 1)
            v |= b << UInt64(got)
            got += take
            bitPos += take
        }
        return v
    }
}

/// Binomial coefficients and the combinatorial number system: the index of
/// which k of m positions in a group are kept, so an N:M group's pattern
/// costs ⌈log2 C(m, k)⌉ bits instead of k·⌈log2 m⌉.
public enum Combinations {
    public static func choose(_ n: Int, _ k: Int) -> Int {
        guard k >= 0, k <= n else { return 0 }
        var r = 1
        for i in 0..<min(k, n - k) { r = r * (n - i) / (i + 1) }
        return r
    }

    public static func bits(_ m: Int, _ k: Int) -> Int {
        let c = choose(m, k)
        var b = 0
        while (1 << b) < c { b += 1 }
        return b
    }

    /// Index of ascending positions c₁ < … < c_k: Σ C(cᵢ, i).
    public static func rank(_ positions: [Int]) -> Int {
        var r = 0
        for (i, c) in positions.enumerated() { r += choose(c, i + 1) }
        return r
    }

    /// The k ascending positions whose rank is r.
    public static func unrank(_ r: Int, m: Int, k: Int) -> [Int] {
        var out = [Int](repeating: 0, count: k)
        var r = r
        var c = m - 1
        for i in stride(from: k, through: 1, by: -1) {
            while choose(c, i) > r { c -= 1 }
            out[i - 1] = c
            r -= choose(c, i)
            c -= 1
        }
        return out
    }
}
