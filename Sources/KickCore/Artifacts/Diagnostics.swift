import Foundation
import Logging

/// kick's diagnostics (warnings, notes of what a stage did) go through
/// swift-log; an executable bootstraps the handler that prints them as
/// `<tool>: warning: …`. Progress lines stay ProgressLine's.
public enum Diagnostics {
    public static let log = Logger(label: "kick")

    public static func warning(_ message: String) { log.warning("\(message)") }
    public static func note(_ message: String) { log.info("\(message)") }
}

/// The handler every kick executable installs: one plain line on stderr
/// per message, the tool's name first, the level named from warning up.
/// `KICK_LOG_LEVEL` (debug, info, warning, …) sets how much is shown.
public struct ToolLogHandler: LogHandler {
    public let tool: String
    public var logLevel: Logger.Level
    public var metadata: Logger.Metadata = [:]
    public var metadataProvider: Logger.MetadataProvider?

    public init(tool: String) {
        self.tool = tool
        logLevel = ProcessInfo.processInfo.environment["KICK_LOG_LEVEL"].flatMap(Logger.Level.init(rawValue:)) ?? .info
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        let level = event.level >= .warning ? "\(event.level == .warning ? "warning" : "error"): " : ""
        FileHandle.standardError.write(Data("\(tool): \(level)\(KickError.printable(event.message.description))\n".utf8))
    }
}
