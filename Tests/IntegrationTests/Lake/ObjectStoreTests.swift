import Core
import Lake
import LambdaRuntime
import Store
import Validation
import Cryptography
import Foundation
import HTTPClient
import Testing
import TestSupport

/// The moto servers Tests/run.sh starts (AWS itself cannot run here; moto answers S3's protocol).
enum Moto {
    static func variable(_ name: String) throws -> String {
        guard let value = ProcessInfo.processInfo.environment[name], !value.isEmpty else {
            throw MotoError.notRunning(name)
        }
        return value
    }

    /// A fresh bucket on the server that does not check signatures.
    static func openStore() throws -> S3ObjectStore {
        try store(endpoint: try variable("MOTO_S3_ENDPOINT"), key: "test", secret: "test")
    }

    /// A fresh bucket on the server that checks signatures.
    static func authStore(secret: String? = nil) throws -> S3ObjectStore {
        try store(endpoint: try variable("MOTO_S3_AUTH_ENDPOINT"), key: try variable("MOTO_S3_AUTH_KEY_ID"), secret: secret ?? (try variable("MOTO_S3_AUTH_SECRET")))
    }

    static func store(endpoint: String, key: String, secret: String, bucket: String? = nil) throws -> S3ObjectStore {
        var configuration = S3Configuration(
            bucket: bucket ?? "lake-\(UUID().uuidString.prefix(12).lowercased())", region: "us-east-1",
            credentials: AWSCredentials(accessKeyID: key, secretAccessKey: secret), endpoint: endpoint)
        configuration.baseDelay = .milliseconds(5)
        configuration.maximumDelay = .milliseconds(50)
        let store = try S3ObjectStore(configuration: configuration)
        if bucket == nil { try store.createBucket() }
        return store
    }
}

enum MotoError: Error, CustomStringConvertible {
    case notRunning(String)
    var description: String {
        switch self {
        case .notRunning(let name): "\(name) is not set: the S3 tests need the moto servers that Tests/run.sh starts (run the tests with Tests/run.sh)"
        }
    }
}

func scratchFile(_ bytes: [UInt8] = []) throws -> String {
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("obj-\(UUID().uuidString)").path
    try Data(bytes).write(to: URL(fileURLWithPath: path))
    return path
}

func contents(_ path: String) throws -> [UInt8] { Array(try Data(contentsOf: URL(fileURLWithPath: path))) }

/// One body of checks, run against every implementation of the port.
func exerciseStore(_ store: any ObjectStore) throws {
    let keys = [
        "raw/manual/42/2026-03-01/plain.csv",
        "raw/manual/42/2026-03-01/site 7 export.csv",
        "raw/manual/42/2026-03-01/a+b=c&d.csv",
        "raw/manual/42/2026-03-01/100%25 done%.csv",
        "raw/manual/42/2026-03-01/Zähler ☀️ 発電.csv",
        "raw/manual/42/../../escape.csv",
        "raw/manual/42/./dot//double.csv",
        "raw/manual/42/(1)!*';:@$,.csv",
    ]
    for (index, key) in keys.enumerated() {
        let body = Array("object \(index): \(key)\n".utf8)
        let stored = try store.put(key, body: .bytes(body), contentType: "text/csv")
        #expect(stored.size == Int64(body.count), "\(key)")
        let head = try #require(try store.head(key), "\(key)")
        #expect(head.size == Int64(body.count))
        let path = try scratchFile()
        let fetched = try store.get(key, to: path)
        #expect(try contents(path) == body, "\(key)")
        #expect(fetched.size == Int64(body.count))
    }
    let listed = try store.list(prefix: "raw/manual/42/").map(\.key)
    #expect(listed == keys.sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }, "\(listed)")
    #expect(try store.list(prefix: "raw/manual/42/2026-03-01/").count == 5)
    #expect(try store.list(prefix: "raw/manual/4/").isEmpty, "prefixes match whole segments only when they end in /")

    // Ranges are inclusive byte offsets.
    let rangePath = try scratchFile()
    _ = try store.get(keys[0], to: rangePath, range: 2...7)
    #expect(try contents(rangePath) == Array("object 0: ".utf8)[2...7].map { $0 })

    // Move: copy, then delete; the destination holds the bytes and the source is gone.
    let destination = "validated/2026-03-01/manual/42/2026-03-01/site 7 export.csv"
    try store.move(from: keys[1], to: destination)
    #expect(try store.head(keys[1]) == nil)
    let moved = try scratchFile()
    _ = try store.get(destination, to: moved)
    #expect(try contents(moved) == Array("object 1: \(keys[1])\n".utf8))
    // A move whose copy fails deletes nothing.
    #expect(throws: ObjectStoreError.noSuchKey(key: "raw/none.csv")) { try store.move(from: "raw/none.csv", to: "validated/none.csv") }
    #expect(try store.head(keys[0]) != nil)

    #expect(throws: ObjectStoreError.noSuchKey(key: "raw/missing.csv")) { try store.get("raw/missing.csv", to: try scratchFile()) }
    #expect(try store.head("raw/missing.csv") == nil)
    try store.delete("raw/missing.csv")
    try store.delete(keys[0])
    #expect(try store.head(keys[0]) == nil)

    // Bodies from files, larger than one buffer.
    let large = (0..<3_000_000).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ $0 >> 9) }
    let source = try scratchFile(large)
    let info = try store.put("raw/manual/42/big.bin", body: .file(path: source), contentType: nil)
    #expect(info.size == Int64(large.count))
    let copy = try scratchFile()
    _ = try store.get("raw/manual/42/big.bin", to: copy)
    #expect(SHA256.hash(try contents(copy)) == SHA256.hash(large))
}

@Suite struct LocalObjectStoreTests {
    @Test func hasTheSemanticsOfS3() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("lake-\(UUID().uuidString)").path
        let store = try LocalObjectStore(directory: directory)
        try exerciseStore(store)
        // Nothing escaped the directory, whatever the keys said.
        #expect(!FileManager.default.fileExists(atPath: directory + "/../escape.csv"))
        let parent = URL(fileURLWithPath: directory).deletingLastPathComponent().path
        #expect(!FileManager.default.fileExists(atPath: parent + "/escape.csv"))
    }

    @Test func neverFollowsASymbolicLinkOutOfTheLake() throws {
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("links-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: base) }
        let store = try LocalObjectStore(directory: base + "/lake")
        // A secret outside the lake, and a directory of them.
        try FileManager.default.createDirectory(atPath: base + "/outside", withIntermediateDirectories: true)
        try "secret,1\n".write(toFile: base + "/outside/secret.csv", atomically: true, encoding: .utf8)
        _ = try store.put("raw/manual/42/2026-03-01/real.csv", body: .bytes(Array("a,b\n".utf8)), contentType: nil)
        try FileManager.default.createSymbolicLink(atPath: base + "/lake/raw/manual/42/2026-03-01/link.csv",
                                                   withDestinationPath: base + "/outside/secret.csv")
        try FileManager.default.createSymbolicLink(atPath: base + "/lake/raw/manual/7", withDestinationPath: base + "/outside")

        let copy = try scratchFile()
        for key in ["raw/manual/42/2026-03-01/link.csv", "raw/manual/7/secret.csv"] {
            #expect(throws: ObjectStoreError.invalidKey(key: key, reason: LocalObjectStore.linkRefusal)) {
                try store.get(key, to: copy)
            }
            #expect(try store.head(key) == nil)
            #expect(throws: ObjectStoreError.invalidKey(key: key, reason: LocalObjectStore.linkRefusal)) {
                try store.copy(from: key, to: "quarantine/x/" + key)
            }
        }
        #expect(try contents(copy).isEmpty, "nothing of the secret was read")
        #expect(try store.list(prefix: "raw/").map(\.key) == ["raw/manual/42/2026-03-01/real.csv"])
        // The real file still reads.
        _ = try store.get("raw/manual/42/2026-03-01/real.csv", to: copy)
        #expect(try contents(copy) == Array("a,b\n".utf8))
    }

    /// A whole object reaches the caller as a second link to its file where it can be (no bytes
    /// copied, whatever the size), and that is a snapshot: replacing or deleting the key later
    /// leaves it as it was. Where it cannot be, the bytes are copied.
    @Test func aWholeGetIsALinkedSnapshotAndOtherwiseACopy() throws {
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("get-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: base) }
        let store = try LocalObjectStore(directory: base + "/lake")
        let key = "raw/manual/42/2026-03-01/a.csv"
        func links(_ path: String) -> (count: UInt, inode: UInt) {
            var info = stat()
            guard stat(path, &info) == 0 else { return (0, 0) }
            return (UInt(info.st_nlink), UInt(info.st_ino))
        }
        _ = try store.put(key, body: .bytes(Array("v1\n".utf8)), contentType: nil)
        let linked = base + "/linked"
        let info = try store.get(key, to: linked)
        let head = try store.head(key)
        #expect(info.size == 3 && info.etag == head?.etag)
        #expect(links(linked).count == 2 && links(linked).inode == links(base + "/lake/" + key).inode, "the object's own file")
        _ = try store.put(key, body: .bytes(Array("v2, longer\n".utf8)), contentType: nil)
        #expect(try contents(linked) == Array("v1\n".utf8), "a key written again is a new file")
        try store.delete(key)
        #expect(try contents(linked) == Array("v1\n".utf8) && links(linked).count == 1)

        _ = try store.put(key, body: .bytes(Array("v3\n".utf8)), contentType: nil)
        // A destination that exists is replaced (here by a link: the old file is not written into);
        // a range is copied.
        let existing = base + "/existing"
        try "a longer old body\n".write(toFile: existing, atomically: false, encoding: .utf8)
        #expect(try store.get(key, to: existing).size == 3)
        #expect(try contents(existing) == Array("v3\n".utf8) && links(existing).inode == links(base + "/lake/" + key).inode)
        unlink(existing)
        let ranged = base + "/ranged"
        #expect(try store.get(key, to: ranged, range: 1...2).size == 2)
        #expect(try contents(ranged) == Array("3\n".utf8) && links(ranged).count == 1)
        #expect(links(base + "/lake/" + key).count == 1, "the object was linked to nothing else")
        // A destination that is a link is replaced, not written through: a leftover link to a lake
        // file (another key's), and a symbolic link to a file outside.
        let other = "validated/2026-03-01/manual/42/2026-03-01/b.csv"
        _ = try store.put(other, body: .bytes(Array("keep\n".utf8)), contentType: nil)
        let leftover = base + "/leftover"
        _ = try store.get(other, to: leftover)
        let outside = base + "/outside"
        try "precious\n".write(toFile: outside, atomically: true, encoding: .utf8)
        let symbolic = base + "/symbolic"
        try FileManager.default.createSymbolicLink(atPath: symbolic, withDestinationPath: outside)
        for destination in [leftover, symbolic] {
            _ = try store.get(key, to: destination, range: 0...1)
            #expect(try contents(destination) == Array("v3".utf8))
        }
        #expect(try contents(base + "/lake/" + other) == Array("keep\n".utf8))
        #expect(try String(contentsOfFile: outside, encoding: .utf8) == "precious\n")
        // A file someone else owns is copied (its owner could swap the caller's entry for a link).
        if geteuid() == 0 {
            #expect(chown(base + "/lake/" + key, 65534, 65534) == 0)
            let foreign = base + "/foreign"
            #expect(try store.get(key, to: foreign).size == 3)
            #expect(try contents(foreign) == Array("v3\n".utf8) && links(foreign).count == 1)
            var info = stat()
            #expect(stat(foreign, &info) == 0 && info.st_uid == 0 && info.st_mode & 0o077 == 0, "the caller's own private file")
        }
        // Another file system (tmpfs, where there is one): copied.
        var here = stat(), shm = stat()
        if stat(base, &here) == 0, stat("/dev/shm", &shm) == 0, here.st_dev != shm.st_dev {
            let elsewhere = "/dev/shm/meterlake-get-\(UUID().uuidString)"
            defer { unlink(elsewhere) }
            #expect(try store.get(key, to: elsewhere).size == 3)
            #expect(try contents(elsewhere) == Array("v3\n".utf8) && links(elsewhere).count == 1)
        }
    }

    /// Writes, copies and deletes never go through a link either: a directory of the lake
    /// replaced by a link to the outside makes them fail, and nothing outside changes.
    @Test func neverWritesOrDeletesThroughASymbolicLink() throws {
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("links-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: base) }
        let store = try LocalObjectStore(directory: base + "/lake")
        let outside = base + "/outside"
        try FileManager.default.createDirectory(atPath: outside, withIntermediateDirectories: true)
        try "keep me\n".write(toFile: outside + "/precious", atomically: true, encoding: .utf8)
        _ = try store.put("raw/manual/42/2026-03-01/a.csv", body: .bytes(Array("a\n".utf8)), contentType: nil)
        // quarantine/2026-12-04/manual -> outside
        try FileManager.default.createDirectory(atPath: base + "/lake/quarantine/2026-12-04", withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: base + "/lake/quarantine/2026-12-04/manual", withDestinationPath: outside)
        let refusal = ObjectStoreError.invalidKey(key: "quarantine/2026-12-04/manual/authorized_keys", reason: LocalObjectStore.linkRefusal)
        #expect(throws: refusal) { _ = try store.put("quarantine/2026-12-04/manual/authorized_keys", body: .bytes([1]), contentType: nil) }
        #expect(throws: ObjectStoreError.invalidKey(key: "quarantine/2026-12-04/manual/a.csv", reason: LocalObjectStore.linkRefusal)) {
            try store.copy(from: "raw/manual/42/2026-03-01/a.csv", to: "quarantine/2026-12-04/manual/a.csv")
        }
        #expect(throws: ObjectStoreError.invalidKey(key: "quarantine/2026-12-04/manual/precious", reason: LocalObjectStore.linkRefusal)) {
            try store.delete("quarantine/2026-12-04/manual/precious")
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: outside) == ["precious"])
        #expect(try String(contentsOfFile: outside + "/precious", encoding: .utf8) == "keep me\n")
        // The staging directory replaced by a link: every write refuses.
        try FileManager.default.removeItem(atPath: base + "/lake/%tmp")
        try FileManager.default.createSymbolicLink(atPath: base + "/lake/%tmp", withDestinationPath: outside)
        #expect(throws: ObjectStoreError.invalidKey(key: "validated/x.csv", reason: LocalObjectStore.linkRefusal)) {
            _ = try store.put("validated/x.csv", body: .bytes([1]), contentType: nil)
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: outside) == ["precious"])
        #expect(try store.head("raw/manual/42/2026-03-01/a.csv") != nil, "the source is untouched")
    }

    @Test func theEnvironmentChoosesTheStore() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("lake-\(UUID().uuidString)").path
        #expect(try ObjectStores.make(environment: Environment(["METERLAKE_LAKE_DIR": directory, "METERLAKE_BUCKET": "b"])) is LocalObjectStore)
        #expect(throws: ConfigurationError.missing(name: "METERLAKE_BUCKET")) { try ObjectStores.make(environment: Environment([:])) }
        let s3 = try ObjectStores.make(environment: Environment([
            "METERLAKE_BUCKET": "b", "AWS_ACCESS_KEY_ID": "k", "AWS_SECRET_ACCESS_KEY": "s", "AWS_ENDPOINT_URL": "http://127.0.0.1:9000/",
        ]))
        #expect((s3 as? S3ObjectStore)?.configuration.endpoint == "http://127.0.0.1:9000")
    }
}

@Suite struct S3ObjectStoreTests {
    @Test func hasTheSameSemanticsOnMoto() throws {
        try exerciseStore(try Moto.openStore())
    }

    @Test func signsRequestsThatACheckingServerAccepts() throws {
        let store = try Moto.authStore()
        let body = Array("timestamp,energy_wh\n2026-03-01T06:00:00Z,1.5\n".utf8)
        _ = try store.put("raw/manual/42/2026-03-01/signed.csv", body: .bytes(body), contentType: "text/csv")
        #expect(try store.head("raw/manual/42/2026-03-01/signed.csv")?.size == Int64(body.count))
        let path = try scratchFile()
        _ = try store.get("raw/manual/42/2026-03-01/signed.csv", to: path)
        #expect(try contents(path) == body)
        try store.copy(from: "raw/manual/42/2026-03-01/signed.csv", to: "validated/2026-03-01/signed.csv")
        #expect(try store.list(prefix: "validated").map(\.key) == ["validated/2026-03-01/signed.csv"])
        try store.delete("validated/2026-03-01/signed.csv")

        // The same request with a wrong secret is refused: the checking is real.
        let wrong = try Moto.store(
            endpoint: try Moto.variable("MOTO_S3_AUTH_ENDPOINT"), key: try Moto.variable("MOTO_S3_AUTH_KEY_ID"),
            secret: "wrong-secret", bucket: store.configuration.bucket)
        #expect(throws: ObjectStoreError.signatureDoesNotMatch) { try wrong.get("raw/manual/42/2026-03-01/signed.csv", to: try scratchFile()) }
        // HEAD answers carry no body, so S3 can only say 403.
        #expect(throws: ObjectStoreError.accessDenied(key: "raw/manual/42/2026-03-01/signed.csv", message: "")) { try wrong.head("raw/manual/42/2026-03-01/signed.csv") }
        #expect(throws: ObjectStoreError.signatureDoesNotMatch) { try wrong.put("raw/x.csv", body: .bytes([1]), contentType: nil) }
        let unknown = try Moto.store(endpoint: try Moto.variable("MOTO_S3_AUTH_ENDPOINT"), key: "AKIAUNKNOWN", secret: "x", bucket: store.configuration.bucket)
        #expect(throws: ObjectStoreError.invalidAccessKeyID) { try unknown.put("raw/x.csv", body: .bytes([1]), contentType: nil) }
    }

    @Test func listsEveryPage() throws {
        let store = try Moto.openStore()
        store.listPageSize = 7
        for index in 0..<30 { _ = try store.put(String(format: "raw/manual/42/2026-03-01/%03d.csv", index), body: .bytes([UInt8(index)]), contentType: nil) }
        _ = try store.put("quarantine/other.csv", body: .bytes([1]), contentType: nil)
        let listed = try store.list(prefix: "raw/")
        #expect(listed.map(\.key) == (0..<30).map { String(format: "raw/manual/42/2026-03-01/%03d.csv", $0) })
        #expect(listed.allSatisfy { $0.size == 1 && $0.etag != nil })
    }

    @Test func presignedURLsWorkWithCurl() throws {
        let store = try Moto.openStore()
        let now = Int64(Date().timeIntervalSince1970)
        let key = "raw/manual/42/2026-03-01/upload via url.csv"
        let put = try store.presignedURL(method: "PUT", key: key, expires: 900, now: now)
        #expect(put.contains("X-Amz-Signature=") && put.contains("X-Amz-Expires=900") && !put.contains("test-secret"))
        let source = try scratchFile(Array("a,b\n1,2\n".utf8))
        let upload = try ChildProcess("/usr/bin/curl", arguments: ["-sf", "-X", "PUT", "--upload-file", source, put], environment: [:])
        #expect(try upload.waitForExit() == 0, "\(upload.standardError)")
        #expect(try store.head(key)?.size == 8)
        let get = try store.presignedURL(method: "GET", key: key, expires: 60, now: now)
        let download = try ChildProcess("/usr/bin/curl", arguments: ["-sf", get], environment: [:])
        #expect(try download.waitForExit() == 0)
        #expect(download.standardOutput == "a,b\n1,2\n")
        #expect(throws: ObjectStoreError.self) { try store.presignedURL(method: "GET", key: key, expires: 700_000, now: now) }
    }

    @Test func retriesSlowDownAndSucceedsOnTheThirdAttempt() throws {
        let upstream = try Moto.variable("MOTO_S3_ENDPOINT")
        let fault = try FaultProxy(upstream: upstream, failures: 2)
        let direct = try Moto.openStore()
        let store = try Moto.store(endpoint: fault.server.baseURL, key: "test", secret: "test", bucket: direct.configuration.bucket)
        _ = try store.put("raw/retried.csv", body: .bytes(Array("x".utf8)), contentType: nil)
        #expect(fault.requests == 3)
        #expect(try direct.head("raw/retried.csv")?.size == 1)

        let always = try FaultProxy(upstream: upstream, failures: .max)
        let doomed = try Moto.store(endpoint: always.server.baseURL, key: "test", secret: "test", bucket: direct.configuration.bucket)
        #expect(throws: ObjectStoreError.slowDown(message: "Please reduce your request rate.")) { try doomed.get("raw/retried.csv", to: try scratchFile()) }
        #expect(always.requests == 4, "maximumAttempts")
        // Permanent errors are not retried.
        let missing = try FaultProxy(upstream: upstream, failures: 0)
        let plain = try Moto.store(endpoint: missing.server.baseURL, key: "test", secret: "test", bucket: direct.configuration.bucket)
        #expect(throws: ObjectStoreError.noSuchKey(key: "raw/none.csv")) { try plain.get("raw/none.csv", to: try scratchFile()) }
        #expect(missing.requests == 1)
    }

    @Test func signaturesMatchBotocoreForTrickyKeys() throws {
        // botocore is the reference the vector set was cross-checked with; compare live.
        let keys = ["raw/site 7/a+b (1).csv", "raw/ü/%25 done.csv", "raw/../x/./y//z.csv", "raw/*=;,:@&$!'.csv"]
        let store = try S3ObjectStore(configuration: S3Configuration(
            bucket: "lake", region: "eu-central-1",
            credentials: AWSCredentials(accessKeyID: "AKIDEXAMPLE", secretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", sessionToken: "token/with+chars="),
            endpoint: "http://127.0.0.1:9000"))
        let script = """
            import sys, json, datetime
            from botocore.auth import S3SigV4QueryAuth
            from botocore.awsrequest import AWSRequest
            from botocore.credentials import Credentials
            creds = Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "token/with+chars=")
            out = []
            for path in json.loads(sys.argv[1]):
                request = AWSRequest(method="GET", url="http://127.0.0.1:9000" + path)
                # add_auth() would stamp the current time; run its steps with a fixed one.
                request.context["timestamp"] = "20260301T061500Z"
                auth = S3SigV4QueryAuth(creds, "s3", "eu-central-1", expires=600)
                auth._modify_request_before_signing(request)
                signature = auth.signature(auth.string_to_sign(request, auth.canonical_request(request)), request)
                out.append(request.url + "&X-Amz-Signature=" + signature)
            print(json.dumps(out))
            """
        let paths = keys.map { "/lake/" + SigV4Signer.encodePath($0) }
        let python = try ChildProcess("/usr/bin/env", arguments: ["python3", "-c", script, String(decoding: try JSONSerialization.data(withJSONObject: paths), as: UTF8.self)], environment: ["PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"])
        #expect(try python.waitForExit() == 0, "\(python.standardError)")
        let expected = try #require(try JSONSerialization.jsonObject(with: Data(python.standardOutput.utf8)) as? [String])
        for (key, url) in zip(keys, expected) {
            let ours = try store.presignedURL(method: "GET", key: key, expires: 600, now: 1_772_345_700)
            #expect(signature(ours) == signature(url), "\(key): ours \(ours) botocore \(url)")
        }
    }

    func signature(_ url: String) -> String? {
        url.components(separatedBy: "X-Amz-Signature=").last.map { String($0.prefix(64)) }
    }
}

/// Answers 503 SlowDown to the first `failures` requests, then passes requests on to `upstream`.
final class FaultProxy: @unchecked Sendable {
    let server: TestHTTPServer
    private let counter: Counter

    init(upstream: String, failures: Int) throws {
        let counter = Counter()
        server = try TestHTTPServer { request in
            let seen = counter.next()
            if seen <= failures {
                return .text(503, "<?xml version=\"1.0\"?><Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>")
            }
            do {
                var headers = HTTPHeaders()
                for field in request.headers where !["host", "content-length", "connection", "expect"].contains(field.name.lowercased()) {
                    headers.add(field.name, field.value)
                }
                let client = try HTTPClient()
                let response = try client.send(HTTPRequest(
                    method: HTTPMethod(request.method), url: upstream + request.target, headers: headers,
                    body: request.body.isEmpty ? .empty : .bytes(request.body)))
                var passed = HTTPHeaders()
                for field in response.headers where !["content-length", "transfer-encoding", "connection"].contains(field.name.lowercased()) {
                    passed.add(field.name, field.value)
                }
                return .respond(status: response.status, headers: passed, body: response.body)
            } catch {
                return .text(502, "proxy: \(error)")
            }
        }
        self.counter = counter
    }

    var requests: Int { counter.value }

    final class Counter: @unchecked Sendable {
        private let lock = NSLock()
        private var seen = 0
        func next() -> Int { lock.withLock { seen += 1; return seen } }
        var value: Int { lock.withLock { seen } }
    }
}
