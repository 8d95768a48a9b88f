import Foundation

/// Perplexity on held-out text, the yardstick the paper says hides what
/// compression loses: non-overlapping windows, one per forward (so batch
/// settings cannot change it). The dense run keeps its top-k log-probs per
/// scored token; other runs read them for KL and top-1 agreement.
public enum PerplexityTask: KickTask {
    public static let name = "perplexity"
    public static let sampled = false

    public struct Record: TaskRecord, Equatable {
        public var id: String
        public var subset: String
        public var startToken: Int
        public var scoredTokens: Int
        public var nllSum: Double
        public var meanNLL: Double
        /// KL(dense ‖ model) summed over the window's tokens (no dense top-k: nil).
        public var klTopKSum: Double?
        public var top1Agree: Int?
        public var seconds: Double
        enum CodingKeys: String, CodingKey {
            case id, subset, seconds
            case startToken = "start_token", scoredTokens = "scored_tokens", nllSum = "nll_sum", meanNLL = "mean_nll"
            case klTopKSum = "kl_topk_sum", top1Agree = "top1_agree"
        }
    }

    public static func inputs(_ ingest: TaskIngest) throws -> [TaskIngest.Input] {
        [try ingest.either(ingest.originals.wikiText, "wikitext", reader: "wikitext-raw", dataset: "wiki")]
    }

    public static func read(_ inputs: [TaskIngest.Input], _ ingest: TaskIngest, _ counts: inout TaskManifest.Counts) throws -> [TaskItem] {
        let main = inputs[0]
        let docs: [String]
        if let m = main.dataset {
            // the manifest counts the held-out documents, not the whole task
            let wiki = try WikiCorpus.load(m, fetcher: ingest.fetcher)
            docs = wiki.heldOut
            counts.counts.merge(["documents_read": wiki.read, "english": wiki.documents.count, "skipped_not_english": wiki.skippedNonEnglish,
                                 "held_out": wiki.heldOut.count, "calibration_pool": wiki.calibrationPool.count]) { $1 }
        } else {
            docs = PlainTextCorpus.wikiTextDocuments(try ingest.text(main.path!))
            counts.counts["documents"] = docs.count
        }
        return docs.enumerated().map { TaskItem(id: "doc-\($0.offset)", task: name, subset: "all", context: $0.element, golds: []) }
    }

    public static func problem(with item: TaskItem) -> String? { item.textProblem }

    static let protocolNote = "documents joined by blank lines, cut into non-overlapping windows; every token after the first of each window scored"

    public static func annotate(_ manifest: inout TaskManifest, items: [TaskItem], _ ingest: TaskIngest) {
        manifest.tokens = ingest.tokenizer.encode(text(items)).count
        manifest.tokenizer = ingest.tokenizer.identity
        manifest.notes.append(protocolNote)
    }

    static func text(_ items: [TaskItem]) -> String { items.compactMap(\.context).joined(separator: "\n\n") }

    /// Windows over the items' joined text, not items, are what is logged and sharded.
    public static var shardsItems: Bool { false }

    /// How many whole windows of `w` tokens the text holds (at most `maxWindows`).
    static func windowCount(_ tokens: Int, window w: Int, maxWindows: Int?) -> Int {
        min(tokens / w, maxWindows ?? Int.max)
    }

    public static func recordIDs(_ items: [TaskItem], tokenizer: Tokenizer, window: Int, maxWindows: Int?) -> [String] {
        (0..<windowCount(tokenizer.encode(text(items)).count, window: window, maxWindows: maxWindows)).map { "w\($0)" }
    }

    public static func run(_ items: [TaskItem], on runner: SuiteRunner, log: TaskLog<Record>) throws -> TaskRunOutcome {
        let options = runner.options, model = runner.model
        let tokens = runner.bundle.tokenizer.encode(text(items))
        let w = min(options.perplexityWindow, runner.contextLimit)
        let count = windowCount(tokens.count, window: w, maxWindows: options.perplexityWindows)
        let k = options.topK
        let writeTopK = options.config == "dense"
        let topDir = "\(options.outDir)/perplexity.topk"
        let denseTop = options.denseDir.map { "\($0)/perplexity.topk" }
        let todo = (0..<count).filter { win in !log.has("w\(win)") && options.shard?.owns(win) ?? true }
        let p = ProgressMeter(label: "\(options.config) perplexity", total: todo.count, show: options.showProgress)
        defer { p.finish() }
        var outcome = TaskRunOutcome()
        for win in todo {
            if let s = options.stopAfter, outcome.itemsRun >= s { outcome.stoppedEarly = true; return outcome }
            let t0 = Date()
            let ids = Array(tokens[win * w..<(win + 1) * w])
            let m = model.forward([BatchItem(cache: model.newCache(capacity: w), tokens: Array(ids.dropLast()), logits: .all)])[0]!
            var nll = 0.0, kl = 0.0, agree = 0
            var top = Data()
            let dense: Data? = try denseTop.flatMap { try RegularFile.contents(atPath: "\($0)/w\(win).bin") }
            let denseOK = dense?.count == (w - 1) * k * 8
            m.data.withUnsafeBufferPointer { b in
                for j in 0..<(w - 1) {
                    let row = UnsafeBufferPointer(rebasing: b[j * m.cols..<(j + 1) * m.cols])
                    let lp = Sampler.logSoftmax(row)
                    nll -= Double(lp[ids[j + 1]])
                    if writeTopK {
                        for t in topIndices(lp, k) {
                            withUnsafeBytes(of: UInt32(t).littleEndian) { top.append(contentsOf: $0) }
                            withUnsafeBytes(of: lp[t].bitPattern.littleEndian) { top.append(contentsOf: $0) }
                        }
                    }
                    if denseOK, let d = dense {
                        let (klToken, topID) = klTopK(d, token: j, k: k, lp)
                        kl += klToken
                        if Sampler.argmax(row) == topID { agree += 1 }
                    }
                }
            }
            if writeTopK { try AtomicFile.write(top, to: "\(topDir)/w\(win).bin") }
            try log.append(Record(id: "w\(win)", subset: "all", startToken: win * w, scoredTokens: w - 1, nllSum: SuiteRunner.round(nll),
                                  meanNLL: SuiteRunner.round(nll / Double(w - 1)), klTopKSum: denseOK ? SuiteRunner.round(kl) : nil,
                                  top1Agree: denseOK ? agree : nil, seconds: SuiteRunner.round(Date().timeIntervalSince(t0))))
            p.tokens += w - 1
            outcome.tokens += w - 1
            outcome.itemsRun += 1
            p.step()
        }
        return outcome
    }

    /// KL(dense ‖ model) for one token over dense's top-k plus one bucket for
    /// the rest (a lower bound on the full KL), and dense's top token.
    static func klTopK(_ dense: Data, token j: Int, k: Int, _ lp: [Float]) -> (Double, Int) {
        var pk = 0.0, qk = 0.0, acc = 0.0
        var topID = -1
        dense.withUnsafeBytes { raw in
            for i in 0..<k {
                let o = (j * k + i) * 8
                let id = Int(UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: o, as: UInt32.self)))
                let lpd = Double(Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: o + 4, as: UInt32.self))))
                if i == 0 { topID = id }
                let pd = Foundation.exp(lpd), lq = Double(lp[id])
                pk += pd; qk += Foundation.exp(lq)
                acc += pd * (lpd - lq)
            }
        }
        let pr = max(0, 1 - pk), qr = max(1e-30, 1 - qk)
        if pr > 1e-12 { acc += pr * Foundation.log(pr / qr) }
        return (acc, topID)
    }

    /// The k largest entries' indices, largest first, in one pass (ties: lower index first).
    static func topIndices(_ a: [Float], _ k: Int) -> [Int] {
        var idx: [Int] = []
        idx.reserveCapacity(k + 1)
        var floor = -Float.infinity
        for (i, v) in a.enumerated() where idx.count < k || v > floor {
            var pos = idx.count
            while pos > 0, a[idx[pos - 1]] < v { pos -= 1 }
            idx.insert(i, at: pos)
            if idx.count > k { idx.removeLast() }
            if idx.count == k { floor = a[idx[k - 1]] }
        }
        return idx
    }

    /// Windows in the order they were scored (they are not the task file's items).
    public static func scoredRecords(_ items: [TaskItem], _ log: TaskLog<Record>) -> [Record] { log.order.compactMap { log.records[$0] } }

    public static let metrics: [TaskMetric<Record>] = [.mean(Record.CodingKeys.meanNLL) { $0.meanNLL }]

    public static func summarize(_ recs: [Record], items: [TaskItem], _ context: ScoringContext) -> (metrics: [MetricSummary], notes: [String]) {
        var metrics: [MetricSummary] = [], notes: [String] = []
        let n = recs.map(\.scoredTokens).reduce(0, +)
        if n > 0 {
            let perWindow = MetricSummary.mean("mean_nll", "all", recs.map(\.meanNLL))
            metrics.append(MetricSummary(metric: "perplexity", subset: "all", value: Foundation.exp(recs.map(\.nllSum).reduce(0, +) / Double(n)), n: n,
                                         ciLow: Foundation.exp(perWindow.ciLow), ciHigh: Foundation.exp(perWindow.ciHigh), interval: "exp of a normal interval over windows' mean NLL"))
        }
        let klRecs = recs.filter { $0.klTopKSum != nil }
        if !klRecs.isEmpty {
            let kn = klRecs.map(\.scoredTokens).reduce(0, +)
            var kl = MetricSummary.mean("kl_topk_vs_dense", "all", klRecs.map { $0.klTopKSum! / Double($0.scoredTokens) })
            kl.n = kn
            metrics.append(kl)
            let agree = klRecs.compactMap(\.top1Agree).reduce(0, +)
            metrics.append(.proportion("top1_agreement_vs_dense", "all", hits: (0..<kn).map { $0 < agree }))
            notes.append("KL(dense ‖ model) over the dense model's top-\(context.topK) tokens plus one bucket for the rest (a lower bound on the full KL), mean per token; CI over windows")
        } else if context.comparesWithDense { notes.append("no dense top-k: KL and top-1 agreement not measured") }
        notes.append("protocol: held-out text cut into non-overlapping windows of \(context.perplexityWindow) tokens, every token after the first of each window scored, exp(mean NLL)")
        return (metrics, notes)
    }

    public static let headline = TaskHeadline(metric: "perplexity", label: "perplexity (held-out Wikipedia)", higherIsBetter: false, isAbility: false)
    /// Perplexity pools tokens; its per-item measure is a window's mean NLL.
    public static let pairedHeadline = TaskHeadline(metric: "mean_nll", label: "perplexity: mean NLL per window", higherIsBetter: false, isAbility: false)

    public static func reportSection(_ t: ReportTables) -> String {
        var md = "## Perplexity and agreement with dense\n\n" + t.table([("KL to dense (top-k)", "kl_topk_vs_dense", "all"), ("top-1 agreement", "top1_agreement_vs_dense", "all")])
        if let n = t.note(startingWith: "protocol") { md += "\n" + n + ".\n" }
        return md
    }
}
