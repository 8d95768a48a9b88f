import Foundation

extension SuiteRunner {
    /// Perplexity over non-overlapping windows, one window per forward (so
    /// batch settings cannot change it). The dense run keeps its top-k
    /// log-probs per scored token; other runs read them for KL and top-1
    /// agreement. Returns whether the test hook stopped it early.
    func runPerplexity(_ items: [TaskItem], _ log: TaskLog, stopAfter: Int?) throws -> Bool {
        let tokens = tok.encode(items.compactMap(\.context).joined(separator: "\n\n"))
        let w = min(options.perplexityWindow, contextLimit)
        var count = tokens.count / w
        if let m = options.perplexityWindows { count = min(count, m) }
        let k = options.topK
        let writeTopK = options.config == "dense"
        let topDir = "\(options.outDir)/perplexity.topk"
        let denseTop = options.denseDir.map { "\($0)/perplexity.topk" }
        let todo = (0..<count).filter { !log.has("w\($0)") }
        let p = ProgressMeter(label: "\(options.config) perplexity", total: todo.count, show: options.showProgress)
        var new = 0
        for win in todo {
            if let s = stopAfter, new >= s { return true }
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
                        for t in Self.topIndices(lp, k) {
                            withUnsafeBytes(of: UInt32(t).littleEndian) { top.append(contentsOf: $0) }
                            withUnsafeBytes(of: lp[t].bitPattern.littleEndian) { top.append(contentsOf: $0) }
                        }
                    }
                    if denseOK, let d = dense {
                        // KL(dense ‖ model) over the dense top-k plus one bucket for the rest
                        var pk = 0.0, qk = 0.0, acc = 0.0
                        var topID = -1
                        d.withUnsafeBytes { raw in
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
                        kl += acc
                        if Sampler.argmax(row) == topID { agree += 1 }
                    }
                }
            }
            if writeTopK { try AtomicFile.write(top, to: "\(topDir)/w\(win).bin") }
            var rec: [String: Any] = ["id": "w\(win)", "subset": "all", "start_token": win * w, "scored_tokens": w - 1,
                                      "nll_sum": Self.round(nll), "mean_nll": Self.round(nll / Double(w - 1)), "seconds": Self.round(Date().timeIntervalSince(t0))]
            if denseOK { rec["kl_topk_sum"] = Self.round(kl); rec["top1_agree"] = agree }
            try log.append(rec)
            p.tokens += w - 1
            generatedTokens += w - 1
            p.step()
            new += 1
        }
        p.finish()
        return false
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

    /// Every metric of the task over the logged items of the task file.
    func score(task: String, items: [TaskItem], log: TaskLog) throws -> TaskScores {
        var metrics: [MetricSummary] = []
        var notes: [String] = []
        let recs: [[String: Any]] = task == "perplexity" ? log.order.compactMap { log.records[$0] } : items.compactMap { log.records[$0.id] }
        func verdicts(_ r: [String: Any]) -> [String: Any] { r["verdicts"] as? [String: Any] ?? [:] }
        func groups(_ rs: [[String: Any]], by key: String, prefix: String) -> [(String, [[String: Any]])] {
            Dictionary(grouping: rs, by: { ($0[key] as? String) ?? "?" }).sorted { $0.key < $1.key }.map { (prefix + $0.key, $0.value) }
        }
        func add(_ subsets: [(String, [[String: Any]])], bools: [String] = [], means: [String] = []) {
            for (name, rs) in subsets {
                for b in bools {
                    let v = rs.compactMap { verdicts($0)[b] as? Bool }
                    if !v.isEmpty { metrics.append(.proportion(b, name, hits: v)) }
                }
                for m in means {
                    let v = rs.compactMap { (verdicts($0)[m] as? NSNumber)?.doubleValue }
                    if !v.isEmpty { metrics.append(.mean(m, name, v)) }
                }
            }
        }
        let all = [("all", recs)]
        // An empty answer (the model ended at once) is a protocol artifact,
        // not knowledge: its rate is reported beside every generation task.
        func addEmptyRate(_ subsets: [(String, [[String: Any]])], _ answers: ([String: Any]) -> [String]) {
            for (name, rs) in subsets {
                let empty = rs.map { r in answers(r).contains { $0.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty } }
                if !empty.isEmpty { metrics.append(.proportion("empty_answer", name, hits: empty)) }
            }
        }
        switch task {
        case "factoid":
            add(all, bools: ["substring_hit", "exact_match"], means: ["f1"])
            addEmptyRate(all) { [$0["output"] as? String ?? ""] }
            notes.append("substring_hit is the paper's rule (lowercase, spaces removed, any alias a substring) matched against the generated text only, over the N questions asked; the paper's code matched text that still held the prompt and divided by N+1")
        case "mmlu":
            add(all + groups(recs, by: "group", prefix: "discipline:") + groups(recs, by: "subset", prefix: "subject:"), bools: ["correct_generate", "correct_loglik"])
            notes.append("correct_generate: the paper's method, one greedy token, prediction = its last character; correct_loglik: the largest log-probability among ' A', ' B', ' C', ' D'")
            if items.first?.shots != nil { notes.append("few-shot examples as recorded in the task file (5 per item, dropped while the prompt exceeds 2048 tokens)") }
        case "icrqa":
            add(all + groups(recs, by: "subset", prefix: ""), bools: ["exact_match"], means: ["f1"])
            addEmptyRate(all + groups(recs, by: "subset", prefix: "")) { [$0["answer"] as? String ?? ""] }
        case "summarization":
            let ms = ["rouge1", "rouge2", "rougeL", "rougeL_vs_dense", "distinct1", "distinct2", "repeated_trigram"]
            add(all + groups(recs, by: "subset", prefix: ""), means: ms.flatMap { ["\($0)_sampled", "\($0)_greedy"] })
            addEmptyRate(all) { [($0["outputs"] as? [String: String])?["greedy"] ?? ""] }
            if !recs.contains(where: { verdicts($0)["rougeL_vs_dense_greedy"] != nil }) && options.config != "dense" { notes.append("no dense run: similarity to dense not measured") }
            addJudge(recs, keys: ["coherence", "consistency", "fluency", "relevance"], &metrics, &notes)
        case "instruct":
            add(all + groups(recs, by: "subset", prefix: ""), means: ["distinct1", "distinct2", "repeated_trigram", "rougeL_vs_dense"])
            addEmptyRate(all) { $0["outputs"] as? [String] ?? [""] }
            if !recs.contains(where: { verdicts($0)["rougeL_vs_dense"] != nil }) && options.config != "dense" { notes.append("no dense run: similarity to dense not measured") }
            addJudge(recs, keys: ["rating"], &metrics, &notes)
        case "perplexity":
            let n = recs.compactMap { $0["scored_tokens"] as? Int }.reduce(0, +)
            let nll = recs.compactMap { ($0["nll_sum"] as? NSNumber)?.doubleValue }.reduce(0, +)
            let perWindow = MetricSummary.mean("mean_nll", "all", recs.compactMap { ($0["mean_nll"] as? NSNumber)?.doubleValue })
            if n > 0 {
                metrics.append(MetricSummary(metric: "perplexity", subset: "all", value: Foundation.exp(nll / Double(n)), n: n,
                                             ciLow: Foundation.exp(perWindow.ciLow), ciHigh: Foundation.exp(perWindow.ciHigh), interval: "exp of a normal interval over windows' mean NLL"))
            }
            metrics.append(perWindow)
            let klRecs = recs.filter { $0["kl_topk_sum"] != nil }
            if !klRecs.isEmpty {
                let kn = klRecs.compactMap { $0["scored_tokens"] as? Int }.reduce(0, +)
                metrics.append(.mean("kl_topk_vs_dense", "all", klRecs.map { (($0["kl_topk_sum"] as? NSNumber)?.doubleValue ?? 0) / Double($0["scored_tokens"] as? Int ?? 1) }))
                metrics[metrics.count - 1].n = kn
                let agree = klRecs.compactMap { $0["top1_agree"] as? Int }.reduce(0, +)
                let p = MetricSummary.proportion("top1_agreement_vs_dense", "all", hits: (0..<kn).map { $0 < agree })
                metrics.append(p)
                notes.append("KL(dense ‖ model) over the dense model's top-\(options.topK) tokens plus one bucket for the rest (a lower bound on the full KL), mean per token; CI over windows")
            } else if options.config != "dense" { notes.append("no dense top-k: KL and top-1 agreement not measured") }
            notes.append("protocol: held-out text cut into non-overlapping windows of \(min(options.perplexityWindow, contextLimit)) tokens, every token after the first of each window scored, exp(mean NLL)")
        default: break
        }
        return TaskScores(config: options.config, task: task, model: options.modelName, items: recs.count,
                          itemsInTaskFile: task == "perplexity" ? recs.count : items.count, notes: notes, metrics: metrics,
                          secondsLogged: 0, tokensGenerated: 0, tokensPerSecond: 0)
    }

    func addJudge(_ recs: [[String: Any]], keys: [String], _ metrics: inout [MetricSummary], _ notes: inout [String]) {
        let judged = recs.compactMap { $0["judge"] as? [String: Any] }
        guard !judged.isEmpty else { notes.append("not judged (no judge configured or reachable)"); return }
        for k in keys {
            let v = judged.compactMap { ($0[k] as? NSNumber)?.doubleValue }
            if !v.isEmpty { metrics.append(.mean("judge_\(k)", "all", v)) }
        }
        let missing = recs.count - judged.filter { $0[keys[0]] != nil }.count
        if missing > 0 { notes.append("\(missing) items not judged") }
    }
}
