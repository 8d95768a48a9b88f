import Foundation
import KickCore

// libFuzzer's driver over one of kick's parsers. KICK_FUZZ_TARGET names the
// parser (FuzzTargets.names). SwiftPM makes this file's code the program's
// entry, so it hands control to libFuzzer's own driver.

@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(_ argc: UnsafeMutablePointer<CInt>,
                         _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>,
                         _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt) -> CInt

let target = ProcessInfo.processInfo.environment["KICK_FUZZ_TARGET"] ?? ""
if target == "list" {
    print(FuzzTargets.names.joined(separator: "\n"))
    exit(0)
}
guard FuzzTargets.names.contains(target) else {
    FileHandle.standardError.write(Data("kick-fuzz: set KICK_FUZZ_TARGET to one of \(FuzzTargets.names.joined(separator: ", "))\n".utf8))
    exit(2)
}

/// The entry libFuzzer calls for each input (its own main, when linked, calls it too).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOne(_ bytes: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let name = ProcessInfo.processInfo.environment["KICK_FUZZ_TARGET"]!
    FuzzTargets.run(name, bytes.map { Data(bytes: $0, count: size) } ?? Data())
    return 0
}

var argc = CommandLine.argc
var argv = CommandLine.unsafeArgv
exit(LLVMFuzzerRunDriver(&argc, &argv, fuzzOne))
