import Core
import Lake
import LambdaRuntime
import Store
import Validation
import Foundation
import Postgres
import Testing
import TestSupport

/// The BUILT validator binary, driven through the local Runtime API, against moto S3 and a real
/// PostgreSQL schema of its own. (Lambda and S3 notifications are what cannot run here: the fake
/// Runtime API plays Lambda's side, and the tests write the S3 event S3 would send.)
final class ValidatorHarness {
    let database: TestDatabase
    let store: S3ObjectStore
    let api: FakeRuntimeAPI
    let day = Timestamp.day(epochSeconds: Int64(Date().timeIntervalSince1970))
    private var processes: [ChildProcess] = []

    init() throws {
        database = try TestDatabase()
        store = try Moto.openStore()
        api = try FakeRuntimeAPI()
    }

    func environment(databaseURL: String? = nil) throws -> [String: String] {
        [
            "AWS_LAMBDA_RUNTIME_API": api.address, "AWS_LAMBDA_FUNCTION_NAME": "validator",
            "DATABASE_URL": databaseURL ?? database.url, "METERLAKE_BUCKET": store.configuration.bucket,
            "AWS_ENDPOINT_URL_S3": try Moto.variable("MOTO_S3_ENDPOINT"), "AWS_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
            "METERLAKE_SCRATCH_DIR": FileManager.default.temporaryDirectory.path,
        ]
    }

    @discardableResult
    func start(databaseURL: String? = nil) throws -> ChildProcess {
        let process = try ChildProcess(try BuiltBinary.path("validator"), environment: try environment(databaseURL: databaseURL))
        processes.append(process)
        return process
    }

    var lastProcess: ChildProcess? { processes.last }

    /// Uploads `bytes` to `raw/manual/42/2026-03-01/{name}` and returns the raw key.
    func land(_ name: String, _ bytes: [UInt8], source: String = "manual") throws -> String {
        let key = "raw/\(source)/42/2026-03-01/\(name)"
        _ = try store.put(key, body: .bytes(bytes), contentType: nil)
        return key
    }

    /// The S3 notification for `keys` (form-URL-encoded, as S3 writes it).
    func event(_ keys: [String]) -> FakeRuntimeAPI.Event {
        let records = keys.map { key -> String in
            let encoded = SigV4Signer.encodePath(key).replacingOccurrences(of: "%20", with: "+")
            return #"{"eventName":"ObjectCreated:Put","s3":{"bucket":{"name":"\#(store.configuration.bucket)"},"object":{"key":"\#(encoded)","size":1}}}"#
        }
        return FakeRuntimeAPI.Event(Array(#"{"Records":[\#(records.joined(separator: ","))]}"#.utf8))
    }

    /// Sends one event and returns the function's response or error.
    func invoke(_ keys: [String], count: Int) throws -> FakeRuntimeAPI.Outcome {
        api.enqueue(event(keys))
        let outcomes = api.waitForOutcomes(count, timeout: 120)
        return try #require(outcomes.count >= count ? outcomes[count - 1] : nil)
    }

    func files(_ outcome: FakeRuntimeAPI.Outcome) throws -> [FileResult] {
        guard case .response(_, let body) = outcome else {
            Issue.record("expected a response, got \(outcome)")
            return []
        }
        return try JSONDecoder().decode(ValidatorResponse.self, from: Data(body)).files
    }

    func count(_ sql: String) throws -> Int { Int(try database.connect().query(sql)[0, "n"]!)! }

    func stop() {
        api.stop()
        processes.forEach { $0.terminate() }
    }

    deinit { stop() }
}

func sampleBytes(_ name: String) throws -> [UInt8] {
    Array(try Data(contentsOf: Fixture.repository.appendingPathComponent("docs/samples/\(name)")))
}

/// 30 rows, of which the listed ones are bad (negative energy).
func csvRows(_ count: Int, bad: Set<Int> = []) -> [UInt8] {
    var text = "external_site_id,external_device_id,timestamp,reading_interval_seconds,energy_wh\n"
    for index in 0..<count {
        let time = Timestamp.rfc3339(milliseconds: (1_772_323_200 + Int64(index) * 900) * 1000)
        text += "site-1,inv-1,\(time),900,\(bad.contains(index) ? -1 : index)\n"
    }
    return Array(text.utf8)
}

@Suite struct ValidatorTests {
    @Test func loadsGoodFilesOfEveryFormatExactlyAndMovesThem() throws {
        let harness = try ValidatorHarness()
        defer { harness.stop() }
        let keys = [
            try harness.land("site 7.csv", try sampleBytes("readings.csv")),
            try harness.land("readings.ndjson", try sampleBytes("readings.ndjson")),
            try harness.land("Zähler ☀️ export.json", try sampleBytes("readings.json")),
            try harness.land("envelope.json", try sampleBytes("envelope.json").map { $0 }.replacingSnowflakeWithManual()),
            try harness.land("readings.csv.gz", Array(try Data(contentsOf: Fixture.directory.appendingPathComponent("gzip/readings.csv.gz")))),
        ]
        try harness.start()
        let files = try harness.files(try harness.invoke(keys, count: 1))
        #expect(files.map(\.status) == [.validated, .validated, .validated, .validated, .validated])
        #expect(files.map(\.rowsLoaded) == [4, 4, 4, 2, 4])
        #expect(files.allSatisfy { $0.rowsRejected == 0 && $0.rowsProcessed == $0.rowsLoaded })
        #expect(files.map(\.destination) == keys.map { "validated/\(harness.day)/" + $0.dropFirst(4) })
        for key in keys {
            #expect(try harness.store.head(key) == nil, "\(key) left raw/")
            #expect(try harness.store.head("validated/\(harness.day)/" + key.dropFirst(4)) != nil, "\(key) reached validated/")
        }
        // Every file describes the same four keys (the envelope two of them): upserted, not doubled.
        #expect(try harness.count("SELECT count(*) AS n FROM meter_reading") == 4)
        #expect(try harness.count("SELECT count(*) AS n FROM ingestion_log WHERE status = 'validated' AND destination LIKE 'validated/%'") == 5)
    }

    @Test func loadsASnowflakeParquetUnloadAndQuarantinesABrokenOne() throws {
        let harness = try ValidatorHarness()
        defer { harness.stop() }
        let unload = try sampleBytes("readings.parquet")
        let good = try harness.land("data_0_0_0.snappy.parquet", unload, source: "snowflake")
        let cut = try harness.land("data_0_1_0.snappy.parquet", Array(unload.prefix(unload.count / 2)), source: "snowflake")
        try harness.start()
        let files = try harness.files(try harness.invoke([good, cut], count: 1))
        #expect(files.map(\.status) == [.validated, .quarantined])
        #expect(files[0].rowsLoaded == 4 && files[0].rowsRejected == 0)
        #expect(files[1].reason == "the file is structurally broken: not a Parquet file: the file does not end with PAR1")
        let rows = try harness.database.connect().query("""
            SELECT m.external_device_id, r.reading_interval_seconds AS s, r.energy_wh::text AS e, r.other_metrics::text AS m, r.quality AS q
            FROM meter_reading r JOIN meter m ON m.id = r.meter_id WHERE m.data_source_id = 5
            ORDER BY m.external_device_id, r."timestamp"
            """)
        #expect(rows.count == 4)
        #expect(rows[0, "e"] == "1250.5" && rows[0, "m"] == #"{"INVERTER_MODE": "MPPT"}"#)
        #expect(rows[3, "s"] == "3600" && rows[3, "q"] == "estimated" && rows[3, "e"] == "4800.25")
        #expect(try harness.store.head("validated/\(harness.day)/snowflake/42/2026-03-01/data_0_0_0.snappy.parquet") != nil)
        #expect(try harness.store.head("quarantine/\(harness.day)/snowflake/42/2026-03-01/data_0_1_0.snappy.parquet.report.json") != nil)
        #expect(try harness.store.list(prefix: "raw/").isEmpty)
    }

    @Test func aPartlyBadFileLoadsItsGoodRowsAndReportsTheRest() throws {
        let harness = try ValidatorHarness()
        defer { harness.stop() }
        let partly = try harness.land("partly.csv", csvRows(30, bad: [7]))
        let mostly = try harness.land("mostly.csv", csvRows(30, bad: [1, 2, 3]))
        let broken = try harness.land("broken.csv", Array("external_site_id,external_device_id,timestamp,reading_interval_seconds\n\"s,d".utf8))
        let badKey = try harness.land("x.csv", csvRows(1), source: "tesla")
        try harness.start()
        let files = try harness.files(try harness.invoke([partly, mostly, broken, badKey], count: 1))
        #expect(files.map(\.status) == [.validated, .quarantined, .quarantined, .quarantined])
        #expect(files[0].rowsLoaded == 29 && files[0].rowsRejected == 1)
        #expect(files[1].rowsLoaded == 0 && files[1].rowsRejected == 3)
        #expect(files[1].reason?.contains("3 of 30 rows rejected (10.0%), above the 5.0% threshold") == true)
        #expect(files[2].reason == "the file is structurally broken: the quoted field that starts on line 2 is never closed")
        #expect(files[3].reason?.contains("unknown source \"tesla\"") == true)

        let report = try scratchFile()
        _ = try harness.store.get("validated/\(harness.day)/manual/42/2026-03-01/partly.csv.report.json", to: report)
        let partlyReport = try JSONSerialization.jsonObject(with: Data(try contents(report))) as! [String: Any]
        let violation = (partlyReport["violations"] as! [[String: Any]])[0]
        #expect(violation["code"] as? String == "negative_value" && violation["line"] as? Int == 9 && violation["column"] as? String == "energy_wh" && violation["value"] as? String == "-1")
        _ = try harness.store.get("quarantine/\(harness.day)/manual/42/2026-03-01/mostly.csv.report.json", to: report)
        let mostlyReport = try JSONSerialization.jsonObject(with: Data(try contents(report))) as! [String: Any]
        #expect(mostlyReport["violations_total"] as? Int == 3 && mostlyReport["rows_loaded"] as? Int == 0)
        #expect(try harness.store.head("quarantine/\(harness.day)/manual/42/2026-03-01/broken.csv") != nil)
        #expect(try harness.store.head("quarantine/\(harness.day)/tesla/42/2026-03-01/x.csv.report.json") != nil)
        #expect(try harness.store.list(prefix: "raw/").isEmpty)
        #expect(try harness.count("SELECT count(*) AS n FROM meter_reading") == 29)
        #expect(try harness.count("SELECT count(*) AS n FROM ingestion_log WHERE status = 'quarantined'") == 3)
    }

    @Test func theSameEventTwiceLeavesTheSameRows() throws {
        let harness = try ValidatorHarness()
        defer { harness.stop() }
        let key = try harness.land("once.csv", csvRows(20))
        try harness.start()
        #expect(try harness.files(try harness.invoke([key], count: 1)).map(\.status) == [.validated])
        let again = try harness.files(try harness.invoke([key], count: 2))
        #expect(again.map(\.status) == [.duplicate])
        #expect(again.first?.rowsLoaded == 20)
        #expect(try harness.count("SELECT count(*) AS n FROM meter_reading") == 20)
        #expect(try harness.count("SELECT count(*) AS n FROM ingestion_log") == 1)
        // Each file wrote a JSON log line with the request id and key, and an EMF metric line.
        let process = try #require(harness.lastProcess)
        harness.api.stop()
        _ = try? process.waitForExit(timeout: 20)
        let lines = process.logLines
        let fileLines = lines.filter { $0["message"] as? String == "file validated" || $0["message"] as? String == "file duplicate" }
        #expect(fileLines.count == 2)
        #expect(fileLines.allSatisfy { $0["key"] as? String == key && ($0["requestId"] as? String)?.isEmpty == false && $0["level"] as? String == "INFO" })
        let metrics = lines.filter { $0["_aws"] != nil }
        #expect(metrics.map { $0["Status"] as? String } == ["validated", "duplicate"])
        #expect(metrics.first?["RowsLoaded"] as? Int == 20)
    }

    @Test func postgresStoppedMidRunFailsTheInvocationAndTheRetryAfterARestartLoadsIt() throws {
        let harness = try ValidatorHarness()
        defer { harness.stop() }
        // A cluster of this test's own: stopping the shared one would break the tests beside it.
        let cluster = try PostgresCluster()
        let setup = try PostgresConnection(url: cluster.url)
        try MigrationRunner.migrate(setup)
        try setup.query("INSERT INTO organization (id, name) VALUES (42, 'Test')")
        let process = try harness.start(databaseURL: cluster.url)
        let before = try harness.land("before.csv", csvRows(10))
        #expect(try harness.files(try harness.invoke([before], count: 1)).map(\.status) == [.validated])

        // The server goes away while the function is warm, holding its connection.
        try cluster.stop()
        let key = try harness.land("during.csv", csvRows(12))
        let failed = try harness.invoke([key], count: 2)
        guard case .error(_, let type, let body) = failed else {
            Issue.record("expected an invocation error, got \(failed)")
            return
        }
        #expect(type == "Validator.Transient")
        #expect(String(decoding: body, as: UTF8.self).contains("stays in raw/"))
        #expect(try harness.store.head(key) != nil, "the file is still in raw/")
        #expect(process.isRunning, "an error does not end the function")

        // PostgreSQL is back; Lambda retries the event on the same warm function.
        try cluster.start()
        let retried = try harness.files(try harness.invoke([key], count: 3))
        #expect(retried.map(\.status) == [.validated])
        #expect(try harness.store.head(key) == nil)
        let check = try PostgresConnection(url: cluster.url)
        #expect(try check.query("SELECT count(*) AS n FROM ingestion_log WHERE status = 'validated'")[0, "n"] == "2")
    }

    @Test func anUnreachableDatabaseAtColdStartFailsTheInvocationNotTheStart() throws {
        let harness = try ValidatorHarness()
        defer { harness.stop() }
        let key = try harness.land("later.csv", csvRows(10))
        let first = try harness.start(databaseURL: "postgresql://postgres@127.0.0.1:1/postgres?connect_timeout=2")
        let failed = try harness.invoke([key], count: 1)
        guard case .error(_, let type, _) = failed else {
            Issue.record("expected an invocation error, got \(failed)")
            return
        }
        #expect(type == "Validator.Transient")
        #expect(try harness.store.head(key) != nil)
        #expect(first.isRunning)
    }

    @Test func aBadDatabaseURLStopsTheColdStartWithoutQuotingThePassword() throws {
        for url in ["postgresql://meter:S3cr%t!pw@db.example.com:5432/meterlake",
                    "postgresql://meter:S3cr3t-pw@db.example.com:5432/meterlake?sslmode=require"] {
            let harness = try ValidatorHarness()
            defer { harness.stop() }
            let process = try harness.start(databaseURL: url)
            let error = try #require(harness.api.waitForInitError())
            #expect(error.type == "ConfigurationError")
            let body = String(decoding: error.body, as: UTF8.self)
            #expect(body.contains("DATABASE_URL"), "\(body)")
            #expect(!body.contains("S3cr"), "\(body)")
            #expect(try process.waitForExit() == 1)
            #expect(!process.standardOutput.contains("S3cr") && !process.standardError.contains("S3cr"), "the log lines")
        }
    }

    @Test func aRetryAfterACrashBetweenCommitAndMoveFinishesTheMove() throws {
        let harness = try ValidatorHarness()
        defer { harness.stop() }
        let key = try harness.land("crashed.csv", csvRows(5))
        // The state a crash right after COMMIT leaves: recorded as validated, still in raw/.
        let path = try scratchFile()
        _ = try harness.store.get(key, to: path)
        let sha = try FileDigest.sha256(path: path).hex
        try harness.database.connect().query("""
            INSERT INTO ingestion_log (bucket, key, size, sha256, status, rows_processed, rows_loaded)
            VALUES ('lake', $1, 1, $2, 'validated', 5, 5)
            """, [key, sha])
        try harness.start()
        let files = try harness.files(try harness.invoke([key], count: 1))
        let destination = "validated/\(harness.day)/" + key.dropFirst(4)
        #expect(files.map(\.status) == [.duplicate])
        #expect(files.first?.destination == destination)
        #expect(try harness.store.head(key) == nil, "the move was finished")
        #expect(try harness.store.head(destination) != nil)
        #expect(try harness.database.connect().query("SELECT destination FROM ingestion_log")[0, "destination"] == destination)
        #expect(try harness.count("SELECT count(*) AS n FROM meter_reading") == 0, "nothing was loaded again")
    }

    @Test func handlesAHundredRecordsInOneEvent() throws {
        let harness = try ValidatorHarness()
        defer { harness.stop() }
        var keys: [String] = []
        for index in 0..<100 {
            var text = "external_site_id,external_device_id,timestamp,reading_interval_seconds,energy_wh\n"
            text += "site-1,dev-\(index),2026-03-01T06:00:00Z,900,\(index)\n"
            keys.append(try harness.land("batch \(index) ü.csv", Array(text.utf8)))
        }
        try harness.start()
        let files = try harness.files(try harness.invoke(keys, count: 1))
        #expect(files.count == 100)
        #expect(files.allSatisfy { $0.status == .validated && $0.rowsLoaded == 1 })
        #expect(try harness.count("SELECT count(*) AS n FROM meter_reading") == 100)
        #expect(try harness.store.list(prefix: "validated/").count == 100)
    }
}

extension Array where Element == UInt8 {
    /// The sample envelope says `snowflake`; landed under `manual/` it must say so.
    func replacingSnowflakeWithManual() -> [UInt8] {
        Array(String(decoding: self, as: UTF8.self).replacingOccurrences(of: "\"snowflake\"", with: "\"manual\"").utf8)
    }
}
