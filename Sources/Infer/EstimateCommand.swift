import ArgumentParser
import Foundation
import KickCLI
import KickCore

struct Estimate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Estimate the wall time of a profile's grid on this machine: probe the dense model on each task's first items and each method on the first block; JSON on stdout, a line on stderr.")
    @OptionGroup var m: ModelOption
    @Option(name: .long, help: "The ingest folder (work/<MODEL>/ingest).") var ingest: String
    @Option(name: .long, help: "The model's work folder (work/<MODEL>); what is done there is not counted.") var work: String
    @Option(name: .long, help: "The profile.") var profile = "quick"
    @Option(name: .long, help: "The calibration set (.tok) for the compression probe.") var calib: String?
    @Option(name: .long, help: "Sequences decoding together, as the run will use.") var batch = 16
    @Option(name: .long, help: "Items per task in the probe.") var probeItems = 16
    @Option(name: .long, help: "Also write the estimate here.") var out: String?

    func validate() throws {
        guard batch >= 1, probeItems >= 1 else { throw ValidationError("--batch and --probe-items must be at least 1") }
    }

    func run() throws {
        let root = try ProjectRoot.find()
        let prof = try Profile.load(profile, root: root)
        let t0 = Date()
        let bundle = try ModelBundle.open(path: m.model)
        let model = try m.load(bundle)
        let load = Date().timeIntervalSince(t0)
        let cal = try calib.map { try CalibrationSet.read(path: $0) }
        let e = try RunEstimate.measure(bundle: bundle, model: model, loadSeconds: load, profile: prof, ingestDir: ingest, work: work, calibration: cal,
                                        batch: batch, probeItems: probeItems)
        // nothing left: the estimate of the run that did the work stays
        if let out, e.totalSeconds > 0 { try AtomicFile.writeJSON(e, to: out) }
        ProgressLine.write(e.totalSeconds > 0 ? e.summary : "estimate: nothing left to run")
        try printJSON(e)
    }
}
