/// Why an HTTP exchange failed. Messages name the URL without its query string or user info,
/// so presigned signatures and credentials never reach a log.
public enum HTTPClientError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The request could not be sent as given (malformed URL, unreadable body file, bad protocol).
    case invalidRequest(url: String, reason: String)
    /// The host name did not resolve.
    case resolve(url: String, reason: String)
    /// The TCP connection was refused or could not be made.
    case connect(url: String, reason: String)
    /// The exchange exceeded its connect or total timeout.
    case timeout(url: String, reason: String)
    /// The TLS handshake or certificate verification failed.
    case tls(url: String, reason: String)
    /// The peer closed or reset the connection before a whole response arrived.
    case connectionClosed(url: String, reason: String)
    /// An in-memory body grew past its limit.
    case bodyTooLarge(url: String, limit: Int)
    /// Writing the body to its sink failed (disk full, the stream closure threw).
    case sink(url: String, reason: String)
    /// A complete response with a status the caller did not accept; `excerpt` is the body's start.
    case status(code: Int, url: String, excerpt: String)
    /// Any other libcurl failure, with its code.
    case transport(url: String, code: Int, reason: String)

    /// Whether retrying the same request may succeed (connection trouble, timeouts, 5xx, 429).
    public var isTransient: Bool {
        switch self {
        case .connect, .timeout, .connectionClosed, .resolve: true
        case .status(let code, _, _): code >= 500 || code == 429
        case .invalidRequest, .tls, .bodyTooLarge, .sink, .transport: false
        }
    }

    public var description: String {
        switch self {
        case .invalidRequest(let url, let reason): "invalid request to \(url): \(reason)"
        case .resolve(let url, let reason): "could not resolve the host of \(url): \(reason)"
        case .connect(let url, let reason): "could not connect to \(url): \(reason)"
        case .timeout(let url, let reason): "timed out talking to \(url): \(reason)"
        case .tls(let url, let reason): "TLS failure with \(url): \(reason)"
        case .connectionClosed(let url, let reason): "connection to \(url) closed early: \(reason)"
        case .bodyTooLarge(let url, let limit): "response body from \(url) exceeds the \(limit)-byte limit"
        case .sink(let url, let reason): "could not store the response body from \(url): \(reason)"
        case .status(let code, let url, let excerpt):
            excerpt.isEmpty ? "HTTP \(code) from \(url)" : "HTTP \(code) from \(url): \(excerpt)"
        case .transport(let url, let code, let reason): "transfer to \(url) failed (curl \(code)): \(reason)"
        }
    }

    /// The first 200 characters of a body, on one line, for error messages.
    static func excerpt(of body: [UInt8], limit: Int = 200) -> String {
        let text = String(decoding: body.prefix(limit * 4), as: UTF8.self)
        var line = ""
        for character in text {
            if line.count >= limit { line += "…"; break }
            line.append(character.isNewline ? " " : character)
        }
        return line.trimmingTrailingSpaces()
    }
}

extension String {
    fileprivate func trimmingTrailingSpaces() -> String {
        var copy = self
        while copy.last == " " { copy.removeLast() }
        return copy
    }
}

/// `scheme://host[:port]/path` of a URL: no user info, query or fragment.
func redact(url: String) -> String {
    var rest = Substring(url)
    var scheme = Substring("")
    if let range = rest.firstRange(of: "://") {
        scheme = rest[..<range.upperBound]
        rest = rest[range.upperBound...]
    }
    if let end = rest.firstIndex(where: { $0 == "?" || $0 == "#" }) { rest = rest[..<end] }
    let authorityEnd = rest.firstIndex(of: "/") ?? rest.endIndex
    if let at = rest[..<authorityEnd].lastIndex(of: "@") { rest = rest[rest.index(after: at)...] }
    return String(scheme + rest)
}
