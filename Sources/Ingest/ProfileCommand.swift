import ArgumentParser
import Foundation
import KickCLI
import KickCore

/// What make needs of a profile, read by the same code every stage reads it
/// with: a malformed profile stops make with this error, not an empty grid.
struct ProfileField: ParsableCommand {
    enum Field: String, ExpressibleByArgument, CaseIterable {
        case configs, tasks, calibName = "calib-name", shards
    }
    static let configuration = CommandConfiguration(commandName: "profile",
        abstract: "Print one field of a profile for make: its configurations, the task list, or the calibration file's name.")
    @Option(name: .long, help: "smoke, quick, full, …") var profile = "quick"
    @Option(name: .long, help: "configs, tasks, calib-name or shards (task:N for each task).") var field: Field

    func run() throws {
        let p = try Profile.load(profile, root: try ProjectRoot.find())
        switch field {
        case .configs: print(p.configs.joined(separator: " "))
        case .tasks: print(TaskRegistry.standard.names.joined(separator: " "))
        case .shards: print(TaskRegistry.standard.names.map { "\($0):\(p.size($0).shards ?? 1)" }.joined(separator: " "))
        case .calibName: print(CalibrationManifest.fileName(corpus: p.calib.corpus, samples: p.calib.samples, length: p.calib.length, seed: p.calib.seed))
        }
    }
}
