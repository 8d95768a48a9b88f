/// The number of elements of a shape read from a file, refusing negative
/// dimensions and products past 2⁴⁰ (no real tensor is that large; a
/// corrupt header often is), so no buffer is ever sized from garbage.
public func checkedElementCount(_ shape: [Int], of what: @autoclosure () -> String, file: String?) throws -> Int {
    var n = 1
    for d in shape {
        let (p, o) = n.multipliedReportingOverflow(by: d)
        guard d >= 0, !o, p < 1 << 40 else { throw KickError("\(what()) has absurd shape \(shape)", file: file) }
        n = p
    }
    return n
}
