import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// An OpenAI-compatible chat-completions judge (the paper used GPT-4).
/// Configured by KICK_JUDGE_URL, KICK_JUDGE_MODEL and KICK_JUDGE_KEY;
/// judgements are cached by the hash of (prompt, judge model); an
/// unreachable judge gives a "not judged" mark, never a lost run.
public final class JudgeClient: @unchecked Sendable {
    public let url: URL
    public let model: String
    let key: String
    let cacheDir: String
    let timeout: TimeInterval
    public private(set) var warnings: [String] = []
    private var unreachable = false
    /// The judge's caps: the article shown with a summary, the judge's own
    /// answer, and how much of an unreadable answer a log keeps.
    static let maxStoryCharacters = 12_000
    static let maxJudgeTokens = 256
    static let maxQuotedAnswerCharacters = 300

    public init(url: URL, model: String, key: String, cacheDir: String, timeout: TimeInterval = 60) {
        self.url = url
        self.model = model
        self.key = key
        self.cacheDir = cacheDir
        self.timeout = timeout
    }

    /// The judge the environment configures, if all three variables are set.
    public static func fromEnvironment(cacheDir: String = PackageFetcher.defaultCacheDir + "/judge") -> JudgeClient? {
        let e = ProcessInfo.processInfo.environment
        let names = ["KICK_JUDGE_URL", "KICK_JUDGE_MODEL", "KICK_JUDGE_KEY"]
        let set = names.filter { !(e[$0] ?? "").isEmpty }
        if !set.isEmpty && set.count < 3 {
            Diagnostics.warning("\(set.joined(separator: ", ")) set but not \(names.filter { !set.contains($0) }.joined(separator: ", ")): no judge")
        }
        guard let u = e["KICK_JUDGE_URL"], let url = URL(string: u), let m = e["KICK_JUDGE_MODEL"], let k = e["KICK_JUDGE_KEY"], set.count == 3 else { return nil }
        return JudgeClient(url: url, model: m, key: k, cacheDir: cacheDir)
    }

    /// The endpoint: a base URL gets /chat/completions appended.
    var endpoint: URL { url.path.hasSuffix("/chat/completions") ? url : url.appendingPathComponent("chat/completions") }

    /// Four 1–10 ratings of a summary (the paper's criteria) against a reference answer.
    public func rateSummary(story: String, summary: String, reference: String?) -> [String: Any] {
        var prompt = """
            Please act as an impartial judge and rate the summary of the story below on four criteria, each from 1 to 10: \
            coherence, consistency (faithfulness to the story), fluency, and relevance.
            """
        if reference != nil { prompt += " Rate it in comparison with the reference summary given below." }
        prompt += "\n\n[Story]\n\(story.prefix(Self.maxStoryCharacters))\n\n"
        if let r = reference { prompt += "[Reference summary]\n\(r)\n\n" }
        prompt += "[Summary to rate]\n\(summary)\n\nAnswer with exactly one line: coherence: N, consistency: N, fluency: N, relevance: N"
        return judged(prompt) { text in
            var out: [String: Any] = [:]
            for k in ["coherence", "consistency", "fluency", "relevance"] {
                if let v = Self.number(after: k, in: text) { out[k] = v }
            }
            return out.count == 4 ? out : nil
        }
    }

    /// One 1–10 rating of a two-turn answer (MT-Bench's single-answer grading).
    public func rateInstruction(turns: [String], answers: [String], reference: [String]?) -> [String: Any] {
        var prompt = """
            Please act as an impartial judge and evaluate the quality of the assistant's answers to the user's questions. \
            Consider helpfulness, relevance, accuracy, depth, creativity and level of detail.
            """
        if reference != nil { prompt += " A reference answer is given; rate the assistant's answers against it." }
        prompt += "\n\n"
        for (i, t) in turns.enumerated() {
            prompt += "[User, turn \(i + 1)]\n\(t)\n\n"
            if let r = reference, i < r.count { prompt += "[Reference answer, turn \(i + 1)]\n\(r[i])\n\n" }
            if i < answers.count { prompt += "[Assistant, turn \(i + 1)]\n\(answers[i])\n\n" }
        }
        prompt += "Rate the assistant from 1 to 10 in the format: Rating: [[N]]"
        return judged(prompt) { text in
            if let r = text.range(of: "[["), let e = text.range(of: "]]", range: r.upperBound..<text.endIndex),
               let v = Double(text[r.upperBound..<e.lowerBound].trimmingCharacters(in: .whitespaces)) { return ["rating": v] }
            return Self.number(after: "rating", in: text).map { ["rating": $0] }
        }
    }

    static func number(after key: String, in text: String) -> Double? {
        guard let r = text.lowercased().range(of: key) else { return nil }
        let tail = text.lowercased()[r.upperBound...].drop { !$0.isNumber }
        return Double(String(tail.prefix { $0.isNumber || $0 == "." }))
    }

    /// Asks the judge (or the cache); a failure is a "not judged" mark with the reason.
    func judged(_ prompt: String, parse: (String) -> [String: Any]?) -> [String: Any] {
        var h = SHA256()
        h.update(model + "\u{0}" + endpoint.absoluteString + "\u{0}" + prompt)
        let cachePath = "\(cacheDir)/\(h.finalize().hex).json"
        if let o = readJSONObject(atPath: cachePath), let text = o["text"] as? String, var v = parse(text) {
            v["judge"] = model
            v["cached"] = true
            return v
        }
        if unreachable { return ["not_judged": "judge unreachable earlier in this run"] }
        switch complete(prompt) {
        case .success(let text):
            guard var v = parse(text) else { return ["not_judged": "could not read ratings from the judge's answer", "judge_text": String(text.prefix(Self.maxQuotedAnswerCharacters))] }
            try? AtomicFile.write(try! JSONSerialization.data(withJSONObject: ["text": text, "model": model]), to: cachePath)
            v["judge"] = model
            return v
        case .failure(let e):
            unreachable = true
            let w = "judge at \(endpoint.absoluteString) failed: \(e.description); items are marked not judged"
            warnings.append(w)
            Diagnostics.warning(w)
            return ["not_judged": e.description]
        }
    }

    func complete(_ prompt: String) -> Result<String, KickError> {
        var req = URLRequest(url: endpoint, timeoutInterval: timeout)
        req.httpMethod = "POST"
        req.setValue("application/json", forHTTPHeaderField: "Content-Type")
        req.setValue("Bearer \(key)", forHTTPHeaderField: "Authorization")
        let body: [String: Any] = ["model": model, "temperature": 0, "max_tokens": Self.maxJudgeTokens, "messages": [["role": "user", "content": prompt]]]
        req.httpBody = try? JSONSerialization.data(withJSONObject: body)
        let sem = DispatchSemaphore(value: 0)
        nonisolated(unsafe) var result: Result<String, KickError> = .failure(KickError("no answer"))
        URLSession.shared.dataTask(with: req) { data, resp, err in
            defer { sem.signal() }
            if let err { result = .failure(KickError(err.localizedDescription)); return }
            let status = (resp as? HTTPURLResponse)?.statusCode ?? 0
            guard status == 200, let data else { result = .failure(KickError("HTTP \(status)")); return }
            guard let o = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
                  let choices = o["choices"] as? [[String: Any]], let msg = choices.first?["message"] as? [String: Any],
                  let text = msg["content"] as? String else { result = .failure(KickError("not a chat-completions answer")); return }
            result = .success(text)
        }.resume()
        sem.wait()
        return result
    }
}
