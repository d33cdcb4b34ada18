import Core
import HTTPClient
import Postgres
import Store
import Vendors

/// What connecting a vendor account stored.
public struct Connection: Sendable, Equatable {
    public var credentialID: Int64
    /// Whether an existing credential of the organisation was replaced (a reconnect).
    public var replaced: Bool
    /// The sites the vendor listed (nil entries were refused ids), or nil when listing failed.
    public var sites: [RegisteredSite]?
    /// Why listing the sites failed (the credential is stored regardless; the next fetcher run lists them again).
    public var discoveryError: String?
}

/// Stores a newly connected vendor credential and registers the sites it sees: what the OAuth
/// callback and the ingest API's "paste your key" route share.
public struct Connector {
    public let driver: any VendorDriver
    public let database: DatabaseSettings
    public let keys: EnvelopeKeys
    public let zones: ZoneDatabase
    public let caBundlePath: String?

    public init(driver: any VendorDriver, database: DatabaseSettings, keys: EnvelopeKeys, zones: ZoneDatabase, caBundlePath: String?) {
        self.driver = driver
        self.database = database
        self.keys = keys
        self.zones = zones
        self.caBundlePath = caBundlePath
    }

    /// Seals `plaintext` and stores it as the organisation's credential of the vendor (replacing
    /// and reactivating an earlier one) on `connection`, inside the caller's transaction if any.
    public func store(plaintext: [UInt8], organizationID: Int64, authType: String, expiresAt: Int64?, connectedBy: String?,
                      on connection: PostgresConnection) throws -> (id: Int64, replaced: Bool) {
        let envelope = try CredentialEnvelope.seal(plaintext, keys: keys)
        return try Integrations(connection: connection).connect(
            organizationID: organizationID, vendor: driver.source, authType: authType, envelope: envelope, tokenExpiresAt: expiresAt,
            connectedBy: connectedBy)
    }

    /// Checks a pasted API-key credential with the vendor before anything is stored: lists the
    /// account's sites, or (a SolarEdge site key cannot list) reads `site`. Returns the sites and
    /// the calls made.
    /// - Throws: ``VendorError/credentialRefused(_:)`` when the vendor refuses the credential.
    public func check(plaintext: [UInt8], site: String?, timeLeft: @escaping () -> Duration,
                      now: @escaping () -> Int64 = WallClock.milliseconds) throws -> (sites: [DiscoveredSite], calls: Int) {
        let caller = VendorCaller(http: try HTTPClient(configuration: .init(connectTimeout: .seconds(5), caBundlePath: caBundlePath)),
                                  timeLeft: timeLeft)
        let session = try driver.session(SessionCredential(id: 0, plaintext: plaintext, tokens: nil), caller: caller, now: now)
        if let listed = try session.discover() { return (listed, caller.calls) }
        guard let site else {
            throw VendorError.credentialRefused("\(driver.source.rawValue) refused to list sites with this key: an invalid key, or a site key (then give the site's id as site_id)")
        }
        guard let found = try session.site(site) else { throw VendorError.credentialRefused("\(driver.source.rawValue) cannot read site \(site.prefix(40))") }
        return ([found], caller.calls)
    }

    /// Registers listed sites for a stored credential (``SiteRegistrar``) and counts the check's calls.
    public func register(_ listed: [DiscoveredSite], credentialID: Int64, organizationID: Int64, calls: Int,
                         on connection: PostgresConnection, now: Int64 = WallClock.milliseconds()) throws -> [RegisteredSite] {
        let integrations = Integrations(connection: connection)
        if calls > 0 {
            try integrations.countCalls(credentialID: credentialID, scope: "account", day: Timestamp.day(epochSeconds: now / 1000), count: calls)
        }
        return try SiteRegistrar(integrations: integrations, vendor: driver.source, zones: zones)
            .register(listed, credentialID: credentialID, organizationID: organizationID).compactMap { $0 }
    }

    /// Lists the credential's sites with the vendor and registers the new ones; the calls count
    /// against the credential's account budget like a fetcher's discovery.
    public func discover(credentialID: Int64, organizationID: Int64, plaintext: [UInt8], timeLeft: @escaping () -> Duration,
                         now: @escaping () -> Int64 = WallClock.milliseconds) throws -> (sites: [RegisteredSite]?, error: String?) {
        let connection = try database.connect()
        let integrations = Integrations(connection: connection)
        let tokens = driver.oauth.map { TokenKeeper(client: $0, database: database, keys: keys, caBundlePath: caBundlePath) }
        let caller = VendorCaller(http: try HTTPClient(configuration: .init(connectTimeout: .seconds(5), caBundlePath: caBundlePath)),
                                  timeLeft: timeLeft)
        if let perMinute = driver.callsPerMinute { caller.pacer = CallPacer(callsPerMinute: perMinute) }
        defer {
            if caller.calls > 0 {
                _ = try? integrations.countCalls(credentialID: credentialID, scope: "account", day: Timestamp.day(epochSeconds: now() / 1000),
                                                 count: caller.calls)
            }
        }
        do {
            let session = try driver.session(SessionCredential(id: credentialID, plaintext: plaintext, tokens: tokens), caller: caller, now: now)
            guard let listed = try session.discover() else { return (nil, nil) }
            let registered = try SiteRegistrar(integrations: integrations, vendor: driver.source, zones: zones)
                .register(listed, credentialID: credentialID, organizationID: organizationID)
            return (registered.compactMap { $0 }, nil)
        } catch let error as VendorError {
            return (nil, error.description)
        }
    }
}
