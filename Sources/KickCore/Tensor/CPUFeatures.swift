import Foundation

/// What the processor offers beyond the build's baseline, read once.
public enum CPUFeatures {
    /// AVX-512 F, CD, BW, DQ and VL, as Linux lists them in /proc/cpuinfo
    /// (it lists them only when the OS also saves the 512-bit registers).
    /// `KICK_NO_AVX512=1` turns the AVX-512 kernels off.
    public static let avx512: Bool = {
        #if arch(x86_64) && os(Linux)
        if ProcessInfo.processInfo.environment["KICK_NO_AVX512"].map({ !$0.isEmpty && $0 != "0" }) ?? false { return false }
        guard let info = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
              let line = info.split(separator: "\n").first(where: { $0.hasPrefix("flags") }) else { return false }
        let flags = Set(line.split(separator: " ").map(String.init))
        return ["avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl"].allSatisfy(flags.contains)
        #else
        return false
        #endif
    }()
}
