import Foundation

/// JSON that kick writes. A number that is not finite (NaN, ±infinity: a
/// model whose weights hold NaN, a metric over nothing) has no JSON form; it
/// is written as `null` with a warning on stderr naming its key, never a trap.
public enum JSONOutput {
    public static func data(_ object: Any, options: JSONSerialization.WritingOptions = [.sortedKeys, .withoutEscapingSlashes],
                            file: String? = nil) throws -> Data {
        var bad: [String] = []
        let clean = sanitize(object, at: "", bad: &bad)
        for k in bad {
            let place = file.map { " in \($0)" } ?? ""
            Diagnostics.warning("\(k.isEmpty ? "a value" : k)\(place) is not a finite number; written as null")
        }
        do { return try JSONSerialization.data(withJSONObject: clean, options: options) } catch {
            throw KickError("cannot encode JSON: \(KickError.reason(of: error))", file: file)
        }
    }

    static func sanitize(_ v: Any, at key: String, bad: inout [String]) -> Any {
        switch v {
        case let d as Double where !d.isFinite: bad.append(key); return NSNull()
        case let f as Float where !f.isFinite: bad.append(key); return NSNull()
        case let s as String where s == nonFinite: bad.append(key); return NSNull()
        case let a as [Any]: return a.enumerated().map { sanitize($0.element, at: "\(key)[\($0.offset)]", bad: &bad) }
        case let o as [String: Any]:
            var out: [String: Any] = [:]
            for (k, x) in o { out[k] = sanitize(x, at: key.isEmpty ? k : "\(key).\(k)", bad: &bad) }
            return out
        default: return v
        }
    }
}

/// Reads kick's own Codable artifacts back: the schema is checked first (an
/// artifact of another version is refused, not misread), then the whole is
/// decoded typed, any missing or mistyped field an error naming the file.
public enum JSONArtifact {
    private struct SchemaProbe: Decodable { var schema: String? }

    public static func read<T: Decodable>(_ type: T.Type, path: String, schema: String, snakeCase: Bool = false,
                                          ifMissing: String = "missing", hint: String = "") throws -> T {
        guard let d = try RegularFile.contents(atPath: path) else { throw KickError(ifMissing, file: path, code: .notFound) }
        let dec = JSONDecoder()
        dec.nonConformingFloatDecodingStrategy = .convertFromString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        if let s = (try? dec.decode(SchemaProbe.self, from: d))?.schema, s != schema {
            throw KickError("schema \(KickError.quote(s)) is not \(schema)\(hint)", file: path, code: .malformed)
        }
        if snakeCase { dec.keyDecodingStrategy = .convertFromSnakeCase }
        do { return try dec.decode(T.self, from: d) } catch {
            throw KickError("not a \(schema) file: \(KickError.decoding(error))", file: path, code: .malformed)
        }
    }
}

extension JSONOutput {
    /// Stands for a non-finite number between encoding and sanitizing.
    static let nonFinite = "\u{1}kick-non-finite"

    /// A Codable value as JSON, a non-finite number written as `null` with a warning naming its key.
    public static func data<T: Encodable>(encoding value: T, file: String? = nil) throws -> Data {
        let enc = JSONEncoder()
        enc.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: nonFinite, negativeInfinity: nonFinite, nan: nonFinite)
        let object: Any
        do { object = try JSONSerialization.jsonObject(with: try enc.encode(value), options: .fragmentsAllowed) } catch {
            throw KickError("cannot encode JSON: \(KickError.reason(of: error))", file: file)
        }
        return try data(object, file: file)
    }
}

/// Prints one JSON object on a line, keys sorted: what every kick command
/// writes to stdout for scripts to read.
public func printJSON(_ obj: Any) throws {
    print(String(decoding: try JSONOutput.data(obj), as: UTF8.self))
}

/// Prints a Codable result on one line, keys sorted.
public func printJSON<T: Encodable>(_ value: T) throws {
    print(String(decoding: try JSONOutput.data(encoding: value), as: UTF8.self))
}

extension AtomicFile {
    /// A Codable artifact: pretty-printed, keys sorted, snake-case keys when
    /// asked, non-finite numbers as "nan"/"inf" strings, written atomically.
    public static func writeJSON<T: Encodable>(_ value: T, to path: String, snakeCase: Bool = false) throws {
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        if snakeCase { enc.keyEncodingStrategy = .convertToSnakeCase }
        enc.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        let d: Data
        do { d = try enc.encode(value) } catch { throw KickError("cannot encode: \(error)", file: path) }
        try write(d, to: path)
    }
}
