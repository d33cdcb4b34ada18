import Core

/// A Lambda function URL request (API Gateway payload format 2.0), as the routes see it.
///
/// Header names are lower-case (function URLs send them so; this type lower-cases them anyway),
/// the query is decoded here from `rawQueryString` (a parameter given twice is refused rather than
/// joined, so no layer can read a different value than another), and a base64 body is decoded.
public struct WebRequest: Sendable {
    public var method: String
    public var path: String
    public var query: [String: String]
    public var headers: [String: String]
    public var cookies: [String]
    public var body: [UInt8]
    /// The function URL's own request id (`requestContext.requestId`).
    public var requestID: String?
    public var sourceIP: String?

    public init(method: String, path: String, query: [String: String] = [:], headers: [String: String] = [:], cookies: [String] = [],
                body: [UInt8] = [], requestID: String? = nil, sourceIP: String? = nil) {
        self.method = method.uppercased()
        self.path = path
        self.query = query
        self.headers = Dictionary(headers.map { ($0.key.lowercased(), $0.value) }, uniquingKeysWith: { first, _ in first })
        self.cookies = cookies
        self.body = body
        self.requestID = requestID
        self.sourceIP = sourceIP
    }

    /// Parses the invocation's event.
    /// - Throws: ``APIError`` 400 for an event that is not a function-URL request, a bad query or body encoding.
    public init(event: [UInt8], maximumBodyBytes: Int) throws(APIError) {
        guard let value = try? JSONParser.parse(event, maximumDepth: 16), case .object = value else {
            throw APIError(status: 400, code: "bad_event", message: "the invocation is not a function URL request (not a JSON object)")
        }
        guard case .string(let method)? = value["requestContext"]?["http"]?["method"] else {
            throw APIError(status: 400, code: "bad_event", message: "the invocation is not a function URL request (no requestContext.http.method)")
        }
        var headers: [String: String] = [:]
        if case .object(let members)? = value["headers"] {
            for member in members { if case .string(let text) = member.value { headers[member.key.lowercased()] = text } }
        }
        var cookies: [String] = []
        if case .array(let elements)? = value["cookies"] {
            cookies = elements.compactMap { if case .string(let text) = $0 { text } else { nil } }
        }
        var body: [UInt8] = []
        if case .string(let text)? = value["body"] {
            if value["isBase64Encoded"] == .bool(true) {
                guard let decoded = Base64.decode(text) else {
                    throw APIError(status: 400, code: "bad_body", message: "the request body is flagged base64 but is not valid base64")
                }
                body = decoded
            } else {
                body = Array(text.utf8)
            }
        }
        guard body.count <= maximumBodyBytes else {
            throw APIError(status: 413, code: "body_too_large", message: "the request body is \(body.count) bytes; the limit here is \(maximumBodyBytes)")
        }
        let rawQuery = value["rawQueryString"]?.text ?? ""
        self.init(method: method, path: value["rawPath"]?.text ?? "/", query: try Self.parseQuery(rawQuery), headers: headers,
                  cookies: cookies, body: body, requestID: value["requestContext"]?["requestId"]?.text,
                  sourceIP: value["requestContext"]?["http"]?["sourceIp"]?.text)
    }

    /// Decodes `a=1&b=x%20y`; a repeated name, a bad escape or text that is not UTF-8 is a 400.
    public static func parseQuery(_ raw: String) throws(APIError) -> [String: String] {
        var query: [String: String] = [:]
        for pair in raw.split(separator: "&", omittingEmptySubsequences: true) {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard let name = PercentEncoding.decodeForm(String(parts[0])),
                let value = PercentEncoding.decodeForm(parts.count > 1 ? String(parts[1]) : "")
            else { throw APIError(status: 400, code: "bad_query", message: "the query string has a bad percent-escape") }
            guard query[name] == nil else {
                throw APIError(status: 400, code: "bad_query", message: "the query parameter \(name.prefix(40)) is given more than once")
            }
            query[name] = value
        }
        return query
    }

    public func header(_ name: String) -> String? { headers[name.lowercased()] }

    /// The token of an `Authorization: Bearer …` header.
    public var bearerToken: String? {
        guard let value = header("authorization") else { return nil }
        let parts = value.split(separator: " ", maxSplits: 1)
        guard parts.count == 2, parts[0].lowercased() == "bearer" else { return nil }
        let token = parts[1].drop { $0 == " " }
        return token.isEmpty ? nil : String(token)
    }

    /// The body as a JSON object, or a 400/415 that says what is wrong.
    public func jsonBody() throws(APIError) -> JSONValue {
        if let type = header("content-type"), !type.lowercased().hasPrefix("application/json") {
            throw APIError(status: 415, code: "unsupported_media_type", message: "send the body as application/json")
        }
        let value: JSONValue
        do { value = try JSONParser.parse(body, maximumDepth: 16) } catch {
            throw APIError(status: 400, code: "bad_json", message: "the body is not valid JSON: \(error.description)")
        }
        guard case .object = value else { throw APIError(status: 400, code: "bad_json", message: "the body must be a JSON object") }
        return value
    }

    /// A required query parameter.
    public func parameter(_ name: String) throws(APIError) -> String {
        guard let value = query[name], !value.isEmpty else {
            throw APIError(status: 400, code: "missing_parameter", message: "the query parameter \(name) is required")
        }
        return value
    }
}

/// What a route answers: a status, headers (lower-case names), cookies, and the body.
public struct WebResponse: Sendable, Equatable {
    public var status: Int
    public var headers: [String: String]
    public var cookies: [String]
    public var body: [UInt8]

    public init(status: Int, headers: [String: String] = [:], cookies: [String] = [], body: [UInt8] = []) {
        self.status = status
        self.headers = headers
        self.cookies = cookies
        self.body = body
    }

    /// A JSON body.
    public static func json(_ value: JSONValue, status: Int = 200) -> WebResponse {
        WebResponse(status: status, headers: ["content-type": "application/json"], body: Array(value.serialized.utf8))
    }

    /// An HTML page that loads nothing from elsewhere: a strict CSP (scripts only with `nonce`),
    /// no caching, no referrer.
    public static func html(_ page: String, status: Int = 200, scriptNonce: String? = nil) -> WebResponse {
        let scripts = scriptNonce.map { "'nonce-\($0)'" } ?? "'none'"
        return WebResponse(status: status, headers: [
            "content-type": "text/html; charset=utf-8",
            "content-security-policy": "default-src 'none'; script-src \(scripts); style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
            "referrer-policy": "no-referrer",
            "x-content-type-options": "nosniff",
            "x-frame-options": "DENY",
        ], body: Array(page.utf8))
    }

    /// The function-URL response document.
    public var encoded: [UInt8] {
        var writer = JSONWriter()
        writer.beginObject()
        writer.key("statusCode")
        writer.number(Int64(status))
        writer.key("headers")
        writer.beginObject()
        for (name, value) in headers.sorted(by: { $0.key < $1.key }) {
            writer.key(name)
            writer.string(value)
        }
        writer.endObject()
        if !cookies.isEmpty {
            writer.key("cookies")
            writer.beginArray()
            for cookie in cookies { writer.string(cookie) }
            writer.endArray()
        }
        writer.key("body")
        if let text = String(validating: body, as: UTF8.self) {
            writer.string(text)
            writer.key("isBase64Encoded")
            writer.bool(false)
        } else {
            writer.string(Base64.encode(body))
            writer.key("isBase64Encoded")
            writer.bool(true)
        }
        writer.endObject()
        return writer.bytes
    }
}

/// An answer other than success: the status, a stable code for programs, a message for people.
/// The message never holds a secret; the body also names the request id.
public struct APIError: Error, Equatable, Sendable, CustomStringConvertible {
    public var status: Int
    public var code: String
    public var message: String
    /// Extra headers (`www-authenticate`, `allow`).
    public var headers: [String: String]

    public init(status: Int, code: String, message: String, headers: [String: String] = [:]) {
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers
    }

    public var description: String { "\(status) \(code): \(message)" }

    public static func unauthorized(_ message: String) -> APIError {
        APIError(status: 401, code: "unauthorized", message: message, headers: ["www-authenticate": #"Bearer realm="meterlake""#])
    }

    public static func forbidden(_ message: String) -> APIError { APIError(status: 403, code: "forbidden", message: message) }
    public static func badRequest(_ message: String, code: String = "bad_request") -> APIError { APIError(status: 400, code: code, message: message) }
    public static func notFound(_ message: String) -> APIError { APIError(status: 404, code: "not_found", message: message) }

    func response(requestID: String) -> WebResponse {
        var response = WebResponse.json(.object([
            JSONMember("error", .object([
                JSONMember("code", .string(code)), JSONMember("message", .string(message)), JSONMember("request_id", .string(requestID)),
            ])),
        ]), status: status)
        response.headers.merge(headers) { _, new in new }
        return response
    }
}
