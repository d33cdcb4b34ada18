// meterlake local: the main job on one machine, on embedded defaults.
import Core
import Lake
import LambdaRuntime
import Store
import Trust
import Validation
import FoundationEssentials
import Postgres

#if canImport(Glibc)
import Glibc
#endif

/// Drops sample files into a local lake's raw/, runs the built validator on their S3 event, and
/// prints what happened.
enum LocalRun {
    static func run(_ arguments: ArraySlice<String>, environment: Environment) throws(Failure) -> String {
        let parsed = try options(arguments, allowed: ["lake", "validator", "samples", "fetchers", "maintenance"])
        guard parsed.positional.isEmpty else { throw .usage("local takes only options") }
        let here = ExecutablePath.directory()
        let validator = parsed.named["validator"] ?? here + "/validator"
        let samples = parsed.named["samples"] ?? "docs/samples"
        guard access(validator, X_OK) == 0 else { throw .refused("no validator binary at \(validator): swift build --product validator") }
        guard access(samples + "/readings.csv", R_OK) == 0 else { throw .refused("no sample files in \(samples): run from the repository, or pass --samples") }
        let lake = parsed.named["lake"] ?? environment["METERLAKE_LAKE_DIR"] ?? makeTemporaryDirectory()

        do {
            let connection = try DatabaseSettings(environment: environment).connect()
            try MigrationRunner.migrate(connection)
            try connection.query("INSERT INTO organization (id, name) VALUES (42, 'Demo Solar GmbH') ON CONFLICT (id) DO NOTHING")
            let store = try LocalObjectStore(directory: lake)
            let today = Timestamp.day(epochSeconds: WallClock.milliseconds() / 1000)
            let prefix = "raw/manual/42/\(today)/"
            var files: [(key: String, bytes: [UInt8])] = []
            func sample(_ name: String) throws(Failure) -> [UInt8] {
                guard let bytes = FileIO.readAll(samples + "/" + name) else { throw Failure.refused("cannot read \(samples)/\(name)") }
                return bytes
            }
            for name in ["readings.csv", "readings.ndjson", "readings.json"] {
                files.append((prefix + "good " + name, try sample(name)))
            }
            // A Snowflake unload lands under its own source.
            files.append(("raw/snowflake/42/\(today)/data_0_0_0.snappy.parquet", try sample("readings.parquet")))
            files.append((prefix + "partly bad.csv", generated(rows: 40, bad: [17])))
            files.append((prefix + "mostly bad.csv", generated(rows: 20, bad: [2, 5, 11, 12, 19])))
            files.append((prefix + "broken.csv", Array("external_site_id,external_device_id,timestamp,reading_interval_seconds,energy_wh\nsite-1,inv-1,\"2026-03-01T06:00:00Z,900,12\n".utf8)))
            var keys: [String] = []
            for (key, bytes) in files {
                _ = try store.put(key, body: .bytes(bytes), contentType: nil)
                keys.append(key)
            }
            setenv("METERLAKE_LAKE_DIR", lake, 1)
            setenv("AWS_LAMBDA_LOG_LEVEL", "WARN", 1)
            unsetenv("AWS_LAMBDA_RUNTIME_API")

            // Vendor data: the built fetchers against the vendor clouds the environment names (the
            // project's fake ones under Tools/local.sh), before the validator sees their files.
            var fetched = ""
            if environment["SOLAREDGE_API_BASE_URL"] != nil || environment["GOODWE_API_BASE_URL"] != nil {
                let run = try VendorDemo.run(connection: connection, environment: environment, directory: parsed.named["fetchers"] ?? here)
                keys += run.keys
                fetched = run.summary
            }

            // The S3 notification S3 would send (keys form-URL-encoded), run through the real binary.
            let records = keys.map { key in
                #"{"eventName":"ObjectCreated:Put","s3":{"bucket":{"name":"local"},"object":{"key":"\#(SigV4Signer.encodePath(key).replacing("%20", with: "+"))"}}}"#
            }
            let scratch = makeTemporaryDirectory()
            let event = scratch + "/event.json"
            guard FileIO.write(Array(#"{"Records":[\#(records.joined(separator: ","))]}"#.utf8), to: event) else {
                throw Failure.refused("cannot write \(event)")
            }
            let status = try Spawn.run(validator, ["--event", event], standardOutput: scratch + "/response.json",
                                       standardError: scratch + "/log.txt")
            guard status == 0, let body = FileIO.readAll(scratch + "/response.json"),
                let response = try? JSONDecoder().decode(ValidatorResponse.self, from: Data(body))
            else {
                throw Failure.refused("the validator failed:\n" + String(decoding: FileIO.readAll(scratch + "/response.json") ?? [], as: UTF8.self)
                    + String(decoding: FileIO.readAll(scratch + "/log.txt") ?? [], as: UTF8.self))
            }
            var out = fetched + (try summary(response, lake: lake, store: store, connection: connection, validator: validator))
            // The maintenance function's schedule, once: the aggregates of what was loaded.
            let maintenance = parsed.named["maintenance"] ?? here + "/maintenance"
            if access(maintenance, X_OK) == 0 {
                guard FileIO.write(Array(#"{"detail-type":"Scheduled Event","source":"aws.events","detail":{}}"#.utf8), to: scratch + "/schedule.json") else {
                    throw Failure.refused("cannot write \(scratch)/schedule.json")
                }
                let ran = try Spawn.run(maintenance, ["--event", scratch + "/schedule.json"], standardOutput: scratch + "/maintenance.json",
                                        standardError: scratch + "/maintenance.txt")
                guard ran == 0, let body = FileIO.readAll(scratch + "/maintenance.json"), let answer = try? JSONParser.parse(body) else {
                    throw Failure.refused("the maintenance function failed:\n" + String(decoding: FileIO.readAll(scratch + "/maintenance.txt") ?? [], as: UTF8.self))
                }
                out += "\n\n" + (try AggregateCommands.summary(answer, maintenance: maintenance, connection: connection))
                out += "\n\n" + (try trustDemo(connection: connection, store: store))
            }
            return out
        } catch let failure as Failure {
            throw failure
        } catch {
            throw .refused("\(error)")
        }
    }

    /// The trust commands on what was just loaded: evidence for the busiest meter's fullest UTC
    /// day, its verification, the ingestion log's chain, and a replay dry run.
    static func trustDemo(connection: PostgresConnection, store: LocalObjectStore) throws -> String {
        var out = ""
        let busiest = try connection.query("""
            SELECT meter_id, (extract(epoch FROM date_trunc('day', "timestamp", 'UTC')))::bigint AS day, count(*) AS n
            FROM meter_reading GROUP BY 1, 2 ORDER BY 3 DESC, 1 LIMIT 1
            """)
        if busiest.count == 1, let meter = Int64(busiest[0, "meter_id"]!), let day = Int64(busiest[0, "day"]!) {
            let keeper = EvidenceKeeper(connection: connection, store: store)
            let id = try keeper.create(EvidenceRequest(organizationID: 42, meterIDs: [meter], from: day, to: day + 86_400, expectedWh: 10_000))
            let row = try connection.query("SELECT archive_path, data_hash, evidence->>'readings' AS n, evidence->>'actual_wh' AS actual, evidence->>'shortfall_wh' AS shortfall FROM default_event WHERE id = $1", [String(id)])
            out += "meterlake evidence create --org 42 --meters \(meter) --from \(Timestamp.day(epochSeconds: day)) --to \(Timestamp.day(epochSeconds: day + 86_400)) --expected-wh 10000\n"
            out += "  evidence \(id): \(row[0, "n"] ?? "0") readings archived at \(row[0, "archive_path"] ?? ""), actual \(row[0, "actual"] ?? "?") Wh, shortfall \(row[0, "shortfall"] ?? "?") Wh\n"
            let verdict = try keeper.verify(id: id)
            out += "meterlake evidence verify \(id)\n  " + (verdict.verified ? "verifies: \(verdict.readings) readings hash to data_hash \(row[0, "data_hash"]!.prefix(16))…" : "DOES NOT VERIFY: \(verdict.problems.joined(separator: "; "))") + "\n"
        }
        let chain = try IngestionChain.verify(connection: connection)
        out += "meterlake audit verify\n  " + (chain.problem.map { "BROKEN: \($0)" } ?? "the ingestion log's chain holds: \(chain.checked) rows, head \(chain.head.map { "\($0.position):\($0.hash.prefix(16))…" } ?? "none")") + "\n"
        return out + "(and meterlake replay --source manual --org 42 --from DAY --to DAY --dry-run re-derives validated files; docs/trust.md)"
    }

    static func summary(_ response: ValidatorResponse, lake: String, store: LocalObjectStore, connection: PostgresConnection, validator: String) throws -> String {
        var out = "meterlake local: ran \(validator) on one S3 event with \(response.files.count) files\n"
        out += "lake: \(lake)\n\n"
        out += pad("file", 41) + pad("status", 13) + pad("rows", 6) + pad("loaded", 8) + pad("rejected", 10) + "destination\n"
        for file in response.files {
            out += pad(shorten(String(file.key.split(separator: "/").last ?? ""), 40), 41) + pad(file.status.rawValue, 13) + pad(String(file.rowsProcessed), 6)
                + pad(String(file.rowsLoaded), 8) + pad(String(file.rowsRejected), 10) + (file.destination ?? "-") + "\n"
        }
        for file in response.files where file.status == .quarantined {
            out += "\nquarantined \(file.key.split(separator: "/").last ?? ""): \(file.reason ?? "")\n"
            let reportKey = (file.destination ?? "") + ".report.json"
            let reportPath = makeTemporaryDirectory() + "/report.json"
            if (try? store.get(reportKey, to: reportPath)) != nil, let bytes = FileIO.readAll(reportPath),
                let report = try? JSONParser.parse(bytes), case .array(let violations)? = report["violations"] {
                for violation in violations.prefix(5) {
                    func field(_ name: String) -> String {
                        switch violation[name] { case .string(let text)?: text; case let value?: value.serialized; case nil: "" }
                    }
                    out += "  line \(field("line")), column \(field("column")), value \"\(field("value"))\": \(field("message")) [\(field("code"))]\n"
                }
                out += "  full report: \(lake)/\(reportKey)\n"
            }
        }
        let counts = try connection.query("""
            SELECT (SELECT count(*) FROM meter_reading) AS readings, (SELECT count(*) FROM meter) AS meters,
                   (SELECT string_agg(status || ' ' || n, ', ' ORDER BY status) FROM (SELECT status, count(*) AS n FROM ingestion_log GROUP BY status) s) AS log
            """)
        out += "\ndatabase: \(counts[0, "readings"] ?? "0") readings, \(counts[0, "meters"] ?? "0") meters; ingestion_log: \(counts[0, "log"] ?? "empty")"
        return out
    }

    /// 15-minute readings of one inverter; the `bad` rows carry a negative energy.
    static func generated(rows: Int, bad: Set<Int>) -> [UInt8] {
        var text = "external_site_id,external_device_id,timestamp,reading_interval_seconds,energy_wh,power_w\n"
        let start = WallClock.milliseconds() / 1000 / 86_400 * 86_400 - 86_400
        for index in 0..<rows {
            let energy = bad.contains(index) ? -12.5 : Double(index * 25) + 0.5
            text += "site-1,inv-\(rows),\(Timestamp.rfc3339(milliseconds: (start + Int64(index) * 900) * 1000)),900,\(energy),\(max(0, energy) * 4)\n"
        }
        return Array(text.utf8)
    }

    /// `text`, or its start and end around "…" when longer than `width`.
    static func shorten(_ text: String, _ width: Int) -> String {
        text.count <= width ? text : String(text.prefix(width / 2 - 1)) + "…" + String(text.suffix(width - width / 2))
    }

    static func pad(_ text: String, _ width: Int) -> String { text + String(repeating: " ", count: max(1, width - text.count)) }

    static func makeTemporaryDirectory() -> String {
        var template = Array("/tmp/meterlake-local.XXXXXX".utf8CString)
        guard let made = mkdtemp(&template) else { return "/tmp" }
        return String(cString: made)
    }
}
