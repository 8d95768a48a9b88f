/// Masks from a per-weight metric (|W| for magnitude, |W|·‖X_j‖ for Wanda).
public enum PruningMask {
    /// Per matrix: threshold = sorted(metric)[int(numel · ratio)], prune
    /// metric ≤ threshold (the magnitude reference).
    public static func globalThreshold(_ metric: [Float], ratio: Double) -> [Bool] {
        let k = Int(Double(metric.count) * ratio)
        guard k < metric.count else { return metric.map { _ in true } }
        let thr = kthSmallest(metric, k)
        return metric.map { $0 <= thr }
    }

    /// `values.sorted()[k]`, found in linear expected time: quickselect
    /// with median-of-three pivots and a three-way partition (a pruned
    /// matrix is full of equal zeros), sorting what is left if a range
    /// refuses to shrink. The same value a sort gives, so the same mask;
    /// a 7B FFN matrix (45 M weights) took seconds to sort.
    static func kthSmallest(_ values: [Float], _ k: Int) -> Float {
        precondition(k >= 0 && k < values.count, "k outside the values")
        var a = values
        return a.withUnsafeMutableBufferPointer { b -> Float in
            var lo = 0, hi = b.count - 1, budget = 64
            while lo < hi {
                if budget == 0 {
                    var rest = UnsafeMutableBufferPointer(rebasing: b[lo...hi])
                    rest.sort()
                    return b[k]
                }
                budget -= 1
                let (x, y, z) = (b[lo], b[lo + (hi - lo) / 2], b[hi])
                let pivot = max(min(x, y), min(max(x, y), z))
                var lt = lo, i = lo, gt = hi
                while i <= gt {
                    if b[i] < pivot { b.swapAt(lt, i); lt += 1; i += 1 } else if b[i] > pivot { b.swapAt(i, gt); gt -= 1 } else { i += 1 }
                }
                // b[lo..<lt] < pivot, b[lt...gt] == pivot, b[gt+1...hi] > pivot
                if k < lt { hi = lt - 1 } else if k > gt { lo = gt + 1 } else { return pivot }
            }
            return b[k]
        }
    }

    /// Per output row: prune the int(cols · ratio) smallest (the Wanda reference).
    public static func perRow(_ metric: [Float], rows: Int, cols: Int, ratio: Double) -> [Bool] {
        let k = Int(Double(cols) * ratio)
        var mask = [Bool](repeating: false, count: metric.count)
        for r in 0..<rows {
            let order = (0..<cols).sorted { metric[r * cols + $0] < metric[r * cols + $1] || (metric[r * cols + $0] == metric[r * cols + $1] && $0 < $1) }
            for j in order.prefix(k) { mask[r * cols + j] = true }
        }
        return mask
    }

    /// In every group of m consecutive columns of a row, keep the n largest
    /// (prune m − n); a narrower last group keeps min(n, width).
    public static func nm(_ metric: [Float], rows: Int, cols: Int, n: Int, m: Int) -> [Bool] {
        var mask = [Bool](repeating: false, count: metric.count)
        for r in 0..<rows {
            var g0 = 0
            while g0 < cols {
                let w = min(m, cols - g0)
                let prune = max(0, w - n)
                let order = (0..<w).sorted { metric[r * cols + g0 + $0] < metric[r * cols + g0 + $1] || (metric[r * cols + g0 + $0] == metric[r * cols + g0 + $1] && $0 < $1) }
                for j in order.prefix(prune) { mask[r * cols + g0 + j] = true }
                g0 += m
            }
        }
        return mask
    }

    public static func apply(_ mask: [Bool], to w: inout Matrix) {
        for i in w.data.indices where mask[i] { w.data[i] = 0 }
    }
}
