/// An HTTP method. Any token is allowed; the common ones have names.
public struct HTTPMethod: RawRepresentable, Sendable, Hashable, CustomStringConvertible {
    public let rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }
    public init(_ rawValue: String) { self.rawValue = rawValue }

    public static let get = HTTPMethod("GET")
    public static let head = HTTPMethod("HEAD")
    public static let put = HTTPMethod("PUT")
    public static let post = HTTPMethod("POST")
    public static let delete = HTTPMethod("DELETE")
    public static let patch = HTTPMethod("PATCH")

    public var description: String { rawValue }
}

/// What a request sends as its body.
public enum HTTPRequestBody: Sendable, Equatable {
    /// No body.
    case empty
    /// Bytes held in memory.
    case bytes([UInt8])
    /// A file streamed from disk as it is sent; its size is read when the request starts.
    case file(path: String)
}

/// One HTTP request. URLs must already be percent-encoded.
public struct HTTPRequest: Sendable {
    public var method: HTTPMethod
    public var url: String
    public var headers: HTTPHeaders
    public var body: HTTPRequestBody
    /// The limit for the whole exchange; `nil` waits for ever (the Runtime API's long poll needs that).
    public var timeout: Duration?
    /// Follow 3xx redirects (at most five). Off by default: a redirect is usually a configuration error.
    public var followRedirects: Bool

    public init(
        method: HTTPMethod = .get, url: String, headers: HTTPHeaders = [:], body: HTTPRequestBody = .empty,
        timeout: Duration? = .seconds(30), followRedirects: Bool = false
    ) {
        self.method = method
        self.url = url
        self.headers = headers
        self.body = body
        self.timeout = timeout
        self.followRedirects = followRedirects
    }
}

/// Where a response body goes.
///
/// Only a 2xx body goes to a file or stream; any other status keeps up to
/// ``HTTPClient/Configuration/errorBodyLimit`` bytes in memory, so that callers can read the
/// error document (an S3 error XML, a vendor's JSON error) whatever sink they asked for.
public enum HTTPResponseSink {
    /// Keep the body in memory, failing with ``HTTPClientError/bodyTooLarge(url:limit:)`` past `limit` bytes.
    case memory(limit: Int)
    /// Write the body to a file (created or truncated). The file is left only after a complete
    /// 2xx exchange: a failed transfer or any other status removes it. It is a working copy, not
    /// synced to disk (durable stores sync their own writes).
    case file(path: String)
    /// Hand each chunk to a closure as it arrives; a thrown error aborts the transfer and is rethrown.
    case stream((UnsafeRawBufferPointer) throws -> Void)
}
