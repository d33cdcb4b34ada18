import Core
import Lake
import Store

/// Settings of a fetcher function.
public struct FetcherConfiguration: Sendable {
    public var database: DatabaseSettings
    public var keys: EnvelopeKeys
    /// The vendor's base URL (`SOLAREDGE_API_BASE_URL`, `GOODWE_API_BASE_URL`).
    public var baseURL: String
    /// A scheduled run re-fetches this much before the site's cursor, so late data lands.
    public var overlap: Int64 = 3600
    /// The most one scheduled run fetches for a site that is far behind; later runs continue.
    public var maximumBacklog: Int64 = 31 * 86_400
    /// No new site or window is started with less time than this left in the invocation.
    public var minimumTimeLeft: Duration = .seconds(20)
    public var retry = RetryPolicy()
    /// Sites fetched at once (capped by the vendor's ``VendorDriver/maximumConcurrency``).
    public var concurrency = 3
    public var caBundlePath: String?
    /// The IANA zone database (sites' local days, the vendors' local wall times).
    public var zones = ZoneDatabase.standard()

    public init(database: DatabaseSettings, keys: EnvelopeKeys, baseURL: String) {
        self.database = database
        self.keys = keys
        self.baseURL = baseURL
    }

    /// `DATABASE_URL`, `METERLAKE_ENCRYPTION_KEY` (`_PREVIOUS`), the vendor's base URL variable
    /// (else `defaultBaseURL`), `METERLAKE_FETCH_OVERLAP_MINUTES` (60), `METERLAKE_FETCH_BACKLOG_DAYS`
    /// (31), `METERLAKE_FETCH_MIN_TIME_LEFT_SECONDS` (20), `METERLAKE_FETCH_RETRIES` (3 tries),
    /// `METERLAKE_FETCH_CONCURRENCY` (3, capped by the vendor's limit),
    /// `METERLAKE_CA_BUNDLE`; the zone database must be readable (``ZoneDatabase/standard(environment:)``).
    public init(environment: Environment, baseURLVariable: String, defaultBaseURL: String) throws(ConfigurationError) {
        let base = environment[baseURLVariable] ?? defaultBaseURL
        guard base.hasPrefix("https://") || base.hasPrefix("http://") else {
            throw .invalid(name: baseURLVariable, reason: "must start with https:// (or http:// for a local fake)")
        }
        self.init(database: try DatabaseSettings(environment: environment), keys: try EnvelopeKeys(environment: environment), baseURL: base)
        if let minutes = try environment.get("METERLAKE_FETCH_OVERLAP_MINUTES", as: Int.self) {
            guard (0...10_080).contains(minutes) else { throw .invalid(name: "METERLAKE_FETCH_OVERLAP_MINUTES", reason: "must be 0…10080") }
            overlap = Int64(minutes) * 60
        }
        if let days = try environment.get("METERLAKE_FETCH_BACKLOG_DAYS", as: Int.self) {
            guard (1...366).contains(days) else { throw .invalid(name: "METERLAKE_FETCH_BACKLOG_DAYS", reason: "must be 1…366") }
            maximumBacklog = Int64(days) * 86_400
        }
        if let seconds = try environment.get("METERLAKE_FETCH_MIN_TIME_LEFT_SECONDS", as: Int.self) {
            guard (0...600).contains(seconds) else { throw .invalid(name: "METERLAKE_FETCH_MIN_TIME_LEFT_SECONDS", reason: "must be 0…600") }
            minimumTimeLeft = .seconds(seconds)
        }
        if let workers = try environment.get("METERLAKE_FETCH_CONCURRENCY", as: Int.self) {
            guard (1...16).contains(workers) else { throw .invalid(name: "METERLAKE_FETCH_CONCURRENCY", reason: "must be 1…16") }
            concurrency = workers
        }
        if let tries = try environment.get("METERLAKE_FETCH_RETRIES", as: Int.self) {
            guard (1...10).contains(tries) else { throw .invalid(name: "METERLAKE_FETCH_RETRIES", reason: "must be 1…10") }
            retry.attempts = tries
        }
        caBundlePath = S3Configuration.caBundle(environment: environment)
        zones = ZoneDatabase.standard(environment: environment)
        try zones.verify()
    }
}

extension Environment {
    /// A base URL variable (https://, or http:// for a local fake), or its default.
    public func url(_ name: String, default fallback: String) throws(ConfigurationError) -> String {
        let value = self[name] ?? fallback
        guard value.hasPrefix("https://") || value.hasPrefix("http://") else {
            throw .invalid(name: name, reason: "must start with https:// (or http:// for a local fake)")
        }
        return value
    }
}
