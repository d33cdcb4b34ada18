import Core
import Cryptography
import HTTPClient

#if canImport(Glibc)
import Glibc
#endif

/// Where and how to reach S3.
public struct S3Configuration: Sendable {
    public var bucket: String
    public var region: String
    public var credentials: AWSCredentials
    /// `scheme://host[:port]` of an S3-compatible endpoint (moto, MinIO); implies path-style.
    /// `nil` means AWS, virtual-hosted style.
    public var endpoint: String?
    /// Attempts for a transient failure (first try included) and the backoff bounds.
    public var maximumAttempts = 4
    public var baseDelay: Duration = .milliseconds(100)
    public var maximumDelay: Duration = .seconds(2)
    public var requestTimeout: Duration = .seconds(300)
    public var caBundlePath: String?

    public init(bucket: String, region: String, credentials: AWSCredentials, endpoint: String? = nil) {
        self.bucket = bucket
        self.region = region
        self.credentials = credentials
        self.endpoint = endpoint
    }

    /// `METERLAKE_BUCKET`, `AWS_REGION` (default `us-east-1`), the AWS credential variables, and
    /// `AWS_ENDPOINT_URL_S3`, else `AWS_ENDPOINT_URL`.
    public init(environment: Environment) throws(ConfigurationError) {
        self.init(
            bucket: try environment.require("METERLAKE_BUCKET"),
            region: environment["AWS_REGION"] ?? environment["AWS_DEFAULT_REGION"] ?? "us-east-1",
            credentials: try AWSCredentials(environment: environment),
            endpoint: environment["AWS_ENDPOINT_URL_S3"] ?? environment["AWS_ENDPOINT_URL"])
        if let endpoint, !(endpoint.hasPrefix("http://") || endpoint.hasPrefix("https://")) {
            throw .invalid(name: "AWS_ENDPOINT_URL_S3", reason: "must start with http:// or https://")
        }
        endpoint = endpoint.map { $0.hasSuffix("/") ? String($0.dropLast()) : $0 }
        caBundlePath = Self.caBundle(environment: environment)
    }

    /// The CA certificates to trust: `METERLAKE_CA_BUNDLE`, else the bundle's own
    /// `ca-certificates.crt` under `LAMBDA_TASK_ROOT` (AL2023 keeps its certificates where
    /// Debian's libcurl does not look), else libcurl's default.
    public static func caBundle(environment: Environment) -> String? {
        if let explicit = environment["METERLAKE_CA_BUNDLE"] { return explicit }
        if let root = environment["LAMBDA_TASK_ROOT"], access(root + "/ca-certificates.crt", R_OK) == 0 {
            return root + "/ca-certificates.crt"
        }
        return nil
    }

    /// Base URL and encoded path prefix for an object key.
    func address(for key: String) -> (base: String, host: String, path: String) {
        let encodedKey = SigV4Signer.encodePath(key)
        if let endpoint {
            let host = String(endpoint.drop { $0 != "/" }.dropFirst(2).prefix { $0 != "/" })
            return (endpoint, host, "/\(bucket)" + (key.isEmpty ? "" : "/\(encodedKey)"))
        }
        let host = "\(bucket).s3.\(region).amazonaws.com"
        return ("https://\(host)", host, "/\(encodedKey)")
    }
}

/// S3 over libcurl with our own SigV4. Idempotent operations (all of them here) are retried on
/// throttling, 5xx and connection failures with capped exponential backoff and full jitter,
/// signed afresh each attempt.
public final class S3ObjectStore: ObjectStore {
    public let configuration: S3Configuration
    private let http: HTTPClient
    private let signer: SigV4Signer
    private let clock: @Sendable () -> Int64
    private var random = SystemRandomNumberGenerator()

    public init(configuration: S3Configuration, clock: @escaping @Sendable () -> Int64 = { WallClock.milliseconds() / 1000 }) throws {
        self.configuration = configuration
        self.http = try HTTPClient(configuration: .init(connectTimeout: .seconds(5), caBundlePath: configuration.caBundlePath))
        self.signer = SigV4Signer(credentials: configuration.credentials, region: configuration.region)
        self.clock = clock
    }

    public var location: String { "s3://\(configuration.bucket)" }

    /// Objects per ListObjectsV2 page; `nil` takes S3's default (1000).
    public var listPageSize: Int?

    /// Creates the bucket (for local set-ups and tests; production buckets come from the template).
    public func createBucket() throws(ObjectStoreError) {
        do {
            _ = try send(method: .put, key: "")
        } catch .service(_, let code, _) where code == "BucketAlreadyOwnedByYou" {
            return
        }
    }

    // MARK: - Operations

    public func get(_ key: String, to path: String, range: ClosedRange<Int64>?) throws(ObjectStoreError) -> ObjectInfo {
        var headers: [(name: String, value: String)] = []
        if let range { headers.append(("Range", "bytes=\(range.lowerBound)-\(range.upperBound)")) }
        let response = try send(method: .get, key: key, headers: headers, sink: .file(path: path))
        return ObjectInfo(key: key, size: Int64(response.bodyByteCount), etag: Self.unquote(response.headers["ETag"]))
    }

    public func head(_ key: String) throws(ObjectStoreError) -> ObjectInfo? {
        do {
            let response = try send(method: .head, key: key)
            return ObjectInfo(key: key, size: Int64(response.headers["Content-Length"] ?? "0") ?? 0, etag: Self.unquote(response.headers["ETag"]))
        } catch .noSuchKey {
            return nil
        }
    }

    public func put(_ key: String, body: ObjectBody, contentType: String?) throws(ObjectStoreError) -> ObjectInfo {
        let hash: String
        let size: Int64
        let requestBody: HTTPRequestBody
        switch body {
        case .bytes(let bytes):
            hash = Hex.encode(SHA256.hash(bytes))
            size = Int64(bytes.count)
            requestBody = .bytes(bytes)
        case .file(let path):
            do {
                (hash, size) = try FileDigest.sha256(path: path)
            } catch {
                throw .local(key: key, reason: "cannot read \(path): \(error)")
            }
            requestBody = .file(path: path)
        }
        var headers: [(name: String, value: String)] = []
        if let contentType { headers.append(("Content-Type", contentType)) }
        let response = try send(method: .put, key: key, headers: headers, body: requestBody, payloadHash: hash)
        return ObjectInfo(key: key, size: size, etag: Self.unquote(response.headers["ETag"]))
    }

    public func copy(from source: String, to destination: String) throws(ObjectStoreError) {
        let copySource = "/\(configuration.bucket)/\(SigV4Signer.encodePath(source))"
        let response: HTTPResponse
        do {
            response = try send(method: .put, key: destination, headers: [("x-amz-copy-source", copySource)])
        } catch .noSuchKey {
            throw .noSuchKey(key: source)  // the missing object is the source
        }
        // A CopyObject 200 can still carry an <Error> document.
        let text = String(decoding: response.body, as: UTF8.self)
        if text.contains("<Error>") { throw Self.error(status: 200, body: text, key: destination) }
    }

    public func delete(_ key: String) throws(ObjectStoreError) {
        do {
            _ = try send(method: .delete, key: key)
        } catch .noSuchKey {
            return
        }
    }

    public func list(prefix: String) throws(ObjectStoreError) -> [ObjectInfo] {
        var objects: [ObjectInfo] = []
        var token: String?
        repeat {
            var query: [(name: String, value: String)] = [("list-type", "2"), ("prefix", prefix)]
            if let token { query.append(("continuation-token", token)) }
            if let listPageSize { query.append(("max-keys", String(listPageSize))) }
            let response = try send(method: .get, key: "", query: query)
            let page = ListPage(xml: String(decoding: response.body, as: UTF8.self))
            objects += page.objects
            token = page.truncated ? page.nextToken : nil
            if page.truncated, token == nil {
                throw .service(status: 200, code: "InvalidListing", message: "a truncated page without NextContinuationToken")
            }
        } while token != nil
        return objects
    }

    public func presignedURL(method: String, key: String, expires: Int, now: Int64, headers: [(name: String, value: String)]) throws(ObjectStoreError) -> String {
        guard method == "GET" || method == "PUT" else { throw .invalidKey(key: key, reason: "presigning supports GET and PUT") }
        guard (1...604_800).contains(expires) else { throw .invalidKey(key: key, reason: "expiry must be 1 s to 7 days") }
        let address = configuration.address(for: key)
        let request = SigV4Signer.Request(
            method: method, encodedPath: address.path, headers: [("host", address.host)] + headers, payloadHash: SigV4Signer.unsignedPayload)
        let query = signer.presign(request, amzDate: SigV4Signer.amzDate(epochSeconds: now), expires: expires).query
        return address.base + address.path + "?" + query
    }

    // MARK: - Requests

    private func send(
        method: HTTPMethod, key: String, query: [(name: String, value: String)] = [], headers: [(name: String, value: String)] = [],
        body: HTTPRequestBody = .empty, payloadHash: String = SigV4Signer.emptyPayloadHash, sink: HTTPResponseSink = .memory(limit: 64 * 1024 * 1024)
    ) throws(ObjectStoreError) -> HTTPResponse {
        let address = configuration.address(for: key)
        let queryString = SigV4Signer.canonicalQuery(query)
        let url = address.base + (address.path.isEmpty ? "/" : address.path) + (queryString.isEmpty ? "" : "?" + queryString)
        var attempt = 1
        while true {
            // Sign afresh each attempt: the date moves, and S3 refuses stale signatures.
            let signing = SigV4Signer.Request(
                method: method.rawValue, encodedPath: address.path.isEmpty ? "/" : address.path, query: query,
                headers: headers + [("host", address.host)], payloadHash: payloadHash)
            let signed = signer.sign(signing, amzDate: SigV4Signer.amzDate(epochSeconds: clock()))
            var requestHeaders = HTTPHeaders()
            for header in headers + signed.headers { requestHeaders.add(header.name, header.value) }
            let request = HTTPRequest(method: method, url: url, headers: requestHeaders, body: body, timeout: configuration.requestTimeout)
            let failure: ObjectStoreError
            do {
                let response = try http.send(request, into: sink)
                if response.isSuccess { return response }
                failure = Self.error(status: response.status, body: String(decoding: response.body, as: UTF8.self), key: key)
            } catch {
                failure = .transport(HTTPFailure(description: error.description, isTransient: error.isTransient))
            }
            guard failure.isTransient, attempt < configuration.maximumAttempts else { throw failure }
            WallClock.sleep(for: backoff(attempt: attempt))
            attempt += 1
        }
    }

    /// Full jitter: a uniform delay in [0, min(cap, base × 2^attempt)).
    private func backoff(attempt: Int) -> Duration {
        let base = Double(configuration.baseDelay.components.seconds) + Double(configuration.baseDelay.components.attoseconds) / 1e18
        let cap = Double(configuration.maximumDelay.components.seconds) + Double(configuration.maximumDelay.components.attoseconds) / 1e18
        let ceiling = min(cap, base * Double(1 << min(attempt, 20)))
        return .milliseconds(Int(Double.random(in: 0..<max(ceiling, 0.001), using: &random) * 1000))
    }

    /// The one place an S3 error answer becomes an ``ObjectStoreError``.
    static func error(status: Int, body: String, key: String) -> ObjectStoreError {
        let code = XML.firstValue(of: "Code", in: body) ?? ""
        let message = XML.firstValue(of: "Message", in: body) ?? ""
        switch (status, code) {
        case (404, "NoSuchKey"), (404, ""): return .noSuchKey(key: key)
        case (404, "NoSuchBucket"): return .noSuchBucket(bucket: XML.firstValue(of: "BucketName", in: body) ?? "")
        case (_, "AccessDenied"), (403, ""): return .accessDenied(key: key, message: message)
        case (_, "InvalidAccessKeyId"): return .invalidAccessKeyID
        case (_, "SignatureDoesNotMatch"): return .signatureDoesNotMatch
        case (_, "SlowDown"), (503, ""): return .slowDown(message: message.isEmpty ? "HTTP 503" : message)
        default: return .service(status: status, code: code.isEmpty ? "HTTP\(status)" : code, message: message)
        }
    }

    static func unquote(_ etag: String?) -> String? {
        guard var etag else { return nil }
        if etag.hasPrefix("\""), etag.hasSuffix("\""), etag.count >= 2 { etag = String(etag.dropFirst().dropLast()) }
        return etag
    }
}

@available(*, unavailable)
extension S3ObjectStore: Sendable {}

/// One page of ListObjectsV2.
struct ListPage {
    var objects: [ObjectInfo] = []
    var truncated = false
    var nextToken: String?

    init(xml: String) {
        truncated = XML.firstValue(of: "IsTruncated", in: xml) == "true"
        nextToken = XML.firstValue(of: "NextContinuationToken", in: xml)
        for contents in XML.elements(named: "Contents", in: xml) {
            guard let key = XML.firstValue(of: "Key", in: contents) else { continue }
            objects.append(ObjectInfo(
                key: key, size: Int64(XML.firstValue(of: "Size", in: contents) ?? "0") ?? 0,
                etag: S3ObjectStore.unquote(XML.firstValue(of: "ETag", in: contents))))
        }
    }
}

/// Just enough XML for S3's answers: the text of simple elements, entities decoded.
enum XML {
    static func elements(named name: String, in xml: String) -> [Substring] {
        var found: [Substring] = []
        var rest = xml[...]
        while let open = rest.firstRange(of: "<\(name)>"), let close = rest[open.upperBound...].firstRange(of: "</\(name)>") {
            found.append(rest[open.upperBound..<close.lowerBound])
            rest = rest[close.upperBound...]
        }
        return found
    }

    static func firstValue(of name: String, in xml: some StringProtocol) -> String? {
        guard let open = xml.firstRange(of: "<\(name)>"), let close = xml[open.upperBound...].firstRange(of: "</\(name)>") else { return nil }
        return decodeEntities(xml[open.upperBound..<close.lowerBound])
    }

    static func decodeEntities(_ text: some StringProtocol) -> String {
        guard text.contains("&") else { return String(text) }
        var output = ""
        var rest = text[...]
        while let amp = rest.firstIndex(of: "&") {
            output += rest[..<amp]
            guard let semicolon = rest[amp...].firstIndex(of: ";") else { break }
            let entity = rest[rest.index(after: amp)..<semicolon]
            switch entity {
            case "amp": output += "&"
            case "lt": output += "<"
            case "gt": output += ">"
            case "quot": output += "\""
            case "apos": output += "'"
            default:
                let number = entity.hasPrefix("#x") ? UInt32(entity.dropFirst(2), radix: 16) : entity.hasPrefix("#") ? UInt32(entity.dropFirst(), radix: 10) : nil
                if let number, let scalar = Unicode.Scalar(number) { output.unicodeScalars.append(scalar) } else { output += "&\(entity);" }
            }
            rest = rest[rest.index(after: semicolon)...]
        }
        return output + rest
    }
}
