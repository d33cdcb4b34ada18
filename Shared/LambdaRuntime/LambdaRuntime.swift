import Core
import Logging

#if canImport(Glibc)
import Glibc
#endif

/// The custom-runtime loop: poll `/next`, run the handler, post its response or error, repeat.
///
/// A handler error is reported on the invocation's `error` endpoint and the loop carries on;
/// only a failure of the Runtime API itself ends it (thrown, so the entry point can exit non-zero).
public struct LambdaRuntime<Client: RuntimeAPIClient> {
    public let client: Client
    public let environment: Environment
    public let logger: Logger
    private let clock: @Sendable () -> Int64

    public init(
        client: Client, environment: Environment, logger: Logger,
        clock: @escaping @Sendable () -> Int64 = WallClock.milliseconds
    ) {
        self.client = client
        self.environment = environment
        self.logger = logger
        self.clock = clock
    }

    /// Serves invocations until the Runtime API fails (or `limit` invocations, for tests).
    /// - Throws: ``LambdaRuntimeError`` when the control plane fails; never a handler's error.
    public func run(_ handler: some LambdaByteHandler, limit: Int? = nil) throws(LambdaRuntimeError) {
        var served = 0
        while limit.map({ served < $0 }) ?? true {
            let invocation = try client.nextInvocation()
            try serve(invocation, with: handler)
            served += 1
        }
    }

    /// Runs one invocation and reports its outcome.
    public func serve(_ invocation: Invocation, with handler: some LambdaByteHandler) throws(LambdaRuntimeError) {
        let metadata = invocation.metadata
        // The X-Ray trace header belongs to this invocation only.
        if let trace = metadata.traceID { setenv("_X_AMZN_TRACE_ID", trace, 1) } else { unsetenv("_X_AMZN_TRACE_ID") }
        let context = LambdaContext(metadata: metadata, environment: environment, logger: logger, clock: clock)
        let started = clock()

        let output: [UInt8]
        do {
            output = try handler.handle(invocation.event, context: context)
        } catch {
            let report = ErrorReport(error)
            context.logger.error(
                "invocation failed",
                metadata: ["errorType": .string(report.type), "errorMessage": .string(report.message),
                           "durationMs": .stringConvertible(clock() - started)])
            try client.sendError(requestID: metadata.requestID, report: report)
            return
        }
        switch try client.sendResponse(requestID: metadata.requestID, body: output) {
        case .accepted:
            context.logger.debug(
                "invocation succeeded",
                metadata: ["durationMs": .stringConvertible(clock() - started), "responseBytes": .stringConvertible(output.count)])
        case .tooLarge:
            context.logger.error(
                "response rejected by Lambda as too large", metadata: ["responseBytes": .stringConvertible(output.count)])
        }
    }
}

/// Entry points for function executables.
public enum Lambda {
    /// Runs a function: under the Runtime API when `AWS_LAMBDA_RUNTIME_API` is set, else once,
    /// locally, on an event from `--event FILE` (or standard input), printing the response.
    ///
    /// `makeHandler` runs once per cold start; if it throws, the error goes to the init-error
    /// endpoint and the process exits, as Lambda expects.
    public static func main(
        name: String, arguments: [String] = CommandLine.arguments,
        _ makeHandler: (Environment, Logger) throws -> some LambdaByteHandler
    ) -> Never {
        let environment = Environment()
        guard let address = environment["AWS_LAMBDA_RUNTIME_API"] else {
            exit(LocalInvocation.run(name: name, arguments: arguments, environment: environment, makeHandler: makeHandler))
        }
        let logger = Logger.lambda(label: name, environment: environment)
        let client: CurlRuntimeAPIClient
        do {
            client = try CurlRuntimeAPIClient(address: address)
        } catch {
            logger.critical("cannot start the runtime", metadata: ["error": .string(error.description)])
            exit(1)
        }
        let handler: any LambdaByteHandler
        do {
            handler = try makeHandler(environment, logger)
        } catch {
            let report = ErrorReport(error)
            logger.critical("initialisation failed", metadata: ["errorType": .string(report.type), "errorMessage": .string(report.message)])
            try? client.sendInitError(report)
            exit(1)
        }
        do {
            try LambdaRuntime(client: client, environment: environment, logger: logger).run(handler)
        } catch {
            logger.critical("runtime API failure; exiting", metadata: ["error": .string(error.description)])
        }
        exit(1)
    }

    /// ``main(name:arguments:_:)`` for a typed handler.
    public static func main<Handler: LambdaHandler>(
        name: String, arguments: [String] = CommandLine.arguments,
        typed makeHandler: (Environment, Logger) throws -> Handler
    ) -> Never {
        main(name: name, arguments: arguments) { environment, logger in
            CodableHandlerAdapter(try makeHandler(environment, logger))
        }
    }
}
