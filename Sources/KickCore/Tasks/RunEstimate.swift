import Foundation

/// The wall time a profile's grid will take on this machine, printed before
/// `make all` starts it. Nothing is assumed about the machine: the dense
/// model runs the first items of each task (a probe, in a scratch folder)
/// and compresses its first block once per method, and the rest is scaled
/// from those seconds. Work already done under the work folder (a
/// checkpoint, a task's scores) is not counted again.
public struct RunEstimate: Codable, Sendable {
    public struct TaskCost: Codable, Sendable {
        public var task: String
        /// items (windows for perplexity) each configuration runs
        public var items: Int
        public var probeItems: Int
        public var probeSeconds: Double
        /// one configuration's seconds for the whole task
        public var secondsPerConfig: Double
        /// configurations still to run it
        public var configs: Int
        enum CodingKeys: String, CodingKey {
            case task, items, configs
            case probeItems = "probe_items", probeSeconds = "probe_seconds", secondsPerConfig = "seconds_per_config"
        }
    }

    public struct CompressCost: Codable, Sendable {
        public var method: String
        public var blockSeconds: Double
        public var secondsPerConfig: Double
        public var configs: Int
        enum CodingKeys: String, CodingKey { case method, configs, blockSeconds = "block_seconds", secondsPerConfig = "seconds_per_config" }
    }

    public var schema = "kick.estimate/1"
    public var profile: String
    public var model: String
    public var tasks: [TaskCost]
    public var compress: [CompressCost]
    public var probeSeconds: Double
    /// Opening and loading the model, which every `kick-infer run` (one per configuration and task) does first.
    public var loadSeconds: Double
    /// What a compression job spends outside its blocks (loading, writing and hashing the checkpoint), from a whole magnitude run.
    public var compressOverheadSeconds: Double
    public var totalSeconds: Double

    enum CodingKeys: String, CodingKey {
        case schema, profile, model, tasks, compress
        case probeSeconds = "probe_seconds", totalSeconds = "total_seconds", loadSeconds = "load_seconds"
        case compressOverheadSeconds = "compress_overhead_seconds"
    }

    /// Probes and scales. `work` is work/<MODEL> (what is done there is not
    /// counted); `calibration` the profile's set, for the compression probe.
    public static func measure(bundle: ModelBundle, model: LlamaModel, loadSeconds: Double, profile: Profile, ingestDir: String, work: String,
                               calibration: CalibrationSet?, batch: Int, probeItems: Int, registry: TaskRegistry = .standard,
                               show: Bool = true) throws -> RunEstimate {
        let t0 = Date()
        let scratch = NSTemporaryDirectory() + "kick-estimate-\(getpid())"
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        let fm = FileManager.default
        var tasks: [TaskCost] = []
        for name in registry.names {
            let left = profile.configs.filter { !fm.fileExists(atPath: "\(work)/infer/\($0)/\(name).scores.json") }
            guard !left.isEmpty else { continue }
            let items = try TaskFile.read(path: "\(ingestDir)/tasks/\(name).jsonl", task: name, registry: registry)
            let size = profile.size(name)
            var o = SuiteOptions(config: "dense", modelName: "estimate", ingestDir: ingestDir, outDir: "\(scratch)/\(name)", denseDir: nil,
                                 generation: profile.generation, perplexityWindow: min(size.window ?? 2048, model.config.contextLength),
                                 perplexityWindows: size.windows)
            o.batch = batch
            o.showProgress = false
            let total: Int
            if name == PerplexityTask.name {
                let tokens = try TaskManifest.read(path: TaskManifest.path(ofTaskFile: "\(ingestDir)/tasks/\(name).jsonl")).tokens ?? 0
                total = min(size.windows ?? Int.max, tokens / max(1, o.perplexityWindow))
            } else {
                total = items.count
            }
            // summaries run in chunks of half a batch: probe one chunk
            let k = min(name == SummarizationTask.name ? max(1, min(probeItems, batch / 2)) : probeItems, total)
            guard k > 0 else { continue }
            o.stopAfter = k
            let probe = SuiteRunner(bundle: bundle, model: model, options: o)
            probe.registry = registry
            let p0 = Date()
            do { try probe.run(task: name) } catch is SuiteRunner.StoppedEarly {}
            let seconds = Date().timeIntervalSince(p0)
            var perConfig = seconds / Double(k) * Double(total)
            if name == MMLUTask.name {
                // the shot prefix is computed once per subject: scale by tokens computed, not items
                let probed = try TaskLog<MMLUTask.Record>.read(path: "\(scratch)/\(name)/\(name).jsonl").values
                let probeTokens = probed.map(\.tokens.prompt).reduce(0, +)
                perConfig = seconds / Double(max(1, probeTokens)) * Double(mmluTokens(items, runner: probe, limit: profile.generation.mmluMaxPromptTokens))
            }
            tasks.append(TaskCost(task: name, items: total, probeItems: k, probeSeconds: (seconds * 100).rounded() / 100,
                                  secondsPerConfig: perConfig.rounded(), configs: left.count))
            if show { ProgressLine.write(String(format: "estimate: %@ %d items in %.1f s, %.0f s per configuration", name, k, seconds, perConfig)) }
        }
        // compression: the first block once per method, times the blocks
        var compress: [CompressCost] = []
        let pending = profile.configs.filter { $0 != "dense" && !fm.fileExists(atPath: "\(work)/compress/\($0)/model.kick") }
        let specs = try pending.compactMap { try CompressionSpec.parse(configName: $0) }
        for method in CompressionSpec.Method.allCases {
            let mine = specs.filter { $0.method == method }
            guard let spec = mine.first else { continue }
            let s = try ModelCompressor(spec: spec).timeFirstBlock(bundle: bundle, calibration: spec.needsCalibration ? calibration : nil).totalSeconds
            let per = s * Double(bundle.config.numLayers)
            compress.append(CompressCost(method: method.rawValue, blockSeconds: (s * 100).rounded() / 100, secondsPerConfig: per.rounded(), configs: mine.count))
            if show { ProgressLine.write(String(format: "estimate: %@ first block %.2f s, %.0f s per configuration", method.rawValue, s, per)) }
        }
        // a whole magnitude compression, less its blocks: what every compression job spends besides them
        var overhead = 0.0
        if !specs.isEmpty {
            let spec = CompressionSpec(method: .magnitude, pattern: .unstructured(0.5))
            let block = try ModelCompressor(spec: spec).timeFirstBlock(bundle: bundle, calibration: nil).totalSeconds
            try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
            let w0 = Date()
            _ = try ModelCompressor(spec: spec).run(bundle: bundle, calibration: nil, to: "\(scratch)/overhead.kick", metadata: [:])
            overhead = max(0, Date().timeIntervalSince(w0) - block * Double(bundle.config.numLayers))
            if show { ProgressLine.write(String(format: "estimate: a compression job spends %.1f s besides its blocks", overhead)) }
        }
        var e = RunEstimate(profile: profile.name, model: bundle.path, tasks: tasks, compress: compress,
                            probeSeconds: (Date().timeIntervalSince(t0) * 10).rounded() / 10, loadSeconds: (loadSeconds * 100).rounded() / 100,
                            compressOverheadSeconds: (overhead * 100).rounded() / 100, totalSeconds: 0)
        e.totalSeconds = (e.taskSeconds + e.compressSeconds).rounded()
        return e
    }

    /// The tokens an MMLU run computes: each subject's shot prefix once, and
    /// each item's own question after it.
    static func mmluTokens(_ items: [TaskItem], runner: SuiteRunner, limit: Int) -> Int {
        var prefixes: [String: Int] = [:]
        var total = 0
        for it in items {
            var k = it.shots?.count ?? 0
            var parts = MMLUTask.prompt(it, shots: k)
            var full = runner.encode(parts.prefix + parts.suffix).count
            while full > limit && k > 0 {
                k -= 1
                parts = MMLUTask.prompt(it, shots: k)
                full = runner.encode(parts.prefix + parts.suffix).count
            }
            let prefix = prefixes[parts.prefix] ?? runner.encode(parts.prefix).count
            if prefixes[parts.prefix] == nil { total += prefix; prefixes[parts.prefix] = prefix }
            total += max(1, full - prefix)
        }
        return total
    }

    /// Every remaining task run, each with its model load.
    public var taskSeconds: Double { tasks.map { ($0.secondsPerConfig + loadSeconds) * Double($0.configs) }.reduce(0, +) }
    /// Every remaining compression, each with its fixed overhead.
    public var compressSeconds: Double { compress.map { ($0.secondsPerConfig + compressOverheadSeconds) * Double($0.configs) }.reduce(0, +) }

    /// "74 min (compress 8 min, tasks 66 min)".
    public var summary: String {
        let c = compressSeconds, t = taskSeconds
        let perTask = tasks.map { String(format: "%@ %.0f s", $0.task, $0.secondsPerConfig) }.joined(separator: ", ")
        let perMethod = compress.map { String(format: "%@ %.0f s × %d", $0.method, $0.secondsPerConfig, $0.configs) }.joined(separator: ", ")
        return String(format: "estimated wall time %.1f min: compression %.1f min (%@, plus %.0f s each besides the blocks), tasks %.1f min (per configuration: %@, plus a %.1f s model load per task); probing took %.0f s",
                      totalSeconds / 60, c / 60, perMethod.isEmpty ? "none left" : perMethod, compressOverheadSeconds, t / 60,
                      perTask.isEmpty ? "none left" : perTask, loadSeconds, probeSeconds)
    }
}
