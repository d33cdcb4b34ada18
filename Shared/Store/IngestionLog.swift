import Core
import Postgres

/// A file's status in `ingestion_log`.
public enum IngestionStatus: String, Sendable, Codable, CaseIterable {
    /// A load is under way (or died before it committed: its transaction rolled back, so this
    /// state is only ever seen inside the load's own transaction).
    case processing
    case validated
    case quarantined
    case duplicate
    /// A transient failure: the file stays in `raw/` and the event is retried.
    case failed

    /// The file reached its final place: loaded and validated, or quarantined.
    public var isSettled: Bool { self == .validated || self == .quarantined }
}

/// What `ingestion_log` knows of one file.
public struct IngestionRecord: Sendable, Equatable {
    public var status: IngestionStatus
    public var destination: String?
    public var rowsProcessed: Int
    public var rowsLoaded: Int
    public var rowsRejected: Int
}

/// A file as `ingestion_log` names it. `source` and `organizationID` are unknown for a file whose
/// key cannot be trusted.
public struct LoggedFile: Sendable, Equatable {
    public var bucket: String
    public var key: String
    public var size: Int64
    public var etag: String?
    public var sha256: String
    public var source: SourceSystem?
    public var organizationID: Int64?

    public init(bucket: String, key: String, size: Int64, etag: String?, sha256: String, source: SourceSystem?, organizationID: Int64?) {
        self.bucket = bucket
        self.key = key
        self.size = size
        self.etag = etag
        self.sha256 = sha256
        self.source = source
        self.organizationID = organizationID
    }
}

/// The `ingestion_log` table: one row per (SHA-256, key), written by the validator and read by
/// the validator (retries) and the ingest API (upload status). All of its SQL lives here.
public struct IngestionLog {
    public let connection: PostgresConnection

    public init(connection: PostgresConnection) { self.connection = connection }

    /// The row for exactly this content under this key, if any.
    public func find(sha256: String, key: String) throws -> IngestionRecord? {
        let rows = try connection.query(
            "SELECT status, destination, rows_processed, rows_loaded, rows_rejected FROM ingestion_log WHERE sha256 = $1 AND key = $2",
            [sha256, key])
        return rows.count == 1 ? Self.record(rows, 0) : nil
    }

    /// The latest settled (validated or quarantined) row for a key, whatever its content.
    public func latestSettled(key: String) throws -> IngestionRecord? {
        let rows = try connection.query("""
            SELECT status, destination, rows_processed, rows_loaded, rows_rejected FROM ingestion_log
            WHERE key = $1 AND status IN ('validated', 'quarantined') ORDER BY finished_at DESC NULLS LAST LIMIT 1
            """, [key])
        return rows.count == 1 ? Self.record(rows, 0) : nil
    }

    /// Records where a settled file goes, for a row written before destinations were recorded.
    public func setDestination(_ destination: String, sha256: String, key: String) throws {
        try connection.query("UPDATE ingestion_log SET destination = $1 WHERE sha256 = $2 AND key = $3", [destination, sha256, key])
    }

    /// Records a quarantined file (nothing of it loaded), replacing an earlier unsettled row of the
    /// same content and key. Returns false, changing nothing, when that row is settled already (a
    /// concurrent delivery of the same event recorded it first).
    @discardableResult
    public func recordQuarantine(
        _ file: LoggedFile, rowsProcessed: Int, rowsRejected: Int, errors: String, destination: String
    ) throws -> Bool {
        try connection.transaction {
            let rows = try connection.query("""
                INSERT INTO ingestion_log (bucket, key, size, etag, sha256, data_source_id, organization_id, status,
                    rows_processed, rows_loaded, rows_rejected, errors, destination, finished_at)
                VALUES ($1, $2, $3, $4, $5, $6, $7, 'quarantined', $8, 0, $9, $10::jsonb, $11, now())
                ON CONFLICT (sha256, key) DO UPDATE SET status = 'quarantined', rows_processed = EXCLUDED.rows_processed,
                    rows_loaded = 0, rows_rejected = EXCLUDED.rows_rejected, errors = EXCLUDED.errors,
                    destination = EXCLUDED.destination, finished_at = now()
                WHERE ingestion_log.status NOT IN ('validated', 'quarantined')
                RETURNING id
                """, [file.bucket, file.key, String(file.size), file.etag, file.sha256, file.source.map { String($0.id) },
                      file.organizationID.map(String.init), String(rowsProcessed), String(rowsRejected), errors, destination])
            guard rows.count == 1 else { return false }
            try IngestionChain.append(id: Int64(rows[0, "id"]!)!, connection: connection)
            return true
        }
    }

    /// Records a transient failure, unless the file already settled (a late failure of a retried
    /// event must not hide that the file was loaded).
    public func recordFailure(bucket: String, key: String, sha256: String, errors: String) throws {
        try connection.query("""
            INSERT INTO ingestion_log (bucket, key, size, sha256, status, errors, finished_at)
            VALUES ($1, $2, 0, $3, 'failed', $4::jsonb, now())
            ON CONFLICT (sha256, key) DO UPDATE SET status = 'failed', errors = EXCLUDED.errors, finished_at = now()
            WHERE ingestion_log.status NOT IN ('validated', 'quarantined')
            """, [bucket, key, sha256, errors])
    }

    // MARK: - The loader's rows (inside its transaction)

    /// Opens the row of a load: `processing`, in the load's transaction. Returns its id, or `nil`
    /// when the same file (SHA-256 and key) is already settled: a concurrent delivery of the same
    /// event loaded or quarantined it (the insert waits for that one's transaction to end).
    func open(_ file: IngestedFile) throws -> Int64? {
        let rows = try connection.query("""
            INSERT INTO ingestion_log (bucket, key, size, etag, sha256, data_source_id, organization_id, status)
            VALUES ($1, $2, $3, $4, $5, $6, $7, 'processing')
            ON CONFLICT (sha256, key) DO UPDATE SET status = 'processing', started_at = now(), finished_at = NULL
            WHERE ingestion_log.status NOT IN ('validated', 'quarantined')
            RETURNING id
            """, [file.bucket, file.key, String(file.size), file.etag, file.sha256, String(file.source.id), String(file.organizationID)])
        return rows.count == 1 ? Int64(rows[0, "id"]!)! : nil
    }

    /// Closes a load's row as `validated`, with its counts, in the load's transaction.
    func close(id: Int64, _ summary: LoadSummary, errors: String, destination: String?) throws {
        try connection.query("""
            UPDATE ingestion_log SET status = 'validated', rows_processed = $2, rows_loaded = $3, rows_rejected = $4,
                errors = $5::jsonb, destination = $6, finished_at = now()
            WHERE id = $1
            """, [String(id), String(summary.rowsProcessed), String(summary.rowsLoaded), String(summary.rowsRejected), errors, destination])
    }

    private static func record(_ rows: PostgresRows, _ index: Int) -> IngestionRecord? {
        guard let status = rows[index, "status"].flatMap(IngestionStatus.init(rawValue:)) else { return nil }
        return IngestionRecord(
            status: status, destination: rows[index, "destination"], rowsProcessed: rows[index, "rows_processed"].flatMap { Int($0) } ?? 0,
            rowsLoaded: rows[index, "rows_loaded"].flatMap { Int($0) } ?? 0, rowsRejected: rows[index, "rows_rejected"].flatMap { Int($0) } ?? 0)
    }
}
