import Foundation

/// Every failure kick reports to a user: what went wrong and, where there is
/// one, the file it concerns, so a message always names the file and the problem.
public struct KickError: Error, CustomStringConvertible, Sendable {
    public let file: String?
    public let message: String

    public init(_ message: String, file: String? = nil) {
        self.message = message
        self.file = file
    }

    public var description: String {
        if let file { return "\(file): \(message)" }
        return message
    }
}

extension KickError: LocalizedError {
    public var errorDescription: String? { description }
}
