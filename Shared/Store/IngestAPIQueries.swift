import Core
import Postgres

/// One `ingestion_log` row as the ingest API shows it.
public struct IngestionEntry: Sendable, Equatable {
    public var key: String
    public var status: IngestionStatus
    public var rowsProcessed: Int
    public var rowsLoaded: Int
    public var rowsRejected: Int
    /// `[{"reason": …}, violation…]`, as the validator recorded it (JSON text).
    public var errors: String
    public var destination: String?
    /// Unix seconds.
    public var finishedAt: Int64?
}

/// Freshness and failures of the last day, for `/health/full`.
public struct IngestionHealth: Sendable, Equatable {
    /// Seconds since the newest file settled; nil when none ever did.
    public var newestAgeSeconds: Int64?
    public var filesLastDay: Int
    public var failedLastDay: Int
}

extension IngestionLog {
    private static let entryColumns = """
        key, status, rows_processed, rows_loaded, rows_rejected, errors::text AS errors, destination,
        extract(epoch FROM finished_at)::bigint AS finished
        """

    private static func entry(_ rows: PostgresRows, _ row: Int) -> IngestionEntry {
        IngestionEntry(
            key: rows[row, "key"]!, status: IngestionStatus(rawValue: rows[row, "status"]!) ?? .failed,
            rowsProcessed: Int(rows[row, "rows_processed"]!) ?? 0, rowsLoaded: Int(rows[row, "rows_loaded"]!) ?? 0,
            rowsRejected: Int(rows[row, "rows_rejected"]!) ?? 0, errors: rows[row, "errors"] ?? "[]", destination: rows[row, "destination"],
            finishedAt: rows[row, "finished"].flatMap { Int64($0) })
    }

    /// The newest row of a key (settled rows before failed ones of the same time).
    public func latest(key: String) throws -> IngestionEntry? {
        let rows = try connection.query("""
            SELECT \(Self.entryColumns) FROM ingestion_log WHERE key = $1
            ORDER BY finished_at DESC NULLS LAST, id DESC LIMIT 1
            """, [key])
        return rows.count == 1 ? Self.entry(rows, 0) : nil
    }

    /// The organisation's rows of a content hash, newest first (at most 100).
    public func entries(organizationID: Int64, sha256: String) throws -> [IngestionEntry] {
        let rows = try connection.query("""
            SELECT \(Self.entryColumns) FROM ingestion_log WHERE organization_id = $1 AND sha256 = $2
            ORDER BY finished_at DESC NULLS LAST, id DESC LIMIT 100
            """, [String(organizationID), sha256])
        return (0..<rows.count).map { Self.entry(rows, $0) }
    }

    public func health() throws -> IngestionHealth {
        let rows = try connection.query("""
            SELECT (SELECT extract(epoch FROM now() - max(finished_at))::bigint FROM ingestion_log
                    WHERE status IN ('validated', 'quarantined', 'duplicate')) AS newest,
                   count(*) AS files, count(*) FILTER (WHERE status = 'failed') AS failed
            FROM ingestion_log WHERE started_at > now() - interval '1 day'
            """)
        return IngestionHealth(newestAgeSeconds: rows[0, "newest"].flatMap { Int64($0) }, filesLastDay: Int(rows[0, "files"]!) ?? 0,
                               failedLastDay: Int(rows[0, "failed"]!) ?? 0)
    }
}

/// A credential as the ingest API lists it: never its secret.
public struct CredentialSummary: Sendable, Equatable {
    public var id: Int64
    public var organizationID: Int64
    public var vendor: SourceSystem
    public var authType: String
    public var isActive: Bool
    /// Unix seconds.
    public var lastUsedAt: Int64?
    public var lastError: String?
    public var tokenExpiresAt: Int64?
    public var createdAt: Int64
    public var connectedBy: String?
    public var sites: Int
}

extension Integrations {
    /// The organisation's credentials, active or not, oldest first; no sealed value leaves here.
    public func credentialSummaries(organizationID: Int64) throws -> [CredentialSummary] {
        let rows = try connection.query("""
            SELECT c.id, c.organization_id, c.data_source_id, c.auth_type, c.is_active, c.last_error, c.connected_by,
                   extract(epoch FROM c.last_used_at)::bigint AS last_used, extract(epoch FROM c.token_expires_at)::bigint AS expires,
                   extract(epoch FROM c.created_at)::bigint AS created,
                   (SELECT count(*) FROM integration_site s WHERE s.credential_id = c.id) AS sites
            FROM integration_credential c WHERE c.organization_id = $1 ORDER BY c.id
            """, [String(organizationID)])
        return (0..<rows.count).compactMap { row in
            guard let vendor = SourceSystem.allCases.first(where: { String($0.id) == rows[row, "data_source_id"] }) else { return nil }
            return CredentialSummary(
                id: Int64(rows[row, "id"]!)!, organizationID: Int64(rows[row, "organization_id"]!)!, vendor: vendor,
                authType: rows[row, "auth_type"]!, isActive: rows[row, "is_active"] == "t", lastUsedAt: rows[row, "last_used"].flatMap { Int64($0) },
                lastError: rows[row, "last_error"], tokenExpiresAt: rows[row, "expires"].flatMap { Int64($0) },
                createdAt: Int64(rows[row, "created"]!) ?? 0, connectedBy: rows[row, "connected_by"], sites: Int(rows[row, "sites"]!) ?? 0)
        }
    }

    /// Deactivates the credential and overwrites its sealed value, so nothing can open it again;
    /// its sites stay (with their history), inactive with it. Returns the organisation it belonged
    /// to, or nil when there is no such credential.
    public func deleteCredential(id: Int64, organizationIDs: Set<Int64>) throws -> Int64? {
        try connection.transaction {
            let rows = try connection.query("""
                UPDATE integration_credential SET is_active = false, encrypted_credentials = '', token_expires_at = NULL,
                    last_error = 'deleted by the organisation', updated_at = now()
                WHERE id = $1 AND organization_id = ANY($2::bigint[]) RETURNING organization_id
                """, [String(id), "{" + organizationIDs.map(String.init).joined(separator: ",") + "}"])
            guard rows.count == 1 else { return nil }
            try connection.query("UPDATE integration_site SET is_active = false, last_sync_error = 'its credential was deleted' WHERE credential_id = $1",
                                 [String(id)])
            return Int64(rows[0, "organization_id"]!)
        }
    }
}
