import Core
import Postgres

/// A vendor credential as stored: sealed, never opened here.
public struct StoredCredential: Sendable, Equatable {
    public var id: Int64
    public var organizationID: Int64
    public var vendor: SourceSystem
    public var authType: String
    /// base64(nonce ‖ ciphertext ‖ tag), AES-256-GCM.
    public var envelope: String
    /// Unix seconds before which no call may use it (a vendor said "too many requests").
    public var rateLimitedUntil: Int64?
}

/// A site the fetchers keep in sync.
public struct IntegrationSite: Sendable, Equatable {
    public var id: Int64
    public var organizationID: Int64
    public var credentialID: Int64?
    public var externalSiteID: String
    public var name: String?
    public var timeZone: String
    public var isActive: Bool
    /// The end of its last fully fetched window, Unix seconds; `nil` when never synced.
    public var cursor: Int64?
    /// `vendor`, `configured`, `inferred` or `unknown`.
    public var timeZoneSource: String = "configured"
    /// Why the last sync failed, or why the site waits inactive.
    public var lastSyncError: String?
    /// The id the vendor now answers to, when it moved the site (SMA's 308); else `externalSiteID`.
    public var apiSiteID: String?
    /// What fetchers learnt of the site (`{"meter": "absent"}`): string members only.
    public var attributes: [String: String] = [:]
}

/// The outcome of one site's sync, as `integration_site.last_sync_status` records it.
public enum SyncStatus: String, Sendable, Codable, CaseIterable {
    case success, partial, rateLimited = "rate_limited", error, skipped
}

/// `integration_credential`, `integration_site` and `vendor_call_count`: what the fetchers and
/// the operator command read and write. All of their SQL lives here.
public struct Integrations {
    public let connection: PostgresConnection

    public init(connection: PostgresConnection) { self.connection = connection }

    // MARK: Credentials

    /// Stores a sealed credential, active; returns its id.
    public func addCredential(organizationID: Int64, vendor: SourceSystem, authType: String, envelope: String, tokenExpiresAt: Int64? = nil) throws -> Int64 {
        let rows = try connection.query("""
            INSERT INTO integration_credential (organization_id, data_source_id, auth_type, encrypted_credentials, token_expires_at)
            VALUES ($1, $2, $3, $4, to_timestamp($5::bigint)) RETURNING id
            """, [String(organizationID), String(vendor.id), authType, envelope, tokenExpiresAt.map(String.init)])
        return Int64(rows[0, "id"]!)!
    }

    /// Every active credential of a vendor, oldest first.
    public func activeCredentials(vendor: SourceSystem) throws -> [StoredCredential] {
        try credentials(where: "is_active AND data_source_id = $1", [String(vendor.id)])
    }

    public func credential(id: Int64) throws -> StoredCredential? {
        try credentials(where: "id = $1", [String(id)]).first
    }

    /// The organisation's active credentials of a vendor.
    public func activeCredentials(organizationID: Int64, vendor: SourceSystem) throws -> [StoredCredential] {
        try credentials(where: "is_active AND organization_id = $1 AND data_source_id = $2", [String(organizationID), String(vendor.id)])
    }

    private func credentials(where condition: String, _ parameters: [String?]) throws -> [StoredCredential] {
        let rows = try connection.query("""
            SELECT id, organization_id, data_source_id, auth_type, encrypted_credentials,
                   extract(epoch FROM rate_limited_until)::bigint AS rate_limited_until
            FROM integration_credential WHERE \(condition) ORDER BY id
            """, parameters)
        return (0..<rows.count).compactMap { row in
            guard let source = SourceSystem.allCases.first(where: { String($0.id) == rows[row, "data_source_id"] }) else { return nil }
            return StoredCredential(
                id: Int64(rows[row, "id"]!)!, organizationID: Int64(rows[row, "organization_id"]!)!, vendor: source,
                authType: rows[row, "auth_type"]!, envelope: rows[row, "encrypted_credentials"]!,
                rateLimitedUntil: rows[row, "rate_limited_until"].flatMap { Int64($0) })
        }
    }

    /// Records a use of the credential: `error` (already free of secrets) or a success.
    public func recordCredentialUse(id: Int64, error: String?) throws {
        try connection.query("""
            UPDATE integration_credential SET last_used_at = now(), last_error = $2, updated_at = now() WHERE id = $1
            """, [String(id), error])
    }

    /// No calls with this credential before `until` (Unix seconds).
    public func pauseCredential(id: Int64, until: Int64, reason: String) throws {
        try connection.query("""
            UPDATE integration_credential SET rate_limited_until = to_timestamp($2::bigint), last_error = $3, updated_at = now()
            WHERE id = $1
            """, [String(id), String(until), reason])
    }

    // MARK: Sites

    /// The credential's active sites, the longest unsynced first (never synced before all).
    public func activeSites(credentialID: Int64) throws -> [IntegrationSite] {
        try sites(where: "is_active AND credential_id = $1", [String(credentialID)])
    }

    /// Every site of the credential, active or not.
    public func sites(credentialID: Int64) throws -> [IntegrationSite] {
        try sites(where: "credential_id = $1", [String(credentialID)])
    }

    /// One site by its vendor id.
    public func site(organizationID: Int64, vendor: SourceSystem, externalSiteID: String) throws -> IntegrationSite? {
        try sites(where: "organization_id = $1 AND data_source_id = $2 AND external_site_id = $3",
                  [String(organizationID), String(vendor.id), externalSiteID]).first
    }

    private func sites(where condition: String, _ parameters: [String?]) throws -> [IntegrationSite] {
        let rows = try connection.query("""
            SELECT id, organization_id, credential_id, external_site_id, external_site_name, time_zone, is_active,
                   extract(epoch FROM sync_cursor)::bigint AS cursor, time_zone_source, last_sync_error, api_site_id,
                   vendor_attributes::text AS attributes
            FROM integration_site WHERE \(condition) ORDER BY sync_cursor NULLS FIRST, id
            """, parameters)
        return (0..<rows.count).map { row in
            IntegrationSite(
                id: Int64(rows[row, "id"]!)!, organizationID: Int64(rows[row, "organization_id"]!)!,
                credentialID: rows[row, "credential_id"].flatMap { Int64($0) }, externalSiteID: rows[row, "external_site_id"]!,
                name: rows[row, "external_site_name"], timeZone: rows[row, "time_zone"]!, isActive: rows[row, "is_active"] == "t",
                cursor: rows[row, "cursor"].flatMap { Int64($0) }, timeZoneSource: rows[row, "time_zone_source"]!,
                lastSyncError: rows[row, "last_sync_error"], apiSiteID: rows[row, "api_site_id"],
                attributes: Self.stringMembers(rows[row, "attributes"]))
        }
    }

    /// Registers a site the vendor listed, unless it is known already; true when it was new.
    /// A site without a zone is stored inactive (zone source `unknown`), with `lastSyncError` saying why.
    @discardableResult
    public func addDiscoveredSite(
        organizationID: Int64, vendor: SourceSystem, credentialID: Int64, externalSiteID: String, name: String?,
        timeZone: String?, zoneSource: String, inactiveReason: String? = nil
    ) throws -> Bool {
        try connection.query("""
            INSERT INTO integration_site (organization_id, credential_id, data_source_id, external_site_id, external_site_name,
                time_zone, time_zone_source, is_active, last_sync_error, discovered_at)
            VALUES ($1, $2, $3, $4, $5, coalesce($6, 'UTC'), $7, $8, $9, now())
            ON CONFLICT (organization_id, data_source_id, external_site_id) DO NOTHING
            RETURNING id
            """, [String(organizationID), String(credentialID), String(vendor.id), externalSiteID, name, timeZone,
                  inactiveReason == nil ? zoneSource : "unknown", inactiveReason == nil ? "true" : "false", inactiveReason]).count == 1
    }

    /// Registers or updates a site by hand (`meterlake site add`): active, with its zone (`nil`
    /// keeps the zone it has; callers refuse that for a site whose zone is unknown).
    public func upsertSite(
        organizationID: Int64, vendor: SourceSystem, credentialID: Int64, externalSiteID: String, timeZone: String?
    ) throws -> Int64 {
        let rows = try connection.query("""
            INSERT INTO integration_site (organization_id, credential_id, data_source_id, external_site_id, time_zone, time_zone_source, is_active)
            VALUES ($1, $2, $3, $4, coalesce($5, 'UTC'), 'configured', true)
            ON CONFLICT (organization_id, data_source_id, external_site_id) DO UPDATE SET
                credential_id = EXCLUDED.credential_id, is_active = true, last_sync_error = NULL, api_site_id = NULL,
                time_zone = coalesce($5, integration_site.time_zone),
                time_zone_source = CASE WHEN $5 IS NULL THEN integration_site.time_zone_source ELSE 'configured' END
            RETURNING id
            """, [String(organizationID), String(credentialID), String(vendor.id), externalSiteID, timeZone])
        return Int64(rows[0, "id"]!)!
    }

    /// Records a site's sync; `cursor` (Unix seconds) moves only when given.
    public func recordSync(siteID: Int64, status: SyncStatus, error: String?, cursor: Int64?) throws {
        try connection.query("""
            UPDATE integration_site SET last_sync_at = now(), last_sync_status = $2, last_sync_error = $3,
                sync_cursor = coalesce(to_timestamp($4::bigint), sync_cursor)
            WHERE id = $1
            """, [String(siteID), status.rawValue, error, cursor.map(String.init)])
    }

    /// Adds what a fetcher learnt of a site to its attributes.
    public func learn(siteID: Int64, attributes: [String: String]) throws {
        let members = attributes.sorted { $0.key < $1.key }.map { JSONMember($0.key, .string($0.value)) }
        try connection.query("UPDATE integration_site SET vendor_attributes = vendor_attributes || $2::jsonb WHERE id = $1",
                             [String(siteID), JSONValue.object(members).serialized])
    }

    static func stringMembers(_ text: String?) -> [String: String] {
        guard let text, case .object(let members)? = try? JSONParser.parse(Array(text.utf8)) else { return [:] }
        var result: [String: String] = [:]
        for member in members { if case .string(let value) = member.value { result[member.key] = value } }
        return result
    }

    /// Records the id a vendor moved a site to (it answered the old one with a redirect).
    public func moveSite(siteID: Int64, toAPIID apiID: String) throws {
        try connection.query("UPDATE integration_site SET api_site_id = $2 WHERE id = $1", [String(siteID), apiID])
    }

    // MARK: OAuth tokens

    /// Runs `body` with the credential's row locked (`SELECT … FOR UPDATE`) in a transaction:
    /// a second run refreshing the same credential waits here, then reads what the first stored.
    /// `body` gets the sealed envelope and whether the credential is active; what it returns is
    /// applied before the commit.
    /// - Parameter lockTimeout: Seconds to wait for the lock before failing (security.md: bounded waits).
    public func withLockedCredential(id: Int64, lockTimeout: Int = 5, _ body: (_ envelope: String, _ isActive: Bool) throws -> CredentialUpdate) throws {
        try connection.transaction {
            try connection.query("SELECT set_config('lock_timeout', $1, true)", ["\(max(1, lockTimeout))s"])
            let rows = try connection.query("SELECT encrypted_credentials, is_active FROM integration_credential WHERE id = $1 FOR UPDATE",
                                            [String(id)])
            guard rows.count == 1 else { throw IntegrationsError.noCredential(id) }
            switch try body(rows[0, "encrypted_credentials"]!, rows[0, "is_active"] == "t") {
            case .none:
                break
            case .store(let envelope, let expiresAt):
                try connection.query("""
                    UPDATE integration_credential SET encrypted_credentials = $2, token_expires_at = to_timestamp($3::bigint),
                        last_error = NULL, updated_at = now() WHERE id = $1
                    """, [String(id), envelope, expiresAt.map(String.init)])
            case .reseal(let envelope):
                try connection.query("UPDATE integration_credential SET encrypted_credentials = $2 WHERE id = $1", [String(id), envelope])
            case .deactivate(let reason):
                try connection.query("""
                    UPDATE integration_credential SET is_active = false, last_error = $2, updated_at = now() WHERE id = $1
                    """, [String(id), reason])
            }
        }
    }

    /// Replaces the sealed credential only if it still is `expected`; true when it was replaced.
    public func replaceCredential(id: Int64, expected: String, envelope: String, expiresAt: Int64?) throws -> Bool {
        try connection.query("""
            UPDATE integration_credential SET encrypted_credentials = $3, token_expires_at = to_timestamp($4::bigint), updated_at = now()
            WHERE id = $1 AND encrypted_credentials = $2 RETURNING id
            """, [String(id), expected, envelope, expiresAt.map(String.init)]).count == 1
    }

    // MARK: Key rotation

    /// Credential ids with a sealed value (deleted ones are wiped), from `after`, at most `limit`.
    public func sealedCredentialIDs(after: Int64, limit: Int) throws -> [Int64] {
        try connection.query("""
            SELECT id FROM integration_credential WHERE id > $1 AND encrypted_credentials <> '' ORDER BY id LIMIT $2
            """, [String(after), String(limit)]).rows.compactMap { $0[0].flatMap { Int64($0) } }
    }

    // MARK: Quota

    /// Calls counted so far for a quota scope on a UTC day (`YYYY-MM-DD`).
    public func calls(credentialID: Int64, scope: String, day: String) throws -> Int {
        let rows = try connection.query("SELECT calls FROM vendor_call_count WHERE credential_id = $1 AND scope = $2 AND day = $3::date",
                                        [String(credentialID), scope, day])
        return rows.count == 1 ? Int(rows[0, "calls"]!)! : 0
    }

    /// Every call of the credential in the UTC month of `day` (`YYYY-MM-DD`), all scopes.
    public func monthCalls(credentialID: Int64, day: String) throws -> Int {
        let rows = try connection.query("""
            SELECT coalesce(sum(calls), 0) AS calls FROM vendor_call_count
            WHERE credential_id = $1 AND day >= date_trunc('month', $2::date) AND day <= $2::date
            """, [String(credentialID), day])
        return Int(rows[0, "calls"]!)!
    }

    /// Every call of the credential on a UTC day, all scopes.
    public func dayCalls(credentialID: Int64, day: String) throws -> Int {
        let rows = try connection.query("SELECT coalesce(sum(calls), 0) AS calls FROM vendor_call_count WHERE credential_id = $1 AND day = $2::date",
                                        [String(credentialID), day])
        return Int(rows[0, "calls"]!)!
    }

    /// Adds `count` calls to a scope's day; returns the new total.
    @discardableResult
    public func countCalls(credentialID: Int64, scope: String, day: String, count: Int = 1) throws -> Int {
        let rows = try connection.query("""
            INSERT INTO vendor_call_count (credential_id, scope, day, calls) VALUES ($1, $2, $3::date, $4)
            ON CONFLICT (credential_id, scope, day) DO UPDATE SET calls = vendor_call_count.calls + EXCLUDED.calls
            RETURNING calls
            """, [String(credentialID), scope, day, String(count)])
        return Int(rows[0, "calls"]!)!
    }

    // MARK: Exclusion

    /// Takes the site for `seconds` unless another run holds it; returns its cursor as it is now
    /// (Unix seconds; `.some(nil)` when never synced), or `nil` when the site is taken.
    public func lease(siteID: Int64, seconds: Int) throws -> Int64?? {
        let rows = try connection.query("""
            UPDATE integration_site SET lease_until = now() + make_interval(secs => $2::int)
            WHERE id = $1 AND (lease_until IS NULL OR lease_until < now())
            RETURNING extract(epoch FROM sync_cursor)::bigint AS cursor
            """, [String(siteID), String(seconds)])
        guard rows.count == 1 else { return nil }
        return .some(rows[0, "cursor"].flatMap { Int64($0) })
    }

    public func release(siteID: Int64) throws {
        try connection.query("UPDATE integration_site SET lease_until = NULL WHERE id = $1", [String(siteID)])
    }
}

/// What a locked credential becomes (see ``Integrations/withLockedCredential(id:_:)``).
public enum CredentialUpdate: Sendable {
    /// Nothing changes (another run refreshed it already).
    case none
    /// New tokens, sealed; `expiresAt` (Unix seconds) mirrors the plaintext's `expires_at`.
    case store(envelope: String, expiresAt: Int64?)
    /// The owner must reconnect: inactive, with the reason.
    case deactivate(reason: String)
    /// The same plaintext sealed under another key (a key rotation): nothing else changes.
    case reseal(envelope: String)
}

public enum IntegrationsError: Error, Equatable, Sendable, CustomStringConvertible {
    case noCredential(Int64)
    case noOrganization(Int64)
    /// An OAuth flow may be completed only by the user who started it.
    case otherUser
    case tooManyFlows(Int)
    public var description: String {
        switch self {
        case .noCredential(let id): "credential \(id) does not exist"
        case .noOrganization(let id): "organisation \(id) does not exist"
        case .otherUser: "the connection was started by another user"
        case .tooManyFlows(let limit): "more than \(limit) connections were started in the last ten minutes"
        }
    }
}
