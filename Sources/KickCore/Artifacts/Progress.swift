import Foundation

/// Progress on stderr: one line rewritten in place when stderr is a
/// terminal, plain log lines otherwise (files, CI).
public enum ProgressLine {
    public static let isTerminal = isatty(2) != 0

    /// Progress lines start with the running program's own name.
    public static func write(_ s: String) {
        let line = "\(ProcessInfo.processInfo.processName): \(s)"
        FileHandle.standardError.write(Data((isTerminal ? "\r\u{1B}[K" + line : line + "\n").utf8))
    }

    /// A 20-cell bar, or nothing when not on a terminal.
    public static func bar(_ done: Int, of total: Int) -> String {
        guard isTerminal, total > 0 else { return "" }
        let n = 20 * done / total
        return "[" + String(repeating: "#", count: n) + String(repeating: ".", count: 20 - n) + "]"
    }
}

/// Progress of a task run on stderr: stage, items done/total, tokens/s,
/// ETA, at most every 2 s, on one rewritten line when stderr is a terminal.
public final class ProgressMeter {
    let label: String
    let total: Int
    let show: Bool
    let start = Date()
    var done = 0
    var tokens = 0
    var lastPrint = Date.distantPast
    var printed = false

    public init(label: String, total: Int, show: Bool) {
        self.label = label
        self.total = total
        self.show = show
    }

    func step(_ n: Int = 1) {
        done += n
        if show, Date().timeIntervalSince(lastPrint) >= 2 || done == total { report() }
    }

    private func report() {
        lastPrint = Date()
        printed = true
        let el = Date().timeIntervalSince(start)
        let eta = done > 0 ? el / Double(done) * Double(total - done) : 0
        ProgressLine.write(String(format: "%@: %d/%d items, %.0f tok/s, %.0f s elapsed, ETA %.0f s",
                                  label, done, total, Double(tokens) / max(el, 1e-9), el, eta))
    }

    /// The last state (a run stopped early included), and the line ended on a terminal.
    func finish() {
        guard show, printed || (total > 0 && done < total) else { return }
        if done < total { report() }
        if ProgressLine.isTerminal { FileHandle.standardError.write(Data("\n".utf8)) }
    }
}

/// Progress of work measured in bytes (hashing a model's files), safe to
/// advance from several threads: done/total GB, MB/s and ETA every 2 s.
public final class ByteProgress: @unchecked Sendable {
    let label: String
    let total: Int
    let start = Date()
    var done = 0
    var lastPrint = Date()
    let lock = NSLock()

    public init(label: String, total: Int) {
        self.label = label
        self.total = total
    }

    public func advance(bytes n: Int) {
        lock.lock()
        defer { lock.unlock() }
        done += n
        guard Date().timeIntervalSince(lastPrint) >= 2 || done == total else { return }
        lastPrint = Date()
        let el = max(Date().timeIntervalSince(start), 1e-9), rate = Double(done) / el
        ProgressLine.write(String(format: "%@: %.2f/%.2f GB, %.0f MB/s, %.0f s elapsed, ETA %.0f s", label, Double(done) / 1e9,
                                  Double(total) / 1e9, rate / 1e6, el, rate > 0 ? Double(total - done) / rate : 0))
        if done == total, ProgressLine.isTerminal { FileHandle.standardError.write(Data("\n".utf8)) }
    }
}
