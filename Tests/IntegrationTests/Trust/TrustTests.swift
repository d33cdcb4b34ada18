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

func gunzip(_ bytes: [UInt8]) throws -> [UInt8] {
    let inflater = try Inflater()
    inflater.feed(bytes)
    var output: [UInt8] = []
    while true {
        let piece = try inflater.drain(maximum: 1 << 20)
        if piece.isEmpty { break }
        output += piece
    }
    return output
}
