import ArgumentParser
import Foundation
import KickCLI
import KickCore

struct Archive: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Pack configuration folders into one .tar.zst with a sha256 manifest.")
    @Option(name: .long, help: "Output .tar.zst file.") var out: String
    @Argument(help: "Configuration folders (checkpoint, manifests, logs, scores).") var folders: [String]
    @Option(name: .long, help: "Name members by their path relative to this folder (default: by folder name).") var base: String?
    @OptionGroup var lock: LockOptions

    func validate() throws { guard !folders.isEmpty else { throw ValidationError("name at least one folder") } }

    func run() throws {
        let held = try OutputLock(file: out, wait: lock.wait)
        defer { withExtendedLifetime(held) {} }
        let m = try CheckpointArchive.create(out, folders: folders, relativeTo: base)
        try printJSON(["out": out, "members": m.members.count, "bytes": m.members.reduce(0) { $0 + $1.size }])
    }
}

struct Extract: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Unpack an archive after verifying every member's sha256; refuses paths that escape the target.")
    @Argument(help: "The .tar.zst file.") var archive: String
    @Option(name: .long, help: "Target folder.") var into: String
    @Option(name: .long, help: "Most bytes the archive may unpack to (its manifest's declared total).")
    var maxBytes = CheckpointArchive.defaultMaxBytes
    @OptionGroup var lock: LockOptions

    func run() throws {
        let held = try OutputLock(folder: into, wait: lock.wait)
        defer { withExtendedLifetime(held) {} }
        let m = try CheckpointArchive.extract(archive, into: into, maxBytes: maxBytes)
        try printJSON(["into": into, "members": m.members.count, "verified": true])
    }
}
