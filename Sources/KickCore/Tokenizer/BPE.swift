/// The merge loop shared by every BPE flavour: symbols in a linked list, the
/// best adjacent pair popped from a heap until no pair merges. A pair's
/// priority is its merge rank (GPT-2 style) or its negated score
/// (SentencePiece style); ties go to the leftmost pair.
struct BPEMerger {
    /// (left id, right id) → (priority, merged id); lower priority merges first.
    var pairs: [UInt64: (priority: Double, merged: Int32)] = [:]

    @inline(__always)
    static func key(_ a: Int32, _ b: Int32) -> UInt64 { UInt64(UInt32(bitPattern: a)) << 32 | UInt64(UInt32(bitPattern: b)) }

    func merge(_ ids: [Int32]) -> [Int32] {
        let n = ids.count
        if n < 2 { return ids }
        var sym = ids
        var prev = [Int](0..<n).map { $0 - 1 }
        var next = [Int](0..<n).map { $0 + 1 }
        var alive = [Bool](repeating: true, count: n)
        var heap = PairHeap()
        for i in 0..<n - 1 {
            if let p = pairs[Self.key(sym[i], sym[i + 1])] {
                heap.push(.init(priority: p.priority, left: i, leftID: sym[i], rightID: sym[i + 1]))
            }
        }
        while let top = heap.pop() {
            let l = top.left
            guard alive[l], sym[l] == top.leftID else { continue }
            let r = next[l]
            guard r < n, alive[r], sym[r] == top.rightID, let p = pairs[Self.key(sym[l], sym[r])] else { continue }
            sym[l] = p.merged
            alive[r] = false
            next[l] = next[r]
            if next[r] < n { prev[next[r]] = l }
            if prev[l] >= 0, let q = pairs[Self.key(sym[prev[l]], sym[l])] {
                heap.push(.init(priority: q.priority, left: prev[l], leftID: sym[prev[l]], rightID: sym[l]))
            }
            if next[l] < n, let q = pairs[Self.key(sym[l], sym[next[l]])] {
                heap.push(.init(priority: q.priority, left: l, leftID: sym[l], rightID: sym[next[l]]))
            }
        }
        var out: [Int32] = []
        out.reserveCapacity(n)
        var i = 0
        while i < n {
            out.append(sym[i])
            i = next[i]
        }
        return out
    }
}

/// A binary min-heap of candidate merges ordered by (priority, left index).
struct PairHeap {
    struct Entry {
        var priority: Double
        var left: Int
        var leftID: Int32
        var rightID: Int32
        @inline(__always)
        static func < (a: Entry, b: Entry) -> Bool {
            a.priority < b.priority || (a.priority == b.priority && a.left < b.left)
        }
    }
    private var items: [Entry] = []

    mutating func push(_ e: Entry) {
        items.append(e)
        var i = items.count - 1
        while i > 0 {
            let p = (i - 1) / 2
            if items[i] < items[p] { items.swapAt(i, p); i = p } else { break }
        }
    }

    mutating func pop() -> Entry? {
        guard !items.isEmpty else { return nil }
        let top = items[0]
        let last = items.removeLast()
        if !items.isEmpty {
            items[0] = last
            var i = 0
            while true {
                let l = 2 * i + 1, r = l + 1
                var m = i
                if l < items.count && items[l] < items[m] { m = l }
                if r < items.count && items[r] < items[m] { m = r }
                if m == i { break }
                items.swapAt(i, m)
                i = m
            }
        }
        return top
    }
}

/// GPT-2's reversible map between bytes and printable Unicode characters,
/// which byte-level BPE vocabularies are written in.
public enum ByteLevelMap {
    public static let byteToScalar: [Unicode.Scalar] = {
        var table = [Unicode.Scalar](repeating: " ", count: 256)
        var extra: UInt32 = 0
        for b in 0..<256 {
            let keep = (33...126).contains(b) || (161...172).contains(b) || (174...255).contains(b)
            if keep { table[b] = Unicode.Scalar(UInt32(b))! } else { table[b] = Unicode.Scalar(256 + extra)!; extra += 1 }
        }
        return table
    }()

    static let scalarToByte: [UInt32: UInt8] = {
        var d: [UInt32: UInt8] = [:]
        for (b, s) in byteToScalar.enumerated() { d[s.value] = UInt8(b) }
        return d
    }()
}
