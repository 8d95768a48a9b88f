import ArgumentParser
import KickCore

/// kick-report: not built yet (its issue is open); it says so rather than pretend.
struct KickReport: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "kick-report",
        abstract: "kick-report is not implemented yet.")
    func run() throws {
        throw ValidationError("kick-report is not implemented yet")
    }
}

KickReport.main()
