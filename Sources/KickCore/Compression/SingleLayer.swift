import Foundation

/// `kick-compress layer`: one weight from a `.npy`, compressed given its
/// calibration inputs X (tokens × inputs), as the golden layer references
/// are computed.
public enum SingleLayer {
    public struct Result: Sendable {
        public var compressed: Matrix
        public var seconds: Double
        public var sparsity: Double
        /// ‖X·Wcᵀ − X·Wᵀ‖ / ‖X·Wᵀ‖ when X is given (NaN for all-zero inputs).
        public var relativeOutputError: Double?
    }

    /// What `kick-compress layer` prints.
    public struct Summary: Codable, Sendable {
        public var out: String
        public var method: String
        public var config: String
        public var seconds: Double
        public var sparsity: Double
        public var relativeOutputError: Double?
        public init(out: String, method: String, config: String, seconds: Double, sparsity: Double, relativeOutputError: Double?) {
            self.out = out
            self.method = method
            self.config = config
            self.seconds = seconds
            self.sparsity = sparsity
            self.relativeOutputError = relativeOutputError
        }
        enum CodingKeys: String, CodingKey { case out, method, config, seconds, sparsity, relativeOutputError = "relative_output_error" }
    }

    public static func compress(_ spec: CompressionSpec, weight: String, calib: String?) throws -> Result {
        let w = try Npy.read(path: weight).matrix(file: weight)
        guard w.data.allSatisfy(\.isFinite) else { throw KickError("the weight holds NaN or infinite values; refusing to compress it", file: weight) }
        var x: Matrix?
        if let calib {
            let c = try Npy.read(path: calib).matrix(file: calib)
            guard c.data.allSatisfy(\.isFinite) else { throw KickError("the calibration inputs hold NaN or infinite values", file: calib) }
            guard c.cols == w.cols else { throw KickError("calibration has \(c.cols) inputs, the weight \(w.cols)", file: calib) }
            x = c
        } else if spec.needsCalibration {
            throw KickError("\(spec.method.rawValue) needs --calib")
        }
        let t0 = Date()
        var stats: HessianAccumulator?
        if let x, spec.needsCalibration {
            let h = HessianAccumulator(cols: x.cols, full: spec.needsHessian)
            x.data.withUnsafeBufferPointer { h.add($0, rows: x.rows, samples: 1) }
            stats = h
        }
        let wc: Matrix
        do { wc = try spec.compress(w, stats: stats).matrix } catch let e as KickError where e.file == nil {
            throw KickError(e.message, file: calib ?? weight)
        }
        var r = Result(compressed: wc, seconds: Date().timeIntervalSince(t0),
                       sparsity: Double(wc.data.filter { $0 == 0 }.count) / Double(wc.data.count))
        if let x {
            let a = x.timesTransposed(wc), b = x.timesTransposed(w)
            var num = 0.0, den = 0.0
            for i in a.data.indices { num += Double(a.data[i] - b.data[i]) * Double(a.data[i] - b.data[i]); den += Double(b.data[i]) * Double(b.data[i]) }
            r.relativeOutputError = (num / den).squareRoot()
        }
        return r
    }
}
