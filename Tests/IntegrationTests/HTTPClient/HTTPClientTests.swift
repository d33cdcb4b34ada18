import Foundation
import HTTPClient
import Testing
import TestSupport

/// The libcurl client against real local servers.
@Suite struct HTTPClientTests {
    /// Echoes what arrived: method, body length, a checksum of the body and selected headers.
    static func echo(_ request: TestHTTPRequest) -> TestHTTPReply {
        let sum = request.body.reduce(UInt64(0)) { ($0 &* 31) &+ UInt64($1) }
        let text = "\(request.method) \(request.target) \(request.body.count) \(sum) \(request.headers["X-Meterlake"] ?? "-") \(request.headers["Expect"] ?? "no-expect")"
        return .text(200, text)
    }

    static func checksum(_ bytes: [UInt8]) -> UInt64 { bytes.reduce(UInt64(0)) { ($0 &* 31) &+ UInt64($1) } }

    @Test func sendsMethodsHeadersAndBodiesAndReusesTheConnection() throws {
        let server = try TestHTTPServer(Self.echo)
        let client = try HTTPClient()
        let get = try client.send(HTTPRequest(url: server.baseURL + "/a?x=1", headers: ["X-Meterlake": "yes"]))
        #expect(get.status == 200)
        #expect(String(decoding: get.body, as: UTF8.self) == "GET /a?x=1 0 0 yes no-expect")
        #expect(get.headers["content-type"] == "text/plain; charset=utf-8")
        #expect(get.newConnections == 1)

        let payload = (0..<300_000).map { UInt8($0 % 253) }
        let post = try client.send(HTTPRequest(method: .post, url: server.baseURL + "/p", body: .bytes(payload)))
        #expect(String(decoding: post.body, as: UTF8.self) == "POST /p 300000 \(Self.checksum(payload)) - no-expect")
        #expect(post.newConnections == 0)

        let file = FileManager.default.temporaryDirectory.appendingPathComponent("upload-\(UUID().uuidString)")
        try Data(payload.reversed()).write(to: file)
        let put = try client.send(HTTPRequest(method: .put, url: server.baseURL + "/u", body: .file(path: file.path)))
        #expect(String(decoding: put.body, as: UTF8.self) == "PUT /u 300000 \(Self.checksum(payload.reversed())) - no-expect")

        let delete = try client.send(HTTPRequest(method: .delete, url: server.baseURL + "/d"))
        #expect(String(decoding: delete.body, as: UTF8.self).hasPrefix("DELETE /d 0"))
        let head = try client.send(HTTPRequest(method: .head, url: server.baseURL + "/h"))
        #expect(head.status == 200 && head.body.isEmpty && head.headers["Content-Length"] == "\("HEAD /h 0 0 - no-expect".utf8.count)")
        #expect(server.connectionsAccepted == 1)
    }

    @Test func streamsALargeBodyToAFileWithoutHoldingIt() throws {
        let size = 96 * 1024 * 1024 + 17
        let server = try TestHTTPServer { _ in .generated(status: 200, size: size) }
        let client = try HTTPClient()
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("download-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: file) }
        let response = try client.send(HTTPRequest(url: server.baseURL + "/big"), into: .file(path: file.path))
        #expect(response.status == 200)
        #expect(response.body.isEmpty)
        #expect(response.bodyByteCount == size)
        let handle = try FileHandle(forReadingFrom: file)
        defer { try? handle.close() }
        var offset = 0
        var mismatches = 0
        while let chunk = try handle.read(upToCount: 4 * 1024 * 1024), !chunk.isEmpty {
            for (index, byte) in chunk.enumerated() where byte != TestHTTPReply.generatedByte(at: offset + index) {
                mismatches += 1
            }
            offset += chunk.count
        }
        #expect(offset == size)
        #expect(mismatches == 0)
    }

    @Test func streamsToAClosureAndCapsMemoryBodies() throws {
        let server = try TestHTTPServer { _ in .generated(status: 200, size: 5_000_000) }
        let client = try HTTPClient()
        var seen = 0
        var chunks = 0
        _ = try client.send(HTTPRequest(url: server.baseURL + "/s"), into: .stream { chunk in
            seen += chunk.count
            chunks += 1
        })
        #expect(seen == 5_000_000)
        #expect(chunks > 1)
        #expect(throws: HTTPClientError.bodyTooLarge(url: server.baseURL + "/s", limit: 1_000_000)) {
            try client.send(HTTPRequest(url: server.baseURL + "/s?sig=SECRET"), into: .memory(limit: 1_000_000))
        }
        struct Stop: Error {}
        #expect(throws: HTTPClientError.self) {
            try client.send(HTTPRequest(url: server.baseURL + "/s"), into: .stream { _ in throw Stop() })
        }
        // The handle is still good after aborted transfers.
        #expect(try client.send(HTTPRequest(url: server.baseURL + "/s"), into: .memory(limit: 8_000_000)).body.count == 5_000_000)
    }

    @Test func keepsErrorBodiesInMemoryAndNeverWritesThemToTheFile() throws {
        let xml = "<Error><Code>NoSuchKey</Code><Message>The specified key does not exist.</Message></Error>"
        let server = try TestHTTPServer { _ in .text(500, xml) }
        let client = try HTTPClient()
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("error-\(UUID().uuidString)")
        let response = try client.send(HTTPRequest(url: server.baseURL + "/k"), into: .file(path: file.path))
        #expect(response.status == 500)
        #expect(String(decoding: response.body, as: UTF8.self) == xml)
        #expect(!FileManager.default.fileExists(atPath: file.path))
        #expect(throws: HTTPClientError.status(code: 500, url: server.baseURL + "/k", excerpt: xml)) {
            try response.requireSuccess()
        }
        #expect(HTTPClientError.status(code: 500, url: "", excerpt: "").isTransient)
        #expect(!HTTPClientError.status(code: 404, url: "", excerpt: "").isTransient)
    }

    @Test func timesOutOnASlowServer() throws {
        let server = try TestHTTPServer { _ in .delayed(.seconds(3), .text(200, "late")) }
        let client = try HTTPClient()
        let started = Date()
        let error = #expect(throws: HTTPClientError.self) {
            try client.send(HTTPRequest(url: server.baseURL + "/slow", timeout: .milliseconds(300)))
        }
        guard case .timeout(let url, _) = error else {
            Issue.record("expected a timeout, got \(String(describing: error))")
            return
        }
        #expect(url == server.baseURL + "/slow")
        #expect(Date().timeIntervalSince(started) < 2.5)
        #expect(error?.isTransient == true)
    }

    @Test func reportsARefusedConnectionWithoutTheQueryString() throws {
        let server = try TestHTTPServer { _ in .text(200, "") }
        let port = server.port
        server.stop()
        let client = try HTTPClient()
        let error = #expect(throws: HTTPClientError.self) {
            try client.send(HTTPRequest(url: "http://user:pw@127.0.0.1:\(port)/raw/a.csv?X-Amz-Signature=deadbeef"))
        }
        guard case .connect(let url, _) = error else {
            Issue.record("expected a refused connection, got \(String(describing: error))")
            return
        }
        #expect(url == "http://127.0.0.1:\(port)/raw/a.csv")
        #expect(error?.description.contains("deadbeef") == false)
        #expect(error?.description.contains("pw") == false)
    }

    @Test func reportsAConnectionClosedMidBody() throws {
        let server = try TestHTTPServer { _ in .truncated(size: 10_000, sent: 100) }
        let client = try HTTPClient()
        let error = #expect(throws: HTTPClientError.self) { try client.send(HTTPRequest(url: server.baseURL + "/t")) }
        guard case .connectionClosed = error else {
            Issue.record("expected connectionClosed, got \(String(describing: error))")
            return
        }
    }

    @Test func followsRedirectsOnlyWhenAsked() throws {
        let server = try TestHTTPServer { request in
            request.path == "/old" ? .respond(status: 302, headers: ["Location": "/new"]) : .text(200, "arrived at \(request.path)")
        }
        let client = try HTTPClient()
        let plain = try client.send(HTTPRequest(url: server.baseURL + "/old"))
        #expect(plain.status == 302)
        #expect(plain.headers["location"] == "/new")
        let followed = try client.send(HTTPRequest(url: server.baseURL + "/old", followRedirects: true))
        #expect(followed.status == 200)
        #expect(String(decoding: followed.body, as: UTF8.self) == "arrived at /new")
    }

    @Test func rejectsMalformedRequestsClearly() throws {
        let client = try HTTPClient()
        #expect(throws: HTTPClientError.self) { try client.send(HTTPRequest(url: "ftp://127.0.0.1/file")) }
        let error = #expect(throws: HTTPClientError.self) {
            try client.send(HTTPRequest(method: .put, url: "http://127.0.0.1:1/x", body: .file(path: "/nonexistent/body.bin")))
        }
        #expect(error?.description.contains("/nonexistent/body.bin") == true)
    }

    @Test func verifiesTLSPeersAndAcceptsAConfiguredCABundle() throws {
        let tls = try LocalTLSServer()
        defer { tls.stop() }
        let strict = try HTTPClient()
        let error = #expect(throws: HTTPClientError.self) { try strict.send(HTTPRequest(url: tls.url)) }
        guard case .tls = error else {
            Issue.record("an untrusted certificate must fail verification, got \(String(describing: error))")
            return
        }
        let trusting = try HTTPClient(configuration: .init(caBundlePath: tls.certificatePath))
        let response = try trusting.send(HTTPRequest(url: tls.url))
        #expect(response.status == 200)
        #expect(String(decoding: response.body, as: UTF8.self).contains("s_server"))
    }
}

extension HTTPClientTests {
    @Test func sendsDotSegmentsAndEncodedBytesExactlyAsGiven() throws {
        let server = try TestHTTPServer { request in .text(200, request.target) }
        let client = try HTTPClient()
        let target = "/lake/raw/manual/42/../../escape.csv/./x//y%2B%20z?a=%2F"
        let response = try client.send(HTTPRequest(url: server.baseURL + target))
        #expect(String(decoding: response.body, as: UTF8.self) == target)
    }
}

/// `openssl s_server -www` on loopback with a fresh self-signed certificate for 127.0.0.1.
final class LocalTLSServer {
    let certificatePath: String
    let url: String
    private let process: ChildProcess

    init() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("tls-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        certificatePath = directory.appendingPathComponent("cert.pem").path
        let keyPath = directory.appendingPathComponent("key.pem").path
        let openssl = "/usr/bin/openssl"
        let make = try ChildProcess(openssl, arguments: [
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
            "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", keyPath, "-out", certificatePath,
        ], environment: [:])
        guard try make.waitForExit() == 0 else { throw TestServerError.socket("openssl req failed: \(make.standardError)") }
        // A free port: bind to 0, read it, release it for s_server.
        let probe = try TestHTTPServer { _ in .hangUp }
        let port = probe.port
        probe.stop()
        process = try ChildProcess(openssl, arguments: [
            "s_server", "-accept", "127.0.0.1:\(port)", "-cert", certificatePath, "-key", keyPath, "-www", "-quiet",
        ], environment: [:])
        url = "https://127.0.0.1:\(port)/"
        // Wait until it listens.
        let client = try HTTPClient(configuration: .init(connectTimeout: .milliseconds(200), caBundlePath: certificatePath))
        for _ in 0..<100 {
            if (try? client.send(HTTPRequest(url: url, timeout: .seconds(2)))) != nil { return }
            Thread.sleep(forTimeInterval: 0.05)
        }
        throw TestServerError.socket("openssl s_server did not start: \(process.standardError)")
    }

    func stop() { process.terminate() }
}
