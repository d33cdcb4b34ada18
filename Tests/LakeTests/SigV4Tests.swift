import Core
import Lake
import Cryptography
import Foundation
import Testing
import TestSupport

/// A request of the suites' `.req` / `request.txt` form.
struct SuiteRequest {
    var method: String
    var path: String
    var query: [(name: String, value: String)]
    var headers: [(name: String, value: String)]
    var body: [UInt8]

    init(_ text: String) {
        let parts = text.components(separatedBy: "\n\n")
        var lines = parts[0].components(separatedBy: "\n")
        let requestLine = lines.removeFirst()
        let firstSpace = requestLine.firstIndex(of: " ")!
        let lastSpace = requestLine.lastIndex(of: " ")!
        method = String(requestLine[..<firstSpace])
        let target = String(requestLine[requestLine.index(after: firstSpace)..<lastSpace])
        let pieces = target.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)
        path = String(pieces[0]).removingPercentEncoding ?? String(pieces[0])
        query = []
        if pieces.count > 1, !pieces[1].isEmpty {
            for pair in pieces[1].split(separator: "&") {
                let nameValue = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
                query.append((String(nameValue[0]).removingPercentEncoding!, nameValue.count > 1 ? String(nameValue[1]).removingPercentEncoding! : ""))
            }
        }
        headers = []
        for line in lines {
            if line.first == " " || line.first == "\t" {
                headers[headers.count - 1].value += "\n" + line
            } else if let colon = line.firstIndex(of: ":") {
                headers.append((String(line[..<colon]), String(line[line.index(after: colon)...])))
            }
        }
        body = Array(parts.dropFirst().joined(separator: "\n\n").utf8)
    }
}

func vectorText(_ path: String) throws -> String { try Fixture.text("vectors/\(path)") }

@Suite struct SigV4SuiteTests {
    static let credentials = AWSCredentials(accessKeyID: "AKIDEXAMPLE", secretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
    static let notForS3: Set<String> = [
        "get-relative", "get-relative-relative", "get-slash", "get-slash-dot-slash", "get-slash-pointless-dot", "get-slashes",
        "post-sts-header-after",
    ]
    static let canonicalOnly: Set<String> = ["post-x-www-form-urlencoded", "post-x-www-form-urlencoded-parameters"]

    static var classicCases: [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: Fixture.path("vectors/sigv4"))) ?? []
        return names.filter { !$0.contains(".") && $0 != "LICENSE" && $0 != "NOTICE" && !notForS3.contains($0) }.sorted()
    }

    @Test func theSuitesHaveTheExpectedCases() {
        // A miscounted directory (moved fixtures, a wrong filter) must fail here, not pass with no cases.
        #expect(Self.classicCases.count == 33 - Self.notForS3.count)
        #expect(Self.crtCases.count == 30)
    }

    @Test(arguments: classicCases)
    func reproducesTheClassicSuite(name: String) throws {
        var request = SuiteRequest(try vectorText("sigv4/\(name)/\(name).req"))
        let token = "6e86291e8372ff2a2260956d9b8aae1d763fbf315fa00fa31553b73ebf194267"
        var credentials = Self.credentials
        if name == "get-vanilla-with-session-token" { credentials.sessionToken = token }
        let signer = SigV4Signer(credentials: credentials, region: "us-east-1", service: "service")
        let amzDate = request.headers.first { $0.name.lowercased() == "x-amz-date" }!.value
        let signing = SigV4Signer.Request(
            method: request.method, encodedPath: SigV4Signer.encodePath(request.path), query: request.query,
            headers: request.headers, payloadHash: Hex.encode(SHA256.hash(request.body)))
        let (added, signed) = signer.sign(signing, amzDate: amzDate, contentHashHeader: false)
        #expect(signed.canonicalRequest == (try vectorText("sigv4/\(name)/\(name).creq")))
        guard !Self.canonicalOnly.contains(name) else { return }
        #expect(signed.stringToSign == (try vectorText("sigv4/\(name)/\(name).sts")))
        #expect(added.last?.value == (try vectorText("sigv4/\(name)/\(name).authz")))
        request.headers += added
    }

    static var crtCases: [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: Fixture.path("vectors/sigv4-crt"))) ?? []
        return names.filter { !$0.contains(".") && $0 != "LICENSE" && $0 != "NOTICE" && !$0.hasSuffix("-normalized") && $0 != "post-sts-header-after" }.sorted()
    }

    @Test(arguments: crtCases)
    func reproducesTheCRTSuiteInHeaderAndQueryMode(name: String) throws {
        let context = try JSONSerialization.jsonObject(with: try Fixture.data("vectors/sigv4-crt/\(name)/context.json")) as! [String: Any]
        let secrets = context["credentials"] as! [String: Any]
        let credentials = AWSCredentials(
            accessKeyID: secrets["access_key_id"] as! String, secretAccessKey: secrets["secret_access_key"] as! String,
            sessionToken: secrets["token"] as? String)
        let signer = SigV4Signer(credentials: credentials, region: context["region"] as! String, service: context["service"] as! String)
        let timestamp = (context["timestamp"] as! String).filter { $0 != "-" && $0 != ":" }
        let request = SuiteRequest(try vectorText("sigv4-crt/\(name)/request.txt"))
        let hash = Hex.encode(SHA256.hash(request.body))
        let signing = SigV4Signer.Request(
            method: request.method, encodedPath: SigV4Signer.encodePath(request.path), query: request.query,
            headers: request.headers, payloadHash: hash)

        let header = signer.sign(signing, amzDate: timestamp, contentHashHeader: context["sign_body"] as? Bool ?? false)
        #expect(header.signed.canonicalRequest == (try vectorText("sigv4-crt/\(name)/header-canonical-request.txt")))
        #expect(header.signed.stringToSign == (try vectorText("sigv4-crt/\(name)/header-string-to-sign.txt")))
        #expect(header.signed.signature == (try vectorText("sigv4-crt/\(name)/header-signature.txt")))

        let query = signer.presign(signing, amzDate: timestamp, expires: context["expiration_in_seconds"] as! Int)
        #expect(query.signed.canonicalRequest == (try vectorText("sigv4-crt/\(name)/query-canonical-request.txt")))
        #expect(query.signed.stringToSign == (try vectorText("sigv4-crt/\(name)/query-string-to-sign.txt")))
        #expect(query.signed.signature == (try vectorText("sigv4-crt/\(name)/query-signature.txt")))
    }

    static var s3Cases: [[String: Any]] {
        let data = (try? Fixture.data("vectors/sigv4-s3/s3-cases.json")) ?? Data()
        return ((try? JSONSerialization.jsonObject(with: data)) as? [String: Any])?["cases"] as? [[String: Any]] ?? []
    }

    @Test func reproducesEveryS3Case() throws {
        let cases = Self.s3Cases
        #expect(cases.count == 13)
        for test in cases {
            let name = test["name"] as! String
            let signer = SigV4Signer(
                credentials: AWSCredentials(
                    accessKeyID: test["access_key_id"] as! String, secretAccessKey: test["secret_access_key"] as! String,
                    sessionToken: test["session_token"] as? String),
                region: test["region"] as! String, service: "s3")
            let expected = test["expected"] as! [String: Any]
            let pairs = (test["query"] as! [[String]]).map { (name: $0[0], value: $0[1]) }
            let headers = (test["headers"] as! [[String]]).map { (name: $0[0], value: $0[1]) }
            let path = SigV4Signer.encodePath(test["key_path"] as! String)
            #expect(path == expected["canonical_uri"] as? String, "\(name)")
            let amzDate = test["amz_date"] as! String
            if test["mode"] as? String == "presigned-query" {
                let own = pairs.filter { !$0.name.hasPrefix("X-Amz-") }
                let request = SigV4Signer.Request(method: test["method"] as! String, encodedPath: path, query: own, headers: headers, payloadHash: SigV4Signer.unsignedPayload)
                let presigned = signer.presign(request, amzDate: amzDate, expires: Int(pairs.first { $0.name == "X-Amz-Expires" }!.value)!)
                #expect(presigned.signed.canonicalRequest == expected["canonical_request"] as? String, "\(name)")
                #expect(presigned.signed.signature == expected["signature"] as? String, "\(name)")
                #expect("https://\(test["host"] as! String)\(path)?\(presigned.query)" == expected["url"] as? String, "\(name)")
            } else {
                // Header mode; the streaming case is checked up to its seed signature (meterlake
                // streams uploads with UNSIGNED-PAYLOAD, never aws-chunked).
                let request = SigV4Signer.Request(
                    method: test["method"] as! String, encodedPath: path, query: pairs, headers: headers,
                    payloadHash: test["payload_sha256_header"] as! String)
                let (added, signed) = signer.sign(request, amzDate: amzDate)
                #expect(signed.canonicalRequest == expected["canonical_request"] as? String, "\(name)")
                #expect(signed.stringToSign == expected["string_to_sign"] as? String, "\(name)")
                #expect(signed.signature == expected["signature"] as? String, "\(name)")
                #expect(added.last?.value == expected["authorization"] as? String, "\(name)")
            }
        }
    }

    @Test func derivesThePublishedSigningKeys() {
        let s3 = SigV4Signer(credentials: AWSCredentials(accessKeyID: "AKIAIOSFODNN7EXAMPLE", secretAccessKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"), region: "us-east-1")
        #expect(Hex.encode(s3.signingKey(date: "20130524")) == "dbb893acc010964918f1fd433add87c70e8b0db6be30c1fbeafefa5ec6ba8378")
        let generic = SigV4Signer(credentials: Self.credentials, region: "us-east-1", service: "service")
        #expect(Hex.encode(generic.signingKey(date: "20150830")) == "938127b5336810ddb6a5d6af445fcac9e371f9ed418ed386b022aed82901be75")
        #expect(SigV4Signer.amzDate(epochSeconds: 1_369_353_600) == "20130524T000000Z")
        #expect(!"\(Self.credentials)".contains("wJalr"))
    }
}
