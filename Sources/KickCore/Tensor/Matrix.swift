/// A row-major float32 matrix that owns its storage. Plain value semantics
/// through [Float]; the engine takes raw pointers from it for BLAS calls.
public struct Matrix: Sendable, Equatable {
    public var rows: Int
    public var cols: Int
    public var data: [Float]

    public init(rows: Int, cols: Int, data: [Float]) {
        precondition(data.count == rows * cols, "matrix data does not match its shape")
        self.rows = rows
        self.cols = cols
        self.data = data
    }

    public init(zeros rows: Int, _ cols: Int) {
        self.init(rows: rows, cols: cols, data: [Float](repeating: 0, count: rows * cols))
    }

    public subscript(r: Int, c: Int) -> Float {
        get { data[r * cols + c] }
        set { data[r * cols + c] = newValue }
    }

    /// self (m × k) · otherᵀ where other is (n × k): the linear-layer product.
    public func timesTransposed(_ other: Matrix) -> Matrix {
        precondition(cols == other.cols)
        var out = Matrix(zeros: rows, other.rows)
        data.withUnsafeBufferPointer { a in
            other.data.withUnsafeBufferPointer { b in
                out.data.withUnsafeMutableBufferPointer { c in
                    BLAS.gemmNT(m: rows, n: other.rows, k: cols, a: a.baseAddress!, lda: cols,
                                b: b.baseAddress!, ldb: cols, c: c.baseAddress!, ldc: other.rows)
                }
            }
        }
        return out
    }
}
