import Foundation

/// Every failure kick reports to a user: what went wrong and, where there is
/// one, the file it concerns, so a message always names the file and the problem.
public struct KickError: Error, CustomStringConvertible, Sendable {
    /// What kind of failure, for callers and tests that act on it rather
    /// than on the wording.
    public enum Code: String, Sendable {
        case general
        /// a file, model or member that should exist does not
        case notFound
        /// bytes that are not what their format says (a corrupt or hostile file)
        case malformed
        /// a value that is out of range or inconsistent (a config field, a flag)
        case invalidValue
        /// another run holds the output
        case inUse
        /// kick will not do it: write through a link, replace a device, exceed a limit
        case refused
        /// the system failed: read-only, full, permission
        case io
    }

    public let file: String?
    public let message: String
    public let code: Code
    /// The underlying error, where one caused this.
    public let cause: (any Error & Sendable)?
    /// The process exit status an executable ends with for this error.
    public let exitCode: Int32

    public init(_ message: String, file: String? = nil, code: Code = .general, cause: (any Error & Sendable)? = nil, exitCode: Int32 = 1) {
        self.message = message
        self.file = file
        self.code = code
        self.cause = cause
        self.exitCode = exitCode
    }

    /// A Foundation or POSIX error as kick words it: the file it names and
    /// the system's reason ("read-only file system", "no space left on
    /// device"), never Foundation's raw domain text.
    public init(describing error: Error, file: String? = nil) {
        if let k = error as? KickError { self = k; return }
        let ns = error as NSError
        let path = file ?? (ns.userInfo[NSFilePathErrorKey] as? String) ?? (ns.userInfo[NSURLErrorKey] as? URL)?.path
        self.init(Self.reason(of: error), file: path, code: .io, cause: ns)
    }

    /// The errno behind an error, where Foundation recorded one.
    static func errnoCode(of error: Error) -> Int32? {
        if let p = error as? POSIXError { return p.code.rawValue }
        let ns = error as NSError
        if ns.domain == NSPOSIXErrorDomain { return Int32(ns.code) }
        if let u = ns.userInfo[NSUnderlyingErrorKey] as? Error { return errnoCode(of: u) }
        return nil
    }

    static func reason(of error: Error) -> String {
        if let e = errnoCode(of: error) { return String(cString: strerror(e)).lowercasedFirst }
        let ns = error as NSError
        if ns.domain == NSCocoaErrorDomain {
            switch ns.code {
            case CocoaError.fileWriteVolumeReadOnly.rawValue: return "read-only file system"
            case CocoaError.fileWriteOutOfSpace.rawValue: return "no space left on device"
            case CocoaError.fileWriteInvalidFileName.rawValue: return "invalid or too long file name"
            case CocoaError.fileWriteNoPermission.rawValue, CocoaError.fileReadNoPermission.rawValue: return "permission denied"
            case CocoaError.fileNoSuchFile.rawValue, CocoaError.fileReadNoSuchFile.rawValue: return "no such file or directory"
            case CocoaError.fileWriteFileExists.rawValue: return "file exists"
            case CocoaError.fileReadCorruptFile.rawValue: return "corrupt or unreadable file"
            default: break
            }
        }
        return "\(ns.localizedDescription)"
    }

    public var description: String {
        let text = file.map { "\(Self.quote($0, limit: 400)): \(message)" } ?? message
        return Self.printable(text)
    }

    /// A JSON decoding failure in a few words: which field, and what is
    /// wrong with it ("missing field 'config.hidden_size'"), or not JSON at all.
    public static func decoding(_ error: Error) -> String {
        func path(_ c: [CodingKey]) -> String { c.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".") }
        guard let e = error as? DecodingError else { return quote(String(describing: error)) }
        switch e {
        case .keyNotFound(let k, let c): return "missing field '\(quote(path(c.codingPath + [k])))'"
        case .valueNotFound(_, let c): return "field '\(quote(path(c.codingPath)))' is null"
        case .typeMismatch(let t, let c): return "field '\(quote(path(c.codingPath)))' is not a \(t)"
        case .dataCorrupted(let c):
            return c.codingPath.isEmpty ? "not valid JSON" : "field '\(quote(path(c.codingPath)))' is invalid: \(quote(c.debugDescription))"
        @unknown default: return quote(String(describing: error))
        }
    }

    /// Text quoted from a file inside a message: non-printable bytes
    /// escaped, and capped, so a corrupt length cannot flood a terminal.
    public static func quote(_ s: some StringProtocol, limit: Int = 200) -> String {
        var out = ""
        var n = 0
        for u in s.unicodeScalars {
            if n >= limit { out += "…(\(s.utf8.count) bytes)"; break }
            out += escaped(u)
            n += u.utf8.count
        }
        return out
    }

    /// A whole message made safe for a terminal: control characters other
    /// than newline escaped, and at most a few kilobytes.
    public static func printable(_ s: String) -> String {
        var out = ""
        for u in s.unicodeScalars {
            if out.utf8.count > 4000 { out += "…"; break }
            out += u == "\n" ? "\n" : escaped(u)
        }
        return out
    }

    private static func escaped(_ u: Unicode.Scalar) -> String {
        switch u.value {
        case 0x20..<0x7F: return String(u)
        case 0x09: return "\\t"
        case 0x0A: return "\\n"
        case 0x0D: return "\\r"
        case 0..<0x20, 0x7F..<0xA0, 0xFFFD: return u.value == 0xFFFD ? "\\ufffd" : String(format: "\\x%02x", u.value)
        default: return u.properties.isWhitespace || u.properties.generalCategory == .format ? String(format: "\\u{%x}", u.value) : String(u)
        }
    }
}

extension KickError: LocalizedError {
    public var errorDescription: String? { description }
}

extension String {
    var lowercasedFirst: String { isEmpty ? self : prefix(1).lowercased() + dropFirst() }
}
