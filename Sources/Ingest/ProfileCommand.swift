import ArgumentParser
import Foundation
import KickCLI
import KickCore

/// What make needs of a profile, read by the same code every stage reads it
/// with: a malformed profile stops make with this error, not an empty grid.
struct ProfileField: ParsableCommand {
    enum Field: String, ExpressibleByArgument, CaseIterable {
        case configs, tasks, calibName = "calib-name"
    }
    static let configuration = CommandConfiguration(commandName: "profile",
        abstract: "Print one field of a profile for make: its configurations, the task list, or the calibration file's name.")
    @Option(name: .long, help: "smoke, quick, full, …") var profile = "quick"
    @Option(name: .long, help: "configs, tasks or calib-name.") var field: Field

    func run() throws {
        let p = try Profile.load(profile, root: try ProjectRoot.find())
        switch field {
        case .configs: print(p.configs.joined(separator: " "))
        case .tasks: print(TaskRegistry.standard.names.joined(separator: " "))
        case .calibName: print(CalibrationManifest.fileName(corpus: p.calib.corpus, samples: p.calib.samples, length: p.calib.length, seed: p.calib.seed))
        }
    }
}
