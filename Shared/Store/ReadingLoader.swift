import Core
import Postgres

/// The file a load comes from, as `ingestion_log` records it.
public struct IngestedFile: Sendable, Equatable {
    public var bucket: String
    public var key: String
    public var size: Int64
    public var etag: String?
    /// Lower-case hex SHA-256 of the file's bytes.
    public var sha256: String
    public var source: SourceSystem
    public var organizationID: Int64
    /// Where the file will be moved once loaded; recorded in the same transaction as the load,
    /// so a retry after a crash knows where to finish the move.
    public var destination: String?

    public init(
        bucket: String, key: String, size: Int64, etag: String? = nil, sha256: String, source: SourceSystem, organizationID: Int64,
        destination: String? = nil
    ) {
        self.bucket = bucket
        self.key = key
        self.size = size
        self.etag = etag
        self.sha256 = sha256
        self.source = source
        self.organizationID = organizationID
        self.destination = destination
    }
}

/// Counts of one file's load.
public struct LoadSummary: Sendable, Equatable {
    public var ingestionID: Int64 = 0
    public var rowsProcessed = 0
    public var rowsRejected = 0
    /// New keys.
    public var rowsInserted = 0
    /// Existing keys whose values changed (a corrected file).
    public var rowsUpdated = 0
    /// Existing keys with identical values (a re-sent file): nothing was written for them.
    public var rowsUnchanged = 0
    public var metersCreated = 0
    public var partitionsCreated: [String] = []
    /// Batches that found existing keys and went through the staging table.
    public var batchesUpserted = 0

    /// Rows accepted into the table (inserted, corrected, or already there unchanged): with the
    /// rejected rows they make up every processed row.
    public var rowsLoaded: Int { rowsInserted + rowsUpdated + rowsUnchanged }

    public init() {}
}

/// What a load did.
public enum LoadOutcome: Sendable, Equatable {
    /// Committed: readings, meters and the `ingestion_log` row.
    case loaded(LoadSummary)
    /// `decide` refused at the end (too many rejected rows): everything was rolled back.
    case declined(LoadSummary)
    /// Another delivery of the same file (same SHA-256 and key) settled it first, validated or
    /// quarantined: nothing was written.
    case settledElsewhere
}

/// Loads one file's readings into PostgreSQL in ONE transaction.
///
/// Per batch: make sure the monthly partitions exist, register new meters, then COPY the rows
/// straight into `meter_reading` inside a savepoint. New keys (the usual case) cost little more
/// than a plain COPY. If a batch meets an existing key, it is rolled back to its savepoint and
/// sent through a staging table and `INSERT … ON CONFLICT DO UPDATE … WHERE … IS DISTINCT FROM`
/// instead, and so is the rest of the file. The rule for existing keys: a later file replaces
/// the values of a key when any of them differ; identical rows are not written at all, so a
/// re-sent file changes nothing; a `missing` row replaces only a `missing` row (a re-fetched
/// window where the vendor now says nothing keeps the data it said before). Any failure rolls the whole file back.
public final class ReadingLoader {
    public let connection: PostgresConnection
    /// Violations kept for `ingestion_log.errors` (the report keeps all of them elsewhere).
    public var maximumLoggedViolations = 100

    public init(connection: PostgresConnection) { self.connection = connection }

    /// - Parameters:
    ///   - next: The file's batches, in order; `nil` when done.
    ///   - decide: Called with the totals before COMMIT; returning false rolls everything back.
    ///   - rejected: Told of the rows this load rejects itself (in-file duplicates the reader could
    ///     not check in its memory: ``ReadingBatch/pendingDuplicateChecks``), for the file's report.
    public func load(
        _ file: IngestedFile, batches next: () throws -> ReadingBatch?, decide: (LoadSummary) -> Bool = { _ in true },
        rejected: ([SchemaViolation]) -> Void = { _ in }
    ) throws -> LoadOutcome {
        var summary = LoadSummary()
        var violations: [SchemaViolation] = []
        var state = LoadState(file: file)
        /// Keeps the first `maximumLoggedViolations` for `ingestion_log.errors`.
        func log(_ found: [SchemaViolation]) {
            violations += found.prefix(max(0, maximumLoggedViolations - violations.count))
        }
        do {
            return try connection.transaction { () throws -> LoadOutcome in
            // Waits for a concurrent load of the same file to end; if that one settled it, stop.
            guard let id = try IngestionLog(connection: connection).open(file) else { return .settledElsewhere }
            summary.ingestionID = id
            while let batch = try next() {
                summary.rowsProcessed += batch.rowsProcessed
                summary.rowsRejected += batch.rowsRejected
                log(batch.violations)
                guard !batch.readings.isEmpty else { continue }
                var readings = batch.readings
                var meterIDs = try registerMeters(readings, state: &state, summary: &summary)
                if !batch.pendingDuplicateChecks.isEmpty {
                    let duplicates = try duplicates(among: batch, meterIDs: meterIDs, state: &state)
                    if !duplicates.isEmpty {
                        let drop = Set(duplicates.map(\.index))
                        readings = readings.indices.filter { !drop.contains($0) }.map { readings[$0] }
                        meterIDs = meterIDs.indices.filter { !drop.contains($0) }.map { meterIDs[$0] }
                        let found = duplicates.map(\.violation)
                        summary.rowsRejected += found.count
                        log(found)
                        rejected(found)
                    }
                }
                guard !readings.isEmpty else { continue }
                try ensurePartitions(for: readings, state: &state, summary: &summary)
                try write(readings, meterIDs: meterIDs, ingestionID: summary.ingestionID, state: &state, summary: &summary)
                for (reading, meter) in zip(readings, meterIDs) {
                    let hour = floorDivide(reading.timestamp, 3600) * 3600
                    if let range = state.dirty[meter] {
                        if hour < range.first || hour > range.last { state.dirty[meter] = (min(range.first, hour), max(range.last, hour)) }
                    } else {
                        state.dirty[meter] = (hour, hour)
                    }
                }
            }
            guard decide(summary) else { throw Declined() }
            try markDirty(state.dirty)
            try IngestionLog(connection: connection).close(
                id: summary.ingestionID, summary, errors: ViolationReport.json(violations), destination: file.destination)
            // Last, so the chain's lock is held only for the commit.
            try IngestionChain.append(id: summary.ingestionID, connection: connection)
            return .loaded(summary)
            }
        } catch is Declined {
            return .declined(summary)
        }
    }

    // MARK: - Steps

    /// Records the hours the file wrote, one range per meter, in the load's transaction: the
    /// maintenance function recomputes their aggregates (docs/aggregates.md). A plain INSERT with
    /// no unique key, so concurrent loads never wait on each other here.
    private func markDirty(_ dirty: [Int64: (first: Int64, last: Int64)]) throws {
        guard !dirty.isEmpty else { return }
        let meters = dirty.keys.sorted()
        try connection.query("""
            INSERT INTO aggregate_dirty (meter_id, first_hour, last_hour)
            SELECT meter, to_timestamp(first), to_timestamp(last) FROM unnest($1::bigint[], $2::bigint[], $3::bigint[]) AS d (meter, first, last)
            """, ["{" + meters.map(String.init).joined(separator: ",") + "}",
                  "{" + meters.map { String(dirty[$0]!.first) }.joined(separator: ",") + "}",
                  "{" + meters.map { String(dirty[$0]!.last) }.joined(separator: ",") + "}"])
    }

    private struct LoadState {
        let file: IngestedFile
        var partitions = Set<Int>()
        var meters: [MeterKey: Int64] = [:]
        var upsertMode = false
        var stagingReady = false
        var seenReady = false
        /// Per meter, the first and last hour (Unix seconds) this file wrote: what the aggregates
        /// must recompute (a range, so memory grows with meters, not rows).
        var dirty: [Int64: (first: Int64, last: Int64)] = [:]
    }

    /// Meters remembered for the file's later batches; past this many the cache starts afresh
    /// (a file of countless devices costs lookups, not memory).
    static let maximumCachedMeters = 100_000

    /// Compared by bytes, as PostgreSQL compares the ids (``ByteString``).
    private struct MeterKey: Hashable {
        var site: ByteString
        var device: ByteString

        init(site: String, device: String) {
            self.site = ByteString(site)
            self.device = ByteString(device)
        }
    }

    private struct Declined: Error {}

    /// What cannot happen unless the database changed under the load: the load rolls back, the event is retried.
    struct LoaderInvariant: Error, CustomStringConvertible {
        var reason: String
        var description: String { "internal error: \(reason)" }
    }

    private func ensurePartitions(for readings: [MeterReading], state: inout LoadState, summary: inout LoadSummary) throws {
        var months = Set<Int>()
        for reading in readings { months.insert(PartitionMaintenance.monthIndex(of: reading.timestamp)) }
        for month in months.subtracting(state.partitions).sorted() {
            if let created = try PartitionMaintenance.ensure(monthIndex: month, connection: connection) {
                summary.partitionsCreated.append(created)
            }
            state.partitions.insert(month)
        }
    }

    /// Registers the batch's unknown meters and returns the id of each reading's meter.
    private func registerMeters(_ readings: [MeterReading], state: inout LoadState, summary: inout LoadSummary) throws -> [Int64] {
        if state.meters.count > Self.maximumCachedMeters { state.meters = [:] }
        // One lookup a reading: this runs between two COPYs, while the server waits.
        var ids = [Int64](repeating: 0, count: readings.count)
        var unknown: [Int] = []
        var missing: [MeterKey] = []
        var seen = Set<MeterKey>()
        for (index, reading) in readings.enumerated() {
            let key = MeterKey(site: reading.externalSiteID, device: reading.externalDeviceID)
            if let id = state.meters[key] {
                ids[index] = id
            } else {
                unknown.append(index)
                if seen.insert(key).inserted { missing.append(key) }
            }
        }
        if !missing.isEmpty {
            let organization = String(state.file.organizationID)
            let source = String(state.file.source.id)
            let sites = PostgresArray.text(missing.map(\.site.text))
            let devices = PostgresArray.text(missing.map(\.device.text))
            let inserted = try connection.query("""
                INSERT INTO meter (organization_id, data_source_id, external_site_id, external_device_id)
                SELECT $1, $2, site, device FROM unnest($3::text[], $4::text[]) AS wanted (site, device)
                ON CONFLICT DO NOTHING
                RETURNING id
                """, [organization, source, sites, devices])
            summary.metersCreated += inserted.count
            let rows = try connection.query("""
                SELECT m.id, m.external_site_id, m.external_device_id
                FROM meter m JOIN unnest($3::text[], $4::text[]) AS wanted (site, device)
                  ON m.external_site_id = wanted.site AND m.external_device_id = wanted.device
                WHERE m.organization_id = $1 AND m.data_source_id = $2
                """, [organization, source, sites, devices])
            for row in rows.rows {
                state.meters[MeterKey(site: row[1]!, device: row[2]!)] = Int64(row[0]!)!
            }
        }
        for index in unknown {
            let reading = readings[index]
            guard let id = state.meters[MeterKey(site: reading.externalSiteID, device: reading.externalDeviceID)] else {
                throw LoaderInvariant(reason: "meter \(reading.externalSiteID)/\(reading.externalDeviceID) was neither found nor created")
            }
            ids[index] = id
        }
        return ids
    }

    /// The readings of `batch` that the reader could not check in memory and that repeat an
    /// earlier row of this file (or of this batch): found through a table of the keys checked
    /// this way, in this transaction. Exact, and the memory it takes is the database's disk.
    private func duplicates(
        among batch: ReadingBatch, meterIDs: [Int64], state: inout LoadState
    ) throws -> [(index: Int, violation: SchemaViolation)] {
        if !state.seenReady {
            try connection.query("""
                CREATE TEMPORARY TABLE meterlake_seen (meter_id bigint, slot bigint, PRIMARY KEY (meter_id, slot)) ON COMMIT DROP
                """)
            state.seenReady = true
        }
        let pending = batch.pendingDuplicateChecks
        let inserted = try connection.query("""
            INSERT INTO meterlake_seen (meter_id, slot)
            SELECT meter_id, slot FROM unnest($1::bigint[], $2::bigint[]) WITH ORDINALITY AS k (meter_id, slot, n) ORDER BY n
            ON CONFLICT DO NOTHING
            RETURNING meter_id, slot
            """, ["{" + pending.map { String(meterIDs[$0.index]) }.joined(separator: ",") + "}",
                  "{" + pending.map { String(batch.readings[$0.index].timestamp) }.joined(separator: ",") + "}"])
        // A key inserted now is new for its first pending row only; a key not inserted was seen before.
        var fresh = Set<PendingKey>()
        for row in inserted.rows { fresh.insert(PendingKey(meter: Int64(row[0]!)!, timestamp: Int64(row[1]!)!)) }
        var found: [(index: Int, violation: SchemaViolation)] = []
        for check in pending {
            let reading = batch.readings[check.index]
            let key = PendingKey(meter: meterIDs[check.index], timestamp: reading.timestamp)
            if fresh.remove(key) != nil { continue }
            found.append((check.index, SchemaViolation(
                .duplicateReading, line: check.line, row: check.row, column: CanonicalField.timestamp.name,
                value: Timestamp.rfc3339(milliseconds: reading.timestamp * 1000), message: ReadingDecoder.duplicateMessage)))
        }
        return found
    }

    private struct PendingKey: Hashable {
        var meter: Int64
        var timestamp: Int64
    }

    private static let columns = #"meter_id, organization_id, "timestamp", reading_interval_seconds, energy_wh, power_w, irradiance_wm2, temperature_c, other_metrics, quality, ingested_at, ingestion_id"#

    private func write(_ readings: [MeterReading], meterIDs: [Int64], ingestionID: Int64, state: inout LoadState, summary: inout LoadSummary) throws {
        if !state.upsertMode {
            try connection.query("SAVEPOINT meterlake_batch")
            do {
                try copy(readings, meterIDs: meterIDs, ingestionID: ingestionID, into: "meter_reading")
                try connection.query("RELEASE SAVEPOINT meterlake_batch")
                summary.rowsInserted += readings.count
                return
            } catch let error as PostgresError where error.isUniqueViolation {
                // Some keys exist: this file corrects or repeats earlier data. Upsert from here on.
                try connection.query("ROLLBACK TO SAVEPOINT meterlake_batch")
                state.upsertMode = true
            }
        }
        if !state.stagingReady {
            try connection.query("""
                CREATE TEMPORARY TABLE meterlake_staging (LIKE meter_reading INCLUDING DEFAULTS) ON COMMIT DROP
                """)
            state.stagingReady = true
        } else {
            try connection.query("TRUNCATE meterlake_staging")
        }
        try copy(readings, meterIDs: meterIDs, ingestionID: ingestionID, into: "meterlake_staging")
        // Partitioned tables cannot return xmax, so count the keys that exist before the upsert.
        let existing = Int(try connection.query("""
            SELECT count(*) AS n FROM meterlake_staging s JOIN meter_reading r USING (meter_id, "timestamp")
            """)[0, "n"]!)!
        let changed = try connection.query("""
            INSERT INTO meter_reading (\(Self.columns))
            SELECT \(Self.columns) FROM meterlake_staging
            ON CONFLICT (meter_id, "timestamp") DO UPDATE SET
                reading_interval_seconds = EXCLUDED.reading_interval_seconds, energy_wh = EXCLUDED.energy_wh,
                power_w = EXCLUDED.power_w, irradiance_wm2 = EXCLUDED.irradiance_wm2,
                temperature_c = EXCLUDED.temperature_c, other_metrics = EXCLUDED.other_metrics,
                quality = EXCLUDED.quality, ingested_at = EXCLUDED.ingested_at, ingestion_id = EXCLUDED.ingestion_id
            WHERE (meter_reading.reading_interval_seconds, meter_reading.energy_wh, meter_reading.power_w,
                   meter_reading.irradiance_wm2, meter_reading.temperature_c, meter_reading.other_metrics, meter_reading.quality)
                IS DISTINCT FROM
                  (EXCLUDED.reading_interval_seconds, EXCLUDED.energy_wh, EXCLUDED.power_w,
                   EXCLUDED.irradiance_wm2, EXCLUDED.temperature_c, EXCLUDED.other_metrics, EXCLUDED.quality)
              -- Late data fills a missing slot; a missing slot never erases data already there.
              AND (EXCLUDED.quality <> 'missing' OR meter_reading.quality = 'missing')
            RETURNING 1
            """)
        let inserted = readings.count - existing
        summary.rowsInserted += inserted
        summary.rowsUpdated += changed.count - inserted
        summary.rowsUnchanged += existing - (changed.count - inserted)
        summary.batchesUpserted += 1
    }

    private func copy(_ readings: [MeterReading], meterIDs: [Int64], ingestionID: Int64, into table: String) throws {
        // Binary COPY: the server stores numbers and timestamps without parsing text, which makes
        // it the cheaper side of the pipe (about a quarter less server time than text COPY here).
        // Files repeat the same extras row after row: serialise a set once while it repeats.
        var metrics: (members: [JSONMember], json: [UInt8]) = ([], Array("{}".utf8))
        try connection.copyBinary("COPY \(table) (\(Self.columns)) FROM STDIN WITH (FORMAT binary)") { writer in
            for (reading, meterID) in zip(readings, meterIDs) {
                writer.beginRow(fields: 12)
                writer.int64(meterID)
                writer.int64(reading.organizationID)
                writer.timestamp(unixMicroseconds: reading.timestamp * 1_000_000)
                writer.int32(Int32(reading.readingIntervalSeconds))
                writer.float64(reading.energyWh)
                writer.float64(reading.powerW)
                writer.float64(reading.irradianceWm2)
                writer.float64(reading.temperatureC)
                if reading.otherMetrics != metrics.members {
                    var json = JSONWriter()
                    json.value(.object(reading.otherMetrics))
                    metrics = (reading.otherMetrics, json.bytes)
                }
                writer.jsonb(utf8: metrics.json)
                writer.text(reading.quality.rawValue)
                writer.timestamp(unixMicroseconds: reading.ingestedAt * 1000)
                writer.int64(ingestionID)
                try connection.flush(&writer)
            }
        }
    }
}

/// PostgreSQL array literals for parameters (`$1::text[]`).
public enum PostgresArray {
    /// `{"a","b \"c\""}`: every element quoted, `"` and `\` escaped.
    public static func text(_ values: [String]) -> String {
        var literal = "{"
        for (index, value) in values.enumerated() {
            if index > 0 { literal += "," }
            literal += "\""
            for character in value.unicodeScalars {
                if character == "\"" || character == "\\" { literal += "\\" }
                literal.unicodeScalars.append(character)
            }
            literal += "\""
        }
        return literal + "}"
    }
}

/// What a replay of one file changed (or, in a dry run, would change).
public struct ReplaySummary: Sendable, Equatable {
    public var rowsRead = 0
    /// Keys the file gives that the table lacks.
    public var added = 0
    /// Keys whose values the file now gives differently (under the loader's rule for existing keys).
    public var changed = 0
    /// Rows this file loaded before that it no longer gives.
    public var removed = 0
    public var unchanged = 0
    /// Keys another file now owns (a later correction): left as they are.
    public var superseded = 0
    /// Readings in months whose partitions were dropped (their aggregates are final): skipped.
    public var inDroppedMonths = 0
    /// Rows the validator's checks reject today (not loaded; counted against the reject threshold).
    public var rejected = 0

    public init() {}
}

extension ReadingLoader {
    private struct DryRunDone: Error { var summary: ReplaySummary }

    /// Re-derives the rows of a file loaded before (its `ingestion_log` row `ingestionID`) from
    /// `batches`, in one transaction: new keys are added, existing keys updated under the loader's
    /// rule (values replaced when they differ; a `missing` row replaces only a `missing` row),
    /// rows this file had loaded that it no longer gives are removed, and the touched hours are
    /// marked for the aggregates. The `ingestion_log` row is not touched. `dryRun` rolls back and
    /// only counts.
    public func replay(_ file: IngestedFile, ingestionID: Int64, batches next: () throws -> ReadingBatch?, dryRun: Bool,
                       accepts: (_ processed: Int, _ rejected: Int) -> Bool = { _, _ in true }) throws -> ReplaySummary {
        var state = LoadState(file: file)
        var summary = ReplaySummary()
        var ignored = LoadSummary()
        do {
            return try connection.transaction { () throws -> ReplaySummary in
                try connection.query("""
                    CREATE TEMPORARY TABLE meterlake_replay_raw (LIKE meter_reading INCLUDING DEFAULTS) ON COMMIT DROP
                    """)
                let dropped = Set(try connection.query("SELECT (extract(epoch FROM month_start))::bigint AS m FROM partition_drop").rows
                    .compactMap { $0[0].flatMap { Int64($0) }.map { PartitionMaintenance.monthIndex(of: $0) } })
                var processed = 0
                while let batch = try next() {
                    processed += batch.rowsProcessed
                    summary.rejected += batch.rowsRejected
                    // Months already dropped are final: their readings are not brought back.
                    let readings = batch.readings.filter { !dropped.contains(PartitionMaintenance.monthIndex(of: $0.timestamp)) }
                    summary.inDroppedMonths += batch.readings.count - readings.count
                    guard !readings.isEmpty else { continue }
                    let meterIDs = try registerMeters(readings, state: &state, summary: &ignored)
                    try copy(readings, meterIDs: meterIDs, ingestionID: ingestionID, into: "meterlake_replay_raw")
                    summary.rowsRead += readings.count
                }
                guard accepts(processed, summary.rejected) else {
                    throw ReplayDeclined(reason: "today's checks reject \(summary.rejected) of \(processed) rows, above the reject threshold: not replayed")
                }
                // One row per key (the first, as the loader keeps the first of in-file duplicates).
                try connection.query("""
                    CREATE TEMPORARY TABLE meterlake_replay ON COMMIT DROP AS
                    SELECT DISTINCT ON (meter_id, "timestamp") * FROM meterlake_replay_raw ORDER BY meter_id, "timestamp", ctid
                    """)
                // Only rows this file owns change; a key a later file wrote stays that file's.
                let counts = try connection.query("""
                    SELECT count(*) FILTER (WHERE r.meter_id IS NULL) AS added,
                           count(*) FILTER (WHERE r.meter_id IS NOT NULL AND r.ingestion_id IS DISTINCT FROM $1::bigint) AS superseded,
                           count(*) FILTER (WHERE r.meter_id IS NOT NULL AND r.ingestion_id = $1::bigint
                               AND (r.reading_interval_seconds, r.energy_wh, r.power_w, r.irradiance_wm2, r.temperature_c, r.other_metrics, r.quality)
                                   IS DISTINCT FROM (n.reading_interval_seconds, n.energy_wh, n.power_w, n.irradiance_wm2, n.temperature_c, n.other_metrics, n.quality)
                               AND (n.quality <> 'missing' OR r.quality = 'missing')) AS changed
                    FROM meterlake_replay n LEFT JOIN meter_reading r USING (meter_id, "timestamp")
                    """, [String(ingestionID)])
                summary.added = Int(counts[0, "added"]!)!
                summary.changed = Int(counts[0, "changed"]!)!
                summary.superseded = Int(counts[0, "superseded"]!)!
                summary.unchanged = summary.rowsRead - summary.added - summary.changed - summary.superseded
                let removed = try connection.query("""
                    SELECT r.meter_id, (extract(epoch FROM r."timestamp"))::bigint AS t FROM meter_reading r
                    WHERE r.ingestion_id = $1 AND NOT EXISTS (
                        SELECT 1 FROM meterlake_replay n WHERE n.meter_id = r.meter_id AND n."timestamp" = r."timestamp")
                    """, [String(ingestionID)])
                summary.removed = removed.count
                // A dry run stops here: no partition is made, nothing is written.
                if dryRun { throw DryRunDone(summary: summary) }
                let months = try connection.query("""
                    SELECT DISTINCT (extract(epoch FROM date_trunc('month', "timestamp", 'UTC')))::bigint AS m FROM meterlake_replay
                    """).rows.compactMap { $0[0].flatMap { Int64($0) } }
                for month in months.map(PartitionMaintenance.monthIndex(of:)).sorted() where !state.partitions.contains(month) {
                    try PartitionMaintenance.ensure(monthIndex: month, connection: connection)
                    state.partitions.insert(month)
                }
                try connection.query("""
                    INSERT INTO meter_reading (\(Self.columns))
                    SELECT \(Self.columns) FROM meterlake_replay
                    ON CONFLICT (meter_id, "timestamp") DO UPDATE SET
                        reading_interval_seconds = EXCLUDED.reading_interval_seconds, energy_wh = EXCLUDED.energy_wh,
                        power_w = EXCLUDED.power_w, irradiance_wm2 = EXCLUDED.irradiance_wm2,
                        temperature_c = EXCLUDED.temperature_c, other_metrics = EXCLUDED.other_metrics,
                        quality = EXCLUDED.quality, ingested_at = EXCLUDED.ingested_at, ingestion_id = EXCLUDED.ingestion_id
                    WHERE meter_reading.ingestion_id = EXCLUDED.ingestion_id
                      AND (meter_reading.reading_interval_seconds, meter_reading.energy_wh, meter_reading.power_w,
                           meter_reading.irradiance_wm2, meter_reading.temperature_c, meter_reading.other_metrics, meter_reading.quality)
                        IS DISTINCT FROM
                          (EXCLUDED.reading_interval_seconds, EXCLUDED.energy_wh, EXCLUDED.power_w,
                           EXCLUDED.irradiance_wm2, EXCLUDED.temperature_c, EXCLUDED.other_metrics, EXCLUDED.quality)
                      AND (EXCLUDED.quality <> 'missing' OR meter_reading.quality = 'missing')
                    """)
                try connection.query("""
                    DELETE FROM meter_reading r WHERE r.ingestion_id = $1 AND NOT EXISTS (
                        SELECT 1 FROM meterlake_replay n WHERE n.meter_id = r.meter_id AND n."timestamp" = r."timestamp")
                    """, [String(ingestionID)])
                // The aggregates of every hour the file gives or gave.
                var dirty: [Int64: (first: Int64, last: Int64)] = [:]
                let hours = try connection.query("""
                    SELECT meter_id, min((extract(epoch FROM "timestamp"))::bigint) AS first, max((extract(epoch FROM "timestamp"))::bigint) AS last
                    FROM meterlake_replay GROUP BY meter_id
                    """)
                for row in hours.rows {
                    dirty[Int64(row[0]!)!] = (floorDivide(Int64(row[1]!)!, 3600) * 3600, floorDivide(Int64(row[2]!)!, 3600) * 3600)
                }
                for row in removed.rows {
                    let meter = Int64(row[0]!)!, hour = floorDivide(Int64(row[1]!)!, 3600) * 3600
                    let range = dirty[meter] ?? (hour, hour)
                    dirty[meter] = (min(range.first, hour), max(range.last, hour))
                }
                if summary.added + summary.changed + summary.removed > 0 { try markDirty(dirty) }
                return summary
            }
        } catch let done as DryRunDone {
            return done.summary
        }
    }
}

/// A replay refused as a whole (today's checks reject too much of the file).
public struct ReplayDeclined: Error, CustomStringConvertible {
    public var reason: String
    public var description: String { reason }
}
