import Foundation
import KickCore

/// The reference outputs in ../shared/golden (KICK_GOLDEN overrides).
public enum Golden {
    public static var dir: String {
        if let d = ProcessInfo.processInfo.environment["KICK_GOLDEN"] { return d }
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        return root.deletingLastPathComponent().appendingPathComponent("shared/golden").path
    }

    public static func json(_ rel: String) throws -> Any {
        try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir + "/" + rel)))
    }
}

/// A fresh temporary folder for one test.
public func tempDir(_ name: String) -> String {
    let d = NSTemporaryDirectory() + "kick-tests-\(name)-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
    try? FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
    return d
}

/// ‖a − b‖ / ‖b‖ in double.
public func relL2(_ a: [Float], _ b: [Float]) -> Double {
    var d = 0.0, n = 0.0
    for i in a.indices { d += Double(a[i] - b[i]) * Double(a[i] - b[i]); n += Double(b[i]) * Double(b[i]) }
    return (d / n).squareRoot()
}
