import Core
import Foundation
import Lake
import Postgres
import Store
import Testing
import TestSupport

/// The BUILT maintenance function through the local Runtime API (EventBridge's schedule is what
/// cannot run here: the test sends the scheduled event), on data loaded by the BUILT validator
/// from moto S3 into PostgreSQL; every outcome is compared with a recomputation from the readings.
final class MaintenanceHarness {
    let validator: ValidatorHarness
    var database: TestDatabase { validator.database }
    private var validatorCalls = 0
    /// Everything the maintenance processes printed (logs, EMF).
    private(set) var output = ""

    init() throws {
        validator = try ValidatorHarness()
        try validator.start()
    }

    /// Lands `csv` under `name` and validates it.
    @discardableResult
    func load(_ name: String, _ csv: String) throws -> [String] {
        let key = try validator.land(name, Array(csv.utf8))
        validatorCalls += 1
        return try validator.files(try validator.invoke([key], count: validatorCalls)).map(\.status.rawValue)
    }

    /// One scheduled invocation of the built maintenance function (a process each, as a cold start).
    func maintain() throws -> [String: Any] { try race(1)[0] }

    /// `count` maintenance processes given their scheduled event at the same moment.
    func race(_ count: Int) throws -> [[String: Any]] {
        let scheduled = #"{"detail-type":"Scheduled Event","source":"aws.events","detail":{}}"#
        let race = try FunctionRace.run(try BuiltBinary.path("maintenance"), events: Array(repeating: scheduled, count: count), timeout: 120) { address in
            ["AWS_LAMBDA_RUNTIME_API": address, "AWS_LAMBDA_FUNCTION_NAME": "maintenance", "DATABASE_URL": self.database.url,
             "METERLAKE_MAINTENANCE_RANGES_PER_PASS": "3"]
        }
        output += race.output
        return try race.outcomes.map { outcome in
            guard case .response(_, let body)? = outcome else {
                throw HarnessFailure("maintenance did not answer: \(String(describing: outcome)) \(race.output)")
            }
            return try JSONSerialization.jsonObject(with: Data(body)) as! [String: Any]
        }
    }

    var differences: [AggregateDifference] {
        get throws { try Aggregates(connection: try database.connect()).verify(organizationID: nil, from: 946_684_800, to: 4_102_444_800) }
    }

    func query(_ sql: String, _ parameters: [String?] = []) throws -> PostgresRows { try database.connect().query(sql, parameters) }

    /// One aggregate's values: energy, readings (count/expected), hours (available/expected).
    func aggregate(_ period: String, _ start: String, device: String = "inv-1") throws -> (energy: Double?, readings: String, hours: String)? {
        let rows = try query("""
            SELECT a.energy_wh, a.reading_count || '/' || a.readings_expected AS readings, a.hours_available || '/' || a.hours_expected AS hours
            FROM meter_aggregate a JOIN meter m ON m.id = a.meter_id
            WHERE a.period = $1 AND a.period_start = $2::timestamptz AND m.external_device_id = $3
            """, [period, start, device])
        guard rows.count == 1 else { return nil }
        return (rows[0, "energy_wh"].flatMap(Double.init), rows[0, "readings"]!, rows[0, "hours"]!)
    }
}

/// A CSV of 15-minute readings of `device` from `start` (RFC 3339): `energy(i)` or `missing`.
func quarterHours(_ count: Int, from start: String, device: String = "inv-1", energy: (Int) -> Double? = { Double($0) }) -> String {
    guard case .zoned(let first) = ISO8601.parse(start) else { fatalError("bad start") }
    var text = "external_site_id,external_device_id,timestamp,reading_interval_seconds,energy_wh,quality\n"
    for index in 0..<count {
        let time = Timestamp.rfc3339(milliseconds: (first + Int64(index) * 900) * 1000)
        if let value = energy(index) { text += "site-1,\(device),\(time),900,\(value),measured\n" } else { text += "site-1,\(device),\(time),900,,missing\n" }
    }
    return text
}

/// The first day of the previous UTC month (inside the 90 days readings are kept), and the day after.
let previousMonth: (first: String, second: String, hours: Int) = {
    let today = Timestamp.civil(days: Int(Date().timeIntervalSince1970) / 86_400)
    let (year, month) = today.month == 1 ? (today.year - 1, 12) : (today.year, today.month - 1)
    let first = Timestamp.days(year: year, month: month, day: 1)
    let next = Timestamp.days(year: today.year, month: today.month, day: 1)
    return (Timestamp.day(epochSeconds: Int64(first) * 86_400), Timestamp.day(epochSeconds: Int64(first + 1) * 86_400), (next - first) * 24)
}()

@Suite(.serialized) struct MaintenanceTests {
    @Test func aggregatesFollowLoadsCorrectionsAndReplays() throws {
        let harness = try MaintenanceHarness()
        // Two days of one meter (the first two of last month); day 2 10:00-10:45 missing.
        let first = quarterHours(192, from: "\(previousMonth.first)T00:00:00Z") { $0 >= 136 && $0 < 140 ? nil : Double($0 % 96) }
        #expect(try harness.load("days.csv", first) == ["validated"])
        #expect(try harness.query("SELECT count(*) AS n FROM aggregate_dirty")[0, "n"] == "1")
        let answer = try harness.maintain()
        let summary = try #require(answer["aggregates"] as? [String: Any])
        // Partitions ahead: this month and the next two exist after a run.
        let current = PartitionMaintenance.monthIndex(of: Int64(Date().timeIntervalSince1970))
        let partitions = try harness.query("SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'meter_reading'::regclass").rows.compactMap { $0[0] }
        #expect((current...(current + 2)).allSatisfy { partitions.contains(PartitionMaintenance.name(monthIndex: $0)) }, "\(partitions)")
        #expect(summary["hours"] as? Int == 48 && summary["days"] as? Int == 2 && summary["months"] as? Int == 1 && summary["pending_ranges"] as? Int == 0)
        // Hour 10:00 of day 2: four missing readings count as expected, not available.
        let hour = try #require(try harness.aggregate("hourly", "\(previousMonth.second)T10:00:00Z"))
        #expect(hour.energy == nil && hour.readings == "0/4" && hour.hours == "0/1")
        let day1 = try #require(try harness.aggregate("daily", "\(previousMonth.first)T00:00:00Z"))
        let fullDay: Double = 4560  // 0 + 1 + … + 95
        #expect(day1.energy == fullDay && day1.readings == "96/96" && day1.hours == "24/24")
        let day2 = try #require(try harness.aggregate("daily", "\(previousMonth.second)T00:00:00Z"))
        let gap: Double = 40 + 41 + 42 + 43
        #expect(day2.energy == fullDay - gap && day2.readings == "92/96" && day2.hours == "23/24")
        let month = try #require(try harness.aggregate("monthly", "\(previousMonth.first)T00:00:00Z"))
        #expect(month.energy == day1.energy! + day2.energy! && month.readings == "188/192" && month.hours == "47/\(previousMonth.hours)")
        #expect(try harness.differences.isEmpty)

        // Late data fills the gap and corrects one value of day 1.
        let late = quarterHours(5, from: "\(previousMonth.second)T10:00:00Z") { Double(1000 + $0) }
            + quarterHours(1, from: "\(previousMonth.first)T05:00:00Z") { _ in 7.5 }.split(separator: "\n").dropFirst().joined(separator: "\n") + "\n"
        #expect(try harness.load("late.csv", late) == ["validated"], "\(late)")
        _ = try harness.maintain()
        #expect(try harness.aggregate("hourly", "\(previousMonth.second)T10:00:00Z")?.readings == "4/4")
        #expect(try harness.aggregate("daily", "\(previousMonth.second)T00:00:00Z")?.hours == "24/24")
        #expect(try harness.aggregate("daily", "\(previousMonth.first)T00:00:00Z")?.energy == day1.energy! - 20 + 7.5)
        #expect(try harness.differences.isEmpty)

        // The first file sent again: identical rows change nothing; the aggregates stay.
        let before = try harness.query("SELECT sum(energy_wh) AS e, count(*) AS n FROM meter_aggregate")
        #expect(try harness.load("days again.csv", quarterHours(96, from: "\(previousMonth.first)T00:00:00Z") { Double($0 % 96) }) == ["validated"])
        _ = try harness.maintain()
        let after = try harness.query("SELECT sum(energy_wh) AS e, count(*) AS n FROM meter_aggregate")
        // Re-sent day 1 overwrote the correction at 05:00 back to its first value (20): a file replaces values.
        #expect(after[0, "n"] == before[0, "n"])
        #expect(try harness.aggregate("daily", "\(previousMonth.first)T00:00:00Z")?.energy == day1.energy)
        #expect(try harness.differences.isEmpty)
        #expect(try harness.query("SELECT count(*) AS n FROM aggregate_dirty")[0, "n"] == "0")

        // The operator's check: 0 differences, then one damaged row named, exit status 1.
        let clean = try harness.meterlake(["aggregates", "verify", "--org", "42"])
        #expect(clean.status == 0 && clean.out.contains("0 differences"), "\(clean.err)")
        try harness.database.connect().query("UPDATE meter_aggregate SET reading_count = reading_count + 1 WHERE period = 'daily' AND period_start = $1::timestamptz",
                                             ["\(previousMonth.second)T00:00:00Z"])
        let damaged = try harness.meterlake(["aggregates", "verify", "--org", "42"])
        #expect(damaged.status == 1 && damaged.err.contains("1 differences") && damaged.err.contains("daily") && damaged.err.contains("reading_count"), "\(damaged.err)")
    }

    @Test func twoRunsAtOnceNeitherDoubleCountNorLose() throws {
        let harness = try MaintenanceHarness()
        // Day by day across the meters: a pass (three ranges) takes three meters' same day, so the
        // two runs work on the same meters at once and must serialise their roll-ups per meter.
        for day in 1...3 {
            for device in 1...8 {
                guard case .zoned(let first) = ISO8601.parse(previousMonth.first + "T00:00:00Z") else { return }
                let csv = quarterHours(96, from: Timestamp.rfc3339(milliseconds: (first + Int64(day - 1) * 86_400) * 1000), device: "inv-\(device)") {
                    Double(device * 1000 + $0)
                }
                #expect(try harness.load("d\(device)-\(day).csv", csv) == ["validated"])
            }
        }
        #expect(try harness.query("SELECT count(*) AS n FROM aggregate_dirty")[0, "n"] == "24")
        // Three ranges a pass: the two runs take turns through 24 ranges, skipping each other's rows.
        let answers = try harness.race(2)
        let ranges = answers.compactMap { ($0["aggregates"] as? [String: Any])?["ranges"] as? Int }
        #expect(ranges.reduce(0, +) == 24, "every range claimed exactly once: \(ranges)")
        #expect(try harness.query("SELECT count(*) AS n FROM aggregate_dirty")[0, "n"] == "0")
        #expect(try harness.query("SELECT count(*) AS n FROM meter_aggregate WHERE period = 'daily'")[0, "n"] == "24")
        #expect(try harness.differences.isEmpty)
        let month = try harness.aggregate("monthly", "\(previousMonth.first)T00:00:00Z", device: "inv-3")
        let expected: Double = 3 * (3000 * 96 + 4560)
        #expect(month?.energy == expected && month?.readings == "288/288")
    }

    @Test func retentionDropsOnlyFinalMonthsAndTheAggregatesOutliveTheReadings() throws {
        let harness = try MaintenanceHarness()
        // A month wholly beyond 90 days (March 2026, seen from today) and one inside it.
        let today = Timestamp.day(epochSeconds: Int64(Date().timeIntervalSince1970))
        #expect(try harness.load("old.csv", quarterHours(96, from: "2026-03-10T00:00:00Z")) == ["validated"])
        #expect(try harness.load("recent.csv", quarterHours(8, from: today + "T00:00:00Z")) == ["validated"])
        // Pending aggregates keep the old month's partition.
        let connection = try harness.database.connect()
        let now = Int64(Date().timeIntervalSince1970)
        #expect(try PartitionMaintenance.dropExpired(now: now, connection: connection) == [])
        let answer = try harness.maintain()
        #expect((answer["partitions"] as? [String: Any])?["dropped"] as? [String] == ["meter_reading_y2026m03"])
        let dropped = try harness.query("SELECT name, rows_dropped FROM partition_drop")
        #expect(dropped.count == 1 && dropped[0, "rows_dropped"] == "96")
        #expect(try harness.query("SELECT count(*) AS n FROM meter_reading")[0, "n"] == "8")
        // The aggregates stay, and still verify (daily and monthly from the stored hourly rows).
        #expect(try harness.aggregate("daily", "2026-03-10T00:00:00Z")?.energy == 4560)
        #expect(try harness.differences.isEmpty)
        // A late file for the dropped month: its readings land, but the final aggregates are kept.
        #expect(try harness.load("very late.csv", quarterHours(4, from: "2026-03-10T00:00:00Z") { _ in 999 }) == ["validated"])
        _ = try harness.maintain()
        #expect(try harness.aggregate("hourly", "2026-03-10T00:00:00Z")?.energy == 0 + 1 + 2 + 3)
        #expect(harness.output.contains("late readings for months already dropped"))
        #expect(try harness.differences.isEmpty)
    }

    @Test func credentialsExpiringWithinSevenDaysAreReported() throws {
        let harness = try MaintenanceHarness()
        let connection = try harness.database.connect()
        for (index, days) in [8.0, 7.0, 0.0].enumerated() {
            try connection.query("""
                INSERT INTO integration_credential (organization_id, data_source_id, auth_type, encrypted_credentials, token_expires_at)
                VALUES (42, 1, 'api_key', 'sealed-\(index)', now() + make_interval(secs => $1::double precision - 60))
                """, [String(days * 86_400)])
        }
        try connection.query("INSERT INTO integration_credential (organization_id, data_source_id, auth_type, encrypted_credentials, is_active, last_error) VALUES (42, 3, 'oauth2', 'sealed', false, 'SMA refused the refresh token (invalid_grant): the owner must reconnect the account')")
        try connection.query("INSERT INTO integration_credential (organization_id, data_source_id, auth_type, encrypted_credentials, is_active) VALUES (42, 4, 'api_key', '', false)")
        let answer = try harness.maintain()
        let reported = try #require(answer["credentials"] as? [[String: Any]])
        #expect(reported.map { $0["state"] as? String } == ["expires_within_7_days", "expires_within_7_days", "inactive"])
        #expect(reported.map { $0["id"] as? Int } == [2, 3, 4])
        #expect(reported[2]["last_error"] as? String == "SMA refused the refresh token (invalid_grant): the owner must reconnect the account")
        let lines = harness.output.split(separator: "\n").filter { $0.contains("credential needs attention") }
        #expect(lines.count == 3 && lines.allSatisfy { $0.contains("\"requestId\"") })
        let metrics = try #require(harness.output.split(separator: "\n").first { $0.contains("\"_aws\"") && $0.contains("Credentials_inactive") })
        #expect(metrics.contains("\"Credentials_expires_within_7_days\":2") && metrics.contains("\"Credentials_inactive\":1"))
        #expect(!harness.output.contains("sealed-"))
    }
}

/// Secrets read at cold start from Secrets Manager (moto's), not from plain variables.
@Suite struct RuntimeSecretsTests {
    @Test func aFunctionReadsItsDatabaseURLFromSecretsManager() throws {
        let database = try TestDatabase()
        let endpoint = try Moto.variable("MOTO_S3_ENDPOINT")
        let client = SecretsManagerClient(region: "us-east-1", credentials: AWSCredentials(accessKeyID: "test", secretAccessKey: "test"),
                                          endpoint: endpoint, caBundlePath: nil)
        let name = "meterlake/db-\(UUID().uuidString.prefix(8))"
        let created = try client.call("CreateSecret", .object([JSONMember("Name", .string(name)), JSONMember("SecretString", .string(database.url))]))
        let arn = try #require(created.answer?["ARN"]?.text)
        let json = "meterlake/app-\(UUID().uuidString.prefix(8))"
        let app = try client.call("CreateSecret", .object([JSONMember("Name", .string(json)),
                                                           JSONMember("SecretString", .string(#"{"client_id":"abc","client_secret":"s3cr3t-value"}"#))]))
        let appARN = try #require(app.answer?["ARN"]?.text)
        let base: [String: String] = ["AWS_ENDPOINT_URL": endpoint, "AWS_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"]

        let resolved = try RuntimeSecrets.resolve(Environment(base.merging(["DATABASE_URL_SECRET_ARN": arn, "SMA_CLIENT_SECRET_SECRET_ARN": appARN + "#client_secret",
                                                                            "SMA_CLIENT_ID_SECRET_ARN": appARN + "#client_id"]) { $1 }))
        #expect(resolved["DATABASE_URL"] == database.url && resolved["SMA_CLIENT_SECRET"] == "s3cr3t-value" && resolved["SMA_CLIENT_ID"] == "abc")
        #expect(throws: ConfigurationError.self) { try RuntimeSecrets.resolve(Environment(base.merging(["DATABASE_URL_SECRET_ARN": arn + "-missing"]) { $1 })) }
        // Both given: the secret wins over the plain variable.
        let both = try RuntimeSecrets.resolve(Environment(base.merging(["DATABASE_URL": "postgresql://plain@nowhere/db", "DATABASE_URL_SECRET_ARN": arn]) { $1 }))
        #expect(both["DATABASE_URL"] == database.url)
        #expect(throws: ConfigurationError.self) { try RuntimeSecrets.resolve(Environment(base.merging(["SMA_CLIENT_ID_SECRET_ARN": appARN + "#absent"]) { $1 })) }

        // The built function with no DATABASE_URL at all, only the secret's ARN: it runs.
        let api = try FakeRuntimeAPI()
        defer { api.stop() }
        let process = try ChildProcess(try BuiltBinary.path("maintenance"), environment: base.merging([
            "AWS_LAMBDA_RUNTIME_API": api.address, "DATABASE_URL_SECRET_ARN": arn,
        ]) { $1 })
        defer { process.terminate() }
        let event = FakeRuntimeAPI.Event(Array(#"{"detail-type":"Scheduled Event","source":"aws.events","detail":{}}"#.utf8))
        api.enqueue(event)
        guard case .response(_, let body)? = api.waitForOutcome(requestID: event.requestID, timeout: 60) else {
            Issue.record("maintenance did not answer: \(process.standardOutput)")
            return
        }
        #expect(String(decoding: body, as: UTF8.self).contains("\"aggregates\""))
        #expect(!process.standardOutput.contains(database.url))
    }
}

/// Key rotation: every credential re-sealed under the new key, none lost to a concurrent refresh.
@Suite struct RekeyTests {
    @Test func rekeyResealsEverythingAndSaysWhenTheOldKeyCanGo() throws {
        let database = try TestDatabase()
        let old = (0..<32).map { _ in UInt8.random(in: 0...255) }, new = (0..<32).map { _ in UInt8.random(in: 0...255) }
        let oldKeys = try EnvelopeKeys(current: old)
        let connection = try database.connect()
        let integrations = Integrations(connection: connection)
        var ids: [Int64] = []
        for index in 0..<5 {
            ids.append(try integrations.addCredential(organizationID: 42, vendor: .solarEdge, authType: "api_key",
                                                      envelope: try CredentialEnvelope.seal(Array(#"{"api_key":"key-\#(index)"}"#.utf8), keys: oldKeys)))
        }
        // One already under the new key, one under neither.
        ids.append(try integrations.addCredential(organizationID: 42, vendor: .solarEdge, authType: "api_key",
                                                  envelope: try CredentialEnvelope.seal(Array(#"{"api_key":"fresh"}"#.utf8), keys: try EnvelopeKeys(current: new))))
        let stranger = try integrations.addCredential(organizationID: 42, vendor: .solarEdge, authType: "api_key",
                                                      envelope: try CredentialEnvelope.seal(Array("{}".utf8), keys: try EnvelopeKeys(current: [UInt8](repeating: 9, count: 32))))
        let environment = [
            "DATABASE_URL": database.url, "METERLAKE_ENCRYPTION_KEY": Base64.encode(new), "METERLAKE_ENCRYPTION_KEY_PREVIOUS": Base64.encode(old),
        ]
        // A refresh holds one row's lock while the rotation runs: the rotation waits, then re-seals what the refresh stored.
        let holder = try database.connect()
        try holder.query("BEGIN")
        _ = try holder.query("SELECT 1 FROM integration_credential WHERE id = $1 FOR UPDATE", [String(ids[2])])
        let process = try ChildProcess(try BuiltBinary.path("meterlake"), arguments: ["credential", "rekey", "--batch", "2"], environment: environment)
        Thread.sleep(forTimeInterval: 1)
        try holder.query("UPDATE integration_credential SET encrypted_credentials = $2 WHERE id = $1",
                         [String(ids[2]), try CredentialEnvelope.seal(Array(#"{"api_key":"refreshed"}"#.utf8), keys: oldKeys)])
        try holder.query("COMMIT")
        #expect(try process.waitForExit(timeout: 60) == 0, "\(process.standardError)")
        #expect(process.standardOutput.contains("re-sealed 5, already under the current key 1, opening with neither key: \(stranger)"), "\(process.standardOutput)")
        #expect(process.standardOutput.contains("still under the previous key: 0"))
        // Every credential now opens with the new key alone, the refreshed one with its new value.
        let newOnly = try EnvelopeKeys(current: new)
        for (index, id) in ids.enumerated() {
            let envelope = try #require(try integrations.credential(id: id)).envelope
            let plaintext = String(decoding: try CredentialEnvelope.open(envelope, keys: newOnly), as: UTF8.self)
            #expect(plaintext == (index == 2 ? #"{"api_key":"refreshed"}"# : index == 5 ? #"{"api_key":"fresh"}"# : #"{"api_key":"key-\#(index)"}"#))
        }
        // A row a refresh holds past the lock timeout is busy: the old key cannot be retired yet.
        let again = try database.connect()
        try again.query("UPDATE integration_credential SET encrypted_credentials = $2 WHERE id = $1",
                        [String(ids[0]), try CredentialEnvelope.seal(Array(#"{"api_key":"old-again"}"#.utf8), keys: oldKeys)])
        try again.query("BEGIN")
        _ = try again.query("SELECT 1 FROM integration_credential WHERE id = $1 FOR UPDATE", [String(ids[0])])
        let blocked = try ChildProcess(try BuiltBinary.path("meterlake"), arguments: ["credential", "rekey"], environment: environment)
        #expect(try blocked.waitForExit(timeout: 60) == 0)
        #expect(blocked.standardOutput.contains("busy (a refresh held them; run again): \(ids[0])") && blocked.standardOutput.contains("run again before retiring"),
                "\(blocked.standardOutput)")
        try again.query("ROLLBACK")
        // Without a previous key the command says what to set.
        let missing = try ChildProcess(try BuiltBinary.path("meterlake"), arguments: ["credential", "rekey"],
                                       environment: ["DATABASE_URL": database.url, "METERLAKE_ENCRYPTION_KEY": Base64.encode(new)])
        #expect(try missing.waitForExit() == 2 && missing.standardError.contains("METERLAKE_ENCRYPTION_KEY_PREVIOUS"))
    }
}
