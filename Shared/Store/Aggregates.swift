import Core
import Postgres

/// What one aggregation pass did.
public struct AggregationPass: Sendable, Equatable {
    public var rangesClaimed = 0
    public var meters = 0
    public var hours = 0
    public var days = 0
    public var months = 0
    /// Hours skipped because their month's readings were dropped (their aggregates are final).
    public var hoursInDroppedMonths = 0

    public init() {}
}

/// The aggregates in `meter_aggregate`, kept incrementally (docs/aggregates.md has the
/// definitions): hourly from `meter_reading`, daily and monthly from the hourly rows, so they stay
/// right after the readings are dropped. Every period boundary names its zone (UTC): through
/// Supabase's transaction pooler a session `SET TIME ZONE` does not reach the next transaction.
public struct Aggregates {
    public let connection: PostgresConnection

    public init(connection: PostgresConnection) { self.connection = connection }

    /// The hourly rows as readings define them, for the meters and hour ranges of `source` (a
    /// relation with `meter_id`, `first_hour`, `last_hour`, no overlaps per meter).
    static func hourlyFromReadings(_ source: String, droppedMonths: Bool = false) -> String {
        """
        SELECT r.meter_id, date_trunc('hour', r."timestamp", 'UTC') AS period_start,
               sum(r.energy_wh) FILTER (WHERE r.quality <> 'missing') AS energy_wh,
               greatest(1, 3600 / min(r.reading_interval_seconds))::integer AS readings_expected,
               (count(*) FILTER (WHERE r.quality <> 'missing' AND r.energy_wh IS NOT NULL))::integer AS reading_count
        FROM \(source) c JOIN meter_reading r
          ON r.meter_id = c.meter_id AND r."timestamp" >= c.first_hour AND r."timestamp" < c.last_hour + interval '1 hour'
        WHERE date_trunc('month', r."timestamp", 'UTC') \(droppedMonths ? "IN" : "NOT IN") (SELECT month_start FROM partition_drop)
        GROUP BY r.meter_id, date_trunc('hour', r."timestamp", 'UTC')
        """
    }

    /// The daily or monthly rows as the hourly rows define them, for the periods in `source`
    /// (a relation with `meter_id`, `period_start`). Expected hours: the period's hours from the
    /// meter's first hourly row, up to the last hour that has ended (or holds data).
    static func rollup(_ period: String, _ source: String) -> String {
        let unit = period == "daily" ? "day" : "month"
        return """
            SELECT p.meter_id, p.period_start, p.period_start + interval '1 \(unit)' AS period_end,
                   sum(a.energy_wh) AS energy_wh, sum(a.readings_expected)::integer AS readings_expected,
                   sum(a.reading_count)::integer AS reading_count, sum(a.hours_available) AS hours_available,
                   greatest(0, extract(epoch FROM
                       least(p.period_start + interval '1 \(unit)', greatest(date_trunc('hour', now(), 'UTC'), max(a.period_end)))
                       - greatest(p.period_start, min(f.first_hour))) / 3600) AS hours_expected
            FROM \(source) p
            JOIN meter_aggregate a ON a.meter_id = p.meter_id AND a.period = 'hourly'
              AND a.period_start >= p.period_start AND a.period_start < p.period_start + interval '1 \(unit)'
            JOIN LATERAL (SELECT min(period_start) AS first_hour FROM meter_aggregate
                          WHERE meter_id = p.meter_id AND period = 'hourly') f ON true
            GROUP BY p.meter_id, p.period_start
            """
    }

    /// Writes the hourly rows the readings of `source` define, returning `meter_id, period_start`
    /// of each row written. In kept months a row is replaced; in dropped months (final) only an
    /// hour without any row is filled.
    static func writeHourly(from source: String, droppedMonths: Bool) -> String {
        """
        INSERT INTO meter_aggregate (meter_id, period, period_start, period_end, energy_wh, readings_expected, reading_count,
                                     completeness_pct, hours_expected, hours_available, availability_pct, computed_at)
        SELECT meter_id, 'hourly', period_start, period_start + interval '1 hour', energy_wh, readings_expected, reading_count,
               least(100, 100.0 * reading_count / readings_expected), 1,
               CASE WHEN reading_count >= readings_expected THEN 1 ELSE 0 END,
               CASE WHEN reading_count >= readings_expected THEN 100 ELSE 0 END, now()
        FROM (\(hourlyFromReadings(source, droppedMonths: droppedMonths))) hourly
        \(droppedMonths ? "ON CONFLICT (meter_id, period, period_start) DO NOTHING" : upsert)
        RETURNING meter_id, period_start
        """
    }

    private static let upsert = """
        ON CONFLICT (meter_id, period, period_start) DO UPDATE SET
            period_end = EXCLUDED.period_end, energy_wh = EXCLUDED.energy_wh, readings_expected = EXCLUDED.readings_expected,
            reading_count = EXCLUDED.reading_count, completeness_pct = EXCLUDED.completeness_pct, hours_expected = EXCLUDED.hours_expected,
            hours_available = EXCLUDED.hours_available, availability_pct = EXCLUDED.availability_pct, computed_at = now()
        """

    /// Claims up to `maximumRanges` dirty ranges (rows other runs hold are skipped), recomputes
    /// their hours, days and months, and deletes the claimed ranges, all in one transaction: a
    /// run that fails leaves its ranges for the next. The meters are locked in order (an advisory
    /// lock each), so two runs never roll up the same meter at once.
    public func pass(maximumRanges: Int = 5000) throws -> AggregationPass {
        try connection.transaction {
            // Interval arithmetic on timestamptz follows the session zone: UTC here, whatever the
            // pooler's server connection was left with.
            try connection.query("SET LOCAL TIME ZONE 'UTC'")
            var pass = AggregationPass()
            try connection.query("""
                CREATE TEMPORARY TABLE claimed (meter_id bigint, first_hour timestamptz, last_hour timestamptz) ON COMMIT DROP
                """)
            pass.rangesClaimed = try connection.query("""
                WITH taken AS (
                    DELETE FROM aggregate_dirty WHERE id IN (
                        SELECT id FROM aggregate_dirty ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED)
                    RETURNING meter_id, first_hour, last_hour)
                INSERT INTO claimed SELECT * FROM taken RETURNING 1
                """, [String(maximumRanges)]).count
            guard pass.rangesClaimed > 0 else { return pass }
            // One hull per meter: overlapping ranges must not count a reading twice.
            try connection.query("""
                CREATE TEMPORARY TABLE hulls ON COMMIT DROP AS
                SELECT meter_id, min(first_hour) AS first_hour, max(last_hour) AS last_hour FROM claimed GROUP BY meter_id
                """)
            pass.meters = try connection.query("""
                SELECT pg_advisory_xact_lock(hashtextextended('aggregate:' || meter_id, 0)) FROM (SELECT meter_id FROM hulls ORDER BY meter_id) m
                """).count
            // The meters' first hours before this pass: a backfill that moves one earlier changes
            // the expected hours of the day and month that held it.
            try connection.query("""
                CREATE TEMPORARY TABLE touched ON COMMIT DROP AS
                SELECT h.meter_id, min(a.period_start) AS period_start FROM hulls h
                JOIN meter_aggregate a ON a.meter_id = h.meter_id AND a.period = 'hourly' GROUP BY h.meter_id
                """)
            // Hours whose readings are gone (a replay removed them) lose their row; their days roll up again.
            try connection.query("""
                WITH gone AS (
                    DELETE FROM meter_aggregate a USING hulls h
                    WHERE a.meter_id = h.meter_id AND a.period = 'hourly' AND a.period_start >= h.first_hour AND a.period_start <= h.last_hour
                      AND date_trunc('month', a.period_start, 'UTC') NOT IN (SELECT month_start FROM partition_drop)
                      AND NOT EXISTS (SELECT 1 FROM meter_reading r WHERE r.meter_id = a.meter_id
                                      AND r."timestamp" >= a.period_start AND r."timestamp" < a.period_start + interval '1 hour')
                    RETURNING a.meter_id, a.period_start)
                INSERT INTO touched SELECT meter_id, period_start FROM gone
                """)
            pass.hours = try connection.query("""
                WITH written AS (\(Self.writeHourly(from: "hulls", droppedMonths: false)))
                INSERT INTO touched SELECT meter_id, period_start FROM written RETURNING 1
                """).count
            // Months already dropped: their aggregates are final; late readings only fill hours
            // that have no row at all (a meter first seen now).
            let late = try connection.query("""
                WITH written AS (\(Self.writeHourly(from: "hulls", droppedMonths: true))),
                 added AS (INSERT INTO touched SELECT meter_id, period_start FROM written RETURNING 1)
                SELECT (SELECT count(*) FROM (\(Self.hourlyFromReadings("hulls", droppedMonths: true))) h) AS hours,
                       (SELECT count(*) FROM added) AS added
                """)
            pass.hoursInDroppedMonths = Int(late[0, "hours"]!) ?? 0
            pass.hours += Int(late[0, "added"]!) ?? 0
            // Days and months of the hours written (not of the whole hull: a range years wide
            // with two readings rolls up two days).
            try connection.query("""
                CREATE TEMPORARY TABLE days ON COMMIT DROP AS
                SELECT DISTINCT meter_id, date_trunc('day', period_start, 'UTC') AS period_start FROM touched
                """)
            try connection.query("""
                CREATE TEMPORARY TABLE months ON COMMIT DROP AS
                SELECT DISTINCT meter_id, date_trunc('month', period_start, 'UTC') AS period_start FROM days
                """)
            pass.days = try rollUp("daily", from: "days")
            pass.months = try rollUp("monthly", from: "months")
            // A day or month left without any hourly row has no row either.
            for (period, source, unit) in [("daily", "days", "day"), ("monthly", "months", "month")] {
                try connection.query("""
                    DELETE FROM meter_aggregate a USING \(source) p
                    WHERE a.period = '\(period)' AND a.meter_id = p.meter_id AND a.period_start = p.period_start
                      AND NOT EXISTS (SELECT 1 FROM meter_aggregate h WHERE h.meter_id = p.meter_id AND h.period = 'hourly'
                                      AND h.period_start >= p.period_start AND h.period_start < p.period_start + interval '1 \(unit)')
                    """)
            }
            return pass
        }
    }

    /// Recomputes the daily or monthly rows of the periods in `source` from the hourly rows.
    private func rollUp(_ period: String, from source: String) throws -> Int {
        try connection.query("""
            INSERT INTO meter_aggregate (meter_id, period, period_start, period_end, energy_wh, readings_expected, reading_count,
                                         completeness_pct, hours_expected, hours_available, availability_pct, computed_at)
            SELECT meter_id, '\(period)', period_start, period_end, energy_wh, readings_expected, reading_count,
                   CASE WHEN readings_expected > 0 THEN least(100, 100.0 * reading_count / readings_expected) END,
                   hours_expected, hours_available,
                   CASE WHEN hours_expected > 0 THEN least(100, 100.0 * hours_available / hours_expected) END, now()
            FROM (\(Self.rollup(period, source))) rolled
            \(Self.upsert)
            RETURNING 1
            """).count
    }

    /// Recomputes daily and monthly rows computed before their period ended (their expected hours
    /// then stopped at the time of computing): a meter that went silent still gets its whole day
    /// counted against it. Returns the rows recomputed.
    public func finalize(maximumRows: Int = 20_000) throws -> Int {
        try connection.transaction {
            try connection.query("SET LOCAL TIME ZONE 'UTC'")
            for period in ["daily", "monthly"] {
                try connection.query("""
                    CREATE TEMPORARY TABLE unfinished_\(period) ON COMMIT DROP AS
                    SELECT meter_id, period_start FROM meter_aggregate
                    WHERE period = $1 AND computed_at < period_end AND period_end <= date_trunc('hour', now(), 'UTC')
                    ORDER BY meter_id LIMIT $2
                    """, [period, String(maximumRows)])
            }
            // Every meter of both periods locked once, in order: a pass locks in the same order.
            try connection.query("""
                SELECT pg_advisory_xact_lock(hashtextextended('aggregate:' || meter_id, 0))
                FROM (SELECT meter_id FROM unfinished_daily UNION SELECT meter_id FROM unfinished_monthly ORDER BY meter_id) m
                """)
            return try rollUp("daily", from: "unfinished_daily") + rollUp("monthly", from: "unfinished_monthly")
        }
    }

    /// Dirty ranges waiting, and the age of the oldest (seconds): the maintenance lag.
    public func backlog() throws -> (ranges: Int, oldestSeconds: Int64?) {
        let rows = try connection.query("""
            SELECT count(*) AS n, extract(epoch FROM now() - min(marked_at))::bigint AS oldest FROM aggregate_dirty
            """)
        return (Int(rows[0, "n"]!) ?? 0, rows[0, "oldest"].flatMap { Int64($0) })
    }
}

/// One difference between a stored aggregate and a recomputation.
public struct AggregateDifference: Sendable, Equatable, CustomStringConvertible {
    public var meterID: Int64
    public var period: String
    /// RFC 3339, UTC.
    public var periodStart: String
    public var field: String
    public var stored: String
    public var recomputed: String

    public var description: String {
        "meter \(meterID) \(period) \(periodStart): \(field) stored \(stored), recomputed \(recomputed)"
    }
}

extension Aggregates {
    /// Recomputes the aggregates of `organizationID` (all when nil) for periods starting in
    /// `[from, to)` (Unix seconds) and returns every difference: hourly from the readings, daily
    /// and monthly from the readings where they are still kept (else from the stored hourly rows).
    /// A period the readings define but no row holds (or the reverse) is a difference too.
    /// `from` and `to` are widened to whole UTC months, so every period compared is whole.
    public func verify(organizationID: Int64?, from requestedFrom: Int64, to requestedTo: Int64, limit: Int = 1000) throws -> [AggregateDifference] {
        let from = PartitionMaintenance.start(monthIndex: PartitionMaintenance.monthIndex(of: requestedFrom))
        let to = PartitionMaintenance.start(monthIndex: PartitionMaintenance.monthIndex(of: requestedTo - 1) + 1)
        return try connection.transaction {
            try connection.query("SET LOCAL TIME ZONE 'UTC'")
            try connection.query("""
                CREATE TEMPORARY TABLE verify_ranges ON COMMIT DROP AS
                SELECT id AS meter_id, to_timestamp($2) AS first_hour, to_timestamp($3) - interval '1 hour' AS last_hour
                FROM meter WHERE $1::bigint IS NULL OR organization_id = $1::bigint
                """, [organizationID.map(String.init), String(from), String(to)])
            try connection.query("""
                CREATE TEMPORARY TABLE verify_hourly ON COMMIT DROP AS
                SELECT *, least(100, 100.0 * reading_count / readings_expected) AS completeness_pct,
                       CASE WHEN reading_count >= readings_expected THEN 1 ELSE 0 END AS hours_available
                FROM (\(Self.hourlyFromReadings("verify_ranges"))) h
                """)
            var differences = try compare("hourly", recomputed: "verify_hourly", from: from, to: to, organizationID: organizationID,
                                          fields: ["energy_wh", "readings_expected", "reading_count", "completeness_pct", "hours_available"], limit: limit)
            // Daily and monthly: from the recomputed hourly rows where readings are kept, from the
            // stored hourly rows for months already dropped.
            for (period, unit) in [("daily", "day"), ("monthly", "month")] where differences.count < limit {
                try connection.query("""
                    CREATE TEMPORARY TABLE verify_\(period) ON COMMIT DROP AS
                    SELECT meter_id, date_trunc('\(unit)', period_start, 'UTC') AS period_start, sum(energy_wh) AS energy_wh,
                           sum(readings_expected)::integer AS readings_expected, sum(reading_count)::integer AS reading_count,
                           sum(hours_available) AS hours_available
                    FROM (SELECT meter_id, period_start, energy_wh, readings_expected, reading_count, hours_available FROM verify_hourly
                          UNION ALL
                          SELECT a.meter_id, a.period_start, a.energy_wh, a.readings_expected, a.reading_count, a.hours_available
                          FROM meter_aggregate a JOIN verify_ranges v ON v.meter_id = a.meter_id
                          WHERE a.period = 'hourly' AND a.period_start >= to_timestamp($1) AND a.period_start < to_timestamp($2)
                            AND date_trunc('month', a.period_start, 'UTC') IN (SELECT month_start FROM partition_drop)) hours
                    GROUP BY meter_id, date_trunc('\(unit)', period_start, 'UTC')
                    """, [String(from), String(to)])
                differences += try compare(period, recomputed: "verify_\(period)", from: from, to: to, organizationID: organizationID,
                                           fields: ["energy_wh", "readings_expected", "reading_count", "hours_available"],
                                           limit: limit - differences.count)
            }
            // The rollups' own figures (expected hours, availability, completeness) of the finished
            // daily and monthly rows, recomputed from the stored hourly rows.
            for period in ["daily", "monthly"] where differences.count < limit {
                try connection.query("""
                    CREATE TEMPORARY TABLE verify_\(period)_keys ON COMMIT DROP AS
                    SELECT a.meter_id, a.period_start FROM meter_aggregate a JOIN verify_ranges v ON v.meter_id = a.meter_id
                    WHERE a.period = $1 AND a.period_start >= to_timestamp($2) AND a.period_start < to_timestamp($3) AND a.computed_at >= a.period_end
                    """, [period, String(from), String(to)])
                try connection.query("""
                    CREATE TEMPORARY TABLE verify_\(period)_rolled ON COMMIT DROP AS
                    SELECT meter_id, period_start, hours_expected,
                           CASE WHEN hours_expected > 0 THEN least(100, 100.0 * hours_available / hours_expected) END AS availability_pct,
                           CASE WHEN readings_expected > 0 THEN least(100, 100.0 * reading_count / readings_expected) END AS completeness_pct
                    FROM (\(Self.rollup(period, "verify_\(period)_keys"))) r
                    """)
                differences += try compare(period, recomputed: "verify_\(period)_rolled", from: from, to: to, organizationID: organizationID,
                                           fields: ["hours_expected", "availability_pct", "completeness_pct"], limit: limit - differences.count,
                                           finishedOnly: true)
            }
            return differences
        }
    }

    private func compare(_ period: String, recomputed: String, from: Int64, to: Int64, organizationID: Int64?, fields: [String],
                         limit: Int, finishedOnly: Bool = false) throws -> [AggregateDifference] {
        // Hourly rows of a dropped month have no readings left to compare with: they are final.
        var keptOnly = period == "hourly" ? "AND date_trunc('month', a.period_start, 'UTC') NOT IN (SELECT month_start FROM partition_drop)" : ""
        if finishedOnly { keptOnly += " AND a.computed_at >= a.period_end" }
        // Numbers compare with a relative tolerance of 1e-9 (sums of doubles in another order).
        let differs = fields.map { field in
            "(s.\(field) IS DISTINCT FROM r.\(field) AND NOT (s.\(field) IS NOT NULL AND r.\(field) IS NOT NULL AND abs(s.\(field)::float8 - r.\(field)::float8) <= 1e-9 * greatest(1, abs(r.\(field)::float8))))"
        }
        let rows = try connection.query("""
            SELECT coalesce(s.meter_id, r.meter_id) AS meter_id, coalesce(s.period_start, r.period_start) AS period_start,
                   (s.meter_id IS NULL) AS only_recomputed, (r.meter_id IS NULL) AS only_stored,
                   \(fields.map { "s.\($0)::text AS s_\($0), r.\($0)::text AS r_\($0)" }.joined(separator: ", "))
            FROM (SELECT a.* FROM meter_aggregate a JOIN meter m ON m.id = a.meter_id
                  WHERE a.period = $1 AND a.period_start >= to_timestamp($2) AND a.period_start < to_timestamp($3)
                    AND ($4::bigint IS NULL OR m.organization_id = $4::bigint) \(keptOnly)) s
            FULL OUTER JOIN \(recomputed) r ON r.meter_id = s.meter_id AND r.period_start = s.period_start
            WHERE s.meter_id IS NULL OR r.meter_id IS NULL OR \(differs.joined(separator: " OR "))
            ORDER BY 1, 2 LIMIT $5
            """, [period, String(from), String(to), organizationID.map(String.init), String(max(0, limit))])
        var found: [AggregateDifference] = []
        for row in 0..<rows.count {
            let meter = Int64(rows[row, "meter_id"]!)!
            let start = rows[row, "period_start"]!
            if rows[row, "only_recomputed"] == "t" {
                found.append(AggregateDifference(meterID: meter, period: period, periodStart: start, field: "row", stored: "absent", recomputed: "present"))
                continue
            }
            if rows[row, "only_stored"] == "t" {
                found.append(AggregateDifference(meterID: meter, period: period, periodStart: start, field: "row", stored: "present", recomputed: "absent"))
                continue
            }
            for field in fields {
                let stored = rows[row, "s_\(field)"], again = rows[row, "r_\(field)"]
                guard stored != again else { continue }
                if let a = stored.flatMap(Double.init), let b = again.flatMap(Double.init), abs(a - b) <= 1e-9 * max(1, abs(b)) { continue }
                found.append(AggregateDifference(meterID: meter, period: period, periodStart: start, field: field,
                                                 stored: stored ?? "null", recomputed: again ?? "null"))
            }
        }
        return found
    }
}

/// A credential that needs someone's attention.
public struct CredentialWarning: Sendable, Equatable {
    public enum State: String, Sendable, CaseIterable {
        /// A token its owner must renew expires within 7 days (or has expired).
        case expiresWithin7Days = "expires_within_7_days"
        /// An OAuth access token left expired for over an hour: the fetcher's refresh fails or it does not run.
        case tokenNotRefreshed = "token_not_refreshed"
        /// Deactivated by a refusal (not deleted by its organisation): its owner must reconnect.
        case inactive
        /// Active, but its last use in the past day failed.
        case failing
    }

    public var credentialID: Int64
    public var organizationID: Int64
    public var vendor: String
    public var state: State
    /// Unix seconds.
    public var tokenExpiresAt: Int64?
    /// The last error as recorded (already free of secrets), readable as it is.
    public var lastError: String?
}

extension Integrations {
    /// Every credential that needs attention, one entry per state it is in (docs/aggregates.md,
    /// "credential watch"). Credentials deleted by their organisation are not reported.
    public func warnings(organizationID: Int64? = nil) throws -> [CredentialWarning] {
        let rows = try connection.query("""
            SELECT c.id, c.organization_id, s.name AS vendor, c.auth_type, c.is_active, c.last_error,
                   extract(epoch FROM c.token_expires_at)::bigint AS expires,
                   (c.auth_type <> 'oauth2' AND c.is_active AND c.token_expires_at <= now() + interval '7 days') AS expiring,
                   (c.auth_type = 'oauth2' AND c.is_active AND c.token_expires_at < now() - interval '1 hour') AS stale,
                   (NOT c.is_active) AS inactive,
                   (c.is_active AND c.last_error IS NOT NULL AND c.last_used_at > now() - interval '1 day'
                    AND (c.rate_limited_until IS NULL OR c.rate_limited_until < now())) AS failing
            FROM integration_credential c JOIN data_source s ON s.id = c.data_source_id
            WHERE c.encrypted_credentials <> '' AND ($1::bigint IS NULL OR c.organization_id = $1::bigint)
            ORDER BY c.id
            """, [organizationID.map(String.init)])
        var warnings: [CredentialWarning] = []
        for row in 0..<rows.count {
            let states: [(String, CredentialWarning.State)] = [("expiring", .expiresWithin7Days), ("stale", .tokenNotRefreshed),
                                                                ("inactive", .inactive), ("failing", .failing)]
            for (column, state) in states where rows[row, column] == "t" {
                warnings.append(CredentialWarning(
                    credentialID: Int64(rows[row, "id"]!)!, organizationID: Int64(rows[row, "organization_id"]!)!, vendor: rows[row, "vendor"]!,
                    state: state, tokenExpiresAt: rows[row, "expires"].flatMap { Int64($0) }, lastError: rows[row, "last_error"]))
            }
        }
        return warnings
    }
}
