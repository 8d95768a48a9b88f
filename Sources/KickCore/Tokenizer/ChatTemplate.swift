/// The chat formats of the models kick knows, chosen by name from the model
/// manifest rather than by running a model's Jinja template.
public enum ChatTemplate: String, Sendable, Codable, CaseIterable {
    /// `<|im_start|>role\n…<|im_end|>\n` (SmolLM2, Qwen and other ChatML models).
    case chatml
    /// Vicuna v1.1: a system line, then `USER: … ASSISTANT: …</s>`.
    case vicuna
    /// No template: the turns joined as plain text.
    case none

    public struct Message: Sendable, Equatable {
        public var role: String
        public var content: String
        public init(role: String, content: String) {
            self.role = role
            self.content = content
        }
    }

    /// SmolLM2's template supplies this system turn when none is given.
    public static let smolLMSystem = "You are a helpful AI assistant named SmolLM, trained by Hugging Face"
    public static let vicunaSystem = "A chat between a curious user and an artificial intelligence assistant. The assistant gives helpful, detailed, and polite answers to the user's questions."

    /// The prompt text for these turns, ending where the assistant speaks
    /// next. Special tokens appear as text; encode with parseSpecial.
    public func render(_ messages: [Message], defaultSystem: String? = nil) -> String {
        switch self {
        case .chatml:
            var msgs = messages
            if msgs.first?.role != "system", let s = defaultSystem { msgs.insert(.init(role: "system", content: s), at: 0) }
            var out = ""
            for m in msgs { out += "<|im_start|>\(m.role)\n\(m.content)<|im_end|>\n" }
            return out + "<|im_start|>assistant\n"
        case .vicuna:
            var out = messages.first?.role == "system" ? messages[0].content : (defaultSystem ?? Self.vicunaSystem)
            for m in messages where m.role != "system" {
                if m.role == "user" { out += " USER: \(m.content)" } else { out += " ASSISTANT: \(m.content)</s>" }
            }
            return out + " ASSISTANT:"
        case .none:
            return messages.map(\.content).joined(separator: "\n\n")
        }
    }

    /// Guesses the template from a GGUF's `tokenizer.chat_template` text.
    public static func detect(fromJinja text: String?) -> ChatTemplate? {
        guard let t = text else { return nil }
        if t.contains("<|im_start|>") { return .chatml }
        if t.contains("USER:") && t.contains("ASSISTANT:") { return .vicuna }
        return nil
    }
}
