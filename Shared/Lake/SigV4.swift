import Core
import Cryptography

/// AWS credentials as Lambda provides them; the secret never prints.
public struct AWSCredentials: Sendable, CustomStringConvertible {
    public var accessKeyID: String
    public var secretAccessKey: SecretBytes
    public var sessionToken: String?

    public init(accessKeyID: String, secretAccessKey: String, sessionToken: String? = nil) {
        self.accessKeyID = accessKeyID
        self.secretAccessKey = SecretBytes(Array(secretAccessKey.utf8))
        self.sessionToken = sessionToken
    }

    /// `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and, when set, `AWS_SESSION_TOKEN`.
    public init(environment: Environment) throws(ConfigurationError) {
        self.init(
            accessKeyID: try environment.require("AWS_ACCESS_KEY_ID"),
            secretAccessKey: try environment.require("AWS_SECRET_ACCESS_KEY"),
            sessionToken: environment["AWS_SESSION_TOKEN"])
    }

    public var description: String { "AWSCredentials(\(accessKeyID), secret: <redacted>)" }
}

/// AWS Signature Version 4, with S3's rules available: the path is encoded once and never
/// normalised, and `x-amz-content-sha256` is sent and signed.
public struct SigV4Signer: Sendable {
    public var credentials: AWSCredentials
    public var region: String
    public var service: String

    public static let unsignedPayload = "UNSIGNED-PAYLOAD"
    public static let emptyPayloadHash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

    public init(credentials: AWSCredentials, region: String, service: String = "s3") {
        self.credentials = credentials
        self.region = region
        self.service = service
    }

    /// What to sign: the encoded path, the decoded query, the headers as sent.
    public struct Request: Sendable {
        public var method: String
        /// The path exactly as it goes on the wire (already encoded; see ``SigV4Signer/encodePath(_:)``).
        public var encodedPath: String
        /// Decoded names and values, in any order; the signer encodes and sorts them.
        public var query: [(name: String, value: String)]
        /// Headers to sign (must include `Host`); case and order do not matter.
        public var headers: [(name: String, value: String)]
        /// The payload hash: hex SHA-256 of the body, or ``SigV4Signer/unsignedPayload``.
        public var payloadHash: String

        public init(method: String, encodedPath: String, query: [(name: String, value: String)] = [], headers: [(name: String, value: String)], payloadHash: String) {
            self.method = method
            self.encodedPath = encodedPath
            self.query = query
            self.headers = headers
            self.payloadHash = payloadHash
        }
    }

    /// The intermediate values, for tests and for diagnosing `SignatureDoesNotMatch`.
    public struct Signed: Sendable {
        public var canonicalRequest: String
        public var stringToSign: String
        public var signature: String
        public var signedHeaders: String
        public var scope: String
    }

    // MARK: - Header signing

    /// Signs with the `Authorization` header. Adds `X-Amz-Date` (unless present), the session
    /// token (when the credentials have one) and, if `contentHashHeader`, `x-amz-content-sha256`.
    /// - Returns: The headers to send in addition to the request's own, and the signing details.
    public func sign(_ request: Request, amzDate: String, contentHashHeader: Bool = true) -> (headers: [(name: String, value: String)], signed: Signed) {
        var request = request
        var added: [(name: String, value: String)] = []
        func has(_ name: String) -> Bool { request.headers.contains { $0.name.lowercased() == name } }
        if !has("x-amz-date") { added.append(("X-Amz-Date", amzDate)) }
        if contentHashHeader, !has("x-amz-content-sha256") { added.append(("x-amz-content-sha256", request.payloadHash)) }
        if let token = credentials.sessionToken, !has("x-amz-security-token") { added.append(("X-Amz-Security-Token", token)) }
        request.headers += added
        let signed = details(request, amzDate: amzDate)
        let authorization = "AWS4-HMAC-SHA256 Credential=\(credentials.accessKeyID)/\(signed.scope), SignedHeaders=\(signed.signedHeaders), Signature=\(signed.signature)"
        return (added + [("Authorization", authorization)], signed)
    }

    // MARK: - Presigned URLs

    /// Signs in the query string. Returns the full query to append to the path (canonical order,
    /// then `X-Amz-Signature`), and the details.
    /// - Parameter payloadHash: S3 uses ``unsignedPayload``.
    public func presign(_ request: Request, amzDate: String, expires: Int) -> (query: String, signed: Signed) {
        var request = request
        let signedHeaders = Self.canonicalHeaders(request.headers).names
        request.query += [
            ("X-Amz-Algorithm", "AWS4-HMAC-SHA256"),
            ("X-Amz-Credential", "\(credentials.accessKeyID)/\(scope(amzDate))"),
            ("X-Amz-Date", amzDate),
            ("X-Amz-Expires", String(expires)),
            ("X-Amz-SignedHeaders", signedHeaders),
        ]
        if let token = credentials.sessionToken { request.query.append(("X-Amz-Security-Token", token)) }
        let signed = details(request, amzDate: amzDate)
        return (Self.canonicalQuery(request.query) + "&X-Amz-Signature=" + signed.signature, signed)
    }

    // MARK: - The algorithm

    func details(_ request: Request, amzDate: String) -> Signed {
        let headers = Self.canonicalHeaders(request.headers)
        let canonicalRequest = [
            request.method, request.encodedPath, Self.canonicalQuery(request.query), headers.block, headers.names, request.payloadHash,
        ].joined(separator: "\n")
        let scope = scope(amzDate)
        let stringToSign = "AWS4-HMAC-SHA256\n\(amzDate)\n\(scope)\n" + Hex.encode(SHA256.hash(Array(canonicalRequest.utf8)))
        let signature = Hex.encode(HMACSHA256.authenticationCode(for: Array(stringToSign.utf8), key: signingKey(date: String(amzDate.prefix(8)))))
        return Signed(canonicalRequest: canonicalRequest, stringToSign: stringToSign, signature: signature, signedHeaders: headers.names, scope: scope)
    }

    func scope(_ amzDate: String) -> String { "\(amzDate.prefix(8))/\(region)/\(service)/aws4_request" }

    /// `kSigning` for a date (`YYYYMMDD`).
    public func signingKey(date: String) -> [UInt8] {
        var key = HMACSHA256.authenticationCode(for: Array(date.utf8), key: Array("AWS4".utf8) + credentials.secretAccessKey.bytes)
        for part in [region, service, "aws4_request"] { key = HMACSHA256.authenticationCode(for: Array(part.utf8), key: key) }
        return key
    }

    /// Lower-case names, values trimmed with inner runs of white space folded to one space,
    /// repeated headers joined with `,` in the order sent, sorted by name.
    static func canonicalHeaders(_ headers: [(name: String, value: String)]) -> (block: String, names: String) {
        var grouped: [String: [String]] = [:]
        for header in headers {
            grouped[header.name.lowercased(), default: []].append(foldWhitespace(header.value))
        }
        let names = grouped.keys.sorted()
        let block = names.map { "\($0):\(grouped[$0]!.joined(separator: ","))\n" }.joined()
        return (block, names.joined(separator: ";"))
    }

    private static func foldWhitespace(_ value: String) -> String {
        var result = ""
        var pendingSpace = false
        for character in value {
            if character == " " || character == "\t" || character == "\n" || character == "\r" {
                pendingSpace = !result.isEmpty
            } else {
                if pendingSpace { result.append(" ") }
                pendingSpace = false
                result.append(character)
            }
        }
        return result
    }

    /// Names and values encoded (with `/` encoded), sorted by name then value, joined with `&`.
    public static func canonicalQuery(_ query: [(name: String, value: String)]) -> String {
        query.map { (encode($0.name, keepSlash: false), encode($0.value, keepSlash: false)) }
            .sorted { $0.0 == $1.0 ? $0.1 < $1.1 : $0.0 < $1.0 }
            .map { "\($0.0)=\($0.1)" }
            .joined(separator: "&")
    }

    /// An S3 object key (or any path) encoded once: every byte but `A-Z a-z 0-9 - _ . ~` as `%XX`,
    /// `/` kept. Nothing is normalised: `..`, `.` and `//` stay.
    public static func encodePath(_ path: String) -> String { encode(path, keepSlash: true) }

    /// RFC 3986 unreserved characters stay; everything else becomes upper-case `%XX`.
    public static func encode(_ text: String, keepSlash: Bool) -> String {
        let hex = Array("0123456789ABCDEF".utf8)
        var output: [UInt8] = []
        output.reserveCapacity(text.utf8.count)
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."), UInt8(ascii: "~"):
                output.append(byte)
            case UInt8(ascii: "/") where keepSlash:
                output.append(byte)
            default:
                output += [UInt8(ascii: "%"), hex[Int(byte >> 4)], hex[Int(byte & 15)]]
            }
        }
        return String(decoding: output, as: UTF8.self)
    }

    /// `20130524T000000Z` for a Unix time.
    public static func amzDate(epochSeconds: Int64) -> String {
        let text = Timestamp.rfc3339(milliseconds: epochSeconds * 1000)  // 2013-05-24T00:00:00.000Z
        let digits = text.prefix(19).filter { $0 != "-" && $0 != ":" }
        return digits + "Z"
    }
}
