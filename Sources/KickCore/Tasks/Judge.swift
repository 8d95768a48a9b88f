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
    public func rateSummary(story: String, summary: String, reference: String?) -> JudgeRating {
        var prompt = """
            Please act as an impartial judge and rate the summary of the story below on four criteria, each from 1 to 10: \
            coherence, consistency (faithfulness to the story), fluency, and relevance.
            """
        if reference != nil { prompt += " Rate it in comparison with the reference summary given below." }
        prompt += "\n\n[Story]\n\(story.prefix(Self.maxStoryCharacters))\n\n"
        if let r = reference { prompt += "[Reference summary]\n\(r)\n\n" }
        prompt += "[Summary to rate]\n\(summary)\n\nAnswer with exactly one line: coherence: N, consistency: N, fluency: N, relevance: N"
        return judged(prompt) { text in
            var out = JudgeRating()
            for k in JudgeRating.summaryCriteria {
                guard let v = Self.number(after: k.stringValue, in: text) else { return nil }
                out[k] = v
            }
            return out
        }
    }

    /// One 1–10 rating of a two-turn answer (MT-Bench's single-answer grading).
    public func rateInstruction(turns: [String], answers: [String], reference: [String]?) -> JudgeRating {
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
               let v = Double(text[r.upperBound..<e.lowerBound].trimmingCharacters(in: .whitespaces)) { return JudgeRating(rating: v) }
            return Self.number(after: "rating", in: text).map { JudgeRating(rating: $0) }
        }
    }

    static func number(after key: String, in text: String) -> Double? {
        guard let r = text.lowercased().range(of: key) else { return nil }
        let tail = text.lowercased()[r.upperBound...].drop { !$0.isNumber }
        return Double(String(tail.prefix { $0.isNumber || $0 == "." }))
    }

    /// A cached judgement: the judge's answer, read again on a cache hit.
    struct CacheEntry: Codable { var text: String; var model: String }

    /// Asks the judge (or the cache); a failure is a "not judged" mark with the reason.
    func judged(_ prompt: String, parse: (String) -> JudgeRating?) -> JudgeRating {
        var h = SHA256()
        h.update(model + "\u{0}" + endpoint.absoluteString + "\u{0}" + prompt)
        let cachePath = "\(cacheDir)/\(h.finalize().hex).json"
        if let d = try? RegularFile.contents(atPath: cachePath), let c = try? JSONDecoder().decode(CacheEntry.self, from: d), var v = parse(c.text) {
            v.judge = model
            v.cached = true
            return v
        }
        if unreachable { return JudgeRating(notJudged: "judge unreachable earlier in this run") }
        switch complete(prompt) {
        case .success(let text):
            guard var v = parse(text) else {
                return JudgeRating(notJudged: "could not read ratings from the judge's answer", judgeText: String(text.prefix(Self.maxQuotedAnswerCharacters)))
            }
            try? AtomicFile.writeJSON(CacheEntry(text: text, model: model), to: cachePath)
            v.judge = model
            return v
        case .failure(let e):
            unreachable = true
            let w = "judge at \(endpoint.absoluteString) failed: \(e.description); items are marked not judged"
            warnings.append(w)
            Diagnostics.warning(w)
            return JudgeRating(notJudged: e.description)
        }
    }

    /// The OpenAI chat-completions request kick sends.
    struct ChatRequest: Encodable {
        struct Message: Encodable { var role: String; var content: String }
        var model: String
        var temperature: Double
        var maxTokens: Int
        var messages: [Message]
        enum CodingKeys: String, CodingKey { case model, temperature, messages, maxTokens = "max_tokens" }
    }

    /// The part of a chat-completions answer kick reads.
    struct ChatResponse: Decodable {
        struct Choice: Decodable { struct Message: Decodable { var content: String }; var message: Message }
        var choices: [Choice]
    }

    func complete(_ prompt: String) -> Result<String, KickError> {
        var req = URLRequest(url: endpoint, timeoutInterval: timeout)
        req.httpMethod = "POST"
        req.setValue("application/json", forHTTPHeaderField: "Content-Type")
        req.setValue("Bearer \(key)", forHTTPHeaderField: "Authorization")
        req.httpBody = try? JSONEncoder().encode(ChatRequest(model: model, temperature: 0, maxTokens: Self.maxJudgeTokens, messages: [.init(role: "user", content: prompt)]))
        let sem = DispatchSemaphore(value: 0)
        nonisolated(unsafe) var result: Result<String, KickError> = .failure(KickError("no answer"))
        URLSession.shared.dataTask(with: req) { data, resp, err in
            defer { sem.signal() }
            if let err { result = .failure(KickError(err.localizedDescription)); return }
            let status = (resp as? HTTPURLResponse)?.statusCode ?? 0
            guard status == 200, let data else { result = .failure(KickError("HTTP \(status)")); return }
            guard let text = (try? JSONDecoder().decode(ChatResponse.self, from: data))?.choices.first?.message.content else {
                result = .failure(KickError("not a chat-completions answer")); return
            }
            result = .success(text)
        }.resume()
        sem.wait()
        return result
    }
}

/// A judge's ratings of one item as its log record keeps them: the four
/// summary criteria or the MT-Bench rating (1–10), who judged and whether
/// from the cache, or why the item was not judged.
public struct JudgeRating: Codable, Sendable, Equatable {
    public var judge: String?
    public var cached: Bool?
    public var notJudged: String?
    /// The start of an answer the ratings could not be read from.
    public var judgeText: String?
    public var coherence: Double?
    public var consistency: Double?
    public var fluency: Double?
    public var relevance: Double?
    public var rating: Double?

    enum CodingKeys: String, CodingKey {
        case judge, cached, coherence, consistency, fluency, relevance, rating, notJudged = "not_judged", judgeText = "judge_text"
    }

    public init(notJudged: String? = nil, judgeText: String? = nil, rating: Double? = nil) {
        self.notJudged = notJudged
        self.judgeText = judgeText
        self.rating = rating
    }

    /// The paper's four criteria for a summary.
    static let summaryCriteria: [CodingKeys] = [.coherence, .consistency, .fluency, .relevance]

    subscript(_ k: CodingKeys) -> Double? {
        get {
            switch k {
            case .coherence: coherence
            case .consistency: consistency
            case .fluency: fluency
            case .relevance: relevance
            case .rating: rating
            default: nil
            }
        }
        set {
            switch k {
            case .coherence: coherence = newValue
            case .consistency: consistency = newValue
            case .fluency: fluency = newValue
            case .relevance: relevance = newValue
            case .rating: rating = newValue
            default: break
            }
        }
    }

    /// What scores say of the judging: not configured, or how many items it missed.
    static func notes(_ ratings: [JudgeRating?], criterion: CodingKeys) -> [String] {
        let asked = ratings.compactMap { $0 }
        guard !asked.isEmpty else { return ["not judged (no judge configured or reachable)"] }
        let missing = ratings.count - asked.filter { $0[criterion] != nil }.count
        return missing > 0 ? ["\(missing) items not judged"] : []
    }
}
