import Foundation

/// Prints one JSON object on a line, keys sorted: what every kick command
/// writes to stdout for scripts to read.
public func printJSON(_ obj: Any) {
    let d = try! JSONSerialization.data(withJSONObject: obj, options: [.sortedKeys, .withoutEscapingSlashes])
    print(String(decoding: d, as: UTF8.self))
}

/// A JSON object file as a dictionary; nil when it is absent or not an object
/// (callers treat that as "no previous manifest").
public func readJSONObject(atPath path: String) -> [String: Any]? {
    guard let d = FileManager.default.contents(atPath: path) else { return nil }
    return (try? JSONSerialization.jsonObject(with: d)) as? [String: Any]
}

extension AtomicFile {
    /// A manifest: pretty-printed, keys sorted, written atomically.
    public static func writeJSON(_ object: Any, to path: String) throws {
        try write(try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]), to: path)
    }
}
