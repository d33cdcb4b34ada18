import Core
import Foundation
import LambdaRuntime
import Postgres
import Store
import Testing
import TestSupport

/// A BUILT function-URL function (oauth-callback, ingest-api) in one process for the whole test,
/// driven through the local Runtime API with function-URL events (payload 2.0) built the way
/// Lambda builds them. (Lambda's URL front door is what cannot run here: these events stand in for it.)
final class WebHarness {
    let database: TestDatabase
    let key = (0..<32).map { _ in UInt8.random(in: 0...255) }
    var keys: EnvelopeKeys { try! EnvelopeKeys(current: key) }
    let api: FakeRuntimeAPI
    let process: ChildProcess
    let function: String

    struct Answer {
        var status: Int
        var headers: [String: String]
        var body: String
        var json: [String: Any] { (try? JSONSerialization.jsonObject(with: Data(body.utf8))) as? [String: Any] ?? [:] }
        var errorCode: String? { (json["error"] as? [String: Any])?["code"] as? String }
    }

    init(function: String, database: TestDatabase, settings: [String: String]) throws {
        self.function = function
        self.database = database
        api = try FakeRuntimeAPI()
        var environment: [String: String] = [
            "AWS_LAMBDA_RUNTIME_API": api.address, "AWS_LAMBDA_FUNCTION_NAME": function,
            "DATABASE_URL": database.url, "METERLAKE_ENCRYPTION_KEY": Base64.encode(key),
            "METERLAKE_STATE_SECRET": "a state secret of at least thirty-two bytes, for tests",
            "METERLAKE_JWT_SECRET": TestTokens.secret, "METERLAKE_FRONTEND_ORIGIN": "https://app.example.test",
        ]
        environment.merge(settings) { $1 }
        process = try ChildProcess(try BuiltBinary.path(function), environment: environment)
    }

    /// Everything the function printed so far (its JSON logs and EMF lines).
    var output: String { process.standardOutput + process.standardError }

    deinit {
        process.terminate()
        api.stop()
    }

    /// One request through the function URL: the event Lambda would send, the function's answer.
    func request(_ method: String, _ path: String, query: String = "", headers: [String: String] = [:], body: [UInt8]? = nil,
                 base64: Bool = false) throws -> Answer {
        var event: [String: Any] = [
            "version": "2.0", "routeKey": "$default", "rawPath": path, "rawQueryString": query,
            "headers": Dictionary(uniqueKeysWithValues: (["host": "abc.lambda-url.eu-central-1.on.aws", "user-agent": "tests"].merging(headers) { $1 })
                .map { ($0.key.lowercased(), $0.value) }),
            "requestContext": [
                "accountId": "123456789012", "apiId": "abc", "requestId": UUID().uuidString, "routeKey": "$default", "stage": "$default",
                "http": ["method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "198.51.100.4", "userAgent": "tests"],
            ] as [String: Any],
            "isBase64Encoded": base64,
        ]
        if let body { event["body"] = base64 ? Base64.encode(body) : String(decoding: body, as: UTF8.self) }
        let queued = FakeRuntimeAPI.Event(Array(try JSONSerialization.data(withJSONObject: event)))
        api.enqueue(queued)
        guard let outcome = api.waitForOutcome(requestID: queued.requestID) else { throw HarnessFailure("no answer within 60 s\n\(output)") }
        guard case .response(_, let bytes) = outcome else {
            throw HarnessFailure("the invocation failed instead of answering: \(outcome)\n\(output)")
        }
        let document = try JSONSerialization.jsonObject(with: Data(bytes)) as! [String: Any]
        var text = document["body"] as? String ?? ""
        if document["isBase64Encoded"] as? Bool == true { text = String(decoding: Base64.decode(text) ?? [], as: UTF8.self) }
        return Answer(status: document["statusCode"] as! Int, headers: document["headers"] as? [String: String] ?? [:], body: text)
    }

    /// A JSON request with a user's token.
    func json(_ method: String, _ path: String, _ body: [String: Any]?, token: String?, query: String = "") throws -> Answer {
        var headers = ["content-type": "application/json", "origin": "https://app.example.test"]
        if let token { headers["authorization"] = "Bearer " + token }
        return try request(method, path, query: query, headers: headers, body: try body.map { Array(try JSONSerialization.data(withJSONObject: $0)) })
    }
}

struct HarnessFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
