import Foundation

/// Every method kick compresses with, and its parameters, as the command
/// lines and manifests name them.
public struct CompressionSpec: Codable, Sendable, Equatable {
    public enum Method: String, Codable, Sendable, CaseIterable {
        case magnitude, wanda, sparsegpt, gptq, rtn

        /// The algorithm's type, which says what calibration it needs.
        public var algorithm: any LayerCompressor.Type {
            switch self {
            case .magnitude: Magnitude.self
            case .wanda: Wanda.self
            case .sparsegpt: SparseGPT.self
            case .gptq: GPTQ.self
            case .rtn: RTN.self
            }
        }
    }
    public var method: Method
    public var pattern: SparsityPattern?
    public var quantizer: QuantizerSpec?
    public var actOrder = false
    public var staticGroups = false
    public var blocksize = 128
    public var percdamp: Float = 0.01

    public init(method: Method, pattern: SparsityPattern? = nil, quantizer: QuantizerSpec? = nil, actOrder: Bool = false,
                staticGroups: Bool = false, blocksize: Int = 128, percdamp: Float = 0.01) {
        self.method = method
        self.pattern = pattern
        self.quantizer = quantizer
        self.actOrder = actOrder
        self.staticGroups = staticGroups
        self.blocksize = blocksize
        self.percdamp = percdamp
    }

    /// Methods that need calibration inputs.
    public var needsCalibration: Bool { needs != .none }
    /// Methods that need the full Hessian rather than column norms.
    public var needsHessian: Bool { needs == .hessian }

    var needs: CalibrationNeed { method.algorithm.needs }

    /// The algorithm this spec names (valid specs only: `validate()` first).
    public var compressor: any LayerCompressor {
        switch method {
        case .magnitude: return Magnitude(pattern: pattern!)
        case .wanda: return Wanda(pattern: pattern!)
        case .rtn: return RTN(quantizer: quantizer!)
        case .sparsegpt: return SparseGPT(pattern: pattern!, quantizer: quantizer, blocksize: blocksize, percdamp: percdamp)
        case .gptq: return GPTQ(quantizer: quantizer!, actOrder: actOrder, staticGroups: staticGroups, blocksize: blocksize, percdamp: percdamp)
        }
    }

    public func validate() throws {
        switch method {
        case .magnitude, .wanda:
            guard pattern != nil else { throw KickError("\(method.rawValue) needs a sparsity or an N:M pattern") }
            guard quantizer == nil else { throw KickError("\(method.rawValue) does not quantize; use sparsegpt with bits for both") }
        case .sparsegpt:
            guard pattern != nil else { throw KickError("sparsegpt needs a sparsity or an N:M pattern") }
            if quantizer?.groupSize != nil { throw KickError("sparsegpt quantizes per row, as its reference does; drop the group size") }
        case .gptq, .rtn:
            guard quantizer != nil else { throw KickError("\(method.rawValue) needs bits") }
            guard pattern == nil else { throw KickError("\(method.rawValue) does not prune; use sparsegpt with bits for both") }
        }
        try pattern?.validate()
        try quantizer?.validate()
        if actOrder && method != .gptq { throw KickError("act-order is a GPTQ option") }
        if staticGroups && method != .gptq { throw KickError("static groups are a GPTQ option") }
        if needsHessian {
            try OBSColumnWalk(pattern: pattern, quantizer: quantizer, actOrder: actOrder, staticGroups: staticGroups,
                              blocksize: blocksize, percdamp: percdamp).validate()
        }
    }

    /// A name for the configuration: dense | <method>-<pattern>-<level>.
    public var configName: String {
        var parts = [method.rawValue]
        switch pattern {
        case .unstructured(let s)?: parts += ["unstructured", String(Int((s * 100).rounded()))]
        case .nm(let n, let m)?: parts += ["\(n)of\(m)", String(Int((1 - Double(n) / Double(m)) * 100))]
        case nil: break
        }
        if let q = quantizer { parts.append("w\(q.bits)" + (q.groupSize.map { "g\($0)" } ?? "") + (q.symmetric ? "sym" : "")) }
        if actOrder { parts.append("actorder") }
        return parts.joined(separator: "-")
    }

    /// Compresses one linear layer given the statistics of its inputs.
    /// NaN or infinite weights or statistics are refused here, before any
    /// algebra: they would otherwise spread through the OBS updates or reach
    /// the quantizer's integer codes.
    public func compress(_ w: Matrix, stats: HessianAccumulator?, grid: SourceGrid? = nil) throws -> CompressedLinear {
        guard w.data.allSatisfy(\.isFinite) else { throw KickError("the weight holds NaN or infinite values; refusing to compress it") }
        if let stats {
            let finite = stats.full ? stats.H.allSatisfy(\.isFinite) : stats.columnSquares.allSatisfy(\.isFinite)
            guard finite else { throw KickError("the calibration inputs hold NaN or infinite values (or overflow float32 statistics)") }
        }
        return try compressor.compress(w, stats: stats, grid: grid)
    }
}

extension CompressionSpec {
    /// The spec a configuration name stands for (the inverse of
    /// `configName`): `magnitude-unstructured-30`, `wanda-2of4-50`,
    /// `gptq-w4g128`, `sparsegpt-unstructured-50-w4`, …; nil for `dense`.
    public static func parse(configName name: String) throws -> CompressionSpec? {
        if name == "dense" { return nil }
        var parts = name.split(separator: "-").map(String.init)
        guard let m = Method(rawValue: parts.removeFirst()) else {
            throw KickError("configuration '\(name)': unknown method; methods are \(Method.allCases.map(\.rawValue).joined(separator: ", ")), or dense")
        }
        var spec = CompressionSpec(method: m)
        if parts.last == "actorder" { spec.actOrder = true; parts.removeLast() }
        if let q = parts.last, q.hasPrefix("w") {
            parts.removeLast()
            var rest = Substring(q.dropFirst())
            let sym = rest.hasSuffix("sym")
            if sym { rest = rest.dropLast(3) }
            let bg = rest.split(separator: "g", omittingEmptySubsequences: false)
            guard let bits = Int(bg[0]), bg.count <= 2, bg.count == 1 || Int(bg[1]) != nil else {
                throw KickError("configuration '\(name)': '\(q)' is not w<bits>[g<group>][sym]")
            }
            spec.quantizer = QuantizerSpec(bits: bits, groupSize: bg.count == 2 ? Int(bg[1]) : nil, symmetric: sym)
        }
        if !parts.isEmpty {
            guard parts.count == 2, let level = Int(parts[1]) else { throw KickError("configuration '\(name)': expected <method>-<pattern>-<level>") }
            if parts[0] == "unstructured" {
                guard level > 0, level < 100 else { throw KickError("configuration '\(name)': level must lie in 1–99") }
                spec.pattern = .unstructured(Double(level) / 100)
            } else {
                let nm = parts[0].split(separator: "of")
                guard nm.count == 2, let n = Int(nm[0]), let mm = Int(nm[1]) else { throw KickError("configuration '\(name)': pattern '\(parts[0])' is not unstructured or <N>of<M>") }
                spec.pattern = try SparsityPattern.parse("\(n):\(mm)")
            }
        }
        try spec.validate()
        guard spec.configName == name else { throw KickError("configuration '\(name)' reads as '\(spec.configName)'; use that name") }
        return spec
    }
}
