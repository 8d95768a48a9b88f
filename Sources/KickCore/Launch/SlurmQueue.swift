import Foundation

/// A job's state as Slurm reports it while the job is known to it.
public struct SlurmJobState: Equatable, Sendable {
    /// PENDING, RUNNING, COMPLETING, CONFIGURING, … (squeue's `%T`), or a
    /// final state (COMPLETED, FAILED, CANCELLED, TIMEOUT, OUT_OF_MEMORY, …)
    /// from `scontrol show job` while Slurm still remembers the job.
    public var state: String
    /// squeue's `%r`: why a pending job waits (Dependency, Resources, …).
    public var reason: String

    public init(state: String, reason: String = "") { self.state = state; self.reason = reason }

    /// Still in the queue: it will run, or is running.
    public var isLive: Bool {
        ["PENDING", "RUNNING", "CONFIGURING", "COMPLETING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "RESIZING", "SUSPENDED", "STOPPED",
         "SIGNALING", "STAGE_OUT", "RESV_DEL_HOLD", "SPECIAL_EXIT"].contains(state)
    }
    public var isRunning: Bool { ["RUNNING", "CONFIGURING", "COMPLETING", "SIGNALING", "STAGE_OUT"].contains(state) }
}

/// The three Slurm commands the launcher uses. The real one runs the
/// binaries; tests of the launcher's logic give it a queue of their own.
public protocol SlurmQueue {
    /// Live jobs of this user, by id.
    func liveJobs() throws -> [String: SlurmJobState]
    /// A finished job's final state, while Slurm remembers it.
    func finalState(of id: String) -> String?
    /// Submits a script; returns the job id.
    func submit(script: String, flags: [String]) throws -> String
}

/// `squeue`, `scontrol` and `sbatch` from PATH (or `SLURM_BIN`'s folder).
public struct SlurmCommands: SlurmQueue {
    public let binDir: String?

    public init(environment: [String: String] = ProcessInfo.processInfo.environment) {
        binDir = environment["SLURM_BIN"].flatMap { $0.isEmpty ? nil : $0 }
    }

    public func liveJobs() throws -> [String: SlurmJobState] {
        let r = try run("squeue", ["--me", "--noheader", "--format=%i|%T|%r"])
        guard r.status == 0 else { throw KickError("squeue failed (exit \(r.status)): \(r.err.trimmingCharacters(in: .whitespacesAndNewlines))", code: .io) }
        return Self.parseQueue(r.out)
    }

    /// squeue's `%i|%T|%r` lines; an array's pending tasks (`123_[1-4]`)
    /// count under their array id.
    public static func parseQueue(_ text: String) -> [String: SlurmJobState] {
        var out: [String: SlurmJobState] = [:]
        for line in text.split(separator: "\n") {
            let f = line.split(separator: "|", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
            guard f.count >= 2, !f[0].isEmpty else { continue }
            let id = f[0].split(separator: "_").first.map(String.init) ?? f[0]
            out[id] = SlurmJobState(state: f[1], reason: f.count > 2 ? f[2] : "")
        }
        return out
    }

    public func finalState(of id: String) -> String? {
        guard let r = try? run("scontrol", ["--oneliner", "show", "job", id]), r.status == 0 else { return nil }
        return Self.parseJobState(r.out)
    }

    /// `JobState=CANCELLED` (and `Reason=`) out of `scontrol -o show job`.
    public static func parseJobState(_ text: String) -> String? {
        for field in text.split(whereSeparator: { $0 == " " || $0 == "\n" }) where field.hasPrefix("JobState=") {
            return String(field.dropFirst("JobState=".count))
        }
        return nil
    }

    public func submit(script: String, flags: [String]) throws -> String {
        let r = try run("sbatch", ["--parsable"] + flags + [script])
        guard r.status == 0 else {
            throw KickError("sbatch refused the job (exit \(r.status)): \(r.err.trimmingCharacters(in: .whitespacesAndNewlines))", file: script, code: .refused)
        }
        // --parsable prints "id" or "id;cluster"
        guard let id = r.out.split(whereSeparator: { $0 == ";" || $0 == "\n" }).first.map(String.init), Int(id) != nil else {
            throw KickError("sbatch printed no job id: '\(KickError.quote(r.out))'", file: script, code: .malformed)
        }
        return id
    }

    func run(_ tool: String, _ args: [String]) throws -> (status: Int32, out: String, err: String) {
        let p = Process()
        if let binDir { p.executableURL = URL(fileURLWithPath: "\(binDir)/\(tool)"); p.arguments = args }
        else { p.executableURL = URL(fileURLWithPath: "/usr/bin/env"); p.arguments = [tool] + args }
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        do { try p.run() } catch { throw KickError("cannot run \(tool): \(KickError.reason(of: error)); is Slurm installed here?", code: .notFound) }
        // read before waiting, or a full pipe would stall the tool (its stderr is a line or two)
        let o = out.fileHandleForReading.readDataToEndOfFile()
        let e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        if p.terminationStatus == 127 { throw KickError("cannot run \(tool): not found; is Slurm installed here (or SLURM_BIN set)?", code: .notFound) }
        return (p.terminationStatus, String(decoding: o, as: UTF8.self), String(decoding: e, as: UTF8.self))
    }
}
