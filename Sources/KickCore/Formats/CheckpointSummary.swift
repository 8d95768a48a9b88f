import Foundation

/// What `kick-compress inspect` prints: per tensor its encoding, zeros and
/// bits, and totals against the same tensors stored as dense f16.
public enum CheckpointSummary {
    public static func summarize(_ ck: KickCheckpoint) -> [String: Any] {
        var rows: [[String: Any]] = []
        struct Total { var elements = 0, packed = 0, compressed = 0, zeros = 0 }
        var all = Total(), proj = Total()
        for t in ck.directory.tensors {
            rows.append([
                "name": t.name, "shape": t.shape, "encoding": t.encoding.description,
                "zeros_fraction": Double(t.zeros) / Double(max(1, t.elements)),
                "bits_per_weight": Double(t.size * 8) / Double(max(1, t.elements)),
                "packed_bytes": t.size, "compressed_bytes": t.compressedBytes,
            ])
            for isProj in [false, true] where !isProj || t.name.hasPrefix("blk.") && !t.name.hasSuffix("norm.weight") {
                var x = isProj ? proj : all
                x.elements += t.elements; x.packed += t.size; x.compressed += t.compressedBytes; x.zeros += t.zeros
                if isProj { proj = x } else { all = x }
            }
        }
        func totals(_ x: Total) -> [String: Any] {
            let f16 = Double(x.elements * 2)
            return ["elements": x.elements, "zeros_fraction": Double(x.zeros) / Double(max(1, x.elements)),
                    "packed_bytes": x.packed, "compressed_bytes": x.compressed, "f16_bytes": x.elements * 2,
                    "packed_vs_f16": Double(x.packed) / f16, "compressed_vs_f16": Double(x.compressed) / f16]
        }
        let enc = JSONEncoder()
        let cfg = (try? JSONSerialization.jsonObject(with: enc.encode(ck.directory.config))) ?? [:]
        return ["format_version": ck.directory.version, "file": ck.path, "file_bytes": ck.file.size, "config": cfg,
                "chat_template": ck.directory.chatTemplate.rawValue, "metadata": ck.directory.metadata,
                "tensors": rows, "totals": totals(all), "projection_totals": totals(proj)]
    }
}
