import Core
import Foundation
import Lake
import LambdaRuntime
import Logging
import Postgres
import Store
import Synchronization
import Testing
import TestSupport
import Validation

/// The validator in this process, on a local lake and a PostgreSQL schema of its own: each test
/// pins one of its decisions (thresholds, untrusted keys, permanent and transient failures, the
/// report's caps). The built binary is driven end to end in `ValidatorTests`.
final class InProcessValidator {
    let database: TestDatabase
    let lake: String
    let store: LocalObjectStore
    var configuration: ValidatorConfiguration
    let now = Int64(Date().timeIntervalSince1970 * 1000)
    var day: String { Timestamp.day(epochSeconds: now / 1000) }

    init(bucket: String? = nil) throws {
        database = try TestDatabase()
        lake = FileManager.default.temporaryDirectory.appendingPathComponent("lake-\(UUID().uuidString)").path
        store = try LocalObjectStore(directory: lake)
        configuration = ValidatorConfiguration(
            database: try DatabaseSettings(url: database.url), scratchDirectory: FileManager.default.temporaryDirectory.path, bucket: bucket)
    }

    deinit { try? FileManager.default.removeItem(atPath: lake) }

    func land(_ name: String, _ bytes: [UInt8], organization: Int = 42) throws -> String {
        let key = "raw/manual/\(organization)/2026-03-01/\(name)"
        _ = try store.put(key, body: .bytes(bytes), contentType: nil)
        return key
    }

    /// Runs one S3 event for `keys` with `secondsLeft` before the deadline.
    func run(_ keys: [String], bucket: String = "lake", secondsLeft: Int64 = 600) throws -> [FileResult] {
        try Self.run(keys, bucket: bucket, secondsLeft: secondsLeft, configuration: configuration, store: store, now: now)
    }

    /// The same for any validator instance of this lake (the concurrency test runs several at once).
    static func run(
        _ keys: [String], bucket: String = "lake", secondsLeft: Int64 = 600, configuration: ValidatorConfiguration,
        store: any ObjectStore, now: Int64
    ) throws -> [FileResult] {
        // Form-URL-encoded, as S3 writes keys.
        let records = keys.map { key in
            let encoded = SigV4Signer.encodePath(key).replacingOccurrences(of: "%20", with: "+")
            return #"{"s3":{"bucket":{"name":"\#(bucket)"},"object":{"key":"\#(encoded)"}}}"#
        }
        let event = try JSONDecoder().decode(S3Event.self, from: Data(#"{"Records":[\#(records.joined(separator: ","))]}"#.utf8))
        let clock: @Sendable () -> Int64 = { now }
        let context = LambdaContext(
            metadata: InvocationMetadata(requestID: "req-decisions", deadlineMilliseconds: now + secondsLeft * 1000),
            environment: Environment([:]), logger: Logger(label: "test") { _ in SwiftLogNoOpLogHandler() }, clock: clock,
            logOutput: LogOutput { _ in })
        return try Validator(configuration: configuration, store: store, clock: clock).handle(event, context: context).files
    }

    func report(_ key: String) throws -> [String: Any] {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("report-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        _ = try store.get(key, to: path)
        return try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as? [String: Any])
    }

    func log() throws -> PostgresRows {
        try database.connect().query(
            "SELECT key, status, rows_processed, rows_loaded, rows_rejected, errors::text AS errors, destination FROM ingestion_log ORDER BY id")
    }

    func readings() throws -> Int { Int(try database.connect().query("SELECT count(*) AS n FROM meter_reading")[0, "n"]!)! }
}

@Suite struct ValidatorDecisionTests {
    @Test func exactlyTheThresholdShareOfRejectedRowsStillLoads() throws {
        let validator = try InProcessValidator()
        let atThreshold = try validator.land("five.csv", csvRows(100, bad: Set(0..<5)))
        let above = try validator.land("six.csv", csvRows(100, bad: Set(10..<16)))
        let files = try validator.run([atThreshold, above])
        try #require(!files.isEmpty)
        #expect(files.map(\.status) == [.validated, .quarantined])
        #expect(files[0].rowsLoaded == 95 && files[0].rowsRejected == 5)
        #expect(files[1].reason == "6 of 100 rows rejected (6.0%), above the 5.0% threshold: nothing loaded")
        #expect(try validator.readings() == 95)

        let strict = try InProcessValidator()
        strict.configuration.rejectThreshold = 0
        let one = try strict.land("one.csv", csvRows(100, bad: [3]))
        let clean = try strict.land("clean.csv", csvRows(10))
        #expect(try strict.run([one, clean]).map(\.status) == [.quarantined, .validated])
    }

    @Test func aKeyWithDotSegmentsIsQuarantinedWithoutBeingRead() throws {
        let validator = try InProcessValidator()
        let key = try validator.land("../../../7/2026-03-01/x.csv", csvRows(3))
        let files = try validator.run([key])
        try #require(!files.isEmpty)
        #expect(files.map(\.status) == [.quarantined])
        #expect(files[0].reason == "untrusted key: the key has an empty, . or .. segment")
        #expect(files[0].destination == "quarantine/\(validator.day)/" + key.dropFirst(4))
        #expect(try validator.store.head(key) == nil)
        #expect(try validator.store.head(files[0].destination!) != nil)
        #expect(try validator.report(files[0].destination! + ".report.json")["rows_processed"] as? Int == 0)
        let log = try validator.log()
        #expect(log.count == 1 && log[0, "status"] == "quarantined" && log[0, "rows_processed"] == "0")
        #expect(try validator.readings() == 0)
    }

    @Test func aNULInTheKeyIsLeftUntouchedAndCannotOverwriteAnotherKeysRow() throws {
        let validator = try InProcessValidator()
        let short = try validator.land("k", csvRows(2))
        let hostile = try validator.land("k\u{0}zzz.csv", csvRows(3))
        let files = try validator.run([hostile, short])
        try #require(!files.isEmpty)
        #expect(files.map(\.status) == [.skipped, .validated])
        #expect(files[0].reason == "untrusted key: the key contains the control character U+0000 at byte 26")
        #expect(try validator.store.head(hostile) != nil, "left in raw/")
        let log = try validator.log()
        #expect(log.count == 1)
        #expect(log[0, "key"] == short && log[0, "rows_loaded"] == "2")
    }

    @Test func anEventForAnotherBucketTouchesNothing() throws {
        let validator = try InProcessValidator(bucket: "lake")
        let key = try validator.land("a.csv", csvRows(3))
        let files = try validator.run([key], bucket: "someone-elses")
        #expect(files.map(\.status) == [.skipped])
        #expect(files[0].reason == "the event names bucket someone-elses; this function serves lake")
        #expect(try validator.store.head(key) != nil)
        #expect(try validator.log().count == 0)
        // The same file, named with the right bucket, is processed.
        #expect(try validator.run([key], bucket: "lake").map(\.status) == [.validated])
    }

    @Test func aRefusalByTheDatabaseQuarantinesInsteadOfRetryingForEver() throws {
        let validator = try InProcessValidator()
        // Organisation 9 does not exist: the meter's foreign key refuses it, which no retry can change.
        let key = try validator.land("unknown-org.csv", csvRows(4), organization: 9)
        let files = try validator.run([key])
        try #require(!files.isEmpty)
        #expect(files.map(\.status) == [.quarantined])
        #expect(files[0].reason?.hasPrefix("the database refused the file: PostgreSQL") == true, "\(files[0].reason ?? "")")
        #expect(try validator.store.head(key) == nil)
        #expect(try validator.log()[0, "status"] == "quarantined")
    }

    @Test func tooLittleTimeLeftFailsTheInvocationAndRecordsTheFailure() throws {
        let validator = try InProcessValidator()
        let key = try validator.land("late.csv", csvRows(4))
        let error = #expect(throws: TransientFailure.self) { try validator.run([key], secondsLeft: 14) }
        #expect(error?.reason.hasPrefix("too little time left") == true)
        #expect(try validator.store.head(key) != nil, "the file stays in raw/ for the retry")
        let log = try validator.log()
        #expect(log.count == 1 && log[0, "status"] == "failed")
        #expect(log[0, "errors"]?.contains("too little time left") == true)
        #expect(try validator.readings() == 0)
        // With the minimum in hand it loads, and the failed row becomes the validated one.
        #expect(try validator.run([key], secondsLeft: 15).map(\.status) == [.validated])
        #expect(try validator.log().rows.map { $0[1] } == ["validated"])
    }

    @Test func aReportKeepsTheFirstThousandViolationsAndCountsTheRest() throws {
        let validator = try InProcessValidator()
        validator.configuration.batchRows = 400  // the violations come in four batches
        let key = try validator.land("all-bad.csv", csvRows(1500, bad: Set(0..<1500)))
        let files = try validator.run([key])
        try #require(!files.isEmpty)
        #expect(files.map(\.status) == [.quarantined])
        let report = try validator.report(files[0].destination! + ".report.json")
        #expect(report["violations_total"] as? Int == 1500)
        #expect(report["violations_shown"] as? Int == 1000)
        let violations = try #require(report["violations"] as? [[String: Any]])
        #expect(violations.count == 1000)
        #expect(violations.first?["line"] as? Int == 2 && violations.last?["line"] as? Int == 1001)
        // ingestion_log keeps the reason and the first 100.
        let errors = try #require(try JSONSerialization.jsonObject(with: Data(try validator.log()[0, "errors"]!.utf8)) as? [[String: Any]])
        #expect(errors.count == 101)
        #expect(errors[0]["reason"] as? String == "1500 of 1500 rows rejected (100.0%), above the 5.0% threshold: nothing loaded")
    }

    @Test func aSymbolicLinkInRawIsSkippedAndNeverRead() throws {
        let validator = try InProcessValidator()
        let secret = FileManager.default.temporaryDirectory.appendingPathComponent("secret-\(UUID().uuidString).csv").path
        try Data(csvRows(3)).write(to: URL(fileURLWithPath: secret))
        defer { try? FileManager.default.removeItem(atPath: secret) }
        let key = "raw/manual/42/2026-03-01/link.csv"
        _ = try validator.store.put("raw/manual/42/2026-03-01/real.csv", body: .bytes([]), contentType: nil)
        try FileManager.default.createSymbolicLink(atPath: validator.lake + "/" + key, withDestinationPath: secret)
        let files = try validator.run([key])
        try #require(!files.isEmpty)
        #expect(files.map(\.status) == [.skipped])
        #expect(files[0].reason == "untrusted object: " + LocalObjectStore.linkRefusal)
        #expect(try validator.readings() == 0 && validator.log().count == 0)
    }

    /// A NUL or an out-of-range number in an extra column used to pass the checks and fail the
    /// whole COPY; now only its row is rejected, and everything else reaches jsonb.
    @Test func anExtraCellPostgreSQLWouldRefuseRejectsOnlyItsRow() throws {
        let validator = try InProcessValidator()
        var text = "external_site_id,external_device_id,timestamp,reading_interval_seconds,energy_wh,note,factor\n"
        for index in 0..<40 {
            let time = Timestamp.rfc3339(milliseconds: (1_772_323_200 + Int64(index) * 900) * 1000)
            let note = index == 7 ? "bad\u{0}note" : "n\(index)"
            let factor = index == 9 ? "1e999999" : index == 11 ? "1e131071" : index == 12 ? "1e-16383" : "1.\(index)"
            text += "site-1,inv-1,\(time),900,\(index),\(note),\(factor)\n"
        }
        let key = try validator.land("extras.csv", Array(text.utf8))
        let files = try validator.run([key])
        try #require(!files.isEmpty)
        #expect(files.map(\.status) == [.validated])
        #expect(files[0].rowsLoaded == 38 && files[0].rowsRejected == 2)
        let connection = try validator.database.connect()
        #expect(try connection.query("SELECT count(*) AS n FROM meter_reading")[0, "n"] == "38")
        #expect(try connection.query("SELECT length(other_metrics->>'factor') AS n FROM meter_reading WHERE energy_wh = 11")[0, "n"] == "131072")
        let report = try validator.report(files[0].destination! + ".report.json")
        let violations = try #require(report["violations"] as? [[String: Any]])
        #expect(violations.compactMap { $0["code"] as? String } == ["invalid_metric", "invalid_metric"])
        #expect(violations.compactMap { $0["column"] as? String } == ["note", "factor"])
    }

    /// The number check agrees with PostgreSQL itself, literal by literal.
    @Test func theNumericRangeCheckAgreesWithPostgreSQL() throws {
        let database = try TestDatabase()
        let connection = try database.connect()
        let literals = ["1e999999", "1e131071", "1e131072", "9e131071", "9.9e131071", "99e131070", "99e131071", "1e-16383", "1e-16384",
                        "1.5e-16383", "0.1e-16383", "0e999999", "0.000e-20000", "0.000e-16380", "-1e131071", "-1e131072",
                        "12345678901234567890e131052", "12345678901234567890e131053", "0.00001e131076", "0.00001e131077",
                        "1e1073741822", "0e1073741823", "1E+5", "1e-0", "123.456e-16380"]
        for literal in literals {
            let accepted = (try? connection.query("SELECT $1::jsonb::text AS v", [literal])) != nil
            var limits = ValidationLimits()
            limits.maximumOtherMetricsBytes = 1 << 20
            var decoder = ReadingDecoder(limits: limits, source: .manual, organizationID: 42, now: 1_800_000_000, ingestedAt: 0)
            var record = RawRecord(line: 2, row: 1, extras: [JSONMember("x", .number(literal))])
            record[.externalSiteID] = .text("s")
            record[.externalDeviceID] = .text("d")
            record[.timestamp] = .text("2026-03-01T00:00:00Z")
            record[.readingIntervalSeconds] = .text("900")
            var violations: [SchemaViolation] = []
            let decoded = decoder.decode(record, violations: &violations) != nil
            #expect(decoded == accepted, "\(literal): PostgreSQL \(accepted ? "accepts" : "refuses") it")
        }
    }

    /// In-file duplicates past the reader's memory budget are found by the loader in the
    /// database, exactly: the same rows load and the same lines are reported either way.
    @Test func inFileDuplicatesBeyondTheTrackersMemoryAreFoundExactly() throws {
        var text = "external_site_id,external_device_id,timestamp,reading_interval_seconds,energy_wh\n"
        var line = 1
        var expectedDuplicateLines: [Int] = []
        let window: Int64 = 1_229_400  // just over one tracker page (4096 × 300 s), a multiple of 900 s
        func row(_ device: Int, _ windowIndex: Int64, energy: Int) {
            let time = Timestamp.rfc3339(milliseconds: (1_772_323_200 + windowIndex * window) * 1000)
            text += "site-1,inv-\(device),\(time),900,\(energy)\n"
            line += 1
        }
        for windowIndex in 0..<3 as Range<Int64> {
            for device in 0..<6 { row(device, windowIndex, energy: device) }
        }
        // A repeat of an early row (another batch by now), of a late one (the same batch), and twice of one key.
        for (device, windowIndex) in [(0, 0), (5, 2), (3, 1), (3, 1)] as [(Int, Int64)] {
            row(device, windowIndex, energy: 99)
            expectedDuplicateLines.append(line)
        }
        var outcomes: [[String]] = []
        for budget in [ValidationLimits().maximumDuplicateTrackerBytes, 2 * DuplicateTracker.pageBytes] {
            let validator = try InProcessValidator()
            validator.configuration.limits.maximumDuplicateTrackerBytes = budget
            validator.configuration.batchRows = 7
            validator.configuration.rejectThreshold = 0.5
            let key = try validator.land("sparse.csv", Array(text.utf8))
            let files = try validator.run([key])
            try #require(!files.isEmpty)
            #expect(files.map(\.status) == [.validated])
            #expect(files[0].rowsProcessed == 22 && files[0].rowsLoaded == 18 && files[0].rowsRejected == 4, "budget \(budget)")
            let report = try validator.report(files[0].destination! + ".report.json")
            let violations = try #require(report["violations"] as? [[String: Any]])
            #expect(violations.compactMap { $0["line"] as? Int }.sorted() == expectedDuplicateLines, "budget \(budget)")
            #expect(violations.allSatisfy { $0["code"] as? String == "duplicate_reading" })
            let stored = try validator.database.connect().query(
                "SELECT count(*) AS n, count(*) FILTER (WHERE energy_wh = 99) AS repeats FROM meter_reading")
            #expect(stored.rows == [["18", "0"]], "the first row of each key is the one loaded")
            outcomes.append(violations.compactMap { $0["line"] as? Int }.sorted().map(String.init))
        }
        #expect(outcomes[0] == outcomes[1])
    }

    /// `é` as one scalar and as `e` + combining accent are two ids to PostgreSQL: two meters, two
    /// readings, no duplicate (Swift's string equality would have merged them).
    @Test func idsThatDifferOnlyInUnicodeNormalisationStayApart() throws {
        let validator = try InProcessValidator()
        let csv = "external_site_id,external_device_id,timestamp,reading_interval_seconds,energy_wh\n"
            + "site-\u{E9},inv,2026-03-01T00:00:00Z,900,1\n" + "site-e\u{301},inv,2026-03-01T00:00:00Z,900,2\n"
        let key = try validator.land("nfc.csv", Array(csv.utf8))
        let files = try validator.run([key])
        try #require(!files.isEmpty)
        #expect(files.map(\.status) == [.validated])
        #expect(files[0].rowsLoaded == 2 && files[0].rowsRejected == 0)
        let meters = try validator.database.connect().query(
            "SELECT encode(convert_to(m.external_site_id, 'UTF8'), 'hex') AS site, r.energy_wh::text AS e FROM meter_reading r JOIN meter m ON m.id = r.meter_id ORDER BY e")
        #expect(meters.rows == [["736974652dc3a9", "1"], ["736974652d65cc81", "2"]])
    }

    /// An error raised inside the load decides by its SQLSTATE: a transient one (serialization
    /// failure) fails the invocation and leaves the file in raw/; a permanent one (a check
    /// constraint) quarantines it.
    @Test(arguments: [("40001", true), ("23514", false)])
    func anErrorInsideTheLoadIsRetriedOnlyWhenTransient(state: String, transient: Bool) throws {
        let validator = try InProcessValidator()
        try validator.database.connect().runScript("""
            CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN RAISE EXCEPTION 'refused by the test' USING ERRCODE = '\(state)'; END $$;
            CREATE TRIGGER refuse BEFORE INSERT ON meter FOR EACH ROW EXECUTE FUNCTION refuse();
            """)
        let key = try validator.land("refused.csv", csvRows(4))
        if transient {
            let error = #expect(throws: TransientFailure.self) { try validator.run([key]) }
            #expect(error?.reason.contains("[40001]") == true, "\(String(describing: error))")
            #expect(try validator.store.head(key) != nil, "left in raw/ for the retry")
            #expect(try validator.store.list(prefix: "quarantine/").isEmpty)
            #expect(try validator.log().rows.map { $0[1] } == ["failed"])
        } else {
            let files = try validator.run([key])
            try #require(!files.isEmpty)
            try #require(files.count == 1)
            #expect(files[0].status == .quarantined)
            #expect(files[0].reason?.contains("[23514]") == true)
            #expect(try validator.store.head(key) == nil)
        }
        #expect(try validator.readings() == 0)
    }

    /// S3 delivers at least once, so one event can run in several instances at once: exactly one
    /// loads (or quarantines) the file, the others answer `duplicate`, none fails its invocation.
    @Test(arguments: [false, true])
    func concurrentDeliveriesOfOneEventLoadOnceAndFailNone(quarantined: Bool) throws {
        let validator = try InProcessValidator()
        let instances = 4
        for round in 0..<3 {
            let name = "concurrent-\(round).csv"
            let key = try validator.land(name, csvRows(2_000, bad: quarantined ? Set(0..<500) : []))
            let results = Mutex<[Result<FileResult, any Error>]>([])
            let group = DispatchGroup()
            let (configuration, lake, now) = (validator.configuration, validator.lake, validator.now)
            for _ in 0..<instances {
                group.enter()
                Thread.detachNewThread {
                    defer { group.leave() }
                    let outcome = Result { () throws -> FileResult in
                        // Each instance has its own connection and store, as separate functions would.
                        try InProcessValidator.run([key], configuration: configuration, store: try LocalObjectStore(directory: lake), now: now)[0]
                    }
                    results.withLock { $0.append(outcome) }
                }
            }
            #expect(group.wait(timeout: .now() + 120) == .success)
            let files = try results.withLock { $0 }.map { try $0.get() }
            let settled: FileStatus = quarantined ? .quarantined : .validated
            #expect(files.filter { $0.status == settled }.count == 1, "round \(round): \(files.map(\.status))")
            #expect(files.filter { $0.status == .duplicate }.count == instances - 1, "round \(round): \(files.map(\.status))")
            #expect(Set(files.map(\.destination)).count == 1, "every instance names the same destination")
            #expect(try validator.store.head(key) == nil)
            #expect(try validator.store.head(try #require(files[0].destination)) != nil)
        }
        let log = try validator.log()
        #expect(log.count == 3 && log.rows.allSatisfy { $0[1] == (quarantined ? "quarantined" : "validated") })
        #expect(try validator.readings() == (quarantined ? 0 : 2_000), "the same rows each round, loaded once")
    }
}
