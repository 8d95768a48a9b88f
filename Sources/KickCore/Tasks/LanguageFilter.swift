/// Guesses a document's language from the share of each language's most
/// common function words: enough to keep the English documents of a
/// multilingual Wikipedia sample (the paragraph_segmentation task mixes
/// English, German, French, Spanish, Italian, Dutch, Portuguese and others).
public enum LanguageFilter {
    static let stopwords: [String: Set<String>] = [
        "en": ["the", "of", "and", "to", "in", "is", "was", "a", "for", "that", "with", "as", "on", "by", "it", "his", "are", "from",
               "at", "an", "be", "which", "this", "were", "or"],
        "de": ["der", "die", "und", "in", "den", "von", "zu", "das", "mit", "sich", "des", "auf", "für", "ist", "im", "dem", "nicht",
               "ein", "eine", "als", "auch", "es", "an", "er"],
        "fr": ["de", "la", "le", "et", "les", "des", "en", "un", "du", "une", "est", "dans", "par", "pour", "au", "sur", "que", "qui", "il"],
        "es": ["de", "la", "que", "el", "en", "y", "a", "los", "del", "se", "las", "por", "un", "para", "con", "una", "su", "al", "es"],
        "it": ["di", "e", "il", "la", "che", "in", "un", "per", "del", "della", "è", "a", "le", "si", "con", "una", "da", "dei"],
        "nl": ["de", "van", "een", "het", "en", "in", "is", "op", "te", "dat", "met", "voor", "zijn", "die", "werd"],
        "pt": ["de", "a", "o", "que", "e", "do", "da", "em", "um", "para", "com", "uma", "os", "no", "se", "na", "por"],
    ]

    /// The language whose function words make up the largest share of the
    /// words, if that share is at least `minShare`; nil otherwise.
    public static func guess(_ text: String, minShare: Double = 0.1) -> String? {
        var words: [Substring] = []
        var start: String.Index?
        for i in text.indices {
            if text[i].isLetter {
                if start == nil { start = i }
            } else if let s = start {
                words.append(text[s..<i])
                start = nil
            }
        }
        if let s = start { words.append(text[s...]) }
        guard !words.isEmpty else { return nil }
        var best: (String, Int)?
        let lowered = words.map { $0.lowercased() }
        for (lang, set) in stopwords.sorted(by: { $0.key < $1.key }) {
            let hits = lowered.reduce(0) { $0 + (set.contains($1) ? 1 : 0) }
            if best == nil || hits > best!.1 { best = (lang, hits) }
        }
        guard let (lang, hits) = best, Double(hits) / Double(words.count) >= minShare else { return nil }
        return lang
    }

    public static func isEnglish(_ text: String) -> Bool { guess(text) == "en" }
}
