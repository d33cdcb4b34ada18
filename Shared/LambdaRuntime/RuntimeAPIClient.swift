import Core
import HTTPClient

#if canImport(Glibc)
import Glibc
#endif

/// An invocation as `/next` delivers it.
public struct Invocation: Sendable {
    public var metadata: InvocationMetadata
    public var event: [UInt8]
    public init(metadata: InvocationMetadata, event: [UInt8]) {
        self.metadata = metadata
        self.event = event
    }
}

/// What the Runtime API did with a posted response.
public enum ResponseOutcome: Equatable, Sendable {
    case accepted
    /// 413: the payload was over Lambda's limit; the invocation already failed on Lambda's side.
    case tooLarge
}

/// The JSON body Lambda expects for invocation and init errors.
public struct ErrorReport: Sendable, Equatable {
    public var type: String
    public var message: String

    public init(type: String, message: String) {
        self.type = type
        self.message = message
    }

    /// A report for `error`: its own `errorType` if it names one, else its Swift type name, and its
    /// `description` as the message.
    public init(_ error: any Error) {
        let type = (error as? any ReportableError)?.errorType ?? String(describing: Swift.type(of: error))
        self.init(type: type, message: String(describing: error))
    }

    /// `{"errorMessage": …, "errorType": …, "stackTrace": []}`
    public var json: [UInt8] {
        var writer = JSONWriter()
        writer.beginObject()
        writer.key("errorMessage")
        writer.string(message)
        writer.key("errorType")
        writer.string(type)
        writer.key("stackTrace")
        writer.beginArray()
        writer.endArray()
        writer.endObject()
        return writer.bytes
    }
}

/// The Runtime API's four calls. The loop is written against this protocol so that its rules
/// can be tested with a scripted client, and the real one runs over libcurl.
public protocol RuntimeAPIClient {
    /// Long-polls for the next invocation, with no timeout.
    func nextInvocation() throws(LambdaRuntimeError) -> Invocation
    func sendResponse(requestID: String, body: [UInt8]) throws(LambdaRuntimeError) -> ResponseOutcome
    func sendError(requestID: String, report: ErrorReport) throws(LambdaRuntimeError)
    func sendInitError(_ report: ErrorReport) throws(LambdaRuntimeError)
}

/// The Runtime API over HTTP/1.1 with libcurl, on one kept-alive connection.
///
/// Connection failures are retried briefly (the API lives on the same host, so a failure that
/// outlasts the retries means the environment is going away); any status the protocol calls
/// fatal is thrown at once so that the process exits.
public final class CurlRuntimeAPIClient: RuntimeAPIClient {
    private let http: HTTPClient
    private let base: String
    private let retryDelays: [Duration]
    /// Events larger than this are refused: Lambda's own limit is 6 MB synchronous, 1 MB async.
    private let maxEventSize = 8 * 1024 * 1024

    /// - Parameters:
    ///   - address: `host:port`, as `AWS_LAMBDA_RUNTIME_API` gives it.
    ///   - retryDelays: Pauses between attempts when the API cannot be reached.
    public init(
        address: String, retryDelays: [Duration] = [.milliseconds(50), .milliseconds(200), .milliseconds(500)]
    ) throws(LambdaRuntimeError) {
        let parts = address.split(separator: ":")
        guard parts.count == 2, !parts[0].isEmpty, let port = Int(parts[1]), (1...65535).contains(port) else {
            throw LambdaRuntimeError(.invalidRuntimeAPIAddress, endpoint: "AWS_LAMBDA_RUNTIME_API", detail: address)
        }
        do {
            self.http = try HTTPClient(configuration: .init(connectTimeout: .seconds(2)))
        } catch {
            throw LambdaRuntimeError(.unreachable, endpoint: "init", detail: error.description)
        }
        self.base = "http://\(address)/2018-06-01"
        self.retryDelays = retryDelays
    }

    public func nextInvocation() throws(LambdaRuntimeError) -> Invocation {
        let endpoint = "GET /runtime/invocation/next"
        let response = try exchange(
            HTTPRequest(url: base + "/runtime/invocation/next", timeout: nil), endpoint: endpoint,
            sink: .memory(limit: maxEventSize))
        guard response.status == 200 else {
            throw LambdaRuntimeError(.unexpectedStatus(response.status), endpoint: endpoint)
        }
        let metadata = try InvocationMetadata { response.headers[$0] }
        return Invocation(metadata: metadata, event: response.body)
    }

    public func sendResponse(requestID: String, body: [UInt8]) throws(LambdaRuntimeError) -> ResponseOutcome {
        let endpoint = "POST /runtime/invocation/\(requestID)/response"
        let response = try exchange(
            HTTPRequest(
                method: .post, url: base + "/runtime/invocation/\(requestID)/response",
                headers: ["Content-Type": "application/json"], body: .bytes(body), timeout: .seconds(30)),
            endpoint: endpoint)
        switch response.status {
        case 202: return .accepted
        case 413: return .tooLarge
        default: throw LambdaRuntimeError(.unexpectedStatus(response.status), endpoint: endpoint)
        }
    }

    public func sendError(requestID: String, report: ErrorReport) throws(LambdaRuntimeError) {
        try postError(path: "/runtime/invocation/\(requestID)/error", report: report)
    }

    public func sendInitError(_ report: ErrorReport) throws(LambdaRuntimeError) {
        try postError(path: "/runtime/init/error", report: report)
    }

    private func postError(path: String, report: ErrorReport) throws(LambdaRuntimeError) {
        let endpoint = "POST \(path)"
        let headers: HTTPHeaders = [
            "Content-Type": "application/vnd.aws.lambda.error+json",
            "Lambda-Runtime-Function-Error-Type": report.type,
        ]
        let response = try exchange(
            HTTPRequest(method: .post, url: base + path, headers: headers, body: .bytes(report.json), timeout: .seconds(30)),
            endpoint: endpoint)
        guard response.status == 202 else {
            throw LambdaRuntimeError(.unexpectedStatus(response.status), endpoint: endpoint)
        }
    }

    /// Sends with brief retries on connection-level failures.
    private func exchange(
        _ request: HTTPRequest, endpoint: String, sink: HTTPResponseSink = .memory(limit: 1024 * 1024)
    ) throws(LambdaRuntimeError) -> HTTPResponse {
        var attempt = 0
        while true {
            do {
                return try http.send(request, into: sink)
            } catch {
                let connectionFailure =
                    switch error {
                    case .connect, .connectionClosed, .resolve, .timeout: true
                    default: false
                    }
                guard connectionFailure, attempt < retryDelays.count else {
                    throw LambdaRuntimeError(.unreachable, endpoint: endpoint, detail: error.description)
                }
                WallClock.sleep(for: retryDelays[attempt])
                attempt += 1
            }
        }
    }
}

@available(*, unavailable)
extension CurlRuntimeAPIClient: Sendable {}
