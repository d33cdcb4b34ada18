import Core
import Lake
import LambdaRuntime
import Store
import Validation
import Foundation
import Postgres
import Testing
import TestSupport

/// A reading for organisation 42, source manual.
func reading(
    site: String = "site-1", device: String, at time: Int64, interval: Int = 900, energy: Double? = 100,
    power: Double? = 400, metrics: [JSONMember] = [], quality: ReadingQuality = .measured
) -> MeterReading {
    MeterReading(
        sourceSystem: .manual, organizationID: 42, externalSiteID: site, externalDeviceID: device, timestamp: time,
        readingIntervalSeconds: interval, energyWh: energy, powerW: power, otherMetrics: metrics, quality: quality,
        ingestedAt: 1_772_400_000_000)
}

func file(_ key: String, sha: String = String(repeating: "ab", count: 32)) -> IngestedFile {
    IngestedFile(bucket: "lake", key: key, size: 1234, etag: "etag-1", sha256: sha, source: .manual, organizationID: 42)
}

/// Hands out `batches` one at a time, as a file reader would.
func batches(_ groups: [[MeterReading]]) -> () throws -> ReadingBatch? {
    var remaining = groups[...]
    return {
        guard let next = remaining.popFirst() else { return nil }
        return ReadingBatch(readings: next, violations: [], rowsProcessed: next.count, rowsRejected: 0)
    }
}

func loaded(_ outcome: LoadOutcome) throws -> LoadSummary {
    guard case .loaded(let summary) = outcome else {
        Issue.record("expected a committed load, got \(outcome)")
        throw TestDatabaseError.noDatabase
    }
    return summary
}

let march2026: Int64 = 1_772_323_200  // 2026-03-01T00:00:00Z

@Suite struct MigrationTests {
    @Test func migratesFromEmptyAndAgainAndDetectsEditedHistory() throws {
        let database = try TestDatabase(migrated: false)
        let connection = try database.connect()
        #expect(try MigrationRunner.migrate(connection) == Array(1...Migration.all.count))
        #expect(Migration.all.map(\.version) == Array(1...Migration.all.count), "versions are consecutive")
        #expect(try MigrationRunner.migrate(connection) == [])
        let sources = try connection.query("SELECT id, name FROM data_source ORDER BY id")
        #expect(sources.rows.map { $0[1]! } == ["solaredge", "enphase", "sma", "goodwe", "snowflake", "manual"])
        #expect(sources.rows.map { Int($0[0]!)! } == SourceSystem.allCases.map(\.id))
        #expect(try connection.query("SELECT count(*) AS n FROM schema_migrations")[0, "n"] == String(Migration.all.count))

        var edited = Migration.all
        edited[1] = Migration(version: 2, name: "readings", sql: edited[1].sql + "\n-- edited")
        #expect(throws: MigrationError.modified(version: 2, name: "readings")) { try MigrationRunner.migrate(connection, migrations: edited) }
        try connection.query("INSERT INTO schema_migrations (version, name, checksum) VALUES (99, 'future', 'x')")
        #expect(throws: MigrationError.unknown(version: 99)) { try MigrationRunner.migrate(connection) }
    }
}

@Suite struct ReadingLoaderTests {
    @Test func loads100kRowsAcrossMonthsWithMetersPartitionsAndTheLog() throws {
        let database = try TestDatabase()
        let connection = try database.connect()
        // 50 devices × 2000 hourly intervals from 2026-03-01: crosses into April and May.
        var groups: [[MeterReading]] = []
        var expectedEnergy = 0.0
        for slot in stride(from: 0, to: 2000, by: 200) {
            var group: [MeterReading] = []
            for hour in slot..<(slot + 200) {
                for device in 0..<50 {
                    let energy = Double((hour * 50 + device) % 997) + 0.5
                    expectedEnergy += energy
                    group.append(reading(device: "inv-\(device)", at: march2026 + Int64(hour) * 3600, interval: 3600, energy: energy))
                }
            }
            groups.append(group)
        }
        let summary = try loaded(try ReadingLoader(connection: connection).load(file("raw/manual/42/2026-03-01/big.csv"), batches: batches(groups)))
        #expect(summary.rowsInserted == 100_000)
        #expect(summary.rowsProcessed == 100_000)
        #expect(summary.metersCreated == 50)
        #expect(summary.batchesUpserted == 0)
        #expect(summary.partitionsCreated == ["meter_reading_y2026m03", "meter_reading_y2026m04", "meter_reading_y2026m05"])
        let totals = try connection.query("SELECT count(*) AS n, sum(energy_wh) AS e, count(DISTINCT meter_id) AS m FROM meter_reading")
        #expect(totals[0, "n"] == "100000")
        #expect(abs(Double(totals[0, "e"]!)! - expectedEnergy) < 1e-6)
        #expect(totals[0, "m"] == "50")
        let log = try connection.query("SELECT status, rows_processed, rows_loaded, rows_rejected, data_source_id, organization_id, finished_at IS NOT NULL AS done FROM ingestion_log")
        #expect(log.rows == [["validated", "100000", "100000", "0", "6", "42", "t"]])
        let ingestion = try connection.query("SELECT count(DISTINCT ingestion_id) AS n, min(ingestion_id) = (SELECT id FROM ingestion_log) AS linked FROM meter_reading")
        #expect(ingestion[0, "n"] == "1" && ingestion[0, "linked"] == "t")
    }

    @Test func aResentFileChangesNothingAndACorrectedOneReplacesOnlyWhatDiffers() throws {
        let database = try TestDatabase()
        let connection = try database.connect()
        let loader = ReadingLoader(connection: connection)
        let original = (0..<1000).map { reading(device: "d\($0 % 10)", at: march2026 + Int64($0 / 10) * 900, energy: Double($0)) }
        _ = try loaded(try loader.load(file("raw/manual/42/2026-03-01/a.csv"), batches: batches([Array(original[..<500]), Array(original[500...])])))
        let versions = try connection.query("SELECT sum(xmin::text::bigint) AS x, count(*) AS n FROM meter_reading")

        // The same content under the same key is settled: a second load of it writes nothing.
        #expect(try loader.load(file("raw/manual/42/2026-03-01/a.csv"), batches: batches([original])) == .settledElsewhere)
        // The same content sent again under another key loads, and finds every row unchanged.
        let again = try loaded(try loader.load(file("raw/manual/42/2026-03-02/a.csv"), batches: batches([Array(original[..<500]), Array(original[500...])])))
        #expect(again.rowsInserted == 0 && again.rowsUpdated == 0 && again.rowsUnchanged == 1000)
        #expect(again.batchesUpserted == 2)
        // Not one row was rewritten: every row version is the one the first load made.
        #expect(try connection.query("SELECT sum(xmin::text::bigint) AS x, count(*) AS n FROM meter_reading").rows == versions.rows)
        #expect(try connection.query("SELECT count(*) AS n FROM ingestion_log")[0, "n"] == "2", "one log row per (sha256, key)")

        var corrected = original
        for index in stride(from: 0, to: 100, by: 10) { corrected[index].energyWh = 99_999 }
        corrected[5].otherMetrics = [JSONMember("note", .string("recounted"))]
        let extra = (0..<5).map { reading(device: "new\($0)", at: march2026, energy: 1) }
        let second = try loaded(try loader.load(file("raw/manual/42/2026-03-02/b.csv", sha: String(repeating: "cd", count: 32)), batches: batches([corrected + extra])))
        #expect(second.rowsUpdated == 11)
        #expect(second.rowsInserted == 5)
        #expect(second.rowsUnchanged == 989)
        let stored = try connection.query("""
            SELECT count(*) FILTER (WHERE energy_wh = 99999) AS fixed, count(*) AS n,
                   count(*) FILTER (WHERE other_metrics = '{"note":"recounted"}') AS noted FROM meter_reading
            """)
        #expect(stored.rows == [["10", "1005", "1"]])
    }

    /// Each column a correction may change, changed alone: the stored row takes the new value,
    /// counted as updated; the same file again is unchanged.
    @Test(arguments: ["reading_interval_seconds", "energy_wh", "power_w", "irradiance_wm2", "temperature_c", "other_metrics", "quality"])
    func aCorrectionOfOneColumnAloneReplacesTheRow(column: String) throws {
        let database = try TestDatabase()
        let connection = try database.connect()
        let loader = ReadingLoader(connection: connection)
        var first = reading(device: "d", at: march2026)
        first.irradianceWm2 = 500
        first.temperatureC = 21.5
        _ = try loaded(try loader.load(file("raw/manual/42/2026-03-01/a.csv"), batches: batches([[first]])))
        var changed = first
        switch column {
        case "reading_interval_seconds": changed.readingIntervalSeconds = 300
        case "energy_wh": changed.energyWh = 101
        case "power_w": changed.powerW = nil
        case "irradiance_wm2": changed.irradianceWm2 = 501
        case "temperature_c": changed.temperatureC = -3
        case "other_metrics": changed.otherMetrics = [JSONMember("voltage", .number("230.1"))]
        default: changed.quality = .estimated
        }
        let second = try loaded(try loader.load(file("raw/manual/42/2026-03-02/b.csv", sha: String(repeating: "cd", count: 32)),
                                                batches: batches([[changed]])))
        #expect(second.rowsUpdated == 1 && second.rowsUnchanged == 0 && second.rowsInserted == 0, "\(column): \(second)")
        let stored = try connection.query("SELECT \(column)::text AS v FROM meter_reading")[0, "v"]
        let expected: String? = switch column {
        case "reading_interval_seconds": "300"
        case "energy_wh": "101"
        case "power_w": nil
        case "irradiance_wm2": "501"
        case "temperature_c": "-3"
        case "other_metrics": #"{"voltage": 230.1}"#
        default: "estimated"
        }
        #expect(stored == expected, "\(column)")
        let third = try loaded(try loader.load(file("raw/manual/42/2026-03-03/c.csv", sha: String(repeating: "ef", count: 32)),
                                               batches: batches([[changed]])))
        #expect(third.rowsUnchanged == 1 && third.rowsUpdated == 0, "\(column): \(third)")
    }

    @Test func aFailureMidCopyRollsBackTheWholeFile() throws {
        let database = try TestDatabase()
        let connection = try database.connect()
        var second = (0..<500).map { reading(device: "d", at: march2026 + 450_000 + Int64($0) * 900) }
        // A value only the database's own CHECK catches (the decoder would have refused it).
        second[250].energyWh = -1
        let first = (0..<500).map { reading(device: "d", at: march2026 + Int64($0) * 900) }
        let error = #expect(throws: PostgresError.self) {
            try ReadingLoader(connection: connection).load(file("raw/manual/42/2026-03-01/bad.csv"), batches: batches([first, second]))
        }
        #expect(error?.sqlState == "23514")
        #expect(error?.description.contains("-1") == false, "no values in messages")
        let left = try connection.query("SELECT (SELECT count(*) FROM meter_reading) AS r, (SELECT count(*) FROM meter) AS m, (SELECT count(*) FROM ingestion_log) AS l")
        #expect(left.rows == [["0", "0", "0"]])
        #expect(!connection.inTransaction)
    }

    @Test func aDeclinedFileLeavesNothing() throws {
        let database = try TestDatabase()
        let connection = try database.connect()
        let outcome = try ReadingLoader(connection: connection).load(
            file("raw/manual/42/2026-03-01/x.csv"), batches: batches([[reading(device: "d", at: march2026)]]), decide: { _ in false })
        guard case .declined(let summary) = outcome else {
            Issue.record("expected declined, got \(outcome)")
            return
        }
        #expect(summary.rowsInserted == 1)
        #expect(try connection.query("SELECT (SELECT count(*) FROM meter_reading) + (SELECT count(*) FROM meter) + (SELECT count(*) FROM ingestion_log) AS n")[0, "n"] == "0")
    }

    @Test func lateAndFutureMonthsGetTheirPartitions() throws {
        let database = try TestDatabase()
        let connection = try database.connect()
        let january2019: Int64 = 1_546_300_800
        let june2027: Int64 = 1_811_808_000
        let summary = try loaded(try ReadingLoader(connection: connection).load(
            file("raw/manual/42/2026-03-01/mixed.csv"),
            batches: batches([[reading(device: "d", at: june2027), reading(device: "d", at: january2019), reading(device: "d", at: march2026)]])))
        #expect(summary.partitionsCreated == ["meter_reading_y2019m01", "meter_reading_y2026m03", "meter_reading_y2027m06"])
        let placed = try connection.query("SELECT tableoid::regclass::text AS part, count(*) AS n FROM meter_reading GROUP BY 1 ORDER BY 1")
        #expect(placed.rows.map { $0[0]! } == summary.partitionsCreated)
    }

    @Test func textAndJSONValuesOfEveryShapeAreStoredVerbatim() throws {
        let database = try TestDatabase()
        let connection = try database.connect()
        let nasty = [
            "quote ' double \" backslash \\ tab \t newline \n return \r end",
            "'); DROP TABLE meter_reading; --",
            "\\.", "\\N", "NULL", "Zähler ☀️ 発電量 𝄞", "{\"a\",\"b\"}", "$1", "",
        ]
        var readings: [MeterReading] = []
        for (index, text) in nasty.enumerated() {
            readings.append(reading(
                site: text.isEmpty ? "empty-site" : text, device: "dev \(index) \(text)", at: march2026 + Int64(index) * 900,
                metrics: [JSONMember("text", .string(text)), JSONMember(text.isEmpty ? "k" : text, .number("9007199254740993"))]))
        }
        _ = try loaded(try ReadingLoader(connection: connection).load(file("raw/manual/42/2026-03-01/nasty.csv"), batches: batches([readings])))
        let stored = try connection.query("""
            SELECT m.external_site_id, m.external_device_id, r.other_metrics::text AS metrics
            FROM meter_reading r JOIN meter m ON m.id = r.meter_id ORDER BY r."timestamp"
            """)
        #expect(stored.count == nasty.count)
        for (index, row) in stored.rows.enumerated() {
            #expect(row[0] == readings[index].externalSiteID)
            #expect(row[1] == readings[index].externalDeviceID)
            let parsed = try JSONParser.parse(Array(row[2]!.utf8))
            #expect(parsed["text"] == .string(nasty[index]))
            #expect(parsed[nasty[index].isEmpty ? "k" : nasty[index]] == .number("9007199254740993"))
        }
        #expect(try connection.query("SELECT to_regclass('meter_reading') IS NOT NULL AS still")[0, "still"] == "t")
    }

    @Test func aKilledBackendFailsOneCallAndTheNextReconnects() throws {
        let database = try TestDatabase()
        let connection = try database.connect()
        let pid = try connection.query("SELECT pg_backend_pid() AS pid")[0, "pid"]!
        let admin = try database.connect()
        try admin.query("SELECT pg_terminate_backend($1::int)", [pid])
        let error = #expect(throws: PostgresError.self) { try connection.query("SELECT 1") }
        #expect(error?.isTransient == true)
        #expect(error?.kind == .connectionLost || error?.sqlState == "57P01")
        let newPID = try connection.query("SELECT pg_backend_pid() AS pid")[0, "pid"]!
        #expect(newPID != pid)
        // The reconnected session still sees this test's schema and can load.
        _ = try loaded(try ReadingLoader(connection: connection).load(file("raw/manual/42/2026-03-01/after.csv"), batches: batches([[reading(device: "d", at: march2026)]])))
    }

    @Test func connectionErrorsAreTypedAndCarryNoPassword() {
        let error = #expect(throws: PostgresError.self) {
            try PostgresConnection(url: "postgresql://meterlake:s3cret-pw@127.0.0.1:1/nowhere?connect_timeout=2")
        }
        #expect(error?.kind == .connection)
        #expect(error?.isTransient == true)
        #expect(error?.description.contains("s3cret-pw") == false)
    }
}

@Suite struct PartitionMaintenanceTests {
    @Test func createsAheadAndDropsOnlyWhollyExpiredMonths() throws {
        let database = try TestDatabase()
        let connection = try database.connect()
        let now: Int64 = 1_795_910_400  // 2026-11-29T00:00:00Z; the 90-day cutoff is 2026-08-31
        #expect(try PartitionMaintenance.ensureAhead(now: now, connection: connection) == ["meter_reading_y2026m11", "meter_reading_y2026m12", "meter_reading_y2027m01"])
        #expect(try PartitionMaintenance.ensureAhead(now: now, connection: connection) == [])
        let july: Int64 = 1_782_864_000  // 2026-07-01
        let august: Int64 = 1_785_542_400  // 2026-08-01
        _ = try loaded(try ReadingLoader(connection: connection).load(
            file("raw/manual/42/2026-07-01/old.csv"),
            batches: batches([[reading(device: "d", at: july), reading(device: "d", at: august + 30 * 86_400)]])))
        try connection.query("""
            INSERT INTO meter_aggregate (meter_id, period, period_start, period_end, energy_wh, hours_expected)
            SELECT id, 'monthly', '2026-07-01', '2026-08-01', 100, 744 FROM meter
            """)

        // The load's hours wait for their aggregates: nothing is final, nothing is dropped.
        #expect(try PartitionMaintenance.dropExpired(now: now, connection: connection) == [])
        #expect(try Aggregates(connection: connection).pass().rangesClaimed == 1)
        #expect(try PartitionMaintenance.dropExpired(now: now, connection: connection) == ["meter_reading_y2026m07"])
        let recorded = try connection.query("SELECT name, rows_dropped, month_start = '2026-07-01T00:00:00Z' AS july FROM partition_drop")
        #expect(recorded.count == 1 && recorded[0, "name"] == "meter_reading_y2026m07" && recorded[0, "rows_dropped"] == "1" && recorded[0, "july"] == "t")
        // August still holds 2026-08-31, inside the window: kept, with its row.
        let left = try connection.query("SELECT count(*) AS n, min(\"timestamp\") AS first FROM meter_reading")
        #expect(left[0, "n"] == "1")
        #expect(try connection.query("SELECT count(*) AS n FROM meter_aggregate WHERE period = 'monthly' AND period_start = '2026-07-01T00:00:00Z'")[0, "n"] == "1",
                "aggregates are kept for ever")
        #expect(try PartitionMaintenance.dropExpired(now: now, connection: connection) == [])
        #expect(try PartitionMaintenance.dropExpired(now: now + 86_400, connection: connection) == ["meter_reading_y2026m08"])
    }

    @Test func monthArithmeticIsExactAroundTheEpochAndYearEnds() {
        #expect(PartitionMaintenance.monthIndex(of: 0) == 0)
        #expect(PartitionMaintenance.monthIndex(of: -1) == -1)
        #expect(PartitionMaintenance.name(monthIndex: -1) == "meter_reading_y1969m12")
        #expect(PartitionMaintenance.monthIndex(of: march2026 - 1) == PartitionMaintenance.monthIndex(of: march2026) - 1)
        #expect(PartitionMaintenance.name(monthIndex: PartitionMaintenance.monthIndex(of: 1_798_761_599)) == "meter_reading_y2026m12")
    }
}

/// The call counts the quota plans read.
@Suite struct CallCountTests {
    @Test func monthAndDayCountsCoverExactlyTheirDays() throws {
        let database = try TestDatabase()
        let integrations = Integrations(connection: try database.connect())
        let credential = try integrations.addCredential(organizationID: 42, vendor: .enphase, authType: "oauth2", envelope: "x")
        try integrations.countCalls(credentialID: credential, scope: "site:1", day: "2026-05-31", count: 1000)  // last month
        try integrations.countCalls(credentialID: credential, scope: "site:1", day: "2026-06-01", count: 7)
        try integrations.countCalls(credentialID: credential, scope: "account", day: "2026-06-14", count: 2)
        try integrations.countCalls(credentialID: credential, scope: "site:1", day: "2026-06-15", count: 3)
        try integrations.countCalls(credentialID: credential, scope: "site:2", day: "2026-06-15", count: 4)
        try integrations.countCalls(credentialID: credential, scope: "site:2", day: "2026-06-16", count: 50)  // tomorrow
        #expect(try integrations.monthCalls(credentialID: credential, day: "2026-06-15") == 7 + 2 + 3 + 4)
        #expect(try integrations.dayCalls(credentialID: credential, day: "2026-06-15") == 7)
        #expect(try integrations.calls(credentialID: credential, scope: "site:2", day: "2026-06-15") == 4)
    }
}

@Suite struct AggregateBoundaryTests {
    /// A session left in another zone (Supabase's pooler hands over whatever a server connection
    /// had) must not move a UTC day or month: March 2026 holds Berlin's spring-forward night.
    @Test func periodsStayUTCWhateverTheSessionZone() throws {
        let database = try TestDatabase()
        let connection = try database.connect()
        try connection.query("SET TIME ZONE 'Europe/Berlin'")
        let march28: Int64 = 1_774_656_000  // 2026-03-28T00:00:00Z
        let day = (0..<96).map { reading(device: "d", at: march28 + Int64($0) * 900, energy: 1) }
        let nextDays = (96..<(96 * 4)).map { reading(device: "d", at: march28 + Int64($0) * 900, energy: 1) }
        _ = try loaded(try ReadingLoader(connection: connection).load(file("raw/manual/42/2026-03-28/dst.csv"), batches: batches([day, nextDays])))
        #expect(try Aggregates(connection: connection).pass().rangesClaimed == 1)
        let days = try connection.query("""
            SELECT to_char(period_start AT TIME ZONE 'UTC', 'MM-DD HH24:MI') AS s, to_char(period_end AT TIME ZONE 'UTC', 'MM-DD HH24:MI') AS e,
                   energy_wh, hours_expected FROM meter_aggregate WHERE period = 'daily' ORDER BY period_start
            """)
        #expect(days.rows.map { $0[0]! + "–" + $0[1]! } == ["03-28 00:00–03-29 00:00", "03-29 00:00–03-30 00:00", "03-30 00:00–03-31 00:00", "03-31 00:00–04-01 00:00"])
        #expect(days.rows.allSatisfy { $0[2] == "96" && $0[3] == "24" })
        let month = try connection.query("SELECT to_char(period_end AT TIME ZONE 'UTC', 'MM-DD HH24:MI') AS e, energy_wh FROM meter_aggregate WHERE period = 'monthly'")
        #expect(month[0, "e"] == "04-01 00:00" && month[0, "energy_wh"] == "384")
        #expect(try Aggregates(connection: connection).verify(organizationID: nil, from: march28, to: march28 + 4 * 86_400).isEmpty)
    }

    /// A backfill that moves a meter's first hour earlier also changes the expected hours of the
    /// day and month that held the old first hour.
    @Test func aBackfillRecountsTheExpectedHoursOfTheOldFirstDay() throws {
        let database = try TestDatabase()
        let connection = try database.connect()
        let march10noon: Int64 = 1_773_144_000  // 2026-03-10T12:00:00Z
        let afternoon = (0..<48).map { reading(device: "d", at: march10noon + Int64($0) * 900, energy: 2) }
        _ = try loaded(try ReadingLoader(connection: connection).load(file("raw/manual/42/2026-03-10/a.csv"), batches: batches([afternoon])))
        _ = try Aggregates(connection: connection).pass()
        #expect(try connection.query("SELECT hours_expected FROM meter_aggregate WHERE period = 'daily'")[0, "hours_expected"] == "12")
        let february20: Int64 = 1_771_545_600  // 2026-02-20T00:00:00Z
        let backfill = (0..<4).map { reading(device: "d", at: february20 + Int64($0) * 900, energy: 2) }
        _ = try loaded(try ReadingLoader(connection: connection).load(file("raw/manual/42/2026-02-20/b.csv", sha: String(repeating: "cd", count: 32)),
                                                                      batches: batches([backfill])))
        _ = try Aggregates(connection: connection).pass()
        let march = try connection.query("""
            SELECT (SELECT hours_expected FROM meter_aggregate WHERE period = 'daily' AND period_start = '2026-03-10T00:00:00Z') AS day,
                   (SELECT hours_expected FROM meter_aggregate WHERE period = 'monthly' AND period_start = '2026-03-01T00:00:00Z') AS month
            """)
        #expect(march[0, "day"] == "24" && march[0, "month"] == "744")
        #expect(try Aggregates(connection: connection).verify(organizationID: nil, from: february20, to: march10noon + 86_400).isEmpty)
    }
}

/// The definitions of docs/aggregates.md on rows written straight into the table (shapes the
/// validator would refuse, so each rule is seen on its own).
@Suite struct AggregateDefinitionTests {
    let hour: Int64 = 1_772_794_800  // 2026-03-06T11:00:00Z

    func insert(_ connection: PostgresConnection, meter: Int64, at offset: Int64, interval: Int, energy: Double?, quality: String) throws {
        try connection.query("""
            INSERT INTO meter_reading (meter_id, organization_id, "timestamp", reading_interval_seconds, energy_wh, quality, ingested_at)
            VALUES ($1, 42, to_timestamp($2), $3, $4, $5, now())
            """, [String(meter), String(hour + offset), String(interval), energy.map { String($0) }, quality])
    }

    @Test func missingEnergyNullsMixedIntervalsAndOverfullHours() throws {
        let database = try TestDatabase()
        let connection = try database.connect()
        try PartitionMaintenance.ensure(monthIndex: PartitionMaintenance.monthIndex(of: hour), connection: connection)
        let meters = try (1...3).map { index in
            Int64(try connection.query("INSERT INTO meter (organization_id, data_source_id, external_site_id, external_device_id) VALUES (42, 6, 's', $1) RETURNING id",
                                       ["d\(index)"])[0, "id"]!)!
        }
        // Meter 1: two measured (1 Wh each), a missing row that carries energy, an estimated row without energy.
        try insert(connection, meter: meters[0], at: 0, interval: 900, energy: 1, quality: "measured")
        try insert(connection, meter: meters[0], at: 900, interval: 900, energy: 1, quality: "estimated")
        try insert(connection, meter: meters[0], at: 1800, interval: 900, energy: 5, quality: "missing")
        try insert(connection, meter: meters[0], at: 2700, interval: 900, energy: nil, quality: "estimated")
        // Meter 2: 5-minute and 15-minute readings mixed: judged by the smallest (12 expected).
        try insert(connection, meter: meters[1], at: 0, interval: 300, energy: 1, quality: "measured")
        try insert(connection, meter: meters[1], at: 900, interval: 900, energy: 3, quality: "measured")
        // Meter 3: more readings than the interval allows: completeness stops at 100.
        for slot in 0..<5 { try insert(connection, meter: meters[2], at: Int64(slot) * 600, interval: 900, energy: 1, quality: "measured") }
        try connection.query("""
            INSERT INTO aggregate_dirty (meter_id, first_hour, last_hour) SELECT id, to_timestamp($1), to_timestamp($1) FROM meter
            """, [String(hour)])
        #expect(try Aggregates(connection: connection).pass().hours == 3)
        let rows = try connection.query("""
            SELECT meter_id, energy_wh, reading_count, readings_expected, completeness_pct, hours_available
            FROM meter_aggregate WHERE period = 'hourly' ORDER BY meter_id
            """)
        #expect(rows[0, "energy_wh"] == "2" && rows[0, "reading_count"] == "2" && rows[0, "readings_expected"] == "4" && rows[0, "completeness_pct"] == "50")
        #expect(rows[1, "readings_expected"] == "12" && rows[1, "reading_count"] == "2" && rows[1, "hours_available"] == "0")
        #expect(rows[2, "reading_count"] == "5" && rows[2, "completeness_pct"] == "100" && rows[2, "hours_available"] == "1")
        // verify sees a NULL where a number belongs.
        #expect(try Aggregates(connection: connection).verify(organizationID: nil, from: hour, to: hour + 3600).isEmpty)
        try connection.query("UPDATE meter_aggregate SET energy_wh = NULL WHERE period = 'hourly' AND meter_id = $1", [String(meters[0])])
        let differences = try Aggregates(connection: connection).verify(organizationID: nil, from: hour, to: hour + 3600)
        #expect(differences.contains { $0.period == "hourly" && $0.field == "energy_wh" && $0.stored == "null" && $0.recomputed == "2" })
    }

    @Test func todaysExpectedHoursAreWholeAndFinishingRecountsThem() throws {
        let database = try TestDatabase()
        let connection = try database.connect()
        let now = Int64(Date().timeIntervalSince1970)
        let today = now / 86_400 * 86_400
        _ = try loaded(try ReadingLoader(connection: connection).load(file("raw/manual/42/today/a.csv"),
                                                                      batches: batches([[reading(device: "d", at: today, energy: 1)]])))
        _ = try Aggregates(connection: connection).pass()
        let expected = try #require(Double(try connection.query("SELECT hours_expected FROM meter_aggregate WHERE period = 'daily'")[0, "hours_expected"]!))
        #expect(expected == expected.rounded() && expected >= 1 && expected <= 24)
        // A past day whose row was computed before it ended (and since damaged): finishing recounts it.
        try connection.query("UPDATE meter_aggregate SET period_start = period_start - interval '3 days', period_end = period_end - interval '3 days', hours_expected = 3, computed_at = period_end - interval '4 days' WHERE period = 'daily'")
        try connection.query("UPDATE meter_aggregate SET period_start = period_start - interval '3 days', period_end = period_end - interval '3 days' WHERE period = 'hourly'")
        #expect(try Aggregates(connection: connection).finalize() >= 1)
        #expect(try connection.query("SELECT hours_expected FROM meter_aggregate WHERE period = 'daily'")[0, "hours_expected"] == "24")
    }

    @Test func aPassSkipsRangesAnotherRunHolds() throws {
        let database = try TestDatabase()
        let connection = try database.connect()
        let hours = (0..<3).map { index in [reading(device: "d\(index)", at: hour)] }
        for (index, batch) in hours.enumerated() {
            _ = try loaded(try ReadingLoader(connection: connection).load(file("raw/manual/42/x/\(index).csv", sha: String(repeating: "\(index)", count: 64)),
                                                                          batches: batches([batch])))
        }
        let holder = try database.connect()
        try holder.query("BEGIN")
        _ = try holder.query("SELECT id FROM aggregate_dirty ORDER BY id LIMIT 1 FOR UPDATE")
        // Claims the two others at once instead of waiting for the held one.
        let started = Date()
        #expect(try Aggregates(connection: connection).pass().rangesClaimed == 2)
        #expect(Date().timeIntervalSince(started) < 5)
        try holder.query("ROLLBACK")
        #expect(try Aggregates(connection: connection).pass().rangesClaimed == 1)
    }

    @Test func aRangeEndingOnAMonthsFirstHourKeepsThatMonth() throws {
        let database = try TestDatabase()
        let connection = try database.connect()
        let july: Int64 = 1_782_864_000  // 2026-07-01
        _ = try loaded(try ReadingLoader(connection: connection).load(file("raw/manual/42/2026-07-01/a.csv"),
                                                                      batches: batches([[reading(device: "d", at: july)]])))
        try connection.query("DELETE FROM aggregate_dirty")
        try connection.query("INSERT INTO aggregate_dirty (meter_id, first_hour, last_hour) SELECT id, to_timestamp($1), to_timestamp($1) FROM meter", [String(july)])
        #expect(try PartitionMaintenance.dropExpired(now: july + 200 * 86_400, connection: connection) == [])
    }

    @Test func theCredentialWatchKeepsToItsThresholds() throws {
        let database = try TestDatabase()
        let connection = try database.connect()
        let rows: [(String, String, Bool, String?, String?)] = [
            // auth, token_expires_at, active, last_error, last_used_at
            ("oauth2", "now() - interval '30 minutes'", true, nil, nil),
            ("oauth2", "now() - interval '2 hours'", true, nil, nil),
            ("api_key", "now() + interval '2 days'", false, "refused", nil),
            ("api_key", "NULL", true, "HTTP 500", "now() - interval '2 days'"),
            ("api_key", "NULL", true, "HTTP 500", "now() - interval '1 hour'"),
        ]
        for (auth, expires, active, error, used) in rows {
            try connection.query("""
                INSERT INTO integration_credential (organization_id, data_source_id, auth_type, encrypted_credentials, token_expires_at, is_active, last_error, last_used_at)
                VALUES (42, 1, $1, 'sealed', \(expires), $2, $3, \(used ?? "NULL"))
                """, [auth, active ? "true" : "false", error])
        }
        let states = try Integrations(connection: connection).warnings().map { "\($0.credentialID):\($0.state.rawValue)" }
        #expect(states == ["2:token_not_refreshed", "3:inactive", "5:failing"])
    }
}
