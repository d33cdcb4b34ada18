import Foundation
import HTTPClient

/// The project's fake SolarEdge and GoodWe clouds (`Tools/fake_vendors.py`), one process per test
/// on a port of its own. Vendors are what cannot be reached from here; the fake serves their
/// documented shapes and errors (vendor-apis.md §5), and `control` injects faults.
public final class FakeVendors: @unchecked Sendable {
    public let port: Int
    private let process: ChildProcess

    public init(config: [String: Any] = [:]) throws {
        let portFile = FileManager.default.temporaryDirectory.appendingPathComponent("fake-vendors-\(UUID().uuidString).port").path
        var arguments = [Fixture.repository.appendingPathComponent("Tools/fake_vendors.py").path, "--port-file", portFile]
        if !config.isEmpty {
            let configFile = portFile + ".json"
            try JSONSerialization.data(withJSONObject: config).write(to: URL(fileURLWithPath: configFile))
            arguments += ["--config", configFile]
        }
        process = try ChildProcess("/usr/bin/python3", arguments: arguments, environment: [:])
        let deadline = Date().addingTimeInterval(20)
        while true {
            if let text = try? String(contentsOfFile: portFile, encoding: .utf8), let port = Int(text) {
                self.port = port
                break
            }
            guard process.isRunning, Date() < deadline else {
                throw FakeVendorsError.notStarted(process.standardError)
            }
            Thread.sleep(forTimeInterval: 0.02)
        }
        try? FileManager.default.removeItem(atPath: portFile)
    }

    public var solarEdgeURL: String { "http://127.0.0.1:\(port)/solaredge/" }
    public var goodWeURL: String { "http://127.0.0.1:\(port)/goodwe/api/" }
    public var enphaseURL: String { "http://127.0.0.1:\(port)/enphase/api/v4/" }
    public var enphaseAuthURL: String { "http://127.0.0.1:\(port)/enphase/" }
    public var smaURL: String { "http://127.0.0.1:\(port)/sma/v1/" }
    public var smaAuthURL: String { "http://127.0.0.1:\(port)/sma/auth/" }

    /// The variables that point the fetchers at this fake (and its demo OAuth clients).
    public var environment: [String: String] {
        [
            "SOLAREDGE_API_BASE_URL": solarEdgeURL, "GOODWE_API_BASE_URL": goodWeURL,
            "ENPHASE_API_BASE_URL": enphaseURL, "ENPHASE_AUTH_BASE_URL": enphaseAuthURL, "ENPHASE_API_KEY": "demo-enphase-key",
            "ENPHASE_CLIENT_ID": "demo-enphase-client", "ENPHASE_CLIENT_SECRET": "demo-enphase-secret",
            "SMA_API_BASE_URL": smaURL, "SMA_AUTH_BASE_URL": smaAuthURL, "SMA_CLIENT_ID": "demo-sma-client", "SMA_CLIENT_SECRET": "demo-sma-secret",
        ]
    }

    /// Merges `settings` into the fake's configuration (see Tools/fake_vendors.py).
    public func control(_ settings: [String: Any]) throws {
        _ = try request("POST", "/_control", body: try JSONSerialization.data(withJSONObject: settings))
    }

    /// Calls per kind and site, logins, the highest concurrency seen, and every request (no keys).
    public func stats() throws -> [String: Any] {
        (try JSONSerialization.jsonObject(with: try request("GET", "/_stats"))) as? [String: Any] ?? [:]
    }

    /// The requests the fake answered, as `METHOD path`.
    public func requests() throws -> [String] {
        ((try stats()["requests"]) as? [[String: Any]] ?? []).map { "\($0["method"] ?? "") \($0["path"] ?? "")" }
    }

    private func request(_ method: String, _ path: String, body: Data? = nil) throws -> Data {
        let client = try HTTPClient()
        let response = try client.send(HTTPRequest(
            method: HTTPMethod(method), url: "http://127.0.0.1:\(port)\(path)", headers: ["Content-Type": "application/json"],
            body: body.map { .bytes(Array($0)) } ?? .empty))
        guard response.status == 200 else { throw FakeVendorsError.noAnswer(path) }
        return Data(response.body)
    }

    deinit { process.terminate() }
}

public enum FakeVendorsError: Error, CustomStringConvertible {
    case notStarted(String)
    case noAnswer(String)
    public var description: String {
        switch self {
        case .notStarted(let log): "Tools/fake_vendors.py did not start: \(log)"
        case .noAnswer(let path): "the fake vendors did not answer \(path)"
        }
    }
}
