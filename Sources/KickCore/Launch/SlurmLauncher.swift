import Foundation

/// Submits make's recipes as Slurm jobs and reads back where they stand.
/// Make still decides what is stale: it calls `submit` for each target it
/// would have run, in dependency order, so a prerequisite's job is already
/// recorded when a dependent is submitted with `afterok` on it.
public struct SlurmLauncher {
    public let layout: SlurmLayout
    public let queue: any SlurmQueue
    /// Where jobs start (make's folder: the repository root).
    public let directory: String

    public init(work: String, queue: any SlurmQueue, directory: String = FileManager.default.currentDirectoryPath) {
        layout = SlurmLayout(work: work)
        self.queue = queue
        self.directory = directory
    }

    public struct Request: Sendable {
        public var kind: SlurmJobKind
        public var name: String
        public var targets: [String]
        /// make's prerequisites: those a queued job makes become `afterok`.
        public var after: [String]
        public var command: String
        public var resources: SlurmResources
        /// Exported into the job (`KICK_CACHE`, …), whatever sbatch's export policy.
        public var environment: [(String, String)]

        public init(kind: SlurmJobKind, name: String, targets: [String], after: [String], command: String, resources: SlurmResources,
                    environment: [(String, String)] = []) {
            self.kind = kind; self.name = name; self.targets = targets; self.after = after
            self.command = command; self.resources = resources; self.environment = environment
        }
    }

    public enum Outcome: Equatable, Sendable {
        case submitted(id: String, after: [String])
        /// A job for the target is still queued or running: nothing new.
        case alreadyQueued(id: String, state: String)
    }

    public func submit(_ req: Request) throws -> Outcome {
        guard let first = req.targets.first else { throw KickError("a job needs a target", code: .invalidValue) }
        let jobFiles = try req.targets.map { t in
            guard let f = layout.jobFile(for: t) else {
                throw KickError("the target is not under the work folder \(layout.work)", file: t, code: .invalidValue)
            }
            return f
        }
        if let p = req.resources.problem() { throw KickError("\(req.kind.rawValue) job: \(p)", code: .invalidValue) }
        let live = try queue.liveJobs()
        // a rerun while the job is still queued (or running) submits nothing
        if let r = try SlurmJobRecord.read(jobFiles[0]), let s = live[r.id] { return .alreadyQueued(id: r.id, state: s.state) }

        var deps: [String] = []
        for p in req.after {
            if let f = layout.jobFile(for: p), let r = try SlurmJobRecord.read(f), live[r.id] != nil {
                if !deps.contains(r.id) { deps.append(r.id) }
                continue
            }
            guard FileManager.default.fileExists(atPath: p) else {
                throw KickError("\(first) needs it, and it does not exist and no queued job makes it", file: p, code: .notFound)
            }
        }

        try FileManager.default.createDirectory(atPath: layout.logs, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: layout.scripts, withIntermediateDirectories: true)
        let base = "\(layout.logs)/\(req.name).%j"
        let script = "\(layout.scripts)/\(req.name).sh"
        try AtomicFile.write(SlurmBatchScript.render(command: req.command, directory: directory, exitPattern: base + ".exit",
                                                     environment: req.environment), to: script)
        var flags = ["--job-name=\(req.name)", "--output=\(absolute(base + ".out"))", "--error=\(absolute(base + ".err"))"]
        flags += req.resources.sbatchFlags
        if !deps.isEmpty {
            // a failed prerequisite cancels its dependents instead of leaving them pending forever
            flags += ["--dependency=afterok:" + deps.joined(separator: ":"), "--kill-on-invalid-dep=yes"]
        }
        let id = try queue.submit(script: absolute(script), flags: flags)
        let sub = { (s: String) in s.replacingOccurrences(of: "%j", with: id) }
        let record = SlurmJobRecord(id: id, name: req.name, kind: req.kind, targets: req.targets, command: req.command, script: script,
                                    stdout: sub(base + ".out"), stderr: sub(base + ".err"), exitFile: sub(base + ".exit"),
                                    dependencies: deps, resources: req.resources, submitted: Date().timeIntervalSince1970)
        for f in jobFiles { try AtomicFile.writeJSON(record, to: f) }
        return .submitted(id: id, after: deps)
    }

    func absolute(_ p: String) -> String { p.hasPrefix("/") ? p : "\(directory)/\(p)" }

    // MARK: where things stand

    /// A target's state, from its file, its latest job record and the queue.
    public enum TargetState: Equatable, Sendable {
        case done
        case running(id: String)
        case pending(id: String, reason: String)
        case failed(id: String, why: String, lastError: String?, log: String)
        case notSubmitted
    }

    public func state(of target: String, live: [String: SlurmJobState]) throws -> TargetState {
        let exists = FileManager.default.fileExists(atPath: target)
        guard let f = layout.jobFile(for: target), let r = try SlurmJobRecord.read(f) else { return exists ? .done : .notSubmitted }
        if let s = live[r.id] { return s.isRunning ? .running(id: r.id) : .pending(id: r.id, reason: s.reason) }
        if let why = failure(of: r, targetExists: exists) { return .failed(id: r.id, why: why, lastError: r.lastErrorLine(), log: r.stderr) }
        return exists ? .done : .notSubmitted
    }

    /// Why a job that left the queue failed, or nil if it succeeded (or an
    /// older run's file stands and nothing says the job failed).
    func failure(of r: SlurmJobRecord, targetExists: Bool) -> String? {
        let made = targetExists ? Self.modified(r.targets[0]) : nil
        if let rc = r.exitStatus() {
            if rc == 0 { return targetExists ? nil : "exit 0 but it did not write \(r.targets[0])" }
            // a later run (local, or by hand) made the target since
            if let m = made, let e = Self.modified(r.exitFile), m > e { return nil }
            return "exit \(rc)"
        }
        if let m = made, m >= r.submitted { return nil }
        let final = queue.finalState(of: r.id)
        return "ended without an exit status (\(final.map { "Slurm: \($0)" } ?? "cancelled, out of time or memory, or its node failed"))"
    }

    static func modified(_ path: String) -> Double? {
        (try? FileManager.default.attributesOfItem(atPath: path)[.modificationDate] as? Date)?.timeIntervalSince1970
    }

    /// Every recorded job still queued, and every one that failed.
    public func survey() throws -> (live: [(SlurmJobRecord, SlurmJobState)], failed: [(SlurmJobRecord, String)], done: Int) {
        let live = try queue.liveJobs()
        var l: [(SlurmJobRecord, SlurmJobState)] = [], failed: [(SlurmJobRecord, String)] = [], done = 0
        var seen = Set<String>()
        for r in try layout.allRecords() where seen.insert(r.id).inserted {
            if let s = live[r.id] { l.append((r, s)); continue }
            if let why = failure(of: r, targetExists: r.targets.allSatisfy { FileManager.default.fileExists(atPath: $0) }) { failed.append((r, why)) }
            else { done += 1 }
        }
        return (l, failed, done)
    }
}
