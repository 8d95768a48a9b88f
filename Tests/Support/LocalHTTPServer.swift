import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A one-thread HTTP/1.1 server on 127.0.0.1 for tests: every request gets
/// `respond(path, body)` as a 200 JSON answer (or the status it returns).
public final class LocalHTTPServer: @unchecked Sendable {
    public let port: UInt16
    private let fd: Int32
    private let lock = NSLock()
    private var _requests: [(path: String, body: Data)] = []
    public var requests: [(path: String, body: Data)] { lock.lock(); defer { lock.unlock() }; return _requests }

    public init(respond: @escaping @Sendable (String, Data) -> (Int, Data)) throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        self.fd = fd
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = 0
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        let ok = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        guard ok == 0, listen(fd, 8) == 0 else { port = 0; throw NSError(domain: "LocalHTTPServer", code: Int(errno)) }
        var bound = sockaddr_in()
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &bound) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
        port = UInt16(bigEndian: bound.sin_port)
        let listener = fd
        Thread.detachNewThread { [weak self] in
            while true {
                let c = accept(listener, nil, nil)
                if c < 0 { return }
                self?.serve(c, respond)
            }
        }
    }

    deinit { shutdown(fd, Int32(SHUT_RDWR)); close(fd) }

    public var url: String { "http://127.0.0.1:\(port)/v1" }

    private func serve(_ c: Int32, _ respond: (String, Data) -> (Int, Data)) {
        defer { close(c) }
        var buf = [UInt8](repeating: 0, count: 65536)
        var got = Data()
        var headerEnd: Range<Data.Index>?
        var contentLength = 0
        while true {
            let n = read(c, &buf, buf.count)
            if n <= 0 { return }
            got.append(contentsOf: buf[0..<n])
            if headerEnd == nil, let r = got.range(of: Data("\r\n\r\n".utf8)) {
                headerEnd = r
                let head = String(decoding: got[..<r.lowerBound], as: UTF8.self)
                for line in head.split(separator: "\r\n") where line.lowercased().hasPrefix("content-length:") {
                    contentLength = Int(line.split(separator: ":")[1].trimmingCharacters(in: .whitespaces)) ?? 0
                }
            }
            if let h = headerEnd, got.count - h.upperBound >= contentLength { break }
        }
        let head = String(decoding: got[..<headerEnd!.lowerBound], as: UTF8.self)
        let path = head.split(separator: " ").dropFirst().first.map(String.init) ?? "/"
        let body = Data(got[headerEnd!.upperBound...])
        lock.lock(); _requests.append((path, body)); lock.unlock()
        let (status, answer) = respond(path, body)
        var resp = Data("HTTP/1.1 \(status) X\r\nContent-Type: application/json\r\nContent-Length: \(answer.count)\r\nConnection: close\r\n\r\n".utf8)
        resp.append(answer)
        _ = resp.withUnsafeBytes { write(c, $0.baseAddress, $0.count) }
    }
}
