/// The linear layers of one decoder block, named by role.
public enum LinearRole: String, CaseIterable, Sendable, Codable {
    case q, k, v, o, gate, up, down
}

/// One decoder block's weights in float32, matrices (out × in) row-major.
public struct LlamaBlockWeights: Sendable {
    public var attnNorm: [Float]
    public var ffnNorm: [Float]
    public var linear: [LinearRole: Matrix]

    public init(attnNorm: [Float], ffnNorm: [Float], linear: [LinearRole: Matrix]) {
        self.attnNorm = attnNorm
        self.ffnNorm = ffnNorm
        self.linear = linear
    }

    public subscript(role: LinearRole) -> Matrix {
        get { linear[role]! }
        set { linear[role] = newValue }
    }

    /// The (rows, cols) the config gives a block's linear layer.
    public static func shape(of role: LinearRole, _ c: LlamaConfig) -> (rows: Int, cols: Int) {
        let q = c.numHeads * c.headDim, kv = c.numKVHeads * c.headDim
        switch role {
        case .q: return (q, c.hiddenSize)
        case .k, .v: return (kv, c.hiddenSize)
        case .o: return (c.hiddenSize, q)
        case .gate, .up: return (c.intermediateSize, c.hiddenSize)
        case .down: return (c.hiddenSize, c.intermediateSize)
        }
    }

    /// Throws unless `m` has the shape the config gives block i's `role`.
    public static func check(_ m: Matrix, _ role: LinearRole, block i: Int, _ c: LlamaConfig, file: String?) throws {
        try check(rows: m.rows, cols: m.cols, role, block: i, c, file: file)
    }

    public static func check(rows: Int, cols: Int, _ role: LinearRole, block i: Int, _ c: LlamaConfig, file: String?) throws {
        let (r, cc) = shape(of: role, c)
        guard rows == r, cols == cc else {
            throw KickError("block \(i) \(role) projection has shape \(rows)×\(cols), config needs \(r)×\(cc)", file: file)
        }
    }

    /// Checks the tensor shapes against the config.
    public func validate(index i: Int, _ c: LlamaConfig, file: String?) throws {
        for role in LinearRole.allCases {
            guard let m = linear[role] else { throw KickError("block \(i) lacks its \(role) projection", file: file) }
            try Self.check(m, role, block: i, c, file: file)
        }
        guard attnNorm.count == c.hiddenSize, ffnNorm.count == c.hiddenSize else {
            throw KickError("block \(i) norm sizes do not match hidden size \(c.hiddenSize)", file: file)
        }
    }
}

/// A whole Llama model's weights. `output` is nil when the head is tied to
/// the token embedding.
public struct LlamaWeights: Sendable {
    public var embedding: Matrix
    public var blocks: [LlamaBlockWeights]
    public var finalNorm: [Float]
    public var output: Matrix?

    public init(embedding: Matrix, blocks: [LlamaBlockWeights], finalNorm: [Float], output: Matrix?) {
        self.embedding = embedding
        self.blocks = blocks
        self.finalNorm = finalNorm
        self.output = output
    }

    /// Checks the tensors outside the blocks against the config.
    public func validateOuter(_ c: LlamaConfig, file: String?) throws {
        guard embedding.rows == c.vocabSize, embedding.cols == c.hiddenSize else {
            throw KickError("embedding has shape \(embedding.rows)×\(embedding.cols), config needs \(c.vocabSize)×\(c.hiddenSize)", file: file)
        }
        guard finalNorm.count == c.hiddenSize else {
            throw KickError("final norm has \(finalNorm.count) values, config needs \(c.hiddenSize)", file: file)
        }
        if let output, output.rows != c.vocabSize || output.cols != c.hiddenSize {
            throw KickError("output head has shape \(output.rows)×\(output.cols), config needs \(c.vocabSize)×\(c.hiddenSize)", file: file)
        }
    }

    /// Checks every tensor's shape against the config.
    public func validate(_ c: LlamaConfig, file: String?) throws {
        try validateOuter(c, file: file)
        guard blocks.count == c.numLayers else {
            throw KickError("\(blocks.count) blocks, config says \(c.numLayers)", file: file)
        }
        for (i, b) in blocks.enumerated() { try b.validate(index: i, c, file: file) }
    }
}
