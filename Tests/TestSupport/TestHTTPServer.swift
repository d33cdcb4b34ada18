import Foundation
import HTTPClient

#if canImport(Glibc)
import Glibc
#endif

/// A request as the test server received it.
public struct TestHTTPRequest: Sendable {
    public var method: String
    /// The request target: path and query, still percent-encoded.
    public var target: String
    public var headers: HTTPHeaders
    public var body: [UInt8]

    public var path: String { String(target.prefix { $0 != "?" }) }
}

/// How the test server answers one request.
public indirect enum TestHTTPReply: Sendable {
    /// A complete response with `Content-Length`.
    case respond(status: Int, headers: HTTPHeaders = [:], body: [UInt8] = [])
    /// A body of `size` bytes (byte *i* is `i % 251`), written in 64 KiB pieces, never held whole.
    case generated(status: Int, size: Int)
    /// Announce `size` bytes, send `sent` of them, then close the connection.
    case truncated(size: Int, sent: Int)
    /// Close the connection without answering.
    case hangUp
    /// Wait, then reply.
    case delayed(Duration, TestHTTPReply)

    public static func text(_ status: Int, _ body: String) -> TestHTTPReply {
        .respond(status: status, headers: ["Content-Type": "text/plain; charset=utf-8"], body: Array(body.utf8))
    }

    /// The byte at `index` of a ``generated(status:size:)`` body.
    public static func generatedByte(at index: Int) -> UInt8 { UInt8(index % 251) }
}

/// A real HTTP/1.1 server on 127.0.0.1 and an ephemeral port, for tests.
///
/// Plain POSIX sockets, one thread per connection, keep-alive honoured: small enough to read,
/// real enough that libcurl speaks to it exactly as it speaks to AWS. The handler runs on the
/// connection's thread and may block (the fake Runtime API's long poll does).
public final class TestHTTPServer: @unchecked Sendable {
    public let port: Int
    private let listener: Int32
    private let handler: @Sendable (TestHTTPRequest) -> TestHTTPReply
    private let lock = NSLock()
    private var open: Set<Int32> = []
    private var stopped = false
    private var accepted = 0

    /// Starts listening at once.
    public init(_ handler: @escaping @Sendable (TestHTTPRequest) -> TestHTTPReply) throws {
        self.handler = handler
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { throw TestServerError.socket("socket: \(String(cString: strerror(errno)))") }
        var yes: Int32 = 1
        setsockopt(descriptor, SOL_SOCKET, SO_REUSEADDR, &yes, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard bound == 0, listen(descriptor, 64) == 0 else {
            close(descriptor)
            throw TestServerError.socket("bind/listen: \(String(cString: strerror(errno)))")
        }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(descriptor, $0, &length) }
        }
        self.listener = descriptor
        self.port = Int(UInt16(bigEndian: address.sin_port))
        let thread = Thread { [self] in acceptLoop() }
        thread.name = "test-http-accept-\(port)"
        thread.start()
    }

    /// `http://127.0.0.1:PORT`
    public var baseURL: String { "http://127.0.0.1:\(port)" }

    /// How many TCP connections the server has accepted.
    public var connectionsAccepted: Int { lock.withLock { accepted } }

    /// Stops accepting and closes every open connection (clients see a reset or EOF).
    ///
    /// Descriptors are only shut down here, under the lock; each is closed by the one thread that
    /// owns it (the accept thread for the listener, a connection thread for its socket). Closing
    /// from here could close a number that another socket in this process (libcurl's, another
    /// test's server) has just reused.
    public func stop() {
        lock.withLock {
            guard !stopped else { return }
            stopped = true
            shutdown(listener, Int32(SHUT_RDWR))
            for descriptor in open { shutdown(descriptor, Int32(SHUT_RDWR)) }
        }
    }

    private func acceptLoop() {
        defer { _ = lock.withLock { close(listener) } }
        while true {
            let connection = accept(listener, nil, nil)
            let failure = errno
            let registered: Bool = lock.withLock {
                guard !stopped else {
                    if connection >= 0 { close(connection) }
                    return false
                }
                guard connection >= 0 else { return true }
                open.insert(connection)
                accepted += 1
                return true
            }
            guard registered else { return }
            guard connection >= 0 else {
                if failure == EINTR || failure == ECONNABORTED { continue }
                return
            }
            let thread = Thread { [self] in serve(connection) }
            thread.name = "test-http-conn-\(port)"
            thread.start()
        }
    }

    private func serve(_ connection: Int32) {
        defer {
            lock.withLock {
                open.remove(connection)
                close(connection)
            }
        }
        var reader = SocketReader(descriptor: connection)
        while let request = reader.readRequest() {
            var reply = handler(request)
            while case .delayed(let duration, let next) = reply {
                Thread.sleep(forTimeInterval: Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18)
                reply = next
            }
            guard write(reply, for: request, to: connection) else { return }
            if request.headers["Connection"]?.lowercased() == "close" { return }
        }
    }

    /// Writes a reply; false when the connection must close.
    private func write(_ reply: TestHTTPReply, for request: TestHTTPRequest, to connection: Int32) -> Bool {
        let isHead = request.method == "HEAD"
        switch reply {
        case .hangUp, .delayed:
            return false
        case .respond(let status, let headers, let body):
            return send(connection, head(status, headers, length: body.count)) && (isHead || send(connection, body))
        case .generated(let status, let size):
            guard send(connection, head(status, [:], length: size)) else { return false }
            if isHead { return true }
            var offset = 0
            var chunk = [UInt8](repeating: 0, count: 65536)
            while offset < size {
                let count = min(chunk.count, size - offset)
                for index in 0..<count { chunk[index] = TestHTTPReply.generatedByte(at: offset + index) }
                guard send(connection, Array(chunk[0..<count])) else { return false }
                offset += count
            }
            return true
        case .truncated(let size, let sent):
            _ = send(connection, head(200, [:], length: size))
            _ = send(connection, [UInt8](repeating: 0x61, count: sent))
            return false
        }
    }

    private func head(_ status: Int, _ headers: HTTPHeaders, length: Int) -> [UInt8] {
        var text = "HTTP/1.1 \(status) \(reason(status))\r\nContent-Length: \(length)\r\n"
        for field in headers where field.name.lowercased() != "content-length" {
            text += "\(field.name): \(field.value)\r\n"
        }
        return Array((text + "\r\n").utf8)
    }

    private func send(_ connection: Int32, _ bytes: [UInt8]) -> Bool {
        var offset = 0
        while offset < bytes.count {
            let written = bytes.withUnsafeBytes {
                Glibc.send(connection, $0.baseAddress! + offset, bytes.count - offset, Int32(MSG_NOSIGNAL))
            }
            if written < 0 {
                if errno == EINTR { continue }
                return false
            }
            offset += written
        }
        return true
    }

    private func reason(_ status: Int) -> String {
        switch status {
        case 200: "OK"
        case 202: "Accepted"
        case 204: "No Content"
        case 302: "Found"
        case 400: "Bad Request"
        case 403: "Forbidden"
        case 404: "Not Found"
        case 413: "Payload Too Large"
        case 500: "Internal Server Error"
        case 503: "Service Unavailable"
        default: "Status"
        }
    }
}

public enum TestServerError: Error, CustomStringConvertible {
    case socket(String)
    public var description: String {
        switch self { case .socket(let message): "test server: \(message)" }
    }
}

/// Reads HTTP/1.1 requests from a socket (Content-Length bodies; what libcurl sends here).
private struct SocketReader {
    let descriptor: Int32
    private var buffer: [UInt8] = []

    init(descriptor: Int32) { self.descriptor = descriptor }

    mutating func readRequest() -> TestHTTPRequest? {
        var headerEnd: Int?
        while headerEnd == nil {
            headerEnd = find([13, 10, 13, 10])
            if headerEnd == nil, !fill() { return nil }
        }
        let head = String(decoding: buffer[0..<headerEnd!], as: UTF8.self)
        buffer.removeFirst(headerEnd! + 4)
        var lines = head.components(separatedBy: "\r\n")
        let requestLine = lines.removeFirst().split(separator: " ")
        guard requestLine.count >= 2 else { return nil }
        var headers = HTTPHeaders()
        for line in lines {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers.add(String(line[..<colon]), line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces))
        }
        let length = Int(headers["Content-Length"] ?? "0") ?? 0
        while buffer.count < length {
            if !fill() { return nil }
        }
        let body = Array(buffer[0..<length])
        buffer.removeFirst(length)
        return TestHTTPRequest(method: String(requestLine[0]), target: String(requestLine[1]), headers: headers, body: body)
    }

    private func find(_ pattern: [UInt8]) -> Int? {
        guard buffer.count >= pattern.count else { return nil }
        for start in 0...(buffer.count - pattern.count) where buffer[start] == pattern[0] {
            if Array(buffer[start..<start + pattern.count]) == pattern { return start }
        }
        return nil
    }

    private mutating func fill() -> Bool {
        var chunk = [UInt8](repeating: 0, count: 256 * 1024)
        while true {
            let count = recv(descriptor, &chunk, chunk.count, 0)
            if count > 0 {
                buffer.append(contentsOf: chunk[0..<count])
                return true
            }
            if count < 0 && errno == EINTR { continue }
            return false
        }
    }
}
