import Foundation

/// A compressed linear layer as a method produced it, before encoding.
public enum CompressedLinear: Sendable {
    /// Float weights with pruned entries at zero (unstructured).
    case pruned(Matrix)
    /// Float weights keeping at most n of every m inputs of a row.
    case nm(Matrix, n: Int, m: Int)
    /// Integer codes, scales and zeros (GPTQ, RTN); `sparse` when pruned too.
    case quantized(QuantizedMatrix, sparse: Bool)

    /// What kind of result this is, for reports.
    public var form: String {
        switch self {
        case .pruned: return "pruned"
        case .nm(_, let n, let m): return "\(n):\(m)"
        case .quantized(let q, let sparse): return "\(sparse ? "sparse-" : "")q\(q.bits)-g\(q.groupSize)"
        }
    }

    public var matrix: Matrix {
        switch self {
        case .pruned(let m), .nm(let m, _, _): return m
        case .quantized(let q, _): return q.dequantized()
        }
    }

    /// The float weights of a pruned (not quantized) result.
    public var prunedMatrix: Matrix? {
        switch self {
        case .pruned(let m), .nm(let m, _, _): return m
        case .quantized: return nil
        }
    }
}

/// Chooses each tensor's encoding and writes whole checkpoints.
public enum CheckpointEncoder {
    /// The encoding and payload of a compressed layer, its values at `values`
    /// precision: the smaller of sparse and dense for pruned weights, the
    /// N:M layout for N:M weights, codes for quantized ones.
    public static func encode(_ c: CompressedLinear, values: ValueType) -> (TensorEncoding, [UInt8]) {
        switch c {
        case .pruned(let m):
            let sparse = TensorCodec.encodeSparse(m.data, values)
            return sparse.count < m.data.count * values.size ? (.sparse(values), sparse) : (.dense(values), TensorCodec.encodeDense(m.data, values))
        case .nm(let m, let n, let mm):
            if mm <= KickFormat.maxGroup, let p = TensorCodec.encodeNM(m, n: n, groupOf: mm, values) { return (.nm(n, mm, values), p) }
            return encode(.pruned(m), values: values)
        case .quantized(let q, let sparse):
            let e = TensorEncoding.quant(bits: q.bits, groupSize: q.groupSize, groupIndex: q.columnGroup != nil, sparse: sparse)
            return (e, TensorCodec.encodeQuant(q, sparse: sparse))
        }
    }

    /// Zero entries of a decoded payload.
    static func zeros(_ values: [Float]) -> Int { values.reduce(0) { $0 + ($1 == 0 ? 1 : 0) } }

    /// Writes a checkpoint of `bundle`, one block at a time: `transform`
    /// returns the compressed layers of block i (or none to keep it), and
    /// every other tensor is copied as the source stores it.
    public static func write(bundle: ModelBundle, to path: String, metadata: [String: String],
                             transform: (Int, LlamaBlockWeights) throws -> [LinearRole: CompressedLinear],
                             progress: ((Int, Int) -> Void)? = nil) throws {
        let src = bundle.source
        let c = src.config
        let w = try KickCheckpointWriter(path: path)
        func copy(_ role: TensorRole) throws {
            let (e, p) = try src.storedPayload(role)
            let m = try src.matrix(role)
            try w.addTensor(name: role.ggufName, shape: role.isVector ? [m.cols] : [m.rows, m.cols], encoding: e, payload: p,
                            zeros: zeros(m.data))
        }
        try copy(.embedding)
        for i in 0..<c.numLayers {
            let block = try src.validatedBlock(i)
            let out = try transform(i, block)
            try copy(.attnNorm(i))
            try copy(.ffnNorm(i))
            for r in LinearRole.allCases {
                let role = TensorRole.linear(i, r)
                if let cl = out[r] {
                    let (e, p): (TensorEncoding, [UInt8])
                    // a pruned tensor of a ggml-quantized source keeps its kept values
                    // as codes on the source's blocks: a bitmask and the kept codes, or
                    // (unstructured, where that is smaller) the blocks themselves with
                    // an escape for pruned entries; never larger than the source
                    if let t = src.sourceType(role), TensorCodec.sparseGGMLTypes.contains(t), let m = cl.prunedMatrix,
                       case let source = try src.storedPayload(role).1,
                       let sp = TensorCodec.encodeSparseGGML(m, type: t, source: source) {
                        if case .nm(_, let n, let mm) = cl {
                            (e, p) = (.sparseGGML(t, n: n, m: mm), sp)
                        } else if let blocks = TensorCodec.encodePrunedBlocks(m, type: t, source: source),
                                  try storedBytes(blocks.1) < storedBytes(sp) {
                            (e, p) = blocks
                        } else {
                            (e, p) = (.sparseGGML(t), sp)
                        }
                    } else {
                        (e, p) = encode(cl, values: ValueType.preserving(src.sourceType(role)))
                    }
                    let decoded = try p.withUnsafeBytes { try TensorCodec.decode($0, rows: block[r].rows, cols: block[r].cols, e) }
                    try w.addTensor(name: role.ggufName, shape: [block[r].rows, block[r].cols], encoding: e, payload: p, zeros: zeros(decoded))
                } else {
                    try copy(role)
                }
            }
            progress?(i + 1, c.numLayers)
        }
        try copy(.finalNorm)
        if src.has(.output) && !c.tieWordEmbeddings { try copy(.output) }
        let (tokRef, blobs) = try bundle.tokenizerBlobs()
        for (name, bytes) in blobs { try w.addBlob(name: name, bytes: bytes) }
        var meta = metadata
        meta["source"] = bundle.path
        try w.finish(config: c, chatTemplate: bundle.chatTemplate, tokenizer: tokRef, metadata: meta)
    }
}

/// A payload's size once zstd has it, as the checkpoint stores it: the
/// measure between two encodings of one tensor.
private func storedBytes(_ payload: [UInt8]) throws -> Int { try payload.withUnsafeBytes { try Zstd.compress($0).count } }

extension TensorRole {
    var isVector: Bool {
        switch self {
        case .finalNorm, .attnNorm, .ffnNorm: return true
        default: return false
        }
    }
}
