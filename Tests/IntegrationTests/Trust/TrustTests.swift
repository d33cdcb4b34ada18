import Compression
import Core
import Cryptography
import Foundation
import Lake
import Postgres
import Store
import Testing
import TestSupport

extension MaintenanceHarness {
    /// The built `meterlake` with this harness's database and lake (moto S3).
    func meterlake(_ arguments: [String]) throws -> (status: Int32, out: String, err: String) {
        var environment = try validator.environment()
        environment["AWS_LAMBDA_RUNTIME_API"] = nil
        let process = try ChildProcess(try BuiltBinary.path("meterlake"), arguments: arguments, environment: environment)
        let status = try process.waitForExit(timeout: 120)
        return (status, process.standardOutput, process.standardError)
    }

    var meterID: String { get throws { try query("SELECT min(id) AS id FROM meter")[0, "id"]! } }
}

/// Evidence, the ingestion log's chain and replay, through the built validator, maintenance
/// function and `meterlake`, against moto S3 and PostgreSQL.
@Suite(.serialized) struct TrustTests {
    let day1 = previousMonth.first, day2 = previousMonth.second

    @Test func evidenceOutlivesTheReadingsAndSaysWhereItWasChanged() throws {
        let harness = try MaintenanceHarness()
        #expect(try harness.load("two days.csv", quarterHours(192, from: "\(day1)T00:00:00Z") { $0 >= 100 && $0 < 104 ? nil : 10 }) == ["validated"])
        _ = try harness.maintain()
        let meter = try harness.meterID
        let created = try harness.meterlake(["evidence", "create", "--org", "42", "--meters", meter, "--from", day1, "--to", "\(day2)T12:00:00Z",
                                             "--expected-wh", "5000"])
        #expect(created.status == 0, "\(created.err)")
        #expect(created.out.contains("144 readings archived at archive/evidence/42/") && created.out.contains("shortfall 3600 Wh"), "\(created.out)")
        let row = try harness.query("SELECT id, data_hash, archive_path, evidence::text AS e FROM default_event")
        let id = row[0, "id"]!, path = row[0, "archive_path"]!
        // A third party re-hashes the archive: gunzip, SHA-256 (docs/trust.md).
        let scratch = try scratchFile()
        _ = try harness.validator.store.get(path, to: scratch)
        let document = try gunzip(Array(try Data(contentsOf: URL(fileURLWithPath: scratch))))
        #expect(Hex.encode(SHA256.hash(document)) == row[0, "data_hash"])
        let lines = String(decoding: document, as: UTF8.self).split(separator: "\n")
        #expect(lines.count == 145 && lines[0].hasPrefix(#"{"format":"meterlake.evidence.v1","organization_id":42,"#))
        #expect(lines[1] == #"[\#(meter),"\#(day1)T00:00:00Z",900,"10","0","measured",1]"# || lines[1].hasPrefix("[\(meter),\"\(day1)T00:00:00Z\",900,\"10\""))
        let evidence = try JSONSerialization.jsonObject(with: Data(row[0, "e"]!.utf8)) as! [String: Any]
        #expect(evidence["actual_wh"] as? Double == 1400 && evidence["expected_wh"] as? Double == 5000 && evidence["shortfall_wh"] as? Double == 3600)
        let sources = try #require(evidence["sources"] as? [[String: Any]])
        #expect(sources.count == 1 && sources[0]["chain_position"] as? Int == 1)
        #expect(try harness.meterlake(["evidence", "verify", id]).status == 0)

        // The readings go (their month dropped); the evidence still verifies from archive and aggregates.
        let later = Int64(Date().timeIntervalSince1970) + 200 * 86_400
        #expect(try PartitionMaintenance.dropExpired(now: later, connection: try harness.database.connect()).contains { $0.hasPrefix("meter_reading_y") })
        #expect(try harness.query("SELECT count(*) AS n FROM meter_reading")[0, "n"] == "0")
        let verified = try harness.meterlake(["evidence", "verify", id])
        #expect(verified.status == 0 && verified.out.contains("144 readings"), "\(verified.err)")

        // One byte of the archive changed: verify fails and names the readings.
        var tampered = document
        let at = document.count - 20
        tampered[at] = tampered[at] == UInt8(ascii: "1") ? UInt8(ascii: "2") : UInt8(ascii: "1")
        _ = try harness.validator.store.put(path, body: .bytes(try Deflater.gzip(tampered)), contentType: nil)
        let broken = try harness.meterlake(["evidence", "verify", id])
        #expect(broken.status == 1 && broken.err.contains("readings 1–144 (lines 2–145) changed"), "\(broken.err)")
        _ = try harness.validator.store.put(path, body: .bytes(try Deflater.gzip(document)), contentType: nil)
        #expect(try harness.meterlake(["evidence", "verify", id]).status == 0)

        // One field of the row changed: verify names it.
        let connection = try harness.database.connect()
        try connection.query("UPDATE default_event SET evidence = jsonb_set(evidence, '{actual_wh}', '1500')")
        let edited = try harness.meterlake(["evidence", "verify", id])
        #expect(edited.status == 1 && edited.err.contains("evidence.actual_wh is 1500, the archive's readings sum to 1400"), "\(edited.err)")
        try connection.query("UPDATE default_event SET evidence = jsonb_set(evidence, '{actual_wh}', '1400')")
        // The claim rewritten consistently in the row (a wider period, a larger expectation): the archive's header disagrees.
        try connection.query("""
            UPDATE default_event SET breach_end = breach_end + interval '1 day',
                evidence = jsonb_set(jsonb_set(jsonb_set(evidence, '{breach_period,end}', to_jsonb(to_char((breach_end + interval '1 day') AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'))),
                                     '{expected_wh}', '90000'), '{shortfall_wh}', '88600')
            """)
        let widened = try harness.meterlake(["evidence", "verify", id])
        #expect(widened.status == 1 && widened.err.contains("is not the row's breach period") && widened.err.contains("evidence.expected_wh is 90000, the archive's header says 5000"),
                "\(widened.err)")
    }

    @Test func theChainNamesTheRowThatWasEditedDeletedOrReordered() throws {
        let harness = try MaintenanceHarness()
        for index in 0..<4 {
            #expect(try harness.load("f\(index).csv", quarterHours(4, from: "\(day1)T0\(index):00:00Z")) == ["validated"])
        }
        #expect(try harness.load("bad.csv", quarterHours(4, from: "\(day1)T05:00:00Z") { _ in -1 }) == ["quarantined"])
        let ok = try harness.meterlake(["audit", "verify"])
        #expect(ok.status == 0 && ok.out.contains("5 rows, positions 1…5"), "\(ok.err)")
        let connection = try harness.database.connect()
        // Edited.
        try connection.query("UPDATE ingestion_log SET rows_loaded = rows_loaded + 1 WHERE chain_position = 2")
        let edited = try harness.meterlake(["audit", "verify"])
        #expect(edited.status == 1 && edited.err.contains("at position 2 was edited"), "\(edited.err)")
        try connection.query("UPDATE ingestion_log SET rows_loaded = rows_loaded - 1 WHERE chain_position = 2")
        #expect(try harness.meterlake(["audit", "verify"]).status == 0)
        // Re-ordered.
        try connection.query("UPDATE ingestion_log SET chain_position = -chain_position WHERE chain_position IN (3, 4)")
        try connection.query("UPDATE ingestion_log SET chain_position = CASE chain_position WHEN -3 THEN 4 ELSE 3 END WHERE chain_position IN (-3, -4)")
        let reordered = try harness.meterlake(["audit", "verify"])
        #expect(reordered.status == 1 && reordered.err.contains("at position 3 does not follow position 2"), "\(reordered.err)")
        try connection.query("UPDATE ingestion_log SET chain_position = -chain_position WHERE chain_position IN (3, 4)")
        try connection.query("UPDATE ingestion_log SET chain_position = CASE chain_position WHEN -3 THEN 4 ELSE 3 END WHERE chain_position IN (-3, -4)")
        #expect(try harness.meterlake(["audit", "verify"]).status == 0)
        // A settled row taken out of the chain.
        try connection.query("UPDATE ingestion_log SET chain_position = NULL WHERE chain_position = 5")
        let unchained = try harness.meterlake(["audit", "verify"])
        #expect(unchained.status == 1 && unchained.err.contains("is settled but outside the chain"), "\(unchained.err)")
        try connection.query("DELETE FROM ingestion_log WHERE chain_position IS NULL")
        // The last row deleted: only a head recorded earlier shows it.
        let head = try #require(ok.out.split(separator: "\n").first { $0.hasPrefix("head: ") }).dropFirst(6).split(separator: " ").first.map(String.init)
        #expect(try harness.meterlake(["audit", "verify"]).status == 0)
        let truncated = try harness.meterlake(["audit", "verify", "--head", try #require(head)])
        #expect(truncated.status == 1 && truncated.err.contains("the recorded head, position 5"), "\(truncated.err)")
        // Deleted in the middle.
        try connection.query("DELETE FROM ingestion_log WHERE chain_position = 3")
        let deleted = try harness.meterlake(["audit", "verify"])
        #expect(deleted.status == 1 && deleted.err.contains("position 3 is missing"), "\(deleted.err)")
    }

    @Test func concurrentValidatorsKeepOneChain() throws {
        let harness = try MaintenanceHarness()
        var keys: [String] = []
        for index in 0..<12 {
            keys.append(try harness.validator.land("c\(index).csv", Array(quarterHours(4, from: "\(day1)T\(String(format: "%02d", index)):00:00Z", device: "inv-\(index)").utf8)))
        }
        // Three more validator processes: four serve the twelve events at once.
        for _ in 0..<3 { try harness.validator.start() }
        for key in keys { harness.validator.api.enqueue(harness.validator.event([key])) }
        #expect(harness.validator.api.waitForOutcomes(12, timeout: 120).count == 12)
        let chain = try harness.query("SELECT count(*) AS n, min(chain_position) AS first, max(chain_position) AS last, count(DISTINCT previous_hash) AS links FROM ingestion_log")
        #expect(chain[0, "n"] == "12" && chain[0, "first"] == "1" && chain[0, "last"] == "12" && chain[0, "links"] == "12")
        let verified = try harness.meterlake(["audit", "verify"])
        #expect(verified.status == 0 && verified.out.contains("12 rows"), "\(verified.err)")
    }

    @Test func replayRederivesExactlyWhatChangedAndThenNothing() throws {
        let harness = try MaintenanceHarness()
        #expect(try harness.load("replay me.csv", quarterHours(96, from: "\(day1)T00:00:00Z") { Double($0) }) == ["validated"])
        _ = try harness.maintain()
        let connection = try harness.database.connect()
        let fileID = try harness.query("SELECT id FROM ingestion_log")[0, "id"]!
        // What an older transform might have written: three values off, one row lost, one row too many.
        try connection.query("UPDATE meter_reading SET energy_wh = energy_wh + 1000 WHERE \"timestamp\" IN ($1::timestamptz, $2::timestamptz, $3::timestamptz)",
                             ["\(day1)T01:00:00Z", "\(day1)T02:00:00Z", "\(day1)T03:00:00Z"])
        try connection.query("DELETE FROM meter_reading WHERE \"timestamp\" = $1::timestamptz", ["\(day1)T04:00:00Z"])
        try connection.query("""
            INSERT INTO meter_reading (meter_id, organization_id, "timestamp", reading_interval_seconds, energy_wh, quality, ingested_at, ingestion_id)
            SELECT meter_id, 42, $1::timestamptz, 900, 5, 'measured', now(), $2 FROM meter_reading LIMIT 1
            """, ["\(day2)T00:00:00Z", fileID])
        // The aggregates follow the tampered rows first (the extra row's hour and day included), as
        // they would have followed the older transform's load.
        try connection.query("""
            INSERT INTO aggregate_dirty (meter_id, first_hour, last_hour) SELECT DISTINCT meter_id, $1::timestamptz, $2::timestamptz FROM meter_reading
            """, ["\(day1)T00:00:00Z", "\(day2)T00:00:00Z"])
        _ = try harness.maintain()
        #expect(try harness.differences.isEmpty)
        // The harness lands files under raw/manual/42/2026-03-01/.
        let arguments = ["replay", "--source", "manual", "--org", "42", "--from", "2026-03-01", "--to", "2026-03-01"]
        let dry = try harness.meterlake(arguments + ["--dry-run"])
        #expect(dry.status == 0 && dry.out.contains("96 rows read, 1 added, 3 changed, 1 removed") && dry.out.contains("would change"), "\(dry.out)\(dry.err)")
        #expect(try harness.query("SELECT sum(energy_wh) AS e, count(*) AS n FROM meter_reading")[0, "n"] == "96", "a dry run writes nothing")
        let applied = try harness.meterlake(arguments)
        #expect(applied.status == 0 && applied.out.contains("1 added, 3 changed, 1 removed"), "\(applied.out)\(applied.err)")
        let after = try harness.query("SELECT sum(energy_wh) AS e, count(*) AS n FROM meter_reading")
        #expect(after[0, "n"] == "96" && after[0, "e"] == "4560")
        #expect(try harness.query("SELECT count(*) AS n FROM ingestion_log")[0, "n"] == "1", "the log is not touched")
        // The objects stay where they are; the aggregates follow on the next maintenance run.
        #expect(try harness.validator.store.list(prefix: "validated/").count == 1)
        _ = try harness.maintain()
        #expect(try harness.differences.isEmpty)
        let again = try harness.meterlake(arguments)
        #expect(again.status == 0 && again.out.contains("0 added, 0 changed, 0 removed"), "\(again.out)")
        #expect(try harness.query("SELECT count(*) AS n FROM meter_aggregate WHERE period = 'daily' AND period_start = $1::timestamptz", ["\(day2)T00:00:00Z"])[0, "n"] == "0",
                "the removed row's day has no aggregate left")

        // A later correction (another file) owns its rows: replaying the original leaves them.
        #expect(try harness.load("correction.csv", quarterHours(4, from: "\(day1)T10:00:00Z") { _ in 777 }) == ["validated"])
        let kept = try harness.meterlake(arguments)
        #expect(kept.status == 0 && kept.out.contains("0 changed") && kept.out.contains("4 kept (a later file owns them)"), "\(kept.out)")
        #expect(try harness.query("SELECT count(*) AS n FROM meter_reading WHERE energy_wh = 777")[0, "n"] == "4")
    }
}

func gunzip(_ bytes: [UInt8]) throws -> [UInt8] { try Inflater.gunzip(bytes, limit: 1 << 30) }

/// What the trust mutation run showed unguarded.
@Suite(.serialized) struct TrustEdgeTests {
    let day1 = previousMonth.first

    /// docs/trust.md's canonical facts, hashed by Python's hashlib independently (the snippet there).
    @Test func theChainsFactsHashAsDocumented() {
        let facts = IngestionChain.Facts(
            position: 1, previousHash: IngestionChain.genesis, bucket: "lake", key: "raw/manual/42/2026-03-01/a.csv", size: 1234,
            sha256: String(repeating: "ab", count: 32), status: "validated", rowsProcessed: 96, rowsLoaded: 95, rowsRejected: 1,
            destination: "validated/2026-03-02/manual/42/2026-03-01/a.csv", finishedAt: 1_772_409_600_123_456)
        #expect(IngestionChain.genesis == String(repeating: "0", count: 64))
        #expect(facts.hash == "b5991cdc146d6604943f21c9b09dc3505e78d5e0cf942ccc249db6c450129edd")
    }

    @Test func evidenceNamesTheChunkTheSourcesAndSmallEdits() throws {
        let harness = try MaintenanceHarness()
        #expect(try harness.load("long.csv", quarterHours(1100, from: "\(day1)T00:00:00Z") { _ in 1 }) == ["validated"])
        let meter = try harness.meterID
        // Not final yet: a pending range overlaps the period.
        let early = try harness.meterlake(["evidence", "create", "--org", "42", "--meters", meter, "--from", day1, "--to", "\(day1)T12:00:00Z"])
        #expect(early.status == 1 && early.err.contains("aggregates are not final"), "\(early.err)")
        _ = try harness.maintain()
        guard case .zoned(let start) = ISO8601.parse("\(day1)T00:00:00Z") else { return }
        let end = Timestamp.rfc3339(milliseconds: (start + 1100 * 900) * 1000)
        let created = try harness.meterlake(["evidence", "create", "--org", "42", "--meters", meter, "--from", day1, "--to", end])
        #expect(created.status == 0, "\(created.err)")
        let row = try harness.query("SELECT id, archive_path FROM default_event")
        let id = row[0, "id"]!, path = row[0, "archive_path"]!
        let scratch = try scratchFile()
        _ = try harness.validator.store.get(path, to: scratch)
        let document = try gunzip(Array(try Data(contentsOf: URL(fileURLWithPath: scratch))))
        // One byte in the second thousand readings: that chunk is named, the header is not.
        var tampered = document
        let at = document.count - 30
        tampered[at] = tampered[at] == UInt8(ascii: "3") ? UInt8(ascii: "4") : UInt8(ascii: "3")
        _ = try harness.validator.store.put(path, body: .bytes(try Deflater.gzip(tampered)), contentType: nil)
        let broken = try harness.meterlake(["evidence", "verify", id])
        #expect(broken.status == 1 && broken.err.contains("readings 1001–1100 (lines 1002–1101) changed") && !broken.err.contains("readings 1–1000")
                && !broken.err.contains("line 1 (the header) changed"), "\(broken.err)")
        _ = try harness.validator.store.put(path, body: .bytes(try Deflater.gzip(document)), contentType: nil)
        #expect(try harness.meterlake(["evidence", "verify", id]).status == 0)
        let connection = try harness.database.connect()
        // A small edit of a figure is still an edit.
        try connection.query("UPDATE default_event SET evidence = jsonb_set(evidence, '{actual_wh}', to_jsonb((evidence->>'actual_wh')::numeric + 1))")
        #expect(try harness.meterlake(["evidence", "verify", id]).err.contains("evidence.actual_wh is"))
        try connection.query("UPDATE default_event SET evidence = jsonb_set(evidence, '{actual_wh}', to_jsonb((evidence->>'actual_wh')::numeric - 1))")
        // The meters rewritten in the row and its evidence together: the archive's header says otherwise.
        try connection.query("UPDATE default_event SET meter_ids = meter_ids || 999::bigint, evidence = jsonb_set(evidence, '{meters}', evidence->'meters' || '999'::jsonb)")
        #expect(try harness.meterlake(["evidence", "verify", id]).err.contains("archive line 1: meters"))
        try connection.query("UPDATE default_event SET meter_ids = meter_ids[1:1], evidence = jsonb_set(evidence, '{meters}', jsonb_build_array(evidence->'meters'->0))")
        #expect(try harness.meterlake(["evidence", "verify", id]).status == 0)
        // A cited source file's row changed.
        try connection.query("UPDATE ingestion_log SET row_hash = repeat('f', 64)")
        #expect(try harness.meterlake(["evidence", "verify", id]).err.contains("source ingestion"))
    }

    @Test func aRebuiltChainFailsAgainstItsRecordedHead() throws {
        let harness = try MaintenanceHarness()
        for index in 0..<3 { #expect(try harness.load("h\(index).csv", quarterHours(4, from: "\(day1)T0\(index):00:00Z")) == ["validated"]) }
        let ok = try harness.meterlake(["audit", "verify"])
        let head = try #require(ok.out.split(separator: "\n").first { $0.hasPrefix("head: ") }).dropFirst(6).split(separator: " ").first.map(String.init)
        // Someone edits row 2 and re-hashes the whole chain, keeping its length.
        let connection = try harness.database.connect()
        try connection.query("UPDATE ingestion_log SET rows_loaded = 3 WHERE chain_position = 2")
        let rows = try connection.query("SELECT id, \(["bucket", "key", "size", "sha256", "status", "rows_processed", "rows_loaded", "rows_rejected", "destination"].joined(separator: ", ")), (extract(epoch FROM finished_at) * 1000000)::bigint AS f FROM ingestion_log ORDER BY chain_position")
        var previous = IngestionChain.genesis
        for row in 0..<rows.count {
            let facts = IngestionChain.Facts(position: Int64(row + 1), previousHash: previous, bucket: rows[row, "bucket"]!, key: rows[row, "key"]!,
                                             size: Int64(rows[row, "size"]!)!, sha256: rows[row, "sha256"]!, status: rows[row, "status"]!,
                                             rowsProcessed: Int64(rows[row, "rows_processed"]!)!, rowsLoaded: Int64(rows[row, "rows_loaded"]!)!,
                                             rowsRejected: Int64(rows[row, "rows_rejected"]!)!, destination: rows[row, "destination"], finishedAt: Int64(rows[row, "f"]!)!)
            try connection.query("UPDATE ingestion_log SET previous_hash = $2, row_hash = $3 WHERE id = $1", [rows[row, "id"]!, previous, facts.hash])
            previous = facts.hash
        }
        #expect(try harness.meterlake(["audit", "verify"]).status == 0, "a rebuilt chain holds on its own")
        let checked = try harness.meterlake(["audit", "verify", "--head", try #require(head)])
        #expect(checked.status == 1 && checked.err.contains("the recorded head, position 3"), "\(checked.err)")
    }

    @Test func concurrentQuarantinesKeepOneChain() throws {
        let harness = try MaintenanceHarness()
        var keys: [String] = []
        for index in 0..<10 {
            keys.append(try harness.validator.land("q\(index).csv", Array(quarterHours(4, from: "\(day1)T0\(index % 10):00:00Z", device: "q\(index)") { _ in -1 }.utf8)))
        }
        for _ in 0..<3 { try harness.validator.start() }
        for key in keys { harness.validator.api.enqueue(harness.validator.event([key])) }
        #expect(harness.validator.api.waitForOutcomes(10, timeout: 120).count == 10)
        let chain = try harness.query("SELECT count(*) AS n, max(chain_position) AS last, count(DISTINCT chain_position) AS positions FROM ingestion_log WHERE status = 'quarantined'")
        #expect(chain[0, "n"] == "10" && chain[0, "last"] == "10" && chain[0, "positions"] == "10")
        #expect(try harness.meterlake(["audit", "verify"]).status == 0)
    }

    @Test func replayHonoursTheRejectThresholdOfToday() throws {
        let harness = try MaintenanceHarness()
        // 1 bad row of 40: accepted under the default 5 %.
        #expect(try harness.load("one bad.csv", quarterHours(40, from: "\(day1)T00:00:00Z") { $0 == 7 ? -1 : 1 }) == ["validated"])
        var environment = try harness.validator.environment()
        environment["AWS_LAMBDA_RUNTIME_API"] = nil
        environment["METERLAKE_REJECT_THRESHOLD"] = "0"
        let process = try ChildProcess(try BuiltBinary.path("meterlake"), arguments: ["replay", "--source", "manual", "--org", "42", "--from", "2026-03-01", "--to", "2026-03-01"],
                                       environment: environment)
        #expect(try process.waitForExit(timeout: 60) == 0)
        #expect(process.standardOutput.contains("NOT replayed") && process.standardOutput.contains("above the reject threshold"), "\(process.standardOutput)")
    }
}
