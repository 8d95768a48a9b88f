import ArgumentParser
import Foundation
import KickCLI
import KickCore

struct ModelOptions: ParsableArguments {
    @Option(name: .long, help: "A model name with a models/<name>.json manifest, or a path to a .gguf file, a Hugging Face folder or a .kick checkpoint.")
    var model = "smollm2-135m"
    @Option(name: .customLong("model-dir"), help: "The Hugging Face folder of a named model (else MODEL_DIR or $KICK_MODELS/<name>).")
    var modelDir: String?

    func resolve(root: String) throws -> ModelResolver.Resolved { try ModelResolver(root: root).resolve(model, modelDir: modelDir) }
}

struct OriginalOptions: ParsableArguments {
    @Option(name: .long, help: "factoid from FreebaseQA JSON instead of the TriviaQA topics.") var freebaseqa: String?
    @Option(name: .customLong("mmlu-dir"), help: "mmlu from the original CSV folders (test/, dev/).") var mmluDir: String?
    @Option(name: .customLong("triviaqa-rc"), help: "icrqa open book from TriviaQA rc JSON.") var triviaqaRC: String?
    @Option(name: .customLong("triviaqa-evidence"), help: "The TriviaQA evidence folder (wikipedia/, web/).") var triviaqaEvidence: String?
    @Option(name: .customLong("cnndm-dir"), help: "summarization from CNN/DailyMail .story files.") var cnndmDir: String?
    @Option(name: .customLong("mtbench-questions"), help: "instruct from an MT-Bench question.jsonl.") var mtbenchQuestions: String?
    @Option(name: .long, help: "perplexity from a WikiText raw file.") var wikitext: String?

    var sources: OriginalSources {
        var o = OriginalSources()
        o.freebaseQA = freebaseqa; o.mmluDir = mmluDir; o.triviaQARC = triviaqaRC; o.triviaQAEvidence = triviaqaEvidence
        o.cnnDailyMailDir = cnndmDir; o.mtBenchQuestions = mtbenchQuestions; o.wikiText = wikitext
        return o
    }
}
