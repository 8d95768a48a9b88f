import ArgumentParser
import Foundation
import KickCLI
import KickCore

struct Perplexity: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: """
        Perplexity: mean NLL over every token after the first, and its exp. With --text-file, the pruning papers' protocol: \
        the text cut into non-overlapping windows of --window tokens, every token after the first of each window scored.
        """)
    @OptionGroup var m: ModelOption
    @Option(name: .long, help: "Comma-separated token ids (at least two).") var tokens: String?
    @Option(name: .long, help: "A text file to score instead of --tokens.") var textFile: String?
    @Option(name: .long, help: "A calibration .tok file to score, window by window (in-sample check for compression).") var calib: String?
    @Option(name: .long, help: "Window length for --text-file (default: the model's context length).") var window: Int?
    @Option(name: .long, help: "Score at most this many windows.") var maxWindows: Int?

    func validate() throws {
        guard [tokens == nil, textFile == nil, calib == nil].filter({ !$0 }).count == 1 else {
            throw ValidationError("give exactly one of --tokens, --text-file and --calib")
        }
        if let w = window, w < 2 { throw ValidationError("--window must be at least 2") }
        if let n = maxWindows, n < 1 { throw ValidationError("--max-windows must be at least 1 (got \(n))") }
    }

    func run() throws {
        let bundle = try ModelBundle.open(path: m.model)
        if let tokens {
            let ids = try parseTokens(tokens)
            guard ids.count >= 2 else { throw ValidationError("perplexity needs at least two tokens") }
            try checkVocab(ids, bundle)
            let p = Scoring.perplexity(try m.load(bundle), tokens: ids)
            try printJSON(["mean_nll": p.meanNLL, "perplexity": p.perplexity, "scored_tokens": p.tokens])
            return
        }
        var ids: [Int]
        var w = window ?? bundle.config.contextLength
        if let calib {
            let cal = try CalibrationSet.read(path: calib)
            guard cal.tokenizerIdentity == bundle.tokenizer.identity else { throw KickError("made with another tokenizer", file: calib) }
            ids = Array(cal.windows.joined())
            w = cal.length
        } else {
            guard let data = try RegularFile.contents(atPath: textFile!) else { throw KickError("cannot read", file: textFile!) }
            ids = bundle.tokenizer.encode(String(decoding: data, as: UTF8.self))
        }
        guard w <= bundle.config.contextLength else {
            throw ValidationError("--window \(w) exceeds the model's context length \(bundle.config.contextLength)")
        }
        guard ids.count >= w else {
            throw KickError("the text has \(ids.count) tokens, fewer than one window of \(w): nothing to score (give a shorter --window)", file: calib ?? textFile)
        }
        let model = try m.load(bundle)
        let t0 = Date()
        let p = Scoring.windowedPerplexity(model, tokens: ids, window: w, maxWindows: maxWindows)
        try printJSON(["mean_nll": p.meanNLL, "perplexity": p.perplexity, "scored_tokens": p.tokens, "window": w,
                   "windows": p.tokens / (w - 1), "text_tokens": ids.count, "seconds": Date().timeIntervalSince(t0),
                   "protocol": "non-overlapping windows, every token after the first of each window"])
    }
}
