import Core
import Postgres

/// `oauth_pending`: the server side of every OAuth `state` issued, spent once, then completed once.
public struct OAuthPending {
    public let connection: PostgresConnection

    public init(connection: PostgresConnection) { self.connection = connection }

    /// How long a pending row can be spent: the state's life plus its allowed clock skew.
    public static let lifetimeSeconds = 660
    /// How long exchanged tokens wait for the user to complete the flow.
    public static let completionSeconds = 600
    /// Flows one user may start in ten minutes.
    public static let maximumFlowsPerUser = 20

    /// What a completion hands back.
    public struct Grant: Sendable, Equatable {
        public var organizationID: Int64
        public var vendor: SourceSystem
        public var envelope: String
        public var tokenExpiresAt: Int64?
    }

    /// Records a new state's nonce with its PKCE verifier; purges what is stale (rows older than
    /// a day, tokens nobody completed within ``completionSeconds``).
    /// - Throws: ``IntegrationsError/noOrganization(_:)`` when the organisation does not exist,
    ///   ``IntegrationsError/tooManyFlows(_:)`` when the user started too many flows lately.
    public func record(nonce: String, organizationID: Int64, vendor: SourceSystem, userID: String, codeVerifier: String) throws {
        try connection.query("DELETE FROM oauth_pending WHERE created_at < now() - interval '1 day'")
        try connection.query("""
            UPDATE oauth_pending SET sealed_grant = NULL WHERE sealed_grant IS NOT NULL AND exchanged_at < now() - make_interval(secs => $1::int)
            """, [String(Self.completionSeconds)])
        let recent = try connection.query("SELECT count(*) AS n FROM oauth_pending WHERE user_id = $1 AND created_at > now() - interval '10 minutes'",
                                          [userID])
        guard Int(recent[0, "n"]!)! < Self.maximumFlowsPerUser else { throw IntegrationsError.tooManyFlows(Self.maximumFlowsPerUser) }
        let rows = try connection.query("""
            INSERT INTO oauth_pending (nonce, organization_id, data_source_id, user_id, code_verifier)
            SELECT $1, id, $3, $4, $5 FROM organization WHERE id = $2
            RETURNING nonce
            """, [nonce, String(organizationID), String(vendor.id), userID, codeVerifier])
        guard rows.count == 1 else { throw IntegrationsError.noOrganization(organizationID) }
    }

    /// Spends the nonce (committed at once, before any vendor call): marks it used, wipes the
    /// stored verifier and returns it; `nil` when the nonce is unknown, already used, expired, or
    /// for another organisation or vendor. A concurrent callback with the same state waits on the
    /// row, then finds it used.
    public func consume(nonce: String, organizationID: Int64, vendor: SourceSystem) throws -> String? {
        let rows = try connection.query("""
            UPDATE oauth_pending p SET used_at = now(), code_verifier = ''
            FROM (SELECT nonce, code_verifier FROM oauth_pending
                  WHERE nonce = $1 AND organization_id = $2 AND data_source_id = $3 AND used_at IS NULL
                    AND created_at > now() - make_interval(secs => $4::int)
                  FOR UPDATE) spent
            WHERE p.nonce = spent.nonce
            RETURNING spent.code_verifier
            """, [nonce, String(organizationID), String(vendor.id), String(Self.lifetimeSeconds)])
        guard rows.count == 1 else { return nil }
        return rows[0, "code_verifier"]!
    }

    /// Keeps the exchanged tokens (sealed) until the flow is completed with the code whose SHA-256
    /// is `completionHash`.
    public func hold(nonce: String, envelope: String, tokenExpiresAt: Int64?, completionHash: String) throws {
        try connection.query("""
            UPDATE oauth_pending SET sealed_grant = $2, token_expires_at = to_timestamp($3::bigint), completion_hash = $4, exchanged_at = now()
            WHERE nonce = $1
            """, [nonce, envelope, tokenExpiresAt.map(String.init), completionHash])
    }

    /// Completes a flow, once: the tokens of the completion code whose SHA-256 is
    /// `completionHash`, if `userID` started that flow and it was exchanged within
    /// ``completionSeconds``. The tokens are wiped from the row. Run it in the transaction that
    /// stores the credential.
    /// - Throws: ``IntegrationsError/otherUser`` when another user started the flow (nothing changes).
    public func complete(completionHash: String, userID: String) throws -> Grant? {
        let rows = try connection.query("""
            SELECT nonce, organization_id, data_source_id, user_id, sealed_grant, extract(epoch FROM token_expires_at)::bigint AS expires
            FROM oauth_pending
            WHERE completion_hash = $1 AND completed_at IS NULL AND sealed_grant IS NOT NULL
              AND exchanged_at > now() - make_interval(secs => $2::int)
            FOR UPDATE
            """, [completionHash, String(Self.completionSeconds)])
        guard rows.count == 1 else { return nil }
        guard rows[0, "user_id"] == userID else { throw IntegrationsError.otherUser }
        try connection.query("UPDATE oauth_pending SET completed_at = now(), sealed_grant = NULL WHERE nonce = $1", [rows[0, "nonce"]!])
        guard let vendor = SourceSystem.allCases.first(where: { String($0.id) == rows[0, "data_source_id"] }) else { return nil }
        return Grant(organizationID: Int64(rows[0, "organization_id"]!)!, vendor: vendor, envelope: rows[0, "sealed_grant"]!,
                     tokenExpiresAt: rows[0, "expires"].flatMap { Int64($0) })
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
        try connection.query("SELECT pg_advisory_xact_lock(hashtextextended('connect:' || $1 || ':' || $2, 0))",
                             [String(organizationID), String(vendor.id)])
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
