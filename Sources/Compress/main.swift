import ArgumentParser
import KickCore

/// kick-compress: not built yet (its issue is open); it says so rather than pretend.
struct KickCompress: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "kick-compress",
        abstract: "kick-compress is not implemented yet.")
    func run() throws {
        throw ValidationError("kick-compress is not implemented yet")
    }
}

KickCompress.main()
