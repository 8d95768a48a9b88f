import Foundation

/// Prints one JSON object on a line, keys sorted: what every kick command
/// writes to stdout for scripts to read.
public func printJSON(_ obj: Any) {
    let d = try! JSONSerialization.data(withJSONObject: obj, options: [.sortedKeys, .withoutEscapingSlashes])
    print(String(decoding: d, as: UTF8.self))
}
