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

    /// Checks every tensor's shape against the config.
    public func validate(_ c: LlamaConfig, file: String?) throws {
        func check(_ name: String, _ m: Matrix, _ rows: Int, _ cols: Int) throws {
            guard m.rows == rows, m.cols == cols else {
                throw KickError("tensor \(name) has shape \(m.rows)×\(m.cols), config needs \(rows)×\(cols)", file: file)
            }
        }
        try check("embedding", embedding, c.vocabSize, c.hiddenSize)
        guard finalNorm.count == c.hiddenSize else { throw KickError("final norm has \(finalNorm.count) values, config needs \(c.hiddenSize)", file: file) }
        if let output { try check("output", output, c.vocabSize, c.hiddenSize) }
        let q = c.numHeads * c.headDim, kv = c.numKVHeads * c.headDim
        for (i, b) in blocks.enumerated() {
            let shapes: [LinearRole: (Int, Int)] = [
                .q: (q, c.hiddenSize), .k: (kv, c.hiddenSize), .v: (kv, c.hiddenSize), .o: (c.hiddenSize, q),
                .gate: (c.intermediateSize, c.hiddenSize), .up: (c.intermediateSize, c.hiddenSize),
                .down: (c.hiddenSize, c.intermediateSize),
            ]
            for (role, (r, cc)) in shapes {
                guard let m = b.linear[role] else { throw KickError("block \(i) lacks its \(role) projection", file: file) }
                try check("block \(i) \(role)", m, r, cc)
            }
            guard b.attnNorm.count == c.hiddenSize, b.ffnNorm.count == c.hiddenSize else {
                throw KickError("block \(i) norm sizes do not match hidden size \(c.hiddenSize)", file: file)
            }
        }
    }
}
