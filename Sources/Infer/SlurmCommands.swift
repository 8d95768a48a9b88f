import ArgumentParser
import Foundation
import KickCLI
import KickCore

extension SlurmJobKind: ExpressibleByArgument {}

/// make's recipe under LAUNCHER=slurm: the same command, submitted as a job.
struct Submit: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Submit one make recipe as a Slurm job (LAUNCHER=slurm): afterok on the queued jobs of its prerequisites; nothing if its job is still queued.")
    @Option(name: .long, help: "The grid's work folder (work/<MODEL>); job records go under <work>/slurm.") var work: String
    @Option(name: .long, help: "ingest, compress, infer, merge or report: which resources the job asks for.") var kind: SlurmJobKind
    @Option(name: .long, help: "The job's name (kick-<model>-<what>).") var name: String
    @Option(name: .long, help: "A file the job makes (repeat for several).") var target: [String] = []
    @Option(name: .long, help: "A prerequisite (make's $^): a queued job making it becomes an afterok dependency.") var after: [String] = []
    @Option(name: .long, help: "The shell command, as make would run it locally.") var command: String
    @Option(name: .long, help: "The profile whose `slurm` section sizes the job.") var profile = "quick"
    @Option(name: .long, help: ArgumentHelp("Overrides, e.g. cpus=16,mem=64G,time=4:00:00.", valueName: "key=value,…")) var resources = ""
    @Option(name: .long, help: "sbatch --partition for every job.") var partition = ""
    @Option(name: .long, help: "sbatch --account for every job.") var account = ""
    @Option(name: .customLong("sbatch-args"), help: "Extra sbatch flags, space-separated.") var sbatchArgs = ""

    func validate() throws {
        guard !target.isEmpty else { throw ValidationError("--target is required") }
        guard name.wholeMatch(of: /[A-Za-z0-9._+-]+/) != nil else { throw ValidationError("--name '\(name)' must be letters, digits and ._+-") }
    }

    func run() throws {
        let prof = try Profile.load(profile, root: try ProjectRoot.find())
        var res = prof.slurm?[kind.rawValue] ?? SlurmResources.defaults(for: kind)
        try res.apply(overrides: resources)
        if !partition.isEmpty { res.partition = partition }
        if !account.isEmpty { res.account = account }
        let extra = sbatchArgs.split(separator: " ").map(String.init)
        if !extra.isEmpty { res.args = (res.args ?? []) + extra }
        let env = ProcessInfo.processInfo.environment
        // written into the script; a secret (KICK_JUDGE_KEY) is not: it reaches
        // the job through sbatch's default --export=ALL, or the site's own way
        let carried = ["KICK_CACHE", "KICK_JUDGE_URL", "KICK_JUDGE_MODEL"].compactMap { k in env[k].map { (k, $0) } }
        let launcher = SlurmLauncher(work: work, queue: SlurmCommands())
        let req = SlurmLauncher.Request(kind: kind, name: name, targets: target, after: after, command: command, resources: res, environment: carried)
        switch try launcher.submit(req) {
        case .submitted(let id, let deps):
            print("submitted job \(id) \(name)\(deps.isEmpty ? "" : " after \(deps.joined(separator: ","))")")
        case .alreadyQueued(let id, let state):
            print("queued already: job \(id) \(name) (\(state.lowercased())); not submitted again")
        }
    }
}

/// `make all LAUNCHER=slurm` (WAIT=1): waits until the grid's jobs have
/// left the queue; exits 1 if any failed, with the status of each.
struct SlurmWait: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "slurm-wait",
        abstract: "Wait until no job of the grid is queued or running; exit non-zero if any failed, naming each with its log.")
    @Option(name: .long, help: "The grid's work folder (work/<MODEL>).") var work: String
    @Option(name: .long, help: "Seconds between looks at the queue.") var interval: Double = 15

    func validate() throws { guard interval > 0 else { throw ValidationError("--interval must be positive") } }

    func run() throws {
        let launcher = SlurmLauncher(work: work, queue: SlurmCommands())
        let t0 = Date()
        var last = ""
        while true {
            let s = try launcher.survey()
            let running = s.live.filter { $0.1.isRunning }.count
            let line = "\(running) running, \(s.live.count - running) pending, \(s.done) done, \(s.failed.count) failed"
            if s.live.isEmpty {
                FileHandle.standardError.write(Data("kick: slurm: \(line) after \(Int(Date().timeIntervalSince(t0))) s\n".utf8))
                guard s.failed.isEmpty else {
                    for (r, why) in s.failed {
                        FileHandle.standardError.write(Data("kick: slurm: job \(r.id) \(r.name) failed (\(why)): \(r.lastErrorLine() ?? "no stderr") — \(r.stderr)\n".utf8))
                    }
                    throw KickError("\(s.failed.count) job(s) failed; `make status` shows each, and rerunning the same make command resubmits only what is missing",
                                    file: SlurmLayout(work: work).root)
                }
                return
            }
            if line != last {
                FileHandle.standardError.write(Data("kick: slurm: \(line) (\(Int(Date().timeIntervalSince(t0))) s)\n".utf8))
                last = line
            }
            Thread.sleep(forTimeInterval: interval)
        }
    }
}

/// `make status`.
struct Status: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print every configuration × task of a grid: done, running (job), pending, failed (last stderr line and log), incomplete or not started.")
    @Option(name: .long, help: "The grid's work folder (work/<MODEL>).") var work: String
    @Option(name: .long, help: "The profile: its configurations and tasks.") var profile = "quick"
    @Option(name: .long, help: "Configurations, space- or comma-separated (default: the profile's).") var configs = ""
    @Option(name: .long, help: "Tasks, space- or comma-separated (default: all).") var tasks = ""
    @Option(name: .long, help: ArgumentHelp("Shards per task as make runs them, e.g. 'factoid:2 mmlu:16'.", valueName: "task:N …")) var shards = ""

    func run() throws {
        let prof = try Profile.load(profile, root: try ProjectRoot.find())
        let list = { (s: String) in s.split(whereSeparator: { $0 == " " || $0 == "," }).map(String.init) }
        let cs = configs.isEmpty ? prof.configs : list(configs)
        let ts = tasks.isEmpty ? TaskRegistry.standard.names : list(tasks)
        if let bad = ts.first(where: { !TaskRegistry.standard.contains($0) }) { throw ValidationError("unknown task '\(bad)'") }
        let launcher = SlurmLauncher(work: work, queue: SlurmCommands())
        // Slurm is asked only about a grid that was submitted to it
        let submitted = FileManager.default.fileExists(atPath: launcher.layout.jobs)
        let live = submitted ? try launcher.queue.liveJobs() : [:]
        let st = GridStatus(work: work, configs: cs, tasks: ts, shards: try GridStatus.parseShards(shards), launcher: launcher, live: live)
        let rows = try st.rows()
        print(GridStatus.render(rows), terminator: "")
        let failed = rows.filter(\.failed).count
        if failed > 0 { throw KickError("\(failed) of \(rows.count) rows failed", file: SlurmLayout(work: work).root) }
    }
}
