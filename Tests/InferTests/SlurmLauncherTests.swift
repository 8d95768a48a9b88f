import Foundation
@testable import KickCore
import KickTestSupport
import Testing

/// A queue the test drives: jobs are live until the test says they ended.
final class ScriptedQueue: SlurmQueue, @unchecked Sendable {
    var next = 100
    var live: [String: SlurmJobState] = [:]
    var final: [String: String] = [:]
    var submissions: [(script: String, flags: [String])] = []

    func liveJobs() throws -> [String: SlurmJobState] { live }
    func finalState(of id: String) -> String? { final[id] }
    func submit(script: String, flags: [String]) throws -> String {
        next += 1
        submissions.append((script, flags))
        live["\(next)"] = SlurmJobState(state: "PENDING", reason: "None")
        return "\(next)"
    }
}

@Suite struct SlurmLauncherTests {
    let res = SlurmResources(cpus: 1, mem: "2G", time: "0:30:00")

    func request(_ work: String, _ target: String, after: [String] = [], kind: SlurmJobKind = .infer) -> SlurmLauncher.Request {
        .init(kind: kind, name: "kick-t-\((target as NSString).lastPathComponent)", targets: [target], after: after, command: "true", resources: res)
    }

    @Test func aQueuedTargetIsNotSubmittedTwiceAndDependentsWaitForIt() throws {
        let dir = tempDir("slurm-submit"), work = dir + "/work/m"
        let q = ScriptedQueue()
        let l = SlurmLauncher(work: work, queue: q, directory: dir)
        let ckpt = work + "/compress/dense/model.kick", scores = work + "/infer/dense/factoid.scores.json"
        #expect(try l.submit(request(work, ckpt, kind: .compress)) == .submitted(id: "101", after: []))
        // make's rerun while the job waits: nothing new
        #expect(try l.submit(request(work, ckpt, kind: .compress)) == .alreadyQueued(id: "101", state: "PENDING"))
        // a dependent names the checkpoint: afterok on its job; a prerequisite
        // outside the work folder (a binary) that exists adds nothing
        #expect(try l.submit(request(work, scores, after: [ckpt, dir])) == .submitted(id: "102", after: ["101"]))
        #expect(q.submissions.count == 2)
        let flags = q.submissions[1].flags
        #expect(flags.contains("--dependency=afterok:101") && flags.contains("--kill-on-invalid-dep=yes"), "\(flags)")
        #expect(flags.contains("--cpus-per-task=1") && flags.contains("--mem=2G") && flags.contains("--time=0:30:00"))
        #expect(flags.contains("--job-name=kick-t-factoid.scores.json"))
        let rec = try #require(try SlurmJobRecord.read(work + "/slurm/jobs/infer/dense/factoid.scores.json.job"))
        #expect(rec.id == "102" && rec.dependencies == ["101"] && rec.exitFile.hasSuffix("kick-t-factoid.scores.json.102.exit"))
        #expect(try l.state(of: scores, live: q.live) == .pending(id: "102", reason: "None"))
    }

    @Test func aMissingPrerequisiteThatNoJobMakesIsAnErrorNamingIt() throws {
        let dir = tempDir("slurm-missing"), work = dir + "/work/m"
        let l = SlurmLauncher(work: work, queue: ScriptedQueue(), directory: dir)
        let e = #expect(throws: KickError.self) {
            try l.submit(request(work, work + "/infer/dense/mmlu.scores.json", after: [work + "/ingest/tasks/mmlu.jsonl"]))
        }
        #expect(e?.file == work + "/ingest/tasks/mmlu.jsonl" && e?.message.contains("no queued job makes it") == true, "\(String(describing: e))")
        let outside = #expect(throws: KickError.self) { try l.submit(request(work, "/elsewhere/x.json")) }
        #expect(outside?.message.contains("not under the work folder") == true)
    }

    @Test func failedCancelledAndDoneJobsAreToldApart() throws {
        let dir = tempDir("slurm-states"), work = dir + "/work/m"
        let q = ScriptedQueue()
        let l = SlurmLauncher(work: work, queue: q, directory: dir)
        let a = work + "/infer/dense/a.scores.json", b = work + "/infer/dense/b.scores.json", c = work + "/infer/dense/c.scores.json"
        for t in [a, b, c] { _ = try l.submit(request(work, t)) }
        q.live["101"] = SlurmJobState(state: "RUNNING")
        #expect(try l.state(of: a, live: q.live) == .running(id: "101"))
        // a: its command failed; b: cancelled (no exit status); c: done
        let ra = try #require(try SlurmJobRecord.read(work + "/slurm/jobs/infer/dense/a.scores.json.job"))
        try "1\n".write(toFile: ra.exitFile, atomically: true, encoding: .utf8)
        try "kick-infer: progress\rkick-infer: error: x.jsonl: line 3 is not a log record\n\n".write(toFile: ra.stderr, atomically: true, encoding: .utf8)
        q.live = [:]
        q.final["102"] = "CANCELLED"
        let rc = try #require(try SlurmJobRecord.read(work + "/slurm/jobs/infer/dense/c.scores.json.job"))
        try FileManager.default.createDirectory(atPath: work + "/infer/dense", withIntermediateDirectories: true)
        try "{}".write(toFile: c, atomically: true, encoding: .utf8)
        try "0\n".write(toFile: rc.exitFile, atomically: true, encoding: .utf8)
        #expect(try l.state(of: a, live: [:]) == .failed(id: "101", why: "exit 1", lastError: "kick-infer: error: x.jsonl: line 3 is not a log record", log: ra.stderr))
        guard case .failed(let id, let why, _, _) = try l.state(of: b, live: [:]) else { Issue.record("b is not failed"); return }
        #expect(id == "102" && why == "ended without an exit status (Slurm: CANCELLED)")
        #expect(try l.state(of: c, live: [:]) == .done)
        let s = try l.survey()
        #expect(s.live.isEmpty && s.done == 1 && s.failed.map(\.0.id) == ["101", "102"])
        // the grid's view: one row per configuration × task
        let rows = try GridStatus(work: work, configs: ["dense"], tasks: ["a", "b", "c", "d"], shards: [:], launcher: l, live: [:]).rows()
        #expect(rows.map(\.state) == ["not started", "failed", "failed", "done", "not started"])
        #expect(rows[1].detail.contains("exit 1") && rows[1].detail.contains(ra.stderr))
    }

    /// A job record or exit file that is not what the launcher wrote: a
    /// torn or foreign record is an error naming it; an exit file holding
    /// no number counts as no exit status.
    @Test func brokenJobRecordsAndExitFilesAreNamedOrIgnored() throws {
        let dir = tempDir("slurm-hostile"), work = dir + "/work/m"
        let q = ScriptedQueue()
        let l = SlurmLauncher(work: work, queue: q, directory: dir)
        let t = work + "/infer/dense/a.scores.json"
        _ = try l.submit(request(work, t))
        let jf = work + "/slurm/jobs/infer/dense/a.scores.json.job"
        let r = try #require(try SlurmJobRecord.read(jf))
        q.live = [:]
        for junk in ["9999999999999999999999\n", "", "nan", String(repeating: "7", count: 1 << 16)] {
            try junk.write(toFile: r.exitFile, atomically: true, encoding: .utf8)
            #expect(r.exitStatus() == nil)
            guard case .failed(_, let why, _, _) = try l.state(of: t, live: [:]) else { Issue.record("not failed with exit file \(junk.prefix(8))"); continue }
            #expect(why.hasPrefix("ended without an exit status"))
        }
        let good = try Data(contentsOf: URL(fileURLWithPath: jf))
        for bad in [good.prefix(good.count / 2), Data("{\"schema\":\"kick.slurm-job/9\"}".utf8), Data([0xFF, 0x00, 0x7B])] {
            try bad.write(to: URL(fileURLWithPath: jf))
            let e = #expect(throws: KickError.self) { try l.state(of: t, live: [:]) }
            #expect(e?.file == jf && e?.code == .malformed, "\(String(describing: e))")
            #expect(throws: KickError.self) { try l.survey() }
            #expect(throws: KickError.self) { try l.submit(request(work, t)) }
        }
    }

    @Test func shardedTasksShowTheirShards() throws {
        let dir = tempDir("slurm-shards"), work = dir + "/work/m"
        let q = ScriptedQueue()
        let l = SlurmLauncher(work: work, queue: q, directory: dir)
        let s0 = work + "/infer/q/mmlu.shard-0-of-2.scores.json", s1 = work + "/infer/q/mmlu.shard-1-of-2.scores.json"
        try FileManager.default.createDirectory(atPath: work + "/infer/q", withIntermediateDirectories: true)
        try "{}".write(toFile: s0, atomically: true, encoding: .utf8)
        _ = try l.submit(request(work, s1))
        q.live["101"] = SlurmJobState(state: "RUNNING")
        try "{\"id\":\"1\"}\n{\"id\":\"3\"}\n".write(toFile: work + "/infer/q/mmlu.shard-1-of-2.jsonl", atomically: true, encoding: .utf8)
        let rows = try GridStatus(work: work, configs: ["q"], tasks: ["mmlu"], shards: try GridStatus.parseShards("mmlu:2"), launcher: l, live: q.live).rows()
        #expect(rows[1].state == "running")
        #expect(rows[1].detail == "1/2 shards done; shard 1: running (job 101), 2 items logged", "\(rows[1].detail)")
        #expect(GridStatus.render(rows).contains("q       mmlu      running"))
        #expect(throws: KickError.self) { try GridStatus.parseShards("mmlu:0") }
    }

    @Test func theBatchScriptRunsTheCommandAndRecordsItsStatus() throws {
        let dir = tempDir("slurm-script")
        let script = SlurmBatchScript.render(command: "echo \"it's $OPENBLAS_NUM_THREADS\" > out.txt; exit 3", directory: dir,
                                             exitPattern: dir + "/logs/it's.%j.exit", environment: [("KICK_CACHE", "/c a/'q'")])
        try FileManager.default.createDirectory(atPath: dir + "/logs", withIntermediateDirectories: true)
        try script.write(toFile: dir + "/job.sh", atomically: true, encoding: .utf8)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/bash")
        p.arguments = [dir + "/job.sh"]
        p.environment = ["SLURM_JOB_ID": "77", "SLURM_CPUS_PER_TASK": "4", "PATH": "/usr/bin:/bin"]
        p.standardError = FileHandle.nullDevice
        try p.run()
        p.waitUntilExit()
        #expect(p.terminationStatus == 3)
        #expect(try String(contentsOfFile: dir + "/out.txt", encoding: .utf8) == "it's 4\n")
        #expect(try String(contentsOfFile: dir + "/logs/it's.77.exit", encoding: .utf8) == "3\n")
        #expect(script.contains("export KICK_CACHE='/c a/'\\''q'\\'''"))
    }

    @Test func queueOutputAndResourcesAreParsed() throws {
        let q = SlurmCommands.parseQueue("12|PENDING|Dependency\n13|RUNNING|None\n14_[1-3]|PENDING|Resources\n\n")
        #expect(q["12"] == SlurmJobState(state: "PENDING", reason: "Dependency") && q["13"]?.isRunning == true && q["14"]?.isLive == true)
        #expect(SlurmCommands.parseJobState("JobId=9 JobName=x UserId=root(0) JobState=TIMEOUT Reason=TimeLimit") == "TIMEOUT")
        var r = SlurmResources.defaults(for: .infer)
        try r.apply(overrides: "cpus=16,mem=64G time=1-12 partition=long")
        #expect(r.sbatchFlags == ["--cpus-per-task=16", "--mem=64G", "--time=1-12", "--partition=long"])
        #expect(throws: KickError.self) { try r.apply(overrides: "mem=lots") }
        #expect(throws: KickError.self) { try r.apply(overrides: "gpus=1") }
        #expect(throws: KickError.self) { try r.apply(overrides: "cpus=0") }
    }
}

@Suite struct ProfileLaunchFieldsTests {
    func profile(_ tasks: [String: Profile.TaskSize], slurm: [String: SlurmResources]? = nil) -> Profile {
        var p = Profile(schema: "kick.profile/1", name: "p", description: "", configs: [], calib: .init(corpus: "wiki", samples: 1, length: 8, seed: 0),
                        tasks: tasks, generation: .init(factoidMaxTokens: 4, summaryMaxTokens: 4, instructMaxTokens: 4))
        p.slurm = slurm
        return p
    }

    @Test func shardsAndSlurmResourcesAreChecked() throws {
        #expect(profile(["mmlu": .init(items: 8, shards: 4)]).problem(registry: .standard) == nil)
        #expect(profile(["mmlu": .init(items: 8, shards: 0)]).problem(registry: .standard) == "tasks.mmlu.shards is 0; it must be at least 1")
        let bad = profile([:], slurm: ["infer": SlurmResources(cpus: 8, mem: "lots", time: "1:00:00")])
        #expect(bad.problem(registry: .standard) == "slurm.infer: mem 'lots' is not a size such as 8G or 16000M")
        let kind = profile([:], slurm: ["gpu": SlurmResources(cpus: 1, mem: "1G", time: "10")])
        #expect(kind.problem(registry: .standard)?.hasPrefix("slurm.gpu is not a job kind") == true)
        // the shipped profiles load, with their shards and resources
        let root = try ProjectRoot.find()
        let full = try Profile.load("full", root: root)
        #expect(full.size("mmlu").shards == 16 && full.slurm?["infer"]?.cpus == 8)
        #expect(try Profile.load("quick", root: root).size("mmlu").shards == nil)
    }
}
