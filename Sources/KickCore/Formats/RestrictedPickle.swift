import Foundation

/// A pickle interpreted, never executed: the opcodes a `torch.save`d state
/// dict uses (protocols 2-4), building plain values. A global is looked up
/// in `allowedGlobals`; any other (`os.system`, `builtins.eval`, …) stops
/// the read with an error naming it, before any tensor is touched. REDUCE
/// applies only the three callables a state dict needs, as data
/// constructors.
public enum RestrictedPickle {
    /// A storage a tensor points into: `data/<key>` in the archive.
    public struct StorageRef: Equatable, Sendable {
        public let key: String
        public let dtype: TorchDType
    }

    /// `torch._utils._rebuild_tensor_v2(storage, offset, size, stride, …)`.
    public struct TensorRef: Equatable, Sendable {
        public let storage: StorageRef
        public let offset: Int
        public let shape: [Int]
        public let strides: [Int]
    }

    public indirect enum Value {
        case none, bool(Bool), int(Int), float(Double), string(String), bytes([UInt8])
        case tuple([Value]), list([Value]), dict([(Value, Value)])
        case global(String)
        case storage(StorageRef)
        case tensor(TensorRef)
        case mark
    }

    static let rebuildTensor = "torch._utils._rebuild_tensor_v2"
    static let rebuildParameter = "torch._utils._rebuild_parameter"
    static let orderedDict = "collections.OrderedDict"

    /// Every global a state dict may name.
    public static let allowedGlobals: Set<String> = Set([rebuildTensor, rebuildParameter, orderedDict]
        + TorchDType.allCases.map { "torch.\($0.storageName)" })

    /// Reads a state dict: tensor names to tensor references, in file order.
    public static func stateDict(_ bytes: UnsafeRawBufferPointer, file: String) throws -> [(String, TensorRef)] {
        let v = try read(bytes, file: file)
        guard case .dict(let items) = v else { throw KickError("the pickle does not hold a dict of tensors", file: file, code: .malformed) }
        var out: [(String, TensorRef)] = []
        for (k, t) in items {
            guard case .string(let name) = k else { throw KickError("a state-dict key is not a string", file: file, code: .malformed) }
            guard case .tensor(let ref) = t else { continue }  // non-tensor entries (e.g. an int step count) carry no weights
            out.append((name, ref))
        }
        return out
    }

    /// Interprets the whole pickle and returns the value STOP leaves.
    public static func read(_ bytes: UnsafeRawBufferPointer, file: String) throws -> Value {
        var c = ByteCursor(bytes, file: file)
        var stack: [Value] = []
        var marks: [Int] = []
        var memo: [Int: Value] = [:]
        func fail(_ why: String) -> KickError { KickError("pickle: \(why) (byte \(c.offset))", file: file, code: .malformed) }
        func pop() throws -> Value {
            guard let v = stack.popLast() else { throw fail("stack underflow") }
            return v
        }
        func popMark() throws -> [Value] {
            guard let m = marks.popLast(), m <= stack.count else { throw fail("no MARK to pop to") }
            let items = Array(stack[m...])
            stack.removeSubrange(m...)
            return items
        }
        func line() throws -> String {
            var s: [UInt8] = []
            while true {
                let b = try c.read(UInt8.self, "pickle text line")
                if b == 0x0A { break }
                s.append(b)
                if s.count > 4096 { throw fail("text line longer than 4096 bytes") }
            }
            return String(decoding: s, as: UTF8.self)
        }
        func text(_ n: Int) throws -> String { String(decoding: try c.readBytes(n, "pickle string"), as: UTF8.self) }
        func global(_ module: String, _ name: String) throws -> Value {
            let qualified = "\(module).\(name)"
            guard allowedGlobals.contains(qualified) else {
                throw KickError("the pickle calls \(qualified), which a PyTorch state dict never needs; refused (kick interprets only "
                                + "tensors, storages and OrderedDict)", file: file, code: .refused)
            }
            return .global(qualified)
        }
        func length(_ v: some FixedWidthInteger) throws -> Int {
            guard v >= 0, Int(v) <= c.bytes.count - c.offset else { throw fail("length \(v) runs past the pickle") }
            return Int(v)
        }

        while true {
            let op = try c.read(UInt8.self, "pickle opcode")
            switch op {
            case 0x80: _ = try c.read(UInt8.self, "protocol")                           // PROTO
            case 0x95: _ = try c.read(UInt64.self, "frame length")                      // FRAME
            case 0x2E: return try pop()                                                 // STOP
            case 0x28: marks.append(stack.count)                                        // MARK
            case 0x7D: stack.append(.dict([]))                                          // EMPTY_DICT
            case 0x5D: stack.append(.list([]))                                          // EMPTY_LIST
            case 0x29: stack.append(.tuple([]))                                         // EMPTY_TUPLE
            case 0x4E: stack.append(.none)                                              // NONE
            case 0x88: stack.append(.bool(true))                                        // NEWTRUE
            case 0x89: stack.append(.bool(false))                                       // NEWFALSE
            case 0x4B: stack.append(.int(Int(try c.read(UInt8.self, "BININT1"))))       // BININT1
            case 0x4D: stack.append(.int(Int(try c.read(UInt16.self, "BININT2"))))      // BININT2
            case 0x4A: stack.append(.int(Int(try c.read(Int32.self, "BININT"))))        // BININT
            case 0x8A:                                                                  // LONG1
                let n = Int(try c.read(UInt8.self, "LONG1 length"))
                guard n <= 8 else { throw fail("integer of \(n) bytes") }
                let b = try c.readBytes(n, "LONG1")
                var v: Int64 = 0
                for (i, x) in b.enumerated() { v |= Int64(x) << (8 * i) }
                if n > 0, n < 8, b[n - 1] & 0x80 != 0 { v -= Int64(1) << (8 * n) }
                stack.append(.int(Int(v)))
            case 0x47:                                                                  // BINFLOAT (big-endian)
                stack.append(.float(Double(bitPattern: UInt64(bigEndian: try c.read(UInt64.self, "BINFLOAT").littleEndian))))
            case 0x58: stack.append(.string(try text(try length(try c.read(UInt32.self, "BINUNICODE length")))))
            case 0x8C: stack.append(.string(try text(Int(try c.read(UInt8.self, "SHORT_BINUNICODE length")))))
            case 0x8D: stack.append(.string(try text(try length(try c.read(UInt64.self, "BINUNICODE8 length")))))
            case 0x54: stack.append(.string(try text(try length(try c.read(UInt32.self, "BINSTRING length")))))
            case 0x55: stack.append(.string(try text(Int(try c.read(UInt8.self, "SHORT_BINSTRING length")))))
            case 0x42: stack.append(.bytes([UInt8](try c.readBytes(try length(try c.read(UInt32.self, "BINBYTES length")), "BINBYTES"))))
            case 0x43: stack.append(.bytes([UInt8](try c.readBytes(Int(try c.read(UInt8.self, "SHORT_BINBYTES length")), "SHORT_BINBYTES"))))
            case 0x71: memo[Int(try c.read(UInt8.self, "BINPUT"))] = stack.last           // BINPUT
            case 0x72: memo[Int(try c.read(UInt32.self, "LONG_BINPUT"))] = stack.last      // LONG_BINPUT
            case 0x94: memo[memo.count] = stack.last                                       // MEMOIZE
            case 0x68, 0x6A:                                                               // BINGET, LONG_BINGET
                let i = op == 0x68 ? Int(try c.read(UInt8.self, "BINGET")) : Int(try c.read(UInt32.self, "LONG_BINGET"))
                guard let v = memo[i] else { throw fail("memo \(i) was never stored") }
                stack.append(v)
            case 0x74: stack.append(.tuple(try popMark()))                                 // TUPLE
            case 0x85: stack.append(.tuple([try pop()]))                                   // TUPLE1
            case 0x86: let b = try pop(), a = try pop(); stack.append(.tuple([a, b]))      // TUPLE2
            case 0x87: let z = try pop(), b = try pop(), a = try pop(); stack.append(.tuple([a, b, z]))  // TUPLE3
            case 0x63:                                                                     // GLOBAL
                let module = try line(), name = try line()
                stack.append(try global(module, name))
            case 0x93:                                                                     // STACK_GLOBAL
                guard case .string(let name) = try pop(), case .string(let module) = try pop() else { throw fail("STACK_GLOBAL needs two strings") }
                stack.append(try global(module, name))
            case 0x51:                                                                     // BINPERSID
                stack.append(try persistent(try pop(), fail))
            case 0x52:                                                                     // REDUCE
                let args = try pop(), callable = try pop()
                stack.append(try reduce(callable, args, fail))
            case 0x62:                                                                     // BUILD
                _ = try pop()  // an OrderedDict's __dict__ (`_metadata`): versions, no weights
                guard let top = stack.last, case .dict = top else { throw fail("BUILD on something other than a dict") }
            case 0x73:                                                                     // SETITEM
                let v = try pop(), k = try pop()
                guard case .dict(var d) = try pop() else { throw fail("SETITEM on something other than a dict") }
                d.append((k, v))
                stack.append(.dict(d))
            case 0x75:                                                                     // SETITEMS
                let items = try popMark()
                guard items.count % 2 == 0 else { throw fail("SETITEMS with an odd number of items") }
                guard case .dict(var d) = try pop() else { throw fail("SETITEMS on something other than a dict") }
                for i in stride(from: 0, to: items.count, by: 2) { d.append((items[i], items[i + 1])) }
                stack.append(.dict(d))
            case 0x61:                                                                     // APPEND
                let v = try pop()
                guard case .list(var l) = try pop() else { throw fail("APPEND on something other than a list") }
                l.append(v)
                stack.append(.list(l))
            case 0x65:                                                                     // APPENDS
                let items = try popMark()
                guard case .list(var l) = try pop() else { throw fail("APPENDS on something other than a list") }
                l += items
                stack.append(.list(l))
            default:
                throw fail(String(format: "opcode 0x%02X is not one a state dict uses", op))
            }
        }
    }

    /// `('storage', torch.HalfStorage, key, location, numel)`.
    private static func persistent(_ pid: Value, _ fail: (String) -> KickError) throws -> Value {
        guard case .tuple(let t) = pid, t.count >= 3, case .string("storage") = t[0], case .global(let type) = t[1],
              case .string(let key) = t[2] else { throw fail("a persistent id that is not a storage") }
        guard let dtype = TorchDType.allCases.first(where: { "torch.\($0.storageName)" == type }) else { throw fail("unknown storage \(type)") }
        guard !key.isEmpty, key.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" }) else { throw fail("storage key \(key) is not a plain name") }
        return .storage(StorageRef(key: key, dtype: dtype))
    }

    private static func reduce(_ callable: Value, _ args: Value, _ fail: (String) -> KickError) throws -> Value {
        guard case .global(let f) = callable, case .tuple(let a) = args else { throw fail("REDUCE of something other than a known global") }
        switch f {
        case orderedDict:
            return .dict([])
        case rebuildParameter:
            guard let first = a.first, case .tensor = first else { throw fail("_rebuild_parameter without a tensor") }
            return first
        case rebuildTensor:
            guard a.count >= 4, case .storage(let s) = a[0], case .int(let offset) = a[1],
                  case .tuple(let size) = a[2], case .tuple(let stride) = a[3] else {
                throw fail("_rebuild_tensor_v2 arguments are not (storage, offset, size, stride, …)")
            }
            let shape = try size.map { v -> Int in guard case .int(let i) = v else { throw fail("a tensor size is not an integer") }; return i }
            let strides = try stride.map { v -> Int in guard case .int(let i) = v else { throw fail("a tensor stride is not an integer") }; return i }
            guard shape.count == strides.count else { throw fail("a tensor has \(shape.count) sizes but \(strides.count) strides") }
            return .tensor(TensorRef(storage: s, offset: offset, shape: shape, strides: strides))
        default:
            throw fail("\(f) cannot be called")
        }
    }
}

/// The element types of PyTorch storages. kick reads the floating ones it
/// runs (f32, f16, bf16); the rest are recognised so a state dict holding
/// one (an int64 buffer) still opens.
public enum TorchDType: String, CaseIterable, Sendable {
    case f32, f16, bf16, f64, i64, i32, i16, i8, u8, bool

    var storageName: String {
        switch self {
        case .f32: "FloatStorage"
        case .f16: "HalfStorage"
        case .bf16: "BFloat16Storage"
        case .f64: "DoubleStorage"
        case .i64: "LongStorage"
        case .i32: "IntStorage"
        case .i16: "ShortStorage"
        case .i8: "CharStorage"
        case .u8: "ByteStorage"
        case .bool: "BoolStorage"
        }
    }

    public var size: Int {
        switch self {
        case .f64, .i64: 8
        case .f32, .i32: 4
        case .f16, .bf16, .i16: 2
        case .i8, .u8, .bool: 1
        }
    }

    /// The dense type kick reads, nil for the others.
    public var dense: SafetensorsDType? {
        switch self {
        case .f32: .f32
        case .f16: .f16
        case .bf16: .bf16
        default: nil
        }
    }
}
