import Foundation
import Synchronization

/// The engine's own worker threads, one per core the BLAS may use, which
/// spin briefly between jobs and then sleep.
///
/// Why not OpenBLAS's threads: between two matrix products the engine
/// runs attention and SwiGLU, and those loops could only use one core while
/// OpenBLAS's idle workers spin on the other. With this team the forward
/// pass splits every linear layer by weight panels (`PackedWeight.apply`)
/// and attention by sequence and head on the same threads, so every phase
/// of a decode step uses every core.
///
/// A part's result never depends on which thread ran it: parts are fixed
/// by the caller, so the output is the same for any thread count.
public final class ThreadTeam: @unchecked Sendable {
    /// As many threads as OpenBLAS was told to use (OPENBLAS_NUM_THREADS,
    /// else every core), counting the calling thread.
    public static let shared = ThreadTeam(size: max(1, BLAS.configuredThreads))

    /// `shared` when it has more than one thread; nil otherwise, and the
    /// caller then runs every part itself.
    public static var sharedIfParallel: ThreadTeam? { shared.size > 1 ? shared : nil }

    public let size: Int
    private let generation = Atomic<Int>(0)
    private let nextPart = Atomic<Int>(0)
    private let unfinished = Atomic<Int>(0)
    private let sleepers = Atomic<Int>(0)
    private let inUse = Atomic<Bool>(false)
    private let wake = NSCondition()
    private var parts = 0
    private var job: ((_ part: Int, _ thread: Int) -> Void)?
    /// How long an idle worker spins before it sleeps: longer than the gaps
    /// between a decode loop's forwards, short enough not to burn a core.
    private let spinNanoseconds: UInt64 = 3_000_000

    private let started = Atomic<Int>(0)

    /// Returns once every worker runs: until then `forEach` would run all
    /// parts on the caller and then wait for a worker that has not started
    /// (a short benchmark measured only that wait).
    init(size: Int) {
        self.size = size
        for t in 1..<max(size, 1) {
            let thread = Thread { [unowned self] in
                self.started.add(1, ordering: .releasing)
                self.workerLoop(t)
            }
            thread.name = "kick-team-\(t)"
            thread.start()
        }
        while started.load(ordering: .acquiring) < size - 1 { sched_yield() }
    }

    /// Runs body(part, thread) for every part in 0..<parts across the team
    /// and returns when all are done. `thread` (0..<size) indexes per-thread
    /// scratch. A call made while the team is busy (a nested call, or one
    /// from another thread) runs its parts on the calling thread alone.
    public func forEach(_ parts: Int, _ body: (_ part: Int, _ thread: Int) -> Void) {
        guard parts > 0 else { return }
        guard size > 1, parts > 1, inUse.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged else {
            for p in 0..<parts { body(p, 0) }
            return
        }
        defer { inUse.store(false, ordering: .releasing) }
        withoutActuallyEscaping(body) { body in
            self.parts = parts
            self.job = body
            nextPart.store(0, ordering: .relaxed)
            unfinished.store(size - 1, ordering: .relaxed)
            generation.add(1, ordering: .sequentiallyConsistent)
            if sleepers.load(ordering: .sequentiallyConsistent) > 0 {
                wake.lock()
                wake.broadcast()
                wake.unlock()
            }
            runParts(thread: 0)
            // the workers are computing; if they lost their cores to another
            // process, give ours up rather than spin through its time slice
            var spins = 0
            while unfinished.load(ordering: .acquiring) > 0 {
                spins &+= 1
                if spins > 4096 { sched_yield() }
            }
            self.job = nil
        }
    }

    private func runParts(thread: Int) {
        let body = job!
        while true {
            let p = nextPart.add(1, ordering: .relaxed).oldValue
            if p >= parts { return }
            body(p, thread)
        }
    }

    private func workerLoop(_ thread: Int) {
        var seen = 0
        while true {
            var spins = 0
            var start: UInt64 = 0
            while generation.load(ordering: .acquiring) == seen {
                spins &+= 1
                if spins & 1023 != 0 { continue }
                let now = DispatchTime.now().uptimeNanoseconds
                if start == 0 { start = now; continue }
                if now - start < spinNanoseconds { continue }
                wake.lock()
                sleepers.add(1, ordering: .sequentiallyConsistent)
                while generation.load(ordering: .sequentiallyConsistent) == seen { wake.wait() }
                sleepers.subtract(1, ordering: .sequentiallyConsistent)
                wake.unlock()
            }
            seen = generation.load(ordering: .acquiring)
            runParts(thread: thread)
            unfinished.subtract(1, ordering: .releasing)
        }
    }
}
