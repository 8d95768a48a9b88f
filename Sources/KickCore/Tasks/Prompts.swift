import Foundation

/// The paper's prompts (../shared/PROTOCOL.md, "Tasks and scoring").
public enum Prompts {
    public static func factoid(_ q: String) -> String { "Please give answer to this question: \(q)\nThe answer is " }

    public static let letters = ["A", "B", "C", "D"]

    static func mmluBlock(_ question: String, _ choices: [String]) -> String {
        var s = question
        for (l, c) in zip(letters, choices) { s += "\n\(l). \(c)" }
        return s + "\nAnswer:"
    }

    /// Hendrycks' header for a subject ("high_school_biology" → "high school biology").
    public static func mmluHeader(_ subject: String) -> String {
        "The following are multiple choice questions (with answers) about \(subject.replacingOccurrences(of: "_", with: " ")).\n\n"
    }

    /// The shared prefix (header + k shots) and the item's own suffix.
    public static func mmlu(_ item: TaskItem, shots k: Int) -> (prefix: String, suffix: String) {
        var p = mmluHeader(item.subset)
        for s in (item.shots ?? []).prefix(k) { p += mmluBlock(s.question, s.choices) + " \(s.answer)\n\n" }
        return (p, mmluBlock(item.question ?? "", item.choices ?? []))
    }

    public static func closedBook(_ q: String) -> String { "Answer these questions:\n\nQ: \(q)\nA:" }

    public static func openBook(_ q: String, evidence: String) -> String {
        "\(evidence.prefix(TriviaQARCReader.evidenceCharacters))\n\nBased on these texts, answer these questions:\n\nQ: \(q)\nA:"
    }

    public static func summarize(_ story: String) -> String {
        "Summarize the given story in less than 150 words while preserving high coherence, consistency, fluency, and relevance.\n\n\(story)"
    }
}
