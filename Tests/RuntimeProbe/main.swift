// A minimal function binary for the runtime tests: the real loop, the real libcurl client,
// a handler whose behaviour each event chooses.
import Core
import LambdaRuntime

#if canImport(Glibc)
import Glibc
#endif

struct ProbeEvent: Decodable {
    /// `echo` returns `text`; `context` returns what the context says; `fail` throws.
    var action: String
    var text: String?
}

struct ProbeOutput: Encodable {
    var text: String?
    var requestID: String?
    var remainingMilliseconds: Int64?
    var invokedFunctionARN: String?
    var traceEnvironment: String?
    var clientContext: String?
}

struct ProbeFailure: ReportableError, CustomStringConvertible {
    var text: String
    var errorType: String { "Probe.Failure" }
    var description: String { "asked to fail: \(text)" }
}

struct ProbeHandler: LambdaHandler {
    func handle(_ event: ProbeEvent, context: LambdaContext) throws -> ProbeOutput {
        switch event.action {
        case "echo":
            context.logger.info("echo", metadata: ["characters": "\(event.text?.count ?? 0)"])
            return ProbeOutput(text: event.text)
        case "context":
            let remaining = context.remainingTime.components
            return ProbeOutput(
                requestID: context.requestID,
                remainingMilliseconds: remaining.seconds * 1000 + remaining.attoseconds / 1_000_000_000_000_000,
                invokedFunctionARN: context.invokedFunctionARN,
                traceEnvironment: getenv("_X_AMZN_TRACE_ID").map { String(cString: $0) },
                clientContext: context.clientContext)
        case "fail":
            throw ProbeFailure(text: event.text ?? "")
        default:
            throw ProbeFailure(text: "unknown action \(event.action)")
        }
    }
}

Lambda.main(name: "runtime-probe", typed: { environment, _ in
    if environment["PROBE_INIT_FAIL"] != nil {
        _ = try environment.require("PROBE_REQUIRED_SETTING")
    }
    return ProbeHandler()
})
