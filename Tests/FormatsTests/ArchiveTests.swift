import Foundation
import Testing
@testable import KickCore
import KickTestSupport

@Suite struct CheckpointArchiveTests {
    @Test func roundTripWithVerifiedHashes() throws {
        let dir = tempDir("arc")
        let cfg = dir + "/work/sparsegpt-2of4-50"
        try FileManager.default.createDirectory(atPath: cfg + "/logs", withIntermediateDirectories: true)
        let big = Data((0..<3_000_000).map { UInt8($0 % 253) })
        try big.write(to: URL(fileURLWithPath: cfg + "/model.kick"))
        try "{}".write(toFile: cfg + "/model.kick.manifest.json", atomically: true, encoding: .utf8)
        try "line\n".write(toFile: cfg + "/logs/factoid.jsonl", atomically: true, encoding: .utf8)
        let m = try CheckpointArchive.create(dir + "/a.tar.zst", folders: [cfg])
        #expect(m.members.map(\.path) == ["sparsegpt-2of4-50/logs/factoid.jsonl", "sparsegpt-2of4-50/model.kick",
                                          "sparsegpt-2of4-50/model.kick.manifest.json"])
        try CheckpointArchive.extract(dir + "/a.tar.zst", into: dir + "/out")
        #expect(try Data(contentsOf: URL(fileURLWithPath: dir + "/out/sparsegpt-2of4-50/model.kick")) == big)
        #expect(try String(contentsOfFile: dir + "/out/sparsegpt-2of4-50/logs/factoid.jsonl", encoding: .utf8) == "line\n")
        let left = try FileManager.default.contentsOfDirectory(atPath: dir + "/out")
        #expect(left == ["sparsegpt-2of4-50"])
    }

    /// Archives made by hand (Python's tarfile) that try to escape.
    @Test func hostileArchivesAreRefusedWithoutWritingOutside() throws {
        let dir = tempDir("hostile")
        let script = """
import tarfile, io, json, hashlib
def add(t, name, data=b'x', **kw):
    i = tarfile.TarInfo(name); i.size = len(data)
    for k, v in kw.items(): setattr(i, k, v)
    t.addfile(i, io.BytesIO(data) if i.isreg() else None)
def manifest(t, members):
    m = {'schema': 'kick.archive/1', 'members': [{'path': p, 'size': len(d), 'sha256': hashlib.sha256(d).hexdigest()} for p, d in members]}
    add(t, 'kick-archive.json', json.dumps(m).encode())
with tarfile.open('\(dir)/traversal.tar', 'w') as t: add(t, 'cfg/../../escaped.txt', b'evil'); manifest(t, [])
with tarfile.open('\(dir)/absolute.tar', 'w') as t: add(t, '\(dir)/absolute.txt', b'evil'); manifest(t, [])
with tarfile.open('\(dir)/symlink.tar', 'w') as t:
    add(t, 'cfg/link', b'', type=tarfile.SYMTYPE, linkname='\(dir)'); add(t, 'cfg/link/through.txt', b'evil'); manifest(t, [])
with tarfile.open('\(dir)/hardlink.tar', 'w') as t: add(t, 'cfg/h', b'', type=tarfile.LNKTYPE, linkname='/etc/passwd'); manifest(t, [])
with tarfile.open('\(dir)/tampered.tar', 'w') as t:
    add(t, 'cfg/model.kick', b'changed'); manifest(t, [('cfg/model.kick', b'original')])
with tarfile.open('\(dir)/missing.tar', 'w') as t:
    add(t, 'cfg/a', b'a'); manifest(t, [('cfg/a', b'a'), ('cfg/b', b'b')])
with tarfile.open('\(dir)/nomanifest.tar', 'w') as t: add(t, 'cfg/a', b'a')
"""
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["python3", "-c", script]
        try p.run()
        p.waitUntilExit()
        #expect(p.terminationStatus == 0)
        for name in ["traversal", "absolute", "symlink", "hardlink", "tampered", "missing", "nomanifest"] {
            let target = dir + "/target-\(name)"
            #expect(throws: KickError.self, "\(name)") { try CheckpointArchive.extract(dir + "/\(name).tar", into: target) }
            let placed = (try? FileManager.default.subpathsOfDirectory(atPath: target)) ?? []
            #expect(placed.isEmpty, "\(name) left \(placed)")
        }
        for f in ["escaped.txt", "absolute.txt", "through.txt"] {
            #expect(!FileManager.default.fileExists(atPath: dir + "/" + f))
            #expect(!FileManager.default.fileExists(atPath: (dir as NSString).deletingLastPathComponent + "/" + f))
        }
    }
}
