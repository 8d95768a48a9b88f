import Foundation

/// out[i] = silu(gate[i]) · up[i] for n values (SwiGLU).
@inline(__always)
public func swiglu(_ gate: UnsafePointer<Float>, _ up: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>, _ n: Int) {
    for i in 0..<n {
        let a = gate[i]
        out[i] = a / (1 + Foundation.exp(-a)) * up[i]
    }
}
