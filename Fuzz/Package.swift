// swift-tools-version:6.0
import PackageDescription
let package = Package(
    name: "kick-fuzz",
    dependencies: [.package(name: "kick", path: "..")],
    targets: [
        .executableTarget(name: "kick-fuzz", dependencies: [.product(name: "KickCore", package: "kick")]),
    ]
)
