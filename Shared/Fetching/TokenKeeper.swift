import Core
import HTTPClient
import Postgres
import Store
import Synchronization

/// An OAuth credential's plaintext: `access_token`, `refresh_token`, `expires_at`, and any other
/// members, which are kept as they are.
struct OAuthTokens {
    var members: [JSONMember]
    var access: String
    var refresh: String
    /// Unix seconds; `nil` when the plaintext names no expiry.
    var expiresAt: Int64?

    init(plaintext: [UInt8], vendor: String) throws(VendorError) {
        guard let value = try? JSONParser.parse(plaintext), case .object(let members) = value else {
            throw .credentialRefused("the stored \(vendor) credential is not a JSON object")
        }
        guard case .string(let access)? = value["access_token"], case .string(let refresh)? = value["refresh_token"], !refresh.isEmpty else {
            throw .credentialRefused("the stored \(vendor) credential lacks access_token or refresh_token")
        }
        self.members = members
        self.access = access
        self.refresh = refresh
        if case .string(let text)? = value["expires_at"], case .zoned(let seconds) = ISO8601.parse(text) { expiresAt = seconds }
    }

    /// The plaintext with new tokens, every other member kept.
    func replacing(access: String, refresh: String, expiresAt: Int64?) -> [UInt8] {
        var members = members.filter { !["access_token", "refresh_token", "expires_at"].contains($0.key) }
        members.insert(JSONMember("access_token", .string(access)), at: 0)
        members.insert(JSONMember("refresh_token", .string(refresh)), at: 1)
        if let expiresAt { members.insert(JSONMember("expires_at", .string(Timestamp.rfc3339(seconds: expiresAt, nanoseconds: 0, zoned: true))), at: 2) }
        return Array(JSONValue.object(members).serialized.utf8)
    }
}

/// Access tokens of a vendor's OAuth credentials, shared by the engine's workers.
///
/// A refresh token is single-use and rotates, so a refresh and the storing of its answer happen
/// under the credential's row lock (`SELECT … FOR UPDATE`), in one transaction with the token
/// call: the new tokens are sealed and committed before anyone could need the old ones again. A
/// second run racing for the same credential waits on the lock, then finds tokens newer than the
/// ones it had and uses them instead of spending the dead refresh token. `invalid_grant` (or any
/// 400/401 from the token endpoint) deactivates the credential: its owner must reconnect.
public final class TokenKeeper: Sendable {
    public let client: OAuthClient
    let database: DatabaseSettings
    let keys: EnvelopeKeys
    let caBundlePath: String?
    /// A token that expires within this is refreshed before use.
    let margin: Int64
    let clock: @Sendable () -> Int64
    private let known = Mutex<[Int64: (access: String, expiresAt: Int64?)]>([:])
    /// One refresh at a time in this process (other runs are held off by the row lock).
    private let refreshing = Mutex<Int>(0)

    public init(client: OAuthClient, database: DatabaseSettings, keys: EnvelopeKeys, caBundlePath: String?, margin: Int64 = 120,
                clock: @escaping @Sendable () -> Int64 = WallClock.milliseconds) {
        self.client = client
        self.database = database
        self.keys = keys
        self.caBundlePath = caBundlePath
        self.margin = margin
        self.clock = clock
    }

    /// Refreshes done by this process (for logs and tests).
    public var refreshes: Int { refreshing.withLock { $0 } }

    /// A token to call with: the newest this process knows, refreshed first when it expires within the margin.
    /// - Parameter timeLeft: The invocation's time left: a refresh is not started without enough
    ///   of it (one killed between the vendor's rotation and the commit would lose the new tokens).
    public func accessToken(credentialID: Int64, plaintext: [UInt8], timeLeft: Duration = .seconds(900)) throws(VendorError) -> String {
        let current: (access: String, expiresAt: Int64?)
        if let cached = known.withLock({ $0[credentialID] }) {
            current = cached
        } else {
            let tokens = try OAuthTokens(plaintext: plaintext, vendor: client.vendor)
            current = (tokens.access, tokens.expiresAt)
        }
        if let expiresAt = current.expiresAt, expiresAt - clock() / 1000 <= margin {
            return try refresh(credentialID: credentialID, stale: current.access, timeLeft: timeLeft)
        }
        return current.access
    }

    /// No refresh starts with less time than this left: the token call (at most 10 s), the lock
    /// wait (at most 5 s) and the commit must all fit.
    static let minimumTimeForRefresh: Duration = .seconds(35)

    /// A new access token, because `stale` expired or was refused (a 401); if another run
    /// refreshed meanwhile, its token.
    public func refresh(credentialID: Int64, stale: String, timeLeft: Duration = .seconds(900)) throws(VendorError) -> String {
        guard timeLeft >= Self.minimumTimeForRefresh else {
            throw .failed("\(client.vendor) token refresh: too little time left in the invocation to refresh safely; the next run does")
        }
        var outcome: Result<(access: String, expiresAt: Int64?), VendorError> = .failure(.failed("\(client.vendor) token refresh did not run"))
        // Tokens the vendor issued (its old refresh token now dead) that could not be committed.
        var issued: (old: String, sealed: String, access: String, expiresAt: Int64?)?
        do {
            try refreshing.withLock { (count: inout Int) throws in
                let connection = try database.connect()
                try Integrations(connection: connection).withLockedCredential(id: credentialID, lockTimeout: 5) { envelope, isActive in
                    guard isActive else {
                        outcome = .failure(.credentialRefused("the \(client.vendor) credential was deactivated: its owner must reconnect"))
                        return .none
                    }
                    let plaintext: [UInt8]
                    do { plaintext = try CredentialEnvelope.open(envelope, keys: keys) } catch {
                        outcome = .failure(.credentialRefused("the stored credential does not open: \(error)"))
                        return .none
                    }
                    let tokens: OAuthTokens
                    switch Result(catching: { () throws(VendorError) in try OAuthTokens(plaintext: plaintext, vendor: client.vendor) }) {
                    case .success(let read): tokens = read
                    case .failure(let error):
                        outcome = .failure(error)
                        return .none
                    }
                    let now = clock() / 1000
                    if tokens.access != stale, (tokens.expiresAt ?? Int64.max) - now > margin {
                        outcome = .success((tokens.access, tokens.expiresAt))  // another run refreshed it
                        return .none
                    }
                    count += 1
                    switch callTokenEndpoint(refreshToken: tokens.refresh, now: now) {
                    case .success(let fresh):
                        let sealed = try CredentialEnvelope.seal(
                            tokens.replacing(access: fresh.access, refresh: fresh.refresh ?? tokens.refresh, expiresAt: fresh.expiresAt), keys: keys)
                        issued = (envelope, sealed, fresh.access, fresh.expiresAt)
                        outcome = .success((fresh.access, fresh.expiresAt))
                        return .store(envelope: sealed, expiresAt: fresh.expiresAt)
                    case .failure(.credentialRefused(let reason)):
                        outcome = .failure(.credentialRefused(reason))
                        return .deactivate(reason: reason)
                    case .failure(let error):
                        // Nothing stored: the transaction rolls back, the old tokens stay.
                        throw error
                    }
                }
            }
        } catch {
            // The vendor rotated the tokens but the commit failed: they must not be lost. Keep them
            // for this process, and store them on a new connection unless another run changed the row.
            if let issued {
                known.withLock { $0[credentialID] = (issued.access, issued.expiresAt) }
                if (try? storeInDoubt(credentialID: credentialID, old: issued.old, sealed: issued.sealed, expiresAt: issued.expiresAt)) == true {
                    return issued.access
                }
                throw .failed("\(client.vendor) token refresh: the new tokens could not be stored (\(error)); this run keeps using them, but the owner may have to reconnect")
            }
            if let error = error as? VendorError { throw error }
            throw .failed("\(client.vendor) token refresh: the database failed: \(error)")
        }
        let fresh = try outcome.get()
        known.withLock { $0[credentialID] = fresh }
        return fresh.access
    }

    /// Stores tokens whose first commit failed, if the row still holds what was read under the lock.
    private func storeInDoubt(credentialID: Int64, old: String, sealed: String, expiresAt: Int64?) throws -> Bool {
        let connection = try database.connect()
        return try Integrations(connection: connection).replaceCredential(id: credentialID, expected: old, envelope: sealed, expiresAt: expiresAt)
    }

    /// One refresh-token grant. `invalid_grant` is a refusal (the owner must reconnect); any other
    /// answer that is not 200 (a wrong client secret: `invalid_client`; a 5xx) is a failure of this
    /// run, and deactivates nothing.
    private func callTokenEndpoint(refreshToken: String, now: Int64) -> Result<OAuthGrant, VendorError> {
        let redact = Redactor(secrets: [refreshToken, client.clientSecret])
        let request = client.tokenRequest([("grant_type", "refresh_token"), ("refresh_token", refreshToken)])
        let response: HTTPResponse
        do {
            response = try HTTPClient(configuration: .init(connectTimeout: .seconds(5), caBundlePath: caBundlePath)).send(request)
        } catch {
            return .failure(.failed(redact("\(client.vendor) token refresh: \(error)")))
        }
        switch client.grant(from: response, now: now) {
        case .success(let grant): return .success(grant)
        case .failure(let failure) where failure.code == "invalid_grant":
            return .failure(.credentialRefused("\(client.vendor) refused the refresh token (invalid_grant): the owner must reconnect the account"))
        case .failure(let failure) where failure.code.hasPrefix("HTTP 5") || failure.code == "no access_token":
            return .failure(.failed("\(client.vendor) token refresh: \(failure.code)"))
        case .failure(let failure):
            return .failure(.failed(redact("\(client.vendor) token refresh refused (\(failure.code)): check the application's client id and secret")))
        }
    }
}
