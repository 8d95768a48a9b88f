import Foundation

/// What a stage's job is, for its resources and its name.
public enum SlurmJobKind: String, Codable, CaseIterable, Sendable {
    case ingest, compress, infer, merge, report
}

/// What one job asks Slurm for (`sbatch --cpus-per-task --mem --time
/// --partition --account`, then any extra flags).
public struct SlurmResources: Codable, Equatable, Sendable {
    public var cpus: Int
    /// sbatch's `--mem`: a number with an optional K, M, G or T.
    public var mem: String
    /// sbatch's `--time`: minutes, `H:MM:SS`, `D-HH`, `D-HH:MM`, …
    public var time: String
    public var partition: String?
    public var account: String?
    public var args: [String]?

    public init(cpus: Int, mem: String, time: String, partition: String? = nil, account: String? = nil, args: [String]? = nil) {
        self.cpus = cpus; self.mem = mem; self.time = time
        self.partition = partition; self.account = account; self.args = args
    }

    /// For a profile with no `slurm` section: sized for a 7B-13B model held
    /// as f16 (docs: README, "On a Slurm cluster").
    public static func defaults(for kind: SlurmJobKind) -> SlurmResources {
        switch kind {
        case .ingest: SlurmResources(cpus: 2, mem: "8G", time: "2:00:00")
        case .compress: SlurmResources(cpus: 8, mem: "32G", time: "24:00:00")
        case .infer: SlurmResources(cpus: 8, mem: "40G", time: "24:00:00")
        case .merge, .report: SlurmResources(cpus: 1, mem: "4G", time: "1:00:00")
        }
    }

    /// `cpus=8,mem=64G,time=4:00:00,partition=long,account=lab` (commas or
    /// spaces between): what a make variable overrides.
    public mutating func apply(overrides: String) throws {
        for part in overrides.split(whereSeparator: { $0 == "," || $0 == " " }) {
            guard let eq = part.firstIndex(of: "=") else {
                throw KickError("resource '\(KickError.quote(String(part)))' is not key=value (cpus=, mem=, time=, partition=, account=)", code: .invalidValue)
            }
            let k = String(part[..<eq]), v = String(part[part.index(after: eq)...])
            switch k {
            case "cpus":
                guard let n = Int(v) else { throw KickError("cpus=\(KickError.quote(v)) is not a whole number", code: .invalidValue) }
                cpus = n
            case "mem": mem = v
            case "time": time = v
            case "partition": partition = v
            case "account": account = v
            default: throw KickError("unknown resource '\(KickError.quote(k))' (cpus, mem, time, partition, account)", code: .invalidValue)
            }
        }
        if let p = problem() { throw KickError(p, code: .invalidValue) }
    }

    /// What sbatch would refuse, said before anything is submitted.
    public func problem() -> String? {
        if cpus < 1 { return "cpus is \(cpus); it must be at least 1" }
        if mem.wholeMatch(of: /[0-9]+[KMGTkmgt]?/) == nil { return "mem '\(KickError.quote(mem))' is not a size such as 8G or 16000M" }
        if time.wholeMatch(of: /[0-9]+(-[0-9]+)?(:[0-9]+){0,2}|UNLIMITED|INFINITE/) == nil {
            return "time '\(KickError.quote(time))' is not a Slurm time such as 90, 2:00:00 or 1-12"
        }
        return nil
    }

    /// sbatch's flags for these resources.
    public var sbatchFlags: [String] {
        var f = ["--cpus-per-task=\(cpus)", "--mem=\(mem)", "--time=\(time)"]
        if let partition { f.append("--partition=\(partition)") }
        if let account { f.append("--account=\(account)") }
        return f + (args ?? [])
    }
}

/// `<work>/slurm/jobs/<target's path under work>.job`
/// (`kick.slurm-job/1`): the job that makes a target, written when it is
/// submitted. Make's targets are the artifacts; these records let a later
/// submission depend on a queued job (`afterok`), and let a rerun tell a
/// queued target from a failed one.
public struct SlurmJobRecord: Codable, Equatable, Sendable {
    public static let schemaName = "kick.slurm-job/1"
    public var schema = Self.schemaName
    public var id: String
    public var name: String
    public var kind: SlurmJobKind
    public var targets: [String]
    public var command: String
    public var script: String
    /// `%j` already replaced.
    public var stdout: String
    public var stderr: String
    /// The job's exit status, written by its script when the command ends
    /// (absent when Slurm killed it: cancelled, out of time or memory).
    public var exitFile: String
    public var dependencies: [String]
    public var resources: SlurmResources
    /// Seconds since 1970.
    public var submitted: Double

    public static func read(_ path: String) throws -> SlurmJobRecord? {
        guard let d = try RegularFile.contents(atPath: path) else { return nil }
        let r: SlurmJobRecord
        do { r = try JSONDecoder().decode(SlurmJobRecord.self, from: d) } catch {
            throw KickError("not a job record: \(KickError.decoding(error))", file: path, code: .malformed)
        }
        guard r.schema == schemaName else { throw KickError("schema '\(KickError.quote(r.schema))' is not \(schemaName)", file: path, code: .malformed) }
        return r
    }

    /// The exit status the script recorded, if it ran to the end.
    public func exitStatus() -> Int32? {
        guard let d = try? RegularFile.contents(atPath: exitFile) else { return nil }
        return Int32(String(decoding: d, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines))
    }

    /// The last non-empty line the job wrote to stderr.
    public func lastErrorLine() -> String? {
        guard let d = try? RegularFile.contents(atPath: stderr) else { return nil }
        // progress lines are rewritten with \r; the last state of each counts
        let lines = String(decoding: d.suffix(64 << 10), as: UTF8.self).split(whereSeparator: { $0 == "\n" || $0 == "\r" })
        return lines.last { !$0.trimmingCharacters(in: .whitespaces).isEmpty }.map(String.init)
    }
}

/// Where the launcher keeps its files under a work folder.
public struct SlurmLayout: Sendable {
    public let work: String
    public init(work: String) { self.work = work.hasSuffix("/") && work.count > 1 ? String(work.dropLast()) : work }

    public var root: String { work + "/slurm" }
    public var jobs: String { root + "/jobs" }
    public var logs: String { root + "/logs" }
    public var scripts: String { root + "/scripts" }

    /// The record of the job making `target`, or nil for a path outside the
    /// work folder (a binary, a profile): no job makes it.
    public func jobFile(for target: String) -> String? {
        guard let rel = relative(target) else { return nil }
        return "\(jobs)/\(rel).job"
    }

    func relative(_ path: String) -> String? {
        let p = path.hasPrefix("./") ? String(path.dropFirst(2)) : path
        guard p.hasPrefix(work + "/") else { return nil }
        let rel = String(p.dropFirst(work.count + 1))
        return rel.isEmpty || rel.split(separator: "/").contains("..") ? nil : rel
    }

    /// Every job record under the work folder, in job-file order.
    public func allRecords() throws -> [SlurmJobRecord] {
        guard let e = FileManager.default.enumerator(atPath: jobs) else { return [] }
        var files: [String] = []
        while let rel = e.nextObject() as? String {
            if rel.hasSuffix(".job") { files.append("\(jobs)/\(rel)") }  // folders are listed too
        }
        return try files.sorted().compactMap { try SlurmJobRecord.read($0) }
    }
}

/// The batch script of one job: the stage's command, as make would run it
/// locally, from the same folder, with `OPENBLAS_NUM_THREADS` set to the
/// job's CPUs and its exit status recorded.
public enum SlurmBatchScript {
    /// `exitPattern` holds `%j`, the job id, as sbatch's `--output` does.
    public static func render(command: String, directory: String, exitPattern: String, environment: [(String, String)]) -> String {
        var s = "#!/bin/bash\n# written by kick-infer submit; sbatch's flags are in the job record beside the target\n"
        s += "set -o pipefail\n"
        s += "cd \(shellQuoted(directory)) || exit 1\n"
        for (k, v) in environment { s += "export \(k)=\(shellQuoted(v))\n" }
        s += "export OPENBLAS_NUM_THREADS=${SLURM_CPUS_PER_TASK:-1}\n"
        s += "echo \"kick: job $SLURM_JOB_ID on $(hostname), $OPENBLAS_NUM_THREADS threads\" >&2\n"
        s += "( \(command)\n)\nrc=$?\n"
        // written to a temporary and renamed: a reader never sees half a number
        let parts = exitPattern.components(separatedBy: "%j")
        let exitPath = parts.map(shellQuoted).joined(separator: "\"$SLURM_JOB_ID\"")
        s += "f=\(exitPath)\necho $rc > \"$f.tmp\" && mv -f \"$f.tmp\" \"$f\"\n"
        s += "exit $rc\n"
        return s
    }

    /// A string bash reads back as itself.
    public static func shellQuoted(_ s: String) -> String {
        "'" + s.replacingOccurrences(of: "'", with: "'\\''") + "'"
    }
}
