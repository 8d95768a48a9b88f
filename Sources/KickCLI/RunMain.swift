import ArgumentParser
import Foundation
import KickCore
import Logging

/// The one entry point every kick executable's main calls: parses the
/// command line, runs the command, and turns every failure into
/// `<tool>: error: <file>: <problem>` on stderr with a non-zero exit code.
/// Help and version requests still print as ArgumentParser renders them.
public func runMain<Command: ParsableCommand>(_ type: Command.Type, tool: String) -> Never {
    LoggingSystem.bootstrap { _ in ToolLogHandler(tool: tool) }
    do {
        var cmd = try type.parseAsRoot()
        try cmd.run()
        exit(0)
    } catch {
        let code = type.exitCode(for: error)
        if let e = error as? KickError {
            report(tool, e.description)
            exit(e.exitCode)
        }
        if code == .success {
            // --help, --version: ArgumentParser's own text on stdout
            type.exit(withError: error)
        }
        if error is CocoaError || error is POSIXError || (error as NSError).domain == NSCocoaErrorDomain {
            report(tool, KickError(describing: error).description)
            exit(1)
        }
        let text = type.fullMessage(for: error)
        // A usage error: the message, then the usage line ArgumentParser adds.
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        let first = lines.first.map { $0.hasPrefix("Error: ") ? String($0.dropFirst(7)) : $0 } ?? ""
        report(tool, first)
        let rest = lines.dropFirst().joined(separator: "\n")
        if !rest.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty {
            FileHandle.standardError.write(Data((rest + "\n").utf8))
        }
        exit(code.rawValue == 0 ? 1 : code.rawValue)
    }
}

private func report(_ tool: String, _ message: String) {
    FileHandle.standardError.write(Data("\(tool): error: \(KickError.printable(message))\n".utf8))
}

/// `--wait`, for every command that takes an output lock.
public struct LockOptions: ParsableArguments {
    @Flag(name: .long, help: "If another run holds the same output, wait for it instead of failing.")
    public var wait = false
    public init() {}
}

// Enum flags parse through ArgumentParser, so `--help` lists their values
// and a wrong one is a usage error naming them.
extension CompressionSpec.Method: ExpressibleByArgument {}

/// `--tasks a,b`: a comma-separated subset of kick's tasks, in the order given.
public struct TaskSelection: ExpressibleByArgument, Sendable {
    public var tasks: [String]
    public init?(argument: String) {
        let parts = argument.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
        guard !parts.isEmpty, parts.allSatisfy(TaskRegistry.standard.names.contains) else { return nil }
        tasks = parts
    }
    public static var allValueStrings: [String] { TaskRegistry.standard.names }
    public var defaultValueDescription: String { tasks.joined(separator: ",") }
}
