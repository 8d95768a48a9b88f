import Foundation

/// gnuplot plots from data files the report writes: each task's headline
/// metric against sparsity (one line per method, dense as a reference line,
/// N:M and GPTQ as points), and every task relative to dense beside
/// perplexity, so "perplexity barely moves while knowledge collapses" shows.
public struct ReportPlots {
    public let dir: String

    public init(dir: String) { self.dir = dir }

    public static var gnuplotAvailable: Bool {
        ProcessInfo.processInfo.environment["PATH"]?.split(separator: ":").contains { FileManager.default.isExecutableFile(atPath: "\($0)/gnuplot") } ?? false
    }

    /// Writes data files and scripts; renders SVG and PNG when gnuplot exists. Returns the plot names.
    public func write(_ b: ReportBuilder, _ l: ReportBuilder.Loaded) throws -> (names: [String], rendered: Bool) {
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let methods = ["magnitude", "wanda", "sparsegpt"].filter { m in b.configs.contains { ConfigDescription($0).method == m } }
        var names: [String] = []
        var scripts: [String] = []
        for task in b.registry.tasks {
            let t = task.name, h = task.headline
            guard let dense = b.value(l, "dense", t, h.metric, h.subset)?.value else { continue }
            var data = "# level"
            for m in methods { data += " \(m)" }
            data += "\n"
            let levels = Set(b.configs.compactMap { c -> Int? in let d = ConfigDescription(c); return d.pattern == "unstructured" ? d.level : nil }).sorted()
            for lv in [0] + levels {
                data += "\(lv)"
                for m in methods {
                    let c = lv == 0 ? "dense" : "\(m)-unstructured-\(lv)"
                    data += " " + (b.value(l, c, t, h.metric, h.subset).map { String($0.value) } ?? "NaN")
                }
                data += "\n"
            }
            try AtomicFile.write(data, to: "\(dir)/\(t).dat")
            var points = "# label x value\n"
            for c in b.configs {
                let d = ConfigDescription(c)
                guard d.pattern.contains(":") || d.method == "gptq", let v = b.value(l, c, t, h.metric, h.subset)?.value else { continue }
                // N:M at its 50% sparsity; GPTQ prunes nothing, so at 0
                points += "\"\(c)\" \(d.level ?? 0) \(v)\n"
            }
            try AtomicFile.write(points, to: "\(dir)/\(t).points.dat")
            var plot = "set title \"\(h.label)\"\nset xlabel \"unstructured sparsity (%)\"\nset ylabel \"\(h.metric)\"\nset key outside right\nset grid\n"
            // perplexity spans orders of magnitude once a method collapses
            if !h.higherIsBetter { plot += "set logscale y\n" }
            plot += "plot " + methods.enumerated().map { "\"\(t).dat\" using 1:\($0.offset + 2) with linespoints title \"\($0.element)\"" }.joined(separator: ", ")
            plot += (methods.isEmpty ? "" : ", ") + "\(dense) with lines dashtype 2 lc rgb \"black\" title \"dense\""
            if let d = b.value(l, "dense", t, h.metric, h.subset), d.ciLow.isFinite, d.ciHigh.isFinite {
                // dense's 95% interval: a configuration inside it is not told apart by its own interval
                plot += ", \(d.ciLow) with lines dashtype 3 lc rgb \"gray\" title \"dense 95% CI\", \(d.ciHigh) with lines dashtype 3 lc rgb \"gray\" notitle"
            }
            if points.split(separator: "\n").count > 1 { plot += ", \"\(t).points.dat\" using 2:3:1 with labels point pt 7 offset 0.5,0.5 left rotate by 30 font \",7\" title \"N:M, GPTQ\"" }
            scripts.append(render(t, plot))
            names.append(t)
        }
        // every task relative to dense, and dense/perplexity, per method
        for m in methods {
            var data = "# level " + b.tasks.joined(separator: " ") + "\n"
            let levels = Set(b.configs.compactMap { c -> Int? in let d = ConfigDescription(c); return d.method == m && d.pattern == "unstructured" ? d.level : nil }).sorted()
            for lv in [0] + levels {
                data += "\(lv)"
                for task in b.registry.tasks {
                    let t = task.name, h = task.headline
                    let c = lv == 0 ? "dense" : "\(m)-unstructured-\(lv)"
                    if let v = b.value(l, c, t, h.metric, h.subset)?.value, let d = b.value(l, "dense", t, h.metric, h.subset)?.value, d > 0,
                       h.higherIsBetter || v > 0 {
                        data += " \(h.higherIsBetter ? v / d : d / v)"
                    } else { data += " NaN" }
                }
                data += "\n"
            }
            try AtomicFile.write(data, to: "\(dir)/relative-\(m).dat")
            var plot = "set title \"\(m): each task relative to dense (perplexity as dense/ppl)\"\nset xlabel \"unstructured sparsity (%)\"\nset ylabel \"fraction of dense\"\nset key outside right\nset grid\nset yrange [0:1.5]\n"
            plot += "plot " + b.tasks.enumerated().map { "\"relative-\(m).dat\" using 1:\($0.offset + 2) with linespoints \(b.headline($0.element)?.isAbility == false ? "lw 3 " : "")title \"\($0.element)\"" }.joined(separator: ", ")
            plot += ", 1 with lines dashtype 2 lc rgb \"black\" title \"dense\""
            scripts.append(render("relative-\(m)", plot))
            names.append("relative-\(m)")
        }
        // the paper's central picture: perplexity's change against each task's, one point per configuration
        let abilities = b.registry.tasks.filter { $0.headline.isAbility }
        if let pd = b.value(l, "dense", PerplexityTask.name, "perplexity", "all")?.value, pd > 0 {
            var data = "# config perplexity_ratio " + abilities.map { $0.name }.joined(separator: " ") + " (task metric / dense's)\n"
            var rows = 0
            for c in b.configs where c != "dense" {
                guard let p = b.value(l, c, PerplexityTask.name, "perplexity", "all")?.value else { continue }
                data += "\"\(c)\" \(p / pd)"
                for task in abilities {
                    let h = task.headline
                    if let v = b.value(l, c, task.name, h.metric, h.subset)?.value, let d = b.value(l, "dense", task.name, h.metric, h.subset)?.value, d > 0 {
                        data += " \(v / d)"
                    } else { data += " NaN" }
                }
                data += "\n"
                rows += 1
            }
            if rows > 0 {
                try AtomicFile.write(data, to: "\(dir)/perplexity-vs-tasks.dat")
                var plot = "set title \"where perplexity misleads: each configuration's perplexity against its task scores\"\nset xlabel \"perplexity / dense's\"\nset ylabel \"task metric / dense's\"\n"
                plot += "set logscale x\nset key outside right\nset grid\nset yrange [0:1.6]\n"
                plot += "plot " + abilities.enumerated().map { "\"perplexity-vs-tasks.dat\" using 2:\($0.offset + 3) with points pt \($0.offset + 5) ps 1.2 title \"\($0.element.name)\"" }.joined(separator: ", ")
                plot += ", 1 with lines dashtype 2 lc rgb \"black\" title \"dense\""
                scripts.append(render("perplexity-vs-tasks", plot))
                names.append("perplexity-vs-tasks")
            }
        }
        let all = scripts.joined(separator: "\n")
        try AtomicFile.write(all, to: "\(dir)/plots.gp")
        guard Self.gnuplotAvailable else { return (names, false) }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["gnuplot", "plots.gp"]
        p.currentDirectoryURL = URL(fileURLWithPath: dir)
        try p.run()
        p.waitUntilExit()
        guard p.terminationStatus == 0 else { throw KickError("gnuplot failed on plots.gp (exit \(p.terminationStatus))", file: "\(dir)/plots.gp") }
        return (names, true)
    }

    func render(_ name: String, _ plot: String) -> String {
        "set terminal svg size 800,480 dynamic noenhanced\nset output \"\(name).svg\"\n\(plot)\n" +
        "set terminal pngcairo size 800,480 noenhanced\nset output \"\(name).png\"\nreplot\nunset output\nreset\n"
    }
}
