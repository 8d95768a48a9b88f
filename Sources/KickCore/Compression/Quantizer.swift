/// GPTQ's min-max quantizer (IST-DASLab `Quantizer`): asymmetric or
/// symmetric, one scale and zero per group of values, round half to even.
public struct QuantizerSpec: Codable, Sendable, Equatable {
    public var bits: Int
    /// Columns per group; nil or ≥ cols means one group per row.
    public var groupSize: Int?
    public var symmetric: Bool

    public init(bits: Int, groupSize: Int? = nil, symmetric: Bool = false) {
        self.bits = bits
        self.groupSize = groupSize
        self.symmetric = symmetric
    }

    public var maxq: Float { Float((1 << bits) - 1) }

    public func validate() throws {
        guard [2, 3, 4, 8].contains(bits) else { throw KickError("bits must be 2, 3, 4 or 8 (got \(bits))") }
        if let g = groupSize, g <= 0 { throw KickError("group size must be positive (got \(g))") }
    }

    /// Scale and zero for a set of values: xmin = min(min x, 0),
    /// xmax = max(max x, 0); symmetric ranges are ±max|x|; an all-zero range
    /// becomes [−1, 1].
    public func params<C: Collection>(_ x: C) -> (scale: Float, zero: Float) where C.Element == Float {
        var xmin: Float = 0, xmax: Float = 0
        for v in x { xmin = min(xmin, v); xmax = max(xmax, v) }
        if symmetric {
            xmax = max(abs(xmin), xmax)
            if xmin < 0 { xmin = -xmax }
        }
        if xmin == 0 && xmax == 0 { xmin = -1; xmax = 1 }
        let scale = (xmax - xmin) / maxq
        let zero = symmetric ? (maxq + 1) / 2 : (-xmin / scale).rounded(.toNearestOrEven)
        return (scale, zero)
    }

    /// The integer code in [0, maxq]. A NaN (which `compress` refuses
    /// upstream) maps to the zero point rather than trapping in UInt8().
    @inline(__always)
    public func code(_ x: Float, scale: Float, zero: Float) -> Float {
        let q = (x / scale).rounded(.toNearestOrEven) + zero
        return q.isNaN ? min(max(zero, 0), maxq) : min(max(q, 0), maxq)
    }

    /// The zero point as stored: clamped to [0, maxq], never a trap.
    public func zeroCode(_ z: Float) -> UInt8 { z.isFinite ? UInt8(min(max(z, 0), maxq)) : 0 }
}
