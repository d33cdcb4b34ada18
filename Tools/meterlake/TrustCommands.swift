// meterlake evidence / audit / replay: what lets a client, an auditor or a court check the data later.
import Core
import Lake
import Postgres
import Store
import Trust
import Validation

enum TrustCommands {
    static func connection(_ environment: Environment) throws(Failure) -> PostgresConnection {
        do { return try DatabaseSettings(environment: environment).connect() } catch { throw .refused("\(error)") }
    }

    static func store(_ environment: Environment) throws(Failure) -> any ObjectStore {
        do { return try ObjectStores.make(environment: environment) } catch { throw .refused("the lake: \(error)") }
    }

    /// An instant: `2026-11-02T00:00:00Z`, or a day (`2026-11-02`, its 00:00 UTC).
    static func instant(_ text: String?, _ name: String) throws(Failure) -> Int64 {
        guard let text else { throw .usage("--\(name) is required") }
        guard case .zoned(let seconds) = ISO8601.parse(text.count == 10 ? text + "T00:00:00Z" : text) else {
            throw .usage("--\(name) needs a day (YYYY-MM-DD) or an instant with its zone (2026-11-02T06:00:00Z)")
        }
        return seconds
    }

    static func evidence(_ arguments: ArraySlice<String>, environment: Environment) throws(Failure) -> String {
        switch arguments.first {
        case "create":
            let parsed = try options(arguments.dropFirst(), allowed: ["org", "meters", "from", "to", "expected-wh"])
            guard parsed.positional.isEmpty, let org = parsed.named["org"].flatMap({ Int64($0) }), org > 0 else {
                throw .usage("evidence create needs --org N --meters ID[,ID…] --from T --to T [--expected-wh X]")
            }
            let meters = (parsed.named["meters"] ?? "").split(separator: ",").compactMap { Int64($0.trimmingPrefix(" ")) }
            guard !meters.isEmpty else { throw .usage("--meters needs meter ids, comma-separated") }
            var expected: Double?
            if let text = parsed.named["expected-wh"] {
                guard let value = Double(text), value.isFinite, value >= 0, value < 1e15 else { throw .usage("--expected-wh needs a number from 0 to 1e15") }
                expected = value
            }
            let request = EvidenceRequest(organizationID: org, meterIDs: meters, from: try instant(parsed.named["from"], "from"),
                                          to: try instant(parsed.named["to"], "to"), expectedWh: expected)
            let keeper = EvidenceKeeper(connection: try connection(environment), store: try store(environment),
                                        scratchDirectory: environment["METERLAKE_SCRATCH_DIR"] ?? "/tmp")
            do {
                let id = try keeper.create(request)
                let row = try keeper.connection.query("SELECT data_hash, archive_path, evidence->>'readings' AS n, evidence->>'actual_wh' AS actual, evidence->>'shortfall_wh' AS shortfall FROM default_event WHERE id = $1", [String(id)])
                return "evidence \(id): \(row[0, "n"] ?? "0") readings archived at \(row[0, "archive_path"] ?? "")\n"
                    + "actual \(row[0, "actual"] ?? "?") Wh" + (row[0, "shortfall"].map { ", shortfall \($0) Wh" } ?? "") + "\n"
                    + "data_hash \(row[0, "data_hash"] ?? "")"
            } catch let error as EvidenceError {
                throw .refused(error.message)
            } catch {
                throw .refused("\(error)")
            }
        case "verify":
            let rest = Array(arguments.dropFirst())
            guard rest.count == 1, let id = Int64(rest[0]), id > 0 else { throw .usage("evidence verify needs one evidence id") }
            let keeper = EvidenceKeeper(connection: try connection(environment), store: try store(environment),
                                        scratchDirectory: environment["METERLAKE_SCRATCH_DIR"] ?? "/tmp")
            do {
                let verdict = try keeper.verify(id: id)
                guard verdict.verified else {
                    throw Failure.refused("evidence \(id) does NOT verify:\n" + verdict.problems.map { "  " + $0 }.joined(separator: "\n"))
                }
                return "evidence \(id) verifies: the archive's \(verdict.readings) readings hash to the row's data_hash, agree with the row and the aggregates, and their source files hold their chain positions"
            } catch let failure as Failure {
                throw failure
            } catch {
                throw .refused("\(error)")
            }
        default:
            throw .usage("evidence needs 'create' or 'verify'")
        }
    }

    static func audit(_ arguments: ArraySlice<String>, environment: Environment) throws(Failure) -> String {
        guard arguments.first == "verify" else { throw .usage("audit needs 'verify'") }
        let parsed = try options(arguments.dropFirst(), allowed: ["head"])
        guard parsed.positional.isEmpty else { throw .usage("audit verify takes only --head POSITION:HASH") }
        var expected: (position: Int64, hash: String)?
        if let text = parsed.named["head"] {
            let parts = text.split(separator: ":", maxSplits: 1)
            guard parts.count == 2, let position = Int64(parts[0]), position > 0, parts[1].utf8.count == 64 else {
                throw .usage("--head needs POSITION:HASH as audit verify printed it")
            }
            expected = (position, String(parts[1]))
        }
        do {
            let verdict = try IngestionChain.verify(connection: try connection(environment), expectedHead: expected)
            if let problem = verdict.problem { throw Failure.refused("the ingestion log's chain is BROKEN: \(problem)") }
            let head = verdict.head.map { "\nhead: \($0.position):\($0.hash)  (keep it where the database's users cannot write; pass it as --head next time)" } ?? ""
            return "the ingestion log's chain holds: \(verdict.checked) rows, positions 1…\(verdict.checked), every hash recomputed" + head
        } catch let failure as Failure {
            throw failure
        } catch {
            throw .refused("\(error)")
        }
    }

    static func replay(_ arguments: ArraySlice<String>, environment: Environment) throws(Failure) -> String {
        let parsed = try options(arguments, allowed: ["source", "org", "from", "to", "dry-run"])
        let dryRun = parsed.positional == ["--dry-run"] || parsed.named["dry-run"] != nil
        guard let source = parsed.named["source"].flatMap(SourceSystem.init(rawValue:)), let org = parsed.named["org"].flatMap({ Int64($0) }), org > 0,
            let from = parsed.named["from"], let to = parsed.named["to"]
        else { throw .usage("replay needs --source S --org N --from DAY --to DAY [--dry-run]") }
        do {
            let replayer = Replayer(connection: try connection(environment), store: try store(environment),
                                    configuration: try ValidatorConfiguration(environment: environment))
            let files = try replayer.run(source: source, organizationID: org, from: from, to: to, dryRun: dryRun, now: WallClock.milliseconds() / 1000)
            var out = (dryRun ? "replay (dry run: nothing written)" : "replay") + ": \(files.count) validated files of \(source.rawValue), organisation \(org), landed \(from) to \(to)\n"
            var totals = ReplaySummary()
            for file in files {
                if let summary = file.summary {
                    var extra = ""
                    if summary.superseded > 0 { extra += ", \(summary.superseded) kept (a later file owns them)" }
                    if summary.rejected > 0 { extra += ", \(summary.rejected) rejected by today's checks" }
                    if summary.inDroppedMonths > 0 { extra += ", \(summary.inDroppedMonths) in dropped months (final, skipped)" }
                    out += "  \(file.key): \(summary.rowsRead) rows read, \(summary.added) added, \(summary.changed) changed, \(summary.removed) removed\(extra)\n"
                    totals.added += summary.added
                    totals.changed += summary.changed
                    totals.removed += summary.removed
                } else {
                    out += "  \(file.key): NOT replayed: \(file.problem ?? "")\n"
                }
            }
            out += "\(dryRun ? "would change" : "changed"): \(totals.added) added, \(totals.changed) changed, \(totals.removed) removed"
            if !dryRun, totals.added + totals.changed + totals.removed > 0 { out += "; the next maintenance run recomputes their aggregates" }
            return out
        } catch let failure as Failure {
            throw failure
        } catch {
            throw .refused("\(error)")
        }
    }
}
