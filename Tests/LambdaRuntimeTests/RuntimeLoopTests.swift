import Core
import LambdaRuntime
import Logging
import Synchronization
import Testing

/// A scripted Runtime API: hands out queued invocations, records what the loop posts, and
/// fails with `.unreachable` once the script is exhausted (as a vanished API would).
final class ScriptedClient: RuntimeAPIClient, @unchecked Sendable {
    enum Posted: Equatable {
        case response(String, [UInt8])
        case error(String, ErrorReport)
    }

    var script: [Invocation]
    var posted: [Posted] = []
    var responseOutcome: ResponseOutcome = .accepted

    init(_ script: [Invocation]) { self.script = script }

    func nextInvocation() throws(LambdaRuntimeError) -> Invocation {
        guard !script.isEmpty else { throw LambdaRuntimeError(.unreachable, endpoint: "GET /runtime/invocation/next") }
        return script.removeFirst()
    }

    func sendResponse(requestID: String, body: [UInt8]) throws(LambdaRuntimeError) -> ResponseOutcome {
        posted.append(.response(requestID, body))
        return responseOutcome
    }

    func sendError(requestID: String, report: ErrorReport) throws(LambdaRuntimeError) {
        posted.append(.error(requestID, report))
    }

    func sendInitError(_ report: ErrorReport) throws(LambdaRuntimeError) {}
}

struct Boom: Error, CustomStringConvertible { var description: String { "boom at row 3" } }

func invocation(_ id: String, _ text: String, deadline: Int64 = 10_000) -> Invocation {
    Invocation(metadata: InvocationMetadata(requestID: id, deadlineMilliseconds: deadline), event: Array(text.utf8))
}

@Suite struct RuntimeLoopTests {
    let logger = Logger(label: "test") { _ in JSONLogHandler(output: LogOutput { _ in }) }

    @Test func handlerErrorsAreReportedAndTheLoopCarriesOn() throws {
        let client = ScriptedClient([invocation("a", "ok"), invocation("b", "fail"), invocation("c", "ok2")])
        let runtime = LambdaRuntime(client: client, environment: Environment([:]), logger: logger)
        let handler = ClosureHandler { event, _ in
            if event == Array("fail".utf8) { throw Boom() }
            return event.reversed()
        }
        #expect(throws: LambdaRuntimeError(.unreachable, endpoint: "GET /runtime/invocation/next")) {
            try runtime.run(handler)
        }
        #expect(client.posted == [
            .response("a", Array("ko".utf8)),
            .error("b", ErrorReport(type: "Boom", message: "boom at row 3")),
            .response("c", Array("2ko".utf8)),
        ])
    }

    @Test func limitStopsAfterThatManyInvocations() throws {
        let client = ScriptedClient([invocation("a", "1"), invocation("b", "2"), invocation("c", "3")])
        let runtime = LambdaRuntime(client: client, environment: Environment([:]), logger: logger)
        try runtime.run(ClosureHandler { event, _ in event }, limit: 2)
        #expect(client.posted.count == 2)
        #expect(client.script.count == 1)
    }

    @Test func tooLargeResponseIsLoggedAndTheLoopCarriesOn() throws {
        let client = ScriptedClient([invocation("a", "1"), invocation("b", "2")])
        client.responseOutcome = .tooLarge
        let runtime = LambdaRuntime(client: client, environment: Environment([:]), logger: logger)
        try runtime.run(ClosureHandler { event, _ in event }, limit: 2)
        #expect(client.posted.count == 2)
    }

    @Test func contextCarriesMetadataAndRemainingTimeFromTheInjectedClock() throws {
        let metadata = InvocationMetadata(
            requestID: "r-1", deadlineMilliseconds: 1_000_500, invokedFunctionARN: "arn:x", traceID: "Root=1-abc")
        let context = LambdaContext(
            metadata: metadata,
            environment: Environment(["AWS_LAMBDA_FUNCTION_NAME": "validator", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "512"]),
            logger: logger, clock: { 1_000_000 })
        #expect(context.remainingTime == .milliseconds(500))
        #expect(context.functionName == "validator")
        #expect(context.memoryLimitMB == 512)
        #expect(context.logger[metadataKey: "requestId"] == "r-1")
        let late = LambdaContext(metadata: metadata, environment: Environment([:]), logger: logger, clock: { 2_000_000 })
        #expect(late.remainingTime == .zero)
    }

    @Test func typedAdapterReportsUndecodableEventsWithThePath() throws {
        struct Event: Decodable { var records: [Int] }
        struct Handler: LambdaHandler {
            func handle(_ event: Event, context: LambdaContext) throws -> [Int] { event.records.map { $0 * 2 } }
        }
        let adapter = CodableHandlerAdapter(Handler())
        let context = LambdaContext(
            metadata: InvocationMetadata(requestID: "r", deadlineMilliseconds: 0), environment: Environment([:]), logger: logger)
        #expect(try adapter.handle(Array(#"{"records":[1,2]}"#.utf8), context: context) == Array("[2,4]".utf8))
        let error = #expect(throws: InvalidEventError.self) {
            try adapter.handle(Array(#"{"records":[1,"x"]}"#.utf8), context: context)
        }
        #expect(error?.reason == "expected Int at records[1]")
        #expect(ErrorReport(error!).type == "Runtime.InvalidEvent")
        let missing = #expect(throws: InvalidEventError.self) { try adapter.handle(Array("{}".utf8), context: context) }
        #expect(missing?.reason == #"missing key "records""#)
    }
}

@Suite struct InvocationMetadataTests {
    @Test func readsEveryHeaderCaseInsensitively() throws {
        let headers = [
            "lambda-runtime-aws-request-id": "8476a536-e9f4-11e8-9739-2dfe598c3fcd",
            "lambda-runtime-deadline-ms": "1542409706888",
            "lambda-runtime-invoked-function-arn": "arn:aws:lambda:us-east-2:123456789012:function:custom-runtime",
            "lambda-runtime-trace-id": "Root=1-5bef4de7-ad49b0e87f6ef6c87fc2e700;Parent=9a9197af755a6419;Sampled=1",
            "lambda-runtime-client-context": #"{"client":{}}"#,
        ]
        let metadata = try InvocationMetadata { headers[$0.lowercased()] }
        #expect(metadata.requestID == "8476a536-e9f4-11e8-9739-2dfe598c3fcd")
        #expect(metadata.deadlineMilliseconds == 1_542_409_706_888)
        #expect(metadata.invokedFunctionARN.hasSuffix(":function:custom-runtime"))
        #expect(metadata.traceID?.hasPrefix("Root=1-5bef4de7") == true)
        #expect(metadata.clientContext == #"{"client":{}}"#)
        #expect(metadata.cognitoIdentity == nil)
    }

    @Test func missingRequestIDOrBadDeadlineIsARuntimeError() {
        #expect(throws: LambdaRuntimeError(.missingRequestID, endpoint: "GET /runtime/invocation/next")) {
            try InvocationMetadata { $0 == "Lambda-Runtime-Deadline-Ms" ? "1" : nil }
        }
        #expect(throws: LambdaRuntimeError(.invalidDeadline, endpoint: "GET /runtime/invocation/next", detail: "request r")) {
            try InvocationMetadata { $0 == "Lambda-Runtime-Aws-Request-Id" ? "r" : ($0 == "Lambda-Runtime-Deadline-Ms" ? "soon" : nil) }
        }
    }

    @Test func clientRejectsAMalformedRuntimeAddress() {
        for address in ["", "localhost", "host:port", "127.0.0.1:0", "127.0.0.1:70000", ":9001"] {
            #expect(throws: LambdaRuntimeError.self) { try CurlRuntimeAPIClient(address: address) }
        }
    }

    @Test func errorReportIsLambdasErrorDocument() {
        let report = ErrorReport(type: "Function.ValidationError", message: "row 17: \"energy\" < 0\n")
        #expect(String(decoding: report.json, as: UTF8.self)
            == #"{"errorMessage":"row 17: \"energy\" < 0\n","errorType":"Function.ValidationError","stackTrace":[]}"#)
    }
}
