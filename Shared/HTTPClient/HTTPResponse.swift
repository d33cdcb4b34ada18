/// The status, headers and (for an in-memory sink, or any non-2xx answer) body of a response.
public struct HTTPResponse: Sendable {
    public var status: Int
    public var headers: HTTPHeaders
    /// The body when it was kept in memory; empty when it went to a file or stream.
    public var body: [UInt8]
    /// How many body bytes arrived, wherever they went.
    public var bodyByteCount: Int
    /// The request URL without credentials or query string, for messages.
    public var redactedURL: String
    /// New connections libcurl opened for this exchange (0 when a kept-alive one was reused).
    public var newConnections: Int

    public init(
        status: Int, headers: HTTPHeaders = [:], body: [UInt8] = [], bodyByteCount: Int? = nil,
        redactedURL: String = "", newConnections: Int = 0
    ) {
        self.status = status
        self.headers = headers
        self.body = body
        self.bodyByteCount = bodyByteCount ?? body.count
        self.redactedURL = redactedURL
        self.newConnections = newConnections
    }

    public var isSuccess: Bool { (200..<300).contains(status) }

    /// Returns `self` for a 2xx status, else throws ``HTTPClientError/status(code:url:excerpt:)``.
    @discardableResult
    public func requireSuccess() throws(HTTPClientError) -> HTTPResponse {
        guard isSuccess else {
            throw .status(code: status, url: redactedURL, excerpt: HTTPClientError.excerpt(of: body))
        }
        return self
    }
}
