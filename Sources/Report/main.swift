import ArgumentParser
import Foundation
import KickCLI
import KickCore

/// kick-report: results.csv, results.md and plots from every configuration's scores.
struct KickReport: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "kick-report",
        abstract: "Collect every configuration's scores under work/<MODEL>/ into results.csv, results.md and plots.")
    @Option(name: .long, help: "The model's work folder (work/<MODEL>).") var work: String
    @Option(name: .long, help: "The profile whose configurations to report (others found under infer/ are added).") var profile = "quick"
    @Option(name: .long, help: "Output folder (work/<MODEL>/report).") var out: String
    @OptionGroup var lock: LockOptions

    func run() throws {
        let held = try OutputLock(folder: out, wait: lock.wait)
        defer { withExtendedLifetime(held) {} }
        let root = try ProjectRoot.find()
        let prof = try Profile.load(profile, root: root)
        var configs = prof.configs
        let found = ((try? FileManager.default.contentsOfDirectory(atPath: work + "/infer")) ?? []).sorted()
        for c in found where !configs.contains(c) { configs.append(c) }
        let model = (work as NSString).lastPathComponent
        let b = ReportBuilder(work: work, outDir: out, configs: configs, model: model)
        let l = try b.load()
        guard !l.scores.isEmpty else { throw KickError("no scores found under \(work)/infer; run make infer first", file: work) }
        let rows = b.rows(l)
        try AtomicFile.write(([ResultRow.columns.joined(separator: ",")] + rows.map(\.csv)).joined(separator: "\n") + "\n", to: out + "/results.csv")
        let (names, rendered) = try ReportPlots(dir: out + "/plots").write(b, l)
        var md = b.markdown(l, plots: rendered ? names : [])
        if !rendered { md += "\ngnuplot is not installed (make deps installs gnuplot-nox): plot data and plots.gp are in plots/, not rendered.\n" }
        try AtomicFile.write(md, to: out + "/results.md")
        FileHandle.standardError.write(Data("kick-report: \(rows.count) rows from \(l.scores.count) configurations; \(names.count) plots\(rendered ? "" : " (not rendered)")\n".utf8))
        print(out + "/results.md")
    }
}

runMain(KickReport.self, tool: "kick-report")
