import Foundation
import HTTPClient

/// A local stand-in for the Lambda Runtime API (2018-06-01), over real HTTP on loopback.
///
/// It serves queued events to `GET /next` (blocking, as Lambda does, until one is queued),
/// records what the function posts back, and can misbehave on request: hang up a poll, answer
/// a poll with a fatal status, or reject an oversized response with 413. Lambda itself cannot
/// run here; this is the part of it a runtime talks to.
public final class FakeRuntimeAPI: @unchecked Sendable {
    /// What a function posted for an invocation.
    public enum Outcome: Equatable, Sendable {
        case response(requestID: String, body: [UInt8])
        case error(requestID: String, errorType: String?, body: [UInt8])

        public var requestID: String {
            switch self {
            case .response(let id, _), .error(let id, _, _): id
            }
        }
    }

    /// One queued event and the headers `/next` will carry with it.
    public struct Event: Sendable {
        public var requestID: String
        public var body: [UInt8]
        public var deadlineMilliseconds: Int64
        public var functionARN: String
        public var traceID: String?
        public var clientContext: String?

        public init(
            _ body: [UInt8], requestID: String = UUID().uuidString.lowercased(),
            deadlineMilliseconds: Int64 = Int64(Date().timeIntervalSince1970 * 1000) + 60_000,
            functionARN: String = "arn:aws:lambda:eu-central-1:123456789012:function:probe",
            traceID: String? = nil, clientContext: String? = nil
        ) {
            self.requestID = requestID
            self.body = body
            self.deadlineMilliseconds = deadlineMilliseconds
            self.functionARN = functionARN
            self.traceID = traceID
            self.clientContext = clientContext
        }
    }

    private let condition = NSCondition()
    private var queue: [Event] = []
    private var outcomes: [Outcome] = []
    private var initErrors: [(type: String?, body: [UInt8])] = []
    private var pollsToHangUp = 0
    private var pollStatus: Int?
    private var polls = 0
    private var closing = false
    /// Responses above this many bytes get 413, as Lambda's 6 MB limit does.
    private let responseLimit: Int
    private var server: TestHTTPServer!

    public init(responseLimit: Int = 6 * 1024 * 1024) throws {
        self.responseLimit = responseLimit
        self.server = try TestHTTPServer { [unowned self] request in self.handle(request) }
    }

    /// `host:port`, the value for `AWS_LAMBDA_RUNTIME_API`.
    public var address: String { "127.0.0.1:\(server.port)" }

    public func enqueue(_ event: Event) {
        condition.withLock {
            queue.append(event)
            condition.broadcast()
        }
    }

    /// Queues a JSON event and returns its request id.
    @discardableResult
    public func enqueue(json: String) -> String {
        let event = Event(Array(json.utf8))
        enqueue(event)
        return event.requestID
    }

    /// The next `count` polls are accepted, held briefly, then the connection is closed unanswered.
    public func hangUpPolls(_ count: Int) { condition.withLock { pollsToHangUp = count } }

    /// Every later poll is answered with `status` (Lambda answers 500 when the sandbox is broken).
    public func answerPolls(with status: Int) { condition.withLock { pollStatus = status; condition.broadcast() } }

    public var pollCount: Int { condition.withLock { polls } }

    /// Waits until the function has polled `count` times (a poll after a response proves the
    /// response's 202 reached it).
    @discardableResult
    public func waitForPolls(_ count: Int, timeout: TimeInterval = 30) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        return condition.withLock {
            while polls < count, condition.wait(until: deadline) {}
            return polls >= count
        }
    }

    /// Waits until `count` invocations have been answered; returns them in arrival order.
    public func waitForOutcomes(_ count: Int, timeout: TimeInterval = 30) -> [Outcome] {
        let deadline = Date().addingTimeInterval(timeout)
        return condition.withLock {
            while outcomes.count < count, condition.wait(until: deadline) {}
            return outcomes
        }
    }

    /// Waits for the outcome of one invocation.
    public func waitForOutcome(requestID: String, timeout: TimeInterval = 60) -> Outcome? {
        let deadline = Date().addingTimeInterval(timeout)
        return condition.withLock {
            while !outcomes.contains(where: { $0.requestID == requestID }), condition.wait(until: deadline) {}
            return outcomes.first { $0.requestID == requestID }
        }
    }

    /// Waits for the first init error.
    public func waitForInitError(timeout: TimeInterval = 30) -> (type: String?, body: [UInt8])? {
        let deadline = Date().addingTimeInterval(timeout)
        return condition.withLock {
            while initErrors.isEmpty, condition.wait(until: deadline) {}
            return initErrors.first
        }
    }

    /// Closes the server: the function's next call finds nobody there.
    public func stop() {
        condition.withLock {
            closing = true
            condition.broadcast()
        }
        server.stop()
    }

    deinit { stop() }

    // MARK: - Serving

    private func handle(_ request: TestHTTPRequest) -> TestHTTPReply {
        let path = request.path
        let prefix = "/2018-06-01/runtime/"
        guard path.hasPrefix(prefix) else { return .text(404, "unknown path \(path)") }
        let route = path.dropFirst(prefix.count).split(separator: "/").map(String.init)
        switch (request.method, route.count, route.first, route.last) {
        case ("GET", 2, "invocation", "next"):
            return nextInvocation()
        case ("POST", 3, "invocation", "response"):
            if request.body.count > responseLimit {
                return .text(413, #"{"errorMessage":"Exceeded maximum allowed payload size","errorType":"RequestEntityTooLarge"}"#)
            }
            record(.response(requestID: route[1], body: request.body))
            return .text(202, #"{"status":"OK"}"#)
        case ("POST", 3, "invocation", "error"):
            record(.error(requestID: route[1], errorType: request.headers["Lambda-Runtime-Function-Error-Type"], body: request.body))
            return .text(202, #"{"status":"OK"}"#)
        case ("POST", 2, "init", "error"):
            condition.withLock {
                initErrors.append((request.headers["Lambda-Runtime-Function-Error-Type"], request.body))
                condition.broadcast()
            }
            return .text(202, #"{"status":"OK"}"#)
        default:
            return .text(404, "unknown route \(request.method) \(path)")
        }
    }

    private func record(_ outcome: Outcome) {
        condition.withLock {
            outcomes.append(outcome)
            condition.broadcast()
        }
    }

    private func nextInvocation() -> TestHTTPReply {
        condition.lock()
        defer { condition.unlock() }
        polls += 1
        condition.broadcast()
        if pollsToHangUp > 0 {
            pollsToHangUp -= 1
            return .delayed(.milliseconds(100), .hangUp)
        }
        while queue.isEmpty && !closing && pollStatus == nil { condition.wait() }
        if let status = pollStatus { return .text(status, #"{"errorMessage":"sandbox broken","errorType":"ServiceException"}"#) }
        if closing { return .hangUp }
        let event = queue.removeFirst()
        var headers: HTTPHeaders = [
            "Content-Type": "application/json",
            "Lambda-Runtime-Aws-Request-Id": event.requestID,
            "Lambda-Runtime-Deadline-Ms": String(event.deadlineMilliseconds),
            "Lambda-Runtime-Invoked-Function-Arn": event.functionARN,
        ]
        if let trace = event.traceID { headers.add("Lambda-Runtime-Trace-Id", trace) }
        if let context = event.clientContext { headers.add("Lambda-Runtime-Client-Context", context) }
        return .respond(status: 200, headers: headers, body: event.body)
    }
}

/// Built function processes that start together: one process of a binary per event, each with a
/// Runtime API of its own; the events are handed out only once every process polls, so the
/// invocations race from the same moment.
public enum FunctionRace {
    /// Each event's outcome (nil when none came within `timeout`) and everything the processes printed.
    public static func run(_ binary: String, events: [String], timeout: TimeInterval = 90,
                           environment: (_ runtimeAPI: String) throws -> [String: String]) throws -> (outcomes: [FakeRuntimeAPI.Outcome?], output: String) {
        var runs: [(api: FakeRuntimeAPI, process: ChildProcess, id: String)] = []
        defer { for run in runs { run.api.stop() } }
        for _ in events {
            let api = try FakeRuntimeAPI()
            runs.append((api, try ChildProcess(binary, environment: try environment(api.address)), ""))
        }
        for run in runs { _ = run.api.waitForPolls(1, timeout: 30) }
        for index in runs.indices {
            let event = FakeRuntimeAPI.Event(Array(events[index].utf8))
            runs[index].id = event.requestID
            runs[index].api.enqueue(event)
        }
        let outcomes = runs.map { $0.api.waitForOutcome(requestID: $0.id, timeout: timeout) }
        var output = ""
        for run in runs {
            run.process.terminate()
            output += run.process.standardOutput + run.process.standardError
        }
        return (outcomes, output)
    }
}
