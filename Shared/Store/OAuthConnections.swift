import Core
import Postgres

/// `oauth_pending`: the server side of every OAuth `state` issued, spent once.
public struct OAuthPending {
    public let connection: PostgresConnection

    public init(connection: PostgresConnection) { self.connection = connection }

    /// How long a pending row can be spent: the state's life plus its allowed clock skew.
    public static let lifetimeSeconds = 660

    /// Records a new state's nonce with its PKCE verifier; purges rows older than a day.
    /// - Throws: ``IntegrationsError/noOrganization(_:)`` when the organisation does not exist.
    public func record(nonce: String, organizationID: Int64, vendor: SourceSystem, userID: String, codeVerifier: String) throws {
        try connection.query("DELETE FROM oauth_pending WHERE created_at < now() - interval '1 day'")
        let rows = try connection.query("""
            INSERT INTO oauth_pending (nonce, organization_id, data_source_id, user_id, code_verifier)
            SELECT $1, id, $3, $4, $5 FROM organization WHERE id = $2
            RETURNING nonce
            """, [nonce, String(organizationID), String(vendor.id), userID, codeVerifier])
        guard rows.count == 1 else { throw IntegrationsError.noOrganization(organizationID) }
    }

    /// Spends the nonce: marks it used and returns who started the flow and the PKCE verifier;
    /// `nil` when it is unknown, already used, expired, or for another organisation or vendor.
    /// Run it in the transaction that stores the credential: a concurrent callback with the same
    /// state waits on the row, then finds it used.
    public func consume(nonce: String, organizationID: Int64, vendor: SourceSystem) throws -> (userID: String, codeVerifier: String)? {
        let rows = try connection.query("""
            UPDATE oauth_pending SET used_at = now()
            WHERE nonce = $1 AND organization_id = $2 AND data_source_id = $3 AND used_at IS NULL
              AND created_at > now() - make_interval(secs => $4::int)
            RETURNING user_id, code_verifier
            """, [nonce, String(organizationID), String(vendor.id), String(Self.lifetimeSeconds)])
        guard rows.count == 1 else { return nil }
        return (rows[0, "user_id"]!, rows[0, "code_verifier"]!)
    }
}

extension Integrations {
    /// Stores a newly connected credential as the organisation's one credential of that vendor and
    /// auth type: the existing row (the newest, active or not) gets the new sealed value and is
    /// reactivated, its pause and last error cleared, so its sites keep pointing at it; without one,
    /// a row is inserted. Concurrent connects for the same organisation and vendor are serialised.
    /// - Returns: the credential's id and whether it replaced an existing one.
    public func connect(organizationID: Int64, vendor: SourceSystem, authType: String, envelope: String, tokenExpiresAt: Int64?,
                        connectedBy: String?) throws -> (id: Int64, replaced: Bool) {
        // One connect at a time per (organisation, vendor), across processes, for this transaction.
        try connection.query("SELECT pg_advisory_xact_lock($1::bigint)", [String(organizationID * 16 + Int64(vendor.id))])
        let existing = try connection.query("""
            SELECT id FROM integration_credential WHERE organization_id = $1 AND data_source_id = $2 AND auth_type = $3
            ORDER BY is_active DESC, id DESC LIMIT 1 FOR UPDATE
            """, [String(organizationID), String(vendor.id), authType])
        if existing.count == 1, let id = Int64(existing[0, "id"]!) {
            try connection.query("""
                UPDATE integration_credential SET encrypted_credentials = $2, token_expires_at = to_timestamp($3::bigint), is_active = true,
                    last_error = NULL, rate_limited_until = NULL, connected_by = $4, updated_at = now()
                WHERE id = $1
                """, [String(id), envelope, tokenExpiresAt.map(String.init), connectedBy])
            return (id, true)
        }
        let rows = try connection.query("""
            INSERT INTO integration_credential (organization_id, data_source_id, auth_type, encrypted_credentials, token_expires_at, connected_by)
            VALUES ($1, $2, $3, $4, to_timestamp($5::bigint), $6) RETURNING id
            """, [String(organizationID), String(vendor.id), authType, envelope, tokenExpiresAt.map(String.init), connectedBy])
        return (Int64(rows[0, "id"]!)!, false)
    }
}
