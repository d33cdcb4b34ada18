import Core
/// A failure of the Runtime API conversation itself (not of a handler). The loop ends on these
/// and the process exits non-zero, as the official runtimes do; Lambda then starts a new one.
public struct LambdaRuntimeError: Error, Equatable, Sendable, CustomStringConvertible {
    public enum Code: Equatable, Sendable {
        /// `AWS_LAMBDA_RUNTIME_API` is not `host:port`.
        case invalidRuntimeAPIAddress
        /// `/next` answered without `Lambda-Runtime-Aws-Request-Id`.
        case missingRequestID
        /// `/next` answered without a numeric `Lambda-Runtime-Deadline-Ms`.
        case invalidDeadline
        /// The Runtime API answered a status the protocol treats as fatal (403, 500, …).
        case unexpectedStatus(Int)
        /// The Runtime API could not be reached, even after brief retries.
        case unreachable
    }

    public let code: Code
    /// Which call failed, for example `GET /runtime/invocation/next`.
    public let endpoint: String
    public let detail: String

    public init(_ code: Code, endpoint: String, detail: String = "") {
        self.code = code
        self.endpoint = endpoint
        self.detail = detail
    }

    public var description: String {
        let what: String =
            switch code {
            case .invalidRuntimeAPIAddress: "invalid AWS_LAMBDA_RUNTIME_API address"
            case .missingRequestID: "response without Lambda-Runtime-Aws-Request-Id"
            case .invalidDeadline: "response without a valid Lambda-Runtime-Deadline-Ms"
            case .unexpectedStatus(let status): "unexpected HTTP \(status)"
            case .unreachable: "Runtime API unreachable"
            }
        return "\(endpoint): \(what)" + (detail.isEmpty ? "" : " (\(detail))")
    }
}
