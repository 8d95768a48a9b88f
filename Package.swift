// swift-tools-version:6.0
import PackageDescription

import Foundation

// Release-grade optimisation for the library even in debug builds: the
// engine's non-BLAS loops (norms, RoPE, dequantisation, BPE) are otherwise
// 10-50x slower and the golden-model tests would crawl.
//
// On x86-64 the library is built for Haswell-level CPUs (AVX2 + FMA, every x86
// server since 2013): its SIMD8 loops (attention, SwiGLU, norms) then run
// as single 256-bit instructions, and fused multiply-adds are instructions
// rather than libm calls. KICK_TARGET_CPU=<cpu> overrides it, e.g.
// `KICK_TARGET_CPU=x86-64` for a machine without AVX2.
var kickCoreFlags = ["-O"]
#if arch(x86_64)
kickCoreFlags += ["-target-cpu", ProcessInfo.processInfo.environment["KICK_TARGET_CPU"] ?? "haswell"]
#endif
let kickCoreSettings: [SwiftSetting] = [.unsafeFlags(kickCoreFlags)]

// The AVX-512 packed-weight linear kernel, built for skylake-avx512 on
// x86-64 and called only where the processor reports AVX-512 (KickCore
// checks at run time); elsewhere the module is empty.
var avx512Flags = ["-O"]
#if arch(x86_64)
avx512Flags += ["-target-cpu", "skylake-avx512"]
#endif

let package = Package(
    name: "kick",
    platforms: [.macOS(.v13)],
    products: [
        .library(name: "KickCore", targets: ["KickCore"]),
        .executable(name: "kick-ingest", targets: ["Ingest"]),
        .executable(name: "kick-compress", targets: ["Compress"]),
        .executable(name: "kick-infer", targets: ["Infer"]),
        .executable(name: "kick-report", targets: ["Report"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        // SHA-256 at BoringSSL's speed: every checkpoint load and download is hashed
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.0"),
        // property-based round-trip tests (test target only)
        .package(url: "https://github.com/x-sheep/swift-property-based", from: "2.0.1"),
    ],
    targets: [
        .systemLibrary(name: "CBLAS", path: "Sources/CBLAS", pkgConfig: "openblas",
                       providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(name: "CZstd", path: "Sources/CZstd", pkgConfig: "libzstd",
                       providers: [.apt(["libzstd-dev"])]),
        .systemLibrary(name: "CArchive", path: "Sources/CArchive", pkgConfig: "libarchive",
                       providers: [.apt(["libarchive-dev"])]),
        // A header-only module: the prefetch hint the linear kernels need.
        .systemLibrary(name: "CPrefetch", path: "Sources/CPrefetch"),
        // A header-only module: the in-register permute the N:M sparse kernel needs.
        .systemLibrary(name: "CPermute", path: "Sources/CPermute"),
        .target(name: "AVX512Kernels", dependencies: ["CPrefetch"], swiftSettings: [.unsafeFlags(avx512Flags)]),
        .target(name: "KickCore", dependencies: ["CBLAS", "CZstd", "CArchive", "CPrefetch", "CPermute", "AVX512Kernels",
                                                 .product(name: "Logging", package: "swift-log"),
                                                 .product(name: "Crypto", package: "swift-crypto")],
                swiftSettings: kickCoreSettings),
        // What the executables share: one entry point that words every error.
        .target(name: "KickCLI", dependencies: [
            "KickCore", .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "Logging", package: "swift-log")]),
        .executableTarget(name: "Ingest", dependencies: [
            "KickCore", "KickCLI", .product(name: "ArgumentParser", package: "swift-argument-parser")]),
        .executableTarget(name: "Compress", dependencies: [
            "KickCore", "KickCLI", .product(name: "ArgumentParser", package: "swift-argument-parser")]),
        .executableTarget(name: "Infer", dependencies: [
            "KickCore", "KickCLI", .product(name: "ArgumentParser", package: "swift-argument-parser")]),
        .executableTarget(name: "Report", dependencies: [
            "KickCore", "KickCLI", .product(name: "ArgumentParser", package: "swift-argument-parser")]),
        // Helpers every test target shares (golden-data paths, temp folders).
        .target(name: "KickTestSupport", dependencies: ["KickCore"], path: "Tests/Support"),
        .testTarget(name: "TensorTests", dependencies: ["KickCore", "KickTestSupport"]),
        .testTarget(name: "FormatsTests", dependencies: ["KickCore", "KickTestSupport"]),
        .testTarget(name: "TokenizerTests", dependencies: ["KickCore", "KickTestSupport"]),
        .testTarget(name: "ModelTests", dependencies: ["KickCore", "KickTestSupport"]),
        .testTarget(name: "CompressionTests", dependencies: ["KickCore", "KickTestSupport"]),
        .testTarget(name: "TasksTests", dependencies: ["KickCore", "KickTestSupport"]),
        .testTarget(name: "InferTests", dependencies: ["KickCore", "KickTestSupport"]),
        .testTarget(name: "HostileInputTests", dependencies: ["KickCore", "KickTestSupport"]),
        .testTarget(name: "PropertyTests", dependencies: [
            "KickCore", "KickTestSupport", .product(name: "PropertyBased", package: "swift-property-based")]),
    ]
)
