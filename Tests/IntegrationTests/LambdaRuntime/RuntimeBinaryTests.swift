import Foundation
import Testing
import TestSupport

/// The real loop in the built `runtime-probe` binary, over libcurl, against a local Runtime API.
/// (Lambda itself cannot run here: `FakeRuntimeAPI` plays its Runtime API side.)
@Suite struct RuntimeBinaryTests {
    func start(_ api: FakeRuntimeAPI, extra: [String: String] = [:]) throws -> ChildProcess {
        var environment = [
            "AWS_LAMBDA_RUNTIME_API": api.address, "AWS_LAMBDA_FUNCTION_NAME": "probe",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256", "AWS_LAMBDA_LOG_LEVEL": "DEBUG",
        ]
        environment.merge(extra) { $1 }
        return try ChildProcess(try BuiltBinary.path("runtime-probe"), environment: environment)
    }

    func json(_ bytes: [UInt8]) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any])
    }

    @Test func servesManyInvocationsInARowAndLogsEachWithItsRequestID() throws {
        let api = try FakeRuntimeAPI()
        var ids: [String] = []
        for index in 0..<50 { ids.append(api.enqueue(json: #"{"action":"echo","text":"reading \#(index)"}"#)) }
        let process = try start(api)
        let outcomes = api.waitForOutcomes(50)
        try #require(outcomes.count == 50)
        for (index, outcome) in outcomes.enumerated() {
            guard case .response(let id, let body) = outcome else {
                Issue.record("invocation \(index) failed: \(outcome)")
                continue
            }
            #expect(id == ids[index])
            #expect(try json(body)["text"] as? String == "reading \(index)")
        }
        // Once it polls again, the last response is settled; then let it leave by itself.
        #expect(api.waitForPolls(51))
        api.stop()
        #expect(try process.waitForExit() == 1)
        let lines = process.logLines
        for id in ids {
            let mine = lines.filter { $0["requestId"] as? String == id }
            #expect(mine.contains { $0["message"] as? String == "echo" && $0["level"] as? String == "INFO" })
            #expect(mine.contains { $0["message"] as? String == "invocation succeeded" && $0["durationMs"] != nil },
                    "no success line for \(id) among \(mine)")
        }
        #expect(lines.allSatisfy { ($0["timestamp"] as? String)?.hasSuffix("Z") == true })
    }

    @Test func handlerErrorsAndBadEventsAreReportedAndTheLoopKeepsServing() throws {
        let api = try FakeRuntimeAPI()
        let failing = api.enqueue(json: #"{"action":"fail","text":"negative energy in row 17"}"#)
        let good = api.enqueue(json: #"{"action":"echo","text":"still here"}"#)
        let garbage = api.enqueue(json: #"{"action": 42"#)
        let last = api.enqueue(json: #"{"action":"echo","text":"and here"}"#)
        let process = try start(api)
        let outcomes = api.waitForOutcomes(4)
        try #require(outcomes.count == 4)

        guard case .error(failing, "Probe.Failure", let body) = outcomes[0] else {
            Issue.record("expected the handler's error, got \(outcomes[0])")
            return
        }
        let report = try json(body)
        #expect(report["errorType"] as? String == "Probe.Failure")
        #expect(report["errorMessage"] as? String == "asked to fail: negative energy in row 17")
        #expect(report["stackTrace"] as? [Any] != nil)
        #expect(outcomes[1].requestID == good)
        guard case .error(garbage, "Runtime.InvalidEvent", let invalid) = outcomes[2] else {
            Issue.record("expected an invalid-event error, got \(outcomes[2])")
            return
        }
        #expect(try json(invalid)["errorMessage"] as? String == "the event is not a valid ProbeEvent: not valid JSON")
        guard case .response(last, _) = outcomes[3] else {
            Issue.record("expected a response after the errors, got \(outcomes[3])")
            return
        }
        #expect(process.isRunning)
        process.terminate()
        #expect(process.logLines.contains { $0["level"] as? String == "ERROR" && $0["requestId"] as? String == failing })
    }

    @Test func initFailureIsPostedToTheInitErrorEndpointAndTheProcessExits() throws {
        let api = try FakeRuntimeAPI()
        api.enqueue(json: #"{"action":"echo"}"#)
        let process = try start(api, extra: ["PROBE_INIT_FAIL": "1"])
        let error = try #require(api.waitForInitError())
        #expect(error.type == "ConfigurationError")
        #expect(try json(error.body)["errorMessage"] as? String == "configuration PROBE_REQUIRED_SETTING is not set")
        #expect(try process.waitForExit() == 1)
        #expect(api.pollCount == 0)
    }

    @Test func carriesASixMegabyteNonASCIIPayloadBothWays() throws {
        let api = try FakeRuntimeAPI()
        let unit = "Zählerstand ☀️ Energie ≥ 0 Wh; 発電量 "
        let text = String(repeating: unit, count: 6_000_000 / unit.utf8.count)
        let event = try JSONSerialization.data(withJSONObject: ["action": "echo", "text": text])
        #expect(event.count > 5_900_000)
        api.enqueue(.init(Array(event)))
        let process = try start(api)
        let outcomes = api.waitForOutcomes(1, timeout: 60)
        process.terminate()
        guard case .response(_, let body) = try #require(outcomes.first) else {
            Issue.record("expected a response, got \(outcomes)")
            return
        }
        #expect(try json(body)["text"] as? String == text)
    }

    @Test func turnsDeadlineARNTraceAndClientContextIntoTheContext() throws {
        let api = try FakeRuntimeAPI()
        let deadline = Int64(Date().timeIntervalSince1970 * 1000) + 30_000
        let trace = "Root=1-5bef4de7-ad49b0e87f6ef6c87fc2e700;Parent=9a9197af755a6419;Sampled=1"
        api.enqueue(.init(Array(#"{"action":"context"}"#.utf8), requestID: "with-trace", deadlineMilliseconds: deadline,
                          traceID: trace, clientContext: #"{"custom":{"k":"v"}}"#))
        api.enqueue(.init(Array(#"{"action":"context"}"#.utf8), requestID: "without-trace"))
        let process = try start(api)
        let outcomes = api.waitForOutcomes(2)
        process.terminate()
        try #require(outcomes.count == 2)
        guard case .response("with-trace", let first) = outcomes[0], case .response("without-trace", let second) = outcomes[1] else {
            Issue.record("unexpected outcomes \(outcomes)")
            return
        }
        let context = try json(first)
        #expect(context["requestID"] as? String == "with-trace")
        let remaining = try #require(context["remainingMilliseconds"] as? Int)
        #expect(remaining > 20_000 && remaining <= 30_000)
        #expect(context["invokedFunctionARN"] as? String == "arn:aws:lambda:eu-central-1:123456789012:function:probe")
        #expect(context["traceEnvironment"] as? String == trace)
        #expect(context["clientContext"] as? String == #"{"custom":{"k":"v"}}"#)
        // The trace variable belongs to one invocation: the next one without a trace has none.
        #expect(try json(second)["traceEnvironment"] == nil)
    }

    @Test func survivesTheServerHangingUpMidPoll() throws {
        let api = try FakeRuntimeAPI()
        api.hangUpPolls(2)
        let process = try start(api)
        let id = api.enqueue(json: #"{"action":"echo","text":"after the hang-up"}"#)
        let outcomes = api.waitForOutcomes(1)
        #expect(outcomes.first?.requestID == id)
        #expect(api.pollCount >= 3)
        #expect(process.isRunning)
        process.terminate()
    }

    @Test func exitsNonZeroWhenTheRuntimeAPIGoesAway() throws {
        let api = try FakeRuntimeAPI()
        api.enqueue(json: #"{"action":"echo","text":"one"}"#)
        let process = try start(api)
        #expect(api.waitForOutcomes(1).count == 1)
        #expect(api.waitForPolls(2))
        api.stop()
        #expect(try process.waitForExit(timeout: 20) == 1)
        #expect(process.logLines.contains { $0["level"] as? String == "FATAL" })
    }

    @Test func exitsPromptlyWhenPollsAreAnsweredWith500() throws {
        let api = try FakeRuntimeAPI()
        api.answerPolls(with: 500)
        let process = try start(api)
        #expect(try process.waitForExit(timeout: 20) == 1)
        let fatal = process.logLines.first { $0["level"] as? String == "FATAL" }
        #expect((fatal?["error"] as? String)?.contains("unexpected HTTP 500") == true)
    }

    @Test func carriesOnAfterLambdaRejectsAnOversizedResponse() throws {
        let api = try FakeRuntimeAPI(responseLimit: 1000)
        let big = api.enqueue(json: #"{"action":"echo","text":"\#(String(repeating: "x", count: 2000))"}"#)
        let small = api.enqueue(json: #"{"action":"echo","text":"fits"}"#)
        let process = try start(api)
        let outcomes = api.waitForOutcomes(1)
        process.terminate()
        #expect(outcomes.map(\.requestID) == [small])
        #expect(process.logLines.contains {
            $0["requestId"] as? String == big && $0["message"] as? String == "response rejected by Lambda as too large"
        })
    }
}

/// `sam local invoke` without Docker: the built binary without `AWS_LAMBDA_RUNTIME_API`.
@Suite struct LocalInvokeTests {
    let binary: String
    init() throws { binary = try BuiltBinary.path("runtime-probe") }

    @Test func runsOneEventFromAFileAndPrintsTheResponse() throws {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("event-\(UUID().uuidString).json")
        try Data(#"{"action":"echo","text":"from a file ☀"}"#.utf8).write(to: file)
        let process = try ChildProcess(binary, arguments: ["--event", file.path], environment: [:])
        #expect(try process.waitForExit() == 0)
        #expect(process.standardOutput == #"{"text":"from a file ☀"}"# + "\n")
        // Logs went to stderr as JSON lines, so stdout stays exactly the response.
        #expect(process.standardError.contains(#""message":"echo""#))
    }

    @Test func readsStandardInputAndReportsHandlerErrorsWithExitOne() throws {
        let ok = try ChildProcess(binary, environment: [:], input: Array(#"{"action":"context"}"#.utf8))
        #expect(try ok.waitForExit() == 0)
        #expect(ok.standardOutput.contains(#""invokedFunctionARN":"arn:aws:lambda:local:000000000000:function:runtime-probe""#))
        let failing = try ChildProcess(binary, environment: [:], input: Array(#"{"action":"fail","text":"bad row"}"#.utf8))
        #expect(try failing.waitForExit() == 1)
        #expect(failing.standardOutput == #"{"errorMessage":"asked to fail: bad row","errorType":"Probe.Failure","stackTrace":[]}"# + "\n")
    }

    @Test func rejectsUnknownArgumentsAndMissingFilesWithUsage() throws {
        let unknown = try ChildProcess(binary, arguments: ["--evnt", "x"], environment: [:])
        #expect(try unknown.waitForExit() == 2)
        #expect(unknown.standardError.contains("unknown argument: --evnt"))
        #expect(unknown.standardError.contains("usage: runtime-probe [--event FILE]"))
        let missing = try ChildProcess(binary, arguments: ["--event", "/nonexistent/event.json"], environment: [:])
        #expect(try missing.waitForExit() == 2)
        #expect(missing.standardError.contains("cannot read the event from /nonexistent/event.json"))
    }
}
