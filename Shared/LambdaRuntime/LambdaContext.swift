import Core
import Logging

/// What the Runtime API says about one invocation (the `/next` response headers).
public struct InvocationMetadata: Sendable, Equatable {
    public var requestID: String
    /// Absolute deadline, Unix epoch milliseconds.
    public var deadlineMilliseconds: Int64
    public var invokedFunctionARN: String
    public var traceID: String?
    public var clientContext: String?
    public var cognitoIdentity: String?
    public var tenantID: String?

    public init(
        requestID: String, deadlineMilliseconds: Int64, invokedFunctionARN: String = "", traceID: String? = nil,
        clientContext: String? = nil, cognitoIdentity: String? = nil, tenantID: String? = nil
    ) {
        self.requestID = requestID
        self.deadlineMilliseconds = deadlineMilliseconds
        self.invokedFunctionARN = invokedFunctionARN
        self.traceID = traceID
        self.clientContext = clientContext
        self.cognitoIdentity = cognitoIdentity
        self.tenantID = tenantID
    }

    /// Reads the `/next` headers (names compared case-insensitively).
    /// - Throws: ``LambdaRuntimeError`` when the request id or the deadline is missing or malformed.
    public init(header: (String) -> String?) throws(LambdaRuntimeError) {
        let endpoint = "GET /runtime/invocation/next"
        guard let requestID = header("Lambda-Runtime-Aws-Request-Id"), !requestID.isEmpty else {
            throw LambdaRuntimeError(.missingRequestID, endpoint: endpoint)
        }
        guard let text = header("Lambda-Runtime-Deadline-Ms"), let deadline = Int64(text) else {
            throw LambdaRuntimeError(.invalidDeadline, endpoint: endpoint, detail: "request \(requestID)")
        }
        func optional(_ name: String) -> String? { header(name).flatMap { $0.isEmpty ? nil : $0 } }
        self.init(
            requestID: requestID, deadlineMilliseconds: deadline,
            invokedFunctionARN: header("Lambda-Runtime-Invoked-Function-Arn") ?? "",
            traceID: optional("Lambda-Runtime-Trace-Id"), clientContext: optional("Lambda-Runtime-Client-Context"),
            cognitoIdentity: optional("Lambda-Runtime-Cognito-Identity"), tenantID: optional("Lambda-Runtime-Aws-Tenant-Id"))
    }
}

/// Everything a handler knows about the invocation it serves.
public struct LambdaContext: Sendable {
    public let metadata: InvocationMetadata
    public let functionName: String
    public let functionVersion: String
    public let memoryLimitMB: Int
    /// A logger whose lines carry this invocation's `requestId`.
    public var logger: Logger
    /// Where log and metric lines go: stdout under Lambda, stderr for a local invocation.
    public let logOutput: LogOutput
    /// The clock the context measures remaining time with (epoch ms); injected in tests.
    private let clock: @Sendable () -> Int64

    public init(
        metadata: InvocationMetadata, environment: Environment, logger: Logger,
        clock: @escaping @Sendable () -> Int64 = WallClock.milliseconds, logOutput: LogOutput = .standardOutput
    ) {
        self.metadata = metadata
        self.logOutput = logOutput
        self.functionName = environment["AWS_LAMBDA_FUNCTION_NAME"] ?? "local"
        self.functionVersion = environment["AWS_LAMBDA_FUNCTION_VERSION"] ?? "$LATEST"
        self.memoryLimitMB = environment["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"].flatMap { Int($0) } ?? 0
        var logger = logger
        logger[metadataKey: "requestId"] = .string(metadata.requestID)
        self.logger = logger
        self.clock = clock
    }

    public var requestID: String { metadata.requestID }
    public var invokedFunctionARN: String { metadata.invokedFunctionARN }
    public var traceID: String? { metadata.traceID }
    public var clientContext: String? { metadata.clientContext }
    public var deadlineMilliseconds: Int64 { metadata.deadlineMilliseconds }

    /// Time left before Lambda stops the invocation (never negative). Derive outbound
    /// timeouts from it, less a margin for reporting the result.
    public var remainingTime: Duration {
        .milliseconds(max(0, metadata.deadlineMilliseconds - clock()))
    }
}
