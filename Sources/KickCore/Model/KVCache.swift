/// The keys and values one sequence has produced, per layer and KV head:
/// layout [layer][kvHead][position][headDim], so one head's keys are a
/// contiguous (positions × headDim) matrix for BLAS.
public final class KVCache: @unchecked Sendable {
    public let layers: Int
    public let kvHeads: Int
    public let headDim: Int
    public internal(set) var length = 0
    public private(set) var capacity: Int
    var k: UnsafeMutablePointer<Float>
    var v: UnsafeMutablePointer<Float>

    public convenience init(config c: LlamaConfig, capacity: Int = 64) {
        self.init(layers: c.numLayers, kvHeads: c.numKVHeads, headDim: c.headDim, capacity: capacity)
    }

    deinit {
        k.deallocate()
        v.deallocate()
    }

    /// Bytes held, for memory accounting.
    public var bytes: Int { 2 * layers * kvHeads * capacity * headDim * 4 }

    @inline(__always)
    func keys(layer: Int, head: Int) -> UnsafeMutablePointer<Float> {
        k + ((layer * kvHeads + head) * capacity) * headDim
    }

    @inline(__always)
    func values(layer: Int, head: Int) -> UnsafeMutablePointer<Float> {
        v + ((layer * kvHeads + head) * capacity) * headDim
    }

    /// Makes room for `total` positions, growing geometrically.
    public func reserve(_ total: Int) {
        guard total > capacity else { return }
        var newCap = capacity
        while newCap < total { newCap *= 2 }
        let n = layers * kvHeads * newCap * headDim
        let nk = UnsafeMutablePointer<Float>.allocate(capacity: n)
        let nv = UnsafeMutablePointer<Float>.allocate(capacity: n)
        for lh in 0..<layers * kvHeads {
            (nk + lh * newCap * headDim).update(from: k + lh * capacity * headDim, count: length * headDim)
            (nv + lh * newCap * headDim).update(from: v + lh * capacity * headDim, count: length * headDim)
        }
        k.deallocate()
        v.deallocate()
        k = nk
        v = nv
        capacity = newCap
    }

    /// A new cache holding the first `prefix` positions of this one (shared
    /// few-shot prefixes are computed once and copied).
    public func copy(prefix: Int? = nil, extraCapacity: Int = 0) -> KVCache {
        let p = min(prefix ?? length, length)
        let c = KVCache(layers: layers, kvHeads: kvHeads, headDim: headDim, capacity: p + extraCapacity)
        for lh in 0..<layers * kvHeads {
            (c.k + lh * c.capacity * headDim).update(from: k + lh * capacity * headDim, count: p * headDim)
            (c.v + lh * c.capacity * headDim).update(from: v + lh * capacity * headDim, count: p * headDim)
        }
        c.length = p
        return c
    }

    /// Forgets positions past `length` (the next tokens overwrite them).
    public func truncate(to newLength: Int) {
        length = min(length, max(0, newLength))
    }

    private init(layers: Int, kvHeads: Int, headDim: Int, capacity: Int) {
        self.layers = layers
        self.kvHeads = kvHeads
        self.headDim = headDim
        self.capacity = max(1, capacity)
        let n = layers * kvHeads * self.capacity * headDim
        k = .allocate(capacity: n)
        v = .allocate(capacity: n)
    }
}
