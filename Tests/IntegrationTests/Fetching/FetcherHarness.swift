import Core
import Foundation
import Lake
import LambdaRuntime
import Postgres
import Store
import Testing
import TestSupport
import Validation

/// The BUILT fetcher binaries, driven through the local Runtime API, against the project's fake
/// vendor clouds, moto S3 and a PostgreSQL schema of their own; then the validator on what they
/// wrote. (Lambda, EventBridge and S3 notifications are what cannot run here: the fake Runtime
/// API plays Lambda, the tests write the scheduled and backfill events, and the validator is
/// handed the keys S3 would notify.)
final class FetcherHarness {
    let database: TestDatabase
    let store: S3ObjectStore
    let vendors: FakeVendors
    let key = (0..<32).map { _ in UInt8.random(in: 0...255) }
    var keys: EnvelopeKeys { try! EnvelopeKeys(current: key) }
    /// Extra variables for the fetcher processes.
    var settings: [String: String] = [:]
    /// Everything the fetchers printed (logs and metrics), for the secret checks.
    private(set) var output = ""

    init(vendorConfig: [String: Any] = [:]) throws {
        database = try TestDatabase()
        store = try Moto.openStore()
        vendors = try FakeVendors(config: vendorConfig)
    }

    var integrations: Integrations { get throws { Integrations(connection: try database.connect()) } }

    /// Seals and stores a credential; returns its id.
    @discardableResult
    func addCredential(_ vendor: SourceSystem, _ plaintext: String, organization: Int64 = 42) throws -> Int64 {
        let envelope = try CredentialEnvelope.seal(Array(plaintext.utf8), keys: keys)
        let authType = vendor == .enphase || vendor == .sma ? "oauth2" : "api_key"
        return try integrations.addCredential(organizationID: organization, vendor: vendor, authType: authType, envelope: envelope)
    }

    @discardableResult
    func addSite(_ vendor: SourceSystem, _ site: String, zone: String, credential: Int64, organization: Int64 = 42) throws -> Int64 {
        try integrations.upsertSite(organizationID: organization, vendor: vendor, credentialID: credential, externalSiteID: site, timeZone: zone)
    }

    func environment(api: FakeRuntimeAPI, function: String) throws -> [String: String] {
        try environment(address: api.address, function: function)
    }

    func environment(address: String, function: String) throws -> [String: String] {
        [
            "AWS_LAMBDA_RUNTIME_API": address, "AWS_LAMBDA_FUNCTION_NAME": function,
            "DATABASE_URL": database.url, "METERLAKE_BUCKET": store.configuration.bucket,
            "AWS_ENDPOINT_URL_S3": try Moto.variable("MOTO_S3_ENDPOINT"), "AWS_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
            "METERLAKE_ENCRYPTION_KEY": Base64.encode(key), "ENPHASE_CALLS_PER_MINUTE": "6000",
        ].merging(vendors.environment) { $1 }.merging(settings) { $1 }
    }

    /// Runs the built fetcher of `vendor` on `events` (one process, one invocation each) and
    /// returns each invocation's outcome: the response's `sites`, or the error report.
    func fetch(_ vendor: SourceSystem, _ events: [String], secondsLeft: Int64 = 120) throws -> [FetchOutcome] {
        let api = try FakeRuntimeAPI()
        defer { api.stop() }
        let function = "fetcher-" + vendor.rawValue
        let process = try ChildProcess(try BuiltBinary.path(function), environment: try environment(api: api, function: function))
        defer {
            process.terminate()
            output += process.standardOutput + process.standardError
        }
        var ids: [String] = []
        for event in events {
            var queued = FakeRuntimeAPI.Event(Array(event.utf8))
            queued.deadlineMilliseconds = Int64(Date().timeIntervalSince1970 * 1000) + secondsLeft * 1000
            ids.append(queued.requestID)
            api.enqueue(queued)
        }
        let outcomes = api.waitForOutcomes(events.count, timeout: TimeInterval(secondsLeft + 30))
        guard outcomes.count == events.count else {
            throw HarnessError.noOutcome(process.standardOutput + process.standardError)
        }
        return try ids.map { id in
            switch outcomes.first(where: { $0.requestID == id })! {
            case .response(_, let body):
                let json = try JSONSerialization.jsonObject(with: Data(body)) as! [String: Any]
                return .sites(json["sites"] as! [[String: Any]])
            case .error(_, let type, let body):
                return .error(type: type ?? "", message: String(decoding: body, as: UTF8.self))
            }
        }
    }

    /// One fetcher process of `vendor` per event, all started at once: their outcomes.
    func race(_ vendor: SourceSystem, events: [String]) throws -> [FetchOutcome] {
        let function = "fetcher-" + vendor.rawValue
        let race = try FunctionRace.run(try BuiltBinary.path(function), events: events) { address in
            try self.environment(address: address, function: function)
        }
        output += race.output
        return try race.outcomes.map { outcome in
            switch outcome {
            case .response(_, let body)?:
                return .sites((try JSONSerialization.jsonObject(with: Data(body)) as! [String: Any])["sites"] as! [[String: Any]])
            case .error(_, let type, let body)?:
                return .error(type: type ?? "", message: String(decoding: body, as: UTF8.self))
            case nil:
                throw HarnessError.noOutcome(race.output)
            }
        }
    }

    /// The credential's plaintext as stored now.
    func plaintext(credential: Int64) throws -> [String: Any] {
        let envelope = try database.connect().query("SELECT encrypted_credentials FROM integration_credential WHERE id = $1", [String(credential)])[0, "encrypted_credentials"]!
        return try JSONSerialization.jsonObject(with: Data(CredentialEnvelope.open(envelope, keys: keys))) as! [String: Any]
    }

    /// Stores `plaintext` sealed as the credential's (what a reconnect or an operator would do).
    func reseal(credential: Int64, _ plaintext: [String: Any]) throws {
        let envelope = try CredentialEnvelope.seal(Array(try JSONSerialization.data(withJSONObject: plaintext)), keys: keys)
        try database.connect().query("UPDATE integration_credential SET encrypted_credentials = $2 WHERE id = $1", [String(credential), envelope])
    }

    /// One scheduled invocation; its sites.
    func scheduled(_ vendor: SourceSystem, secondsLeft: Int64 = 120) throws -> [[String: Any]] {
        try fetch(vendor, [Self.scheduledEvent], secondsLeft: secondsLeft)[0].sites
    }

    func backfill(_ vendor: SourceSystem, site: String, _ start: String, _ end: String) throws -> [[String: Any]] {
        try fetch(vendor, [#"{"organization_id": 42, "external_site_id": "\#(site)", "start": "\#(start)", "end": "\#(end)"}"#])[0].sites
    }

    static let scheduledEvent = #"{"version":"0","id":"53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa","detail-type":"Scheduled Event","source":"aws.events","account":"123456789012","time":"2026-12-04T12:00:00Z","region":"us-east-1","resources":["arn:aws:events:us-east-1:123456789012:rule/meterlake-fetch"],"detail":{}}"#

    /// Runs the validator (in this process, on the same moto bucket and schema) on `keys`.
    func validate(_ keys: [String]) throws -> [FileResult] {
        let configuration = ValidatorConfiguration(
            database: try DatabaseSettings(url: database.url), scratchDirectory: FileManager.default.temporaryDirectory.path,
            bucket: store.configuration.bucket)
        return try InProcessValidator.run(keys, bucket: store.configuration.bucket, configuration: configuration, store: store,
                                          now: Int64(Date().timeIntervalSince1970 * 1000))
    }

    /// Site-level readings of a site, by timestamp (Unix seconds).
    func readings(site: String, device: String = "site") throws -> [Int64: Reading] {
        let rows = try database.connect().query("""
            SELECT extract(epoch FROM r."timestamp")::bigint AS t, r.energy_wh, r.power_w, r.irradiance_wm2, r.temperature_c,
                   r.quality, r.reading_interval_seconds, r.other_metrics::text AS other
            FROM meter_reading r JOIN meter m ON m.id = r.meter_id
            WHERE m.external_site_id = $1 AND m.external_device_id = $2 ORDER BY 1
            """, [site, device])
        var result: [Int64: Reading] = [:]
        for row in 0..<rows.count {
            result[Int64(rows[row, "t"]!)!] = Reading(
                energy: rows[row, "energy_wh"].flatMap(Double.init), power: rows[row, "power_w"].flatMap(Double.init),
                irradiance: rows[row, "irradiance_wm2"].flatMap(Double.init), temperature: rows[row, "temperature_c"].flatMap(Double.init),
                quality: rows[row, "quality"]!, interval: Int(rows[row, "reading_interval_seconds"]!)!, other: rows[row, "other"]!)
        }
        return result
    }

    /// The keys under `raw/` now.
    func rawKeys() throws -> [String] { try store.list(prefix: "raw/").map(\.key) }

    /// Fails when any secret appears in what the fetchers printed, in the credential and site
    /// errors stored, or in an object of the bucket.
    func expectNoSecret(_ secrets: [String], sourceLocation: SourceLocation = #_sourceLocation) throws {
        let connection = try database.connect()
        let stored = try connection.query("""
            SELECT coalesce(string_agg(last_error, ' '), '') AS e FROM integration_credential
            UNION ALL SELECT coalesce(string_agg(last_sync_error, ' '), '') FROM integration_site
            """)
        var texts = [output, stored[0, "e"] ?? "", stored[1, "e"] ?? ""]
        for object in try store.list(prefix: "") {
            let path = FileManager.default.temporaryDirectory.appendingPathComponent("obj-\(UUID().uuidString)").path
            _ = try store.get(object.key, to: path)
            texts.append(String(decoding: FileManager.default.contents(atPath: path) ?? Data(), as: UTF8.self))
            try? FileManager.default.removeItem(atPath: path)
        }
        for secret in secrets {
            #expect(!texts.contains { $0.contains(secret) }, "the secret \(secret.prefix(3))… leaked", sourceLocation: sourceLocation)
        }
    }
}

struct Reading: Equatable {
    var energy: Double?
    var power: Double?
    var irradiance: Double?
    var temperature: Double?
    var quality: String
    var interval: Int
    var other: String
}

enum FetchOutcome {
    case sites([[String: Any]])
    case error(type: String, message: String)

    var sites: [[String: Any]] {
        if case .sites(let sites) = self { return sites }
        return []
    }
}

enum HarnessError: Error, CustomStringConvertible {
    case noOutcome(String)
    var description: String {
        switch self {
        case .noOutcome(let log): "the fetcher answered no invocation: \(log.suffix(4000))"
        }
    }
}

/// Independent oracles: Foundation's time zones (ICU), not the code under test.
enum Oracle {
    static func instant(_ text: String) -> Int64 {
        let plain = ISO8601DateFormatter()
        let fractional = ISO8601DateFormatter()
        fractional.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return Int64((plain.date(from: text) ?? fractional.date(from: text)!).timeIntervalSince1970)
    }

    static func localHour(_ instant: Int64, zone: String) -> Int {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: zone)!
        return calendar.component(.hour, from: Date(timeIntervalSince1970: TimeInterval(instant)))
    }

    static func localMinute(_ instant: Int64, zone: String) -> Int {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: zone)!
        return calendar.component(.minute, from: Date(timeIntervalSince1970: TimeInterval(instant)))
    }

    /// Local midnight (as an instant) of the day that holds `instant` in `zone`.
    static func startOfLocalDay(_ instant: Int64, zone: String) -> Int64 {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: zone)!
        return Int64(calendar.startOfDay(for: Date(timeIntervalSince1970: TimeInterval(instant))).timeIntervalSince1970)
    }

    /// The fake's SolarEdge energy for a slot (Tools/fake_vendors.py), or nil at night.
    static func solarEdgeEnergy(_ t: Int64, zone: String) -> Double? {
        (5...20).contains(localHour(t, zone: zone)) ? Double(10 + (t / 900) % 50) : nil
    }

    /// The fake's GoodWe power for a 5-minute slot.
    static func goodWePower(_ t: Int64, zone: String) -> Double? {
        let hour = localHour(t, zone: zone)
        if hour == 12 && localMinute(t, zone: zone) == 30 { return nil }
        return (6...19).contains(hour) ? Double(100 + ((t / 300) % 40) * 10) : 0
    }

    /// An `Etc/GMT±N` zone whose local hour is about noon now: the fake has daytime data there.
    static func daytimeZone(now: Int64 = Int64(Date().timeIntervalSince1970)) -> String {
        var offset = 12 - Int((now % 86_400) / 3600)
        if offset > 12 { offset -= 24 }
        if offset < -11 { offset += 24 }
        return offset == 0 ? "Etc/GMT" : "Etc/GMT\(offset > 0 ? "-" : "+")\(abs(offset))"
    }
}
