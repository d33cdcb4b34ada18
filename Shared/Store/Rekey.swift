import Core
import Postgres

/// What a key rotation pass did.
public struct RekeySummary: Sendable, Equatable {
    public var resealed = 0
    public var alreadyCurrent = 0
    /// Sealed with neither key: left as they are (named by id).
    public var unopenable: [Int64] = []
    /// Rows another run held past the lock timeout: left for the next pass.
    public var busy: [Int64] = []
    /// Credentials still sealed under the previous key after the pass.
    public var remainingUnderPrevious = 0

    public init() {}
}

/// Re-seals every stored credential under the current key (`METERLAKE_ENCRYPTION_KEY`), opening
/// it with the previous one (`METERLAKE_ENCRYPTION_KEY_PREVIOUS`), one row at a time under its
/// row lock — the lock a token refresh takes — so a refreshed token is never overwritten by a
/// stale re-seal: the plaintext re-sealed is the one read under the lock.
public struct CredentialRekey {
    public let connection: PostgresConnection
    public let keys: EnvelopeKeys

    public init(connection: PostgresConnection, keys: EnvelopeKeys) {
        self.connection = connection
        self.keys = keys
    }

    public func run(batchSize: Int = 100) throws -> RekeySummary {
        let integrations = Integrations(connection: connection)
        var summary = RekeySummary()
        var after: Int64 = 0
        while true {
            let ids = try integrations.sealedCredentialIDs(after: after, limit: batchSize)
            guard let last = ids.last else { break }
            after = last
            for id in ids {
                do {
                    try integrations.withLockedCredential(id: id, lockTimeout: 5) { envelope, _ in
                        guard !envelope.isEmpty else { return .none }
                        let opened: (plaintext: [UInt8], previousKey: Bool)
                        do { opened = try CredentialEnvelope.openNamingKey(envelope, keys: keys) } catch {
                            summary.unopenable.append(id)
                            return .none
                        }
                        guard opened.previousKey else {
                            summary.alreadyCurrent += 1
                            return .none
                        }
                        summary.resealed += 1
                        return .reseal(envelope: try CredentialEnvelope.seal(opened.plaintext, keys: keys))
                    }
                } catch let error as PostgresError where error.description.contains("55P03") {
                    summary.busy.append(id)  // lock timeout: a refresh holds it; the next pass takes it
                } catch IntegrationsError.noCredential {
                    continue  // deleted since it was listed
                }
            }
        }
        // What still needs the previous key (rows the pass could not take, or sealed since by an
        // old process): zero means the previous key can be retired.
        var remaining = 0
        after = 0
        while true {
            let rows = try connection.query("""
                SELECT id, encrypted_credentials FROM integration_credential WHERE id > $1 AND encrypted_credentials <> '' ORDER BY id LIMIT 500
                """, [String(after)])
            guard rows.count > 0 else { break }
            for row in rows.rows {
                after = Int64(row[0]!)!
                if (try? CredentialEnvelope.openNamingKey(row[1]!, keys: keys))?.previousKey == true { remaining += 1 }
            }
        }
        summary.remainingUnderPrevious = remaining
        return summary
    }
}
