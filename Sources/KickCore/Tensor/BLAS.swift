import CBLAS
import Foundation

/// The few BLAS/LAPACK calls kick makes, with the row-major conventions of
/// the engine spelled out once.
public enum BLAS {
    /// C (m × n) = alpha · A (m × k) · Bᵀ + beta · C, where B is stored (n × k)
    /// row-major — the layout of a linear layer's weight (out × in).
    @inline(__always)
    public static func gemmNT(m: Int, n: Int, k: Int,
                              a: UnsafePointer<Float>, lda: Int,
                              b: UnsafePointer<Float>, ldb: Int,
                              c: UnsafeMutablePointer<Float>, ldc: Int,
                              alpha: Float = 1, beta: Float = 0) {
        // Issued as the column-major product Cᵀ = B · Aᵀ: the same numbers,
        // but OpenBLAS packs the large weight as its A operand, measured 5-30%
        // faster for 8-512 tokens against a 1536 × 576 weight on this machine.
        cblas_sgemm(CblasColMajor, CblasTrans, CblasNoTrans,
                    Int32(n), Int32(m), Int32(k), alpha, b, Int32(ldb), a, Int32(lda),
                    beta, c, Int32(ldc))
    }

    private static let threadLock = NSLock()
    nonisolated(unsafe) private static var oneThreadDepth = 0
    nonisolated(unsafe) private static var savedThreads = 1

    /// Runs `body` with OpenBLAS on one thread, for code that splits its
    /// products over a `ThreadTeam` itself; nested and concurrent calls
    /// restore the thread count when the last one ends.
    public static func withOneThread<R>(_ body: () throws -> R) rethrows -> R {
        threadLock.lock()
        _ = configuredThreads  // read before the first change below
        if oneThreadDepth == 0 { savedThreads = threads; setThreads(1) }
        oneThreadDepth += 1
        threadLock.unlock()
        defer {
            threadLock.lock()
            oneThreadDepth -= 1
            if oneThreadDepth == 0 { setThreads(savedThreads) }
            threadLock.unlock()
        }
        return try body()
    }

    public static var threads: Int { Int(openblas_get_num_threads()) }

    /// OpenBLAS's thread count as the process started (OPENBLAS_NUM_THREADS
    /// or every core), whatever `withOneThread` has set since: the engine's
    /// team is sized from it, even when first used during another forward.
    public static let configuredThreads = Int(openblas_get_num_threads())
    public static func setThreads(_ n: Int) { openblas_set_num_threads(Int32(n)) }
}
