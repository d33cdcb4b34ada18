import Core
import Postgres

/// Monthly partitions of `meter_reading`: created ahead and on demand, dropped only when a whole
/// month lies beyond the retention window.
public enum PartitionMaintenance {
    /// Raw readings are kept this long; aggregates are kept for ever.
    public static let retentionDays = 90

    /// Months since 1970-01 of a Unix time (UTC).
    public static func monthIndex(of seconds: Int64) -> Int {
        let days = Int((seconds >= 0 ? seconds : seconds - 86_399) / 86_400)
        let date = Timestamp.civil(days: days)
        return (date.year - 1970) * 12 + (date.month - 1)
    }

    /// `meter_reading_y2026m03`
    public static func name(monthIndex: Int) -> String {
        let (year, month) = yearMonth(monthIndex)
        return "meter_reading_y\(year)m\(month < 10 ? "0" : "")\(month)"
    }

    static func yearMonth(_ index: Int) -> (year: Int, month: Int) {
        let year = 1970 + Int((Double(index) / 12).rounded(.down))
        return (year, index - (year - 1970) * 12 + 1)
    }

    /// The first instant of a month, Unix seconds.
    public static func start(monthIndex: Int) -> Int64 {
        let (year, month) = yearMonth(monthIndex)
        return Int64(Timestamp.days(year: year, month: month, day: 1)) * 86_400
    }

    /// Creates the month's partition unless it exists; returns its name when created.
    ///
    /// Serialised by an advisory lock, so two loaders creating the same month do not collide.
    /// Creating a partition locks `meter_reading` until the creating transaction ends: keep
    /// partitions created ahead (``ensureAhead(now:months:connection:)``) so loads rarely do it.
    @discardableResult
    public static func ensure(monthIndex: Int, connection: PostgresConnection) throws -> String? {
        let name = name(monthIndex: monthIndex)
        let exists = try connection.query("SELECT to_regclass($1) IS NOT NULL AS present", [name])
        if exists[0, "present"] == "t" { return nil }
        try connection.query("SELECT pg_advisory_xact_lock(7245617732)")
        let lower = Timestamp.rfc3339(milliseconds: start(monthIndex: monthIndex) * 1000)
        let upper = Timestamp.rfc3339(milliseconds: start(monthIndex: monthIndex + 1) * 1000)
        // Names and bounds are made here from integers, never from input: safe to splice.
        let created = try connection.query("SELECT to_regclass($1) IS NOT NULL AS present", [name])
        if created[0, "present"] == "t" { return nil }
        // IF NOT EXISTS: the catalog lookup above may not yet see a partition another session
        // committed while this one waited for the lock.
        try connection.query("CREATE TABLE IF NOT EXISTS \(name) PARTITION OF meter_reading FOR VALUES FROM ('\(lower)') TO ('\(upper)')")
        return name
    }

    /// Makes sure this month and the next `months` exist. Returns the partitions created.
    @discardableResult
    public static func ensureAhead(now: Int64, months: Int = 2, connection: PostgresConnection) throws -> [String] {
        let current = monthIndex(of: now)
        return try connection.transaction {
            try (current...(current + months)).compactMap { try ensure(monthIndex: $0, connection: connection) }
        }
    }

    /// Drops the partitions whose every instant is older than `retentionDays` before `now`, and
    /// whose hours have no pending dirty range (their aggregates are final). A partition holding
    /// even one instant inside the window is kept. Each drop is recorded in `partition_drop` with
    /// its row count, in the drop's transaction. Returns those dropped.
    @discardableResult
    public static func dropExpired(now: Int64, retentionDays: Int = retentionDays, connection: PostgresConnection) throws -> [String] {
        let cutoff = now - Int64(retentionDays) * 86_400
        let partitions = try connection.query("""
            SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
            WHERE i.inhparent = 'meter_reading'::regclass ORDER BY c.relname
            """)
        var dropped: [String] = []
        for row in partitions.rows {
            guard let name = row[0], let month = parse(name) else { continue }
            // The partition covers [start(month), start(month + 1)): drop only if that end is past.
            guard start(monthIndex: month + 1) <= cutoff else { continue }
            let lower = String(start(monthIndex: month)), upper = String(start(monthIndex: month + 1))
            let done: Bool
            do {
                done = try connection.transaction { () throws -> Bool in
                // The parent first (as DROP needs it; a partition lock first could deadlock with a
                // load holding the parent), with a bounded wait: a busy moment is retried next run.
                // Loads mark ranges in their own transactions; this lock keeps a load from landing
                // between the check and the drop.
                try connection.query("SET LOCAL lock_timeout = '5s'")
                try connection.query("LOCK TABLE meter_reading IN ACCESS EXCLUSIVE MODE")
                guard try connection.query("SELECT to_regclass($1) IS NOT NULL AS present", [name])[0, "present"] == "t" else { return false }
                let pending = try connection.query("""
                    SELECT count(*) AS n FROM aggregate_dirty WHERE first_hour < to_timestamp($2) AND last_hour >= to_timestamp($1)
                    """, [lower, upper])
                guard pending[0, "n"] == "0" else { return false }
                let count = try connection.query("SELECT count(*) AS n FROM \(name)")[0, "n"]!
                try connection.query("""
                    INSERT INTO partition_drop (name, month_start, rows_dropped) VALUES ($1, to_timestamp($2), $3)
                    ON CONFLICT (name) DO UPDATE SET dropped_at = now(), rows_dropped = partition_drop.rows_dropped + EXCLUDED.rows_dropped
                    """, [name, lower, count])
                try connection.query("DROP TABLE \(name)")
                return true
                }
            } catch let error as PostgresError where error.isTransient || error.description.contains("55P03") {
                continue  // lock timeout or a lost connection: the next run tries again
            }
            if done { dropped.append(name) }
        }
        return dropped
    }

    /// The month of a partition this code named, or `nil` for any other table.
    static func parse(_ name: String) -> Int? {
        let prefix = "meter_reading_y"
        guard name.hasPrefix(prefix), name.utf8.count == prefix.utf8.count + 7 else { return nil }
        let rest = Array(name.utf8.dropFirst(prefix.utf8.count))
        guard rest[4] == UInt8(ascii: "m"), let year = Int(String(decoding: rest[0..<4], as: UTF8.self)),
            let month = Int(String(decoding: rest[5..<7], as: UTF8.self)), (1...12).contains(month)
        else { return nil }
        return (year - 1970) * 12 + month - 1
    }
}
