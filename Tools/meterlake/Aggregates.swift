// meterlake aggregates: check the aggregates against a recomputation.
import Core
import Postgres
import Store

enum AggregateCommands {
    static func run(_ arguments: ArraySlice<String>, environment: Environment) throws(Failure) -> String {
        guard arguments.first == "verify" else { throw .usage("aggregates needs 'verify'") }
        let parsed = try options(arguments.dropFirst(), allowed: ["org", "from", "to"])
        guard parsed.positional.isEmpty else { throw .usage("aggregates verify takes only --org, --from and --to") }
        var organizationID: Int64?
        if let org = parsed.named["org"] {
            guard let id = Int64(org), id > 0 else { throw .usage("--org needs a positive integer") }
            organizationID = id
        }
        func instant(_ name: String, default fallback: Int64) throws(Failure) -> Int64 {
            guard let text = parsed.named[name] else { return fallback }
            switch ISO8601.parse(text.count == 10 ? text + "T00:00:00Z" : text) {
            case .zoned(let seconds): return seconds
            default: throw .usage("--\(name) needs a date (YYYY-MM-DD) or an instant with its zone (2026-03-01T00:00:00Z)")
            }
        }
        // By default: every period from 2000 to the end of next year.
        let from = try instant("from", default: 946_684_800)
        let to = try instant("to", default: WallClock.milliseconds() / 1000 + 2 * 366 * 86_400)
        guard from < to else { throw .usage("--from must be before --to") }
        do {
            let connection = try DatabaseSettings(environment: environment).connect()
            let differences = try Aggregates(connection: connection).verify(organizationID: organizationID, from: from, to: to)
            let checked = try connection.query("""
                SELECT count(*) FILTER (WHERE period = 'hourly') AS hourly, count(*) FILTER (WHERE period = 'daily') AS daily,
                       count(*) FILTER (WHERE period = 'monthly') AS monthly
                FROM meter_aggregate a JOIN meter m ON m.id = a.meter_id
                WHERE a.period_start >= to_timestamp($1) AND a.period_start < to_timestamp($2) AND ($3::bigint IS NULL OR m.organization_id = $3::bigint)
                """, [String(from), String(to), organizationID.map(String.init)])
            let rows = "\(checked[0, "hourly"] ?? "0") hourly, \(checked[0, "daily"] ?? "0") daily and \(checked[0, "monthly"] ?? "0") monthly rows"
            guard differences.isEmpty else {
                throw Failure.refused("\(differences.count)\(differences.count >= 1000 ? "+" : "") differences in \(rows):\n"
                    + differences.prefix(50).map { "  \($0)" }.joined(separator: "\n"))
            }
            return "aggregates verify: 0 differences (\(rows) recomputed from the readings)"
        } catch let failure as Failure {
            throw failure
        } catch {
            throw .refused("\(error)")
        }
    }

    /// What `meterlake local` prints after the maintenance function ran.
    static func summary(_ answer: JSONValue, maintenance: String, connection: PostgresConnection) throws -> String {
        let aggregates = answer["aggregates"]
        func number(_ name: String) -> String { aggregates?[name]?.text ?? "0" }
        var out = "ran \(maintenance) on a scheduled event: \(number("ranges")) dirty ranges → \(number("hours")) hourly, "
            + "\(number("days")) daily, \(number("months")) monthly aggregates\n"
        let rows = try connection.query("""
            SELECT m.external_site_id || '/' || m.external_device_id AS meter, to_char(a.period_start AT TIME ZONE 'UTC', 'YYYY-MM-DD') AS day,
                   round(a.energy_wh::numeric, 1) AS energy, a.reading_count, a.readings_expected, round(a.completeness_pct::numeric, 1) AS completeness,
                   a.hours_available, round(a.hours_expected::numeric, 1) AS hours_expected, round(a.availability_pct::numeric, 1) AS availability
            FROM meter_aggregate a JOIN meter m ON m.id = a.meter_id WHERE a.period = 'daily'
            ORDER BY a.period_start DESC, meter LIMIT 8
            """)
        out += LocalRun.pad("meter", 22) + LocalRun.pad("day (UTC)", 12) + LocalRun.pad("energy Wh", 11) + LocalRun.pad("readings", 12)
            + LocalRun.pad("complete %", 12) + LocalRun.pad("hours avail/exp", 17) + "availability %\n"
        for row in 0..<rows.count {
            out += LocalRun.pad(LocalRun.shorten(rows[row, "meter"] ?? "", 21), 22) + LocalRun.pad(rows[row, "day"] ?? "", 12)
                + LocalRun.pad(rows[row, "energy"] ?? "-", 11) + LocalRun.pad("\(rows[row, "reading_count"] ?? "0")/\(rows[row, "readings_expected"] ?? "0")", 12)
                + LocalRun.pad(rows[row, "completeness"] ?? "-", 12) + LocalRun.pad("\(rows[row, "hours_available"] ?? "0")/\(rows[row, "hours_expected"] ?? "0")", 17)
                + (rows[row, "availability"] ?? "-") + "\n"
        }
        let differences = try Aggregates(connection: connection).verify(organizationID: nil, from: 946_684_800, to: WallClock.milliseconds() / 1000 + 2 * 366 * 86_400)
        out += differences.isEmpty
            ? "meterlake aggregates verify: 0 differences from a recomputation out of the readings"
            : "meterlake aggregates verify: \(differences.count) DIFFERENCES, first: \(differences[0])"
        return out
    }
}
