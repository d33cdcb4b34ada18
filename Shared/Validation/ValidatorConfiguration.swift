import Core
import LambdaRuntime
import Store
import Vendors

/// A failure worth retrying (database unreachable, S3 throttling after retries, too little time):
/// the invocation fails, Lambda retries the event, and the object stays in `raw/`.
public struct TransientFailure: ReportableError, CustomStringConvertible {
    public var key: String
    public var reason: String
    public var errorType: String { "Validator.Transient" }
    public var description: String { "\(key): \(reason) (the file stays in raw/; the event will be retried)" }
}

/// Settings of the validator function.
public struct ValidatorConfiguration: Sendable {
    /// How to reach PostgreSQL (checked at start: a remote host needs verified TLS).
    public var database: DatabaseSettings
    /// Share of rejected rows above which the whole file is quarantined.
    public var rejectThreshold: Double
    public var limits = ValidationLimits()
    /// Where objects are downloaded (Lambda's /tmp).
    public var scratchDirectory: String
    /// The bucket events must name (S3 only); `nil` accepts any (the local lake).
    public var bucket: String?
    /// Violations kept in a report.
    public var maximumReportedViolations = 1000
    /// Violations kept in `ingestion_log.errors` for a quarantined file.
    public var maximumLoggedViolations = 100
    /// Time to keep in hand before starting a file: below it the invocation fails for a retry.
    public var minimumTimeLeft: Duration = .seconds(15)
    /// Rows per batch: one COPY each; two batches are read ahead.
    public var batchRows = 10_000
    /// The vendor envelopes it reads (fetchers' raw answers), with the zone database they convert
    /// local times with.
    public var transforms = VendorCatalog.transforms(zones: ZoneDatabase.standard())

    public init(database: DatabaseSettings, rejectThreshold: Double = 0.05, scratchDirectory: String = "/tmp", bucket: String? = nil) {
        self.database = database
        self.rejectThreshold = rejectThreshold
        self.scratchDirectory = scratchDirectory
        self.bucket = bucket
    }

    /// `DATABASE_URL` (with `METERLAKE_DATABASE_CA`: ``DatabaseSettings``), `METERLAKE_REJECT_THRESHOLD` (default 0.05), `METERLAKE_BUCKET` unless
    /// `METERLAKE_LAKE_DIR` is set, `METERLAKE_SCRATCH_DIR` (default /tmp); the zone database
    /// (`TZDIR`, the bundle's `zoneinfo`, `/usr/share/zoneinfo`) must be readable.
    public init(environment: Environment) throws(ConfigurationError) {
        let threshold = try environment.get("METERLAKE_REJECT_THRESHOLD", as: Double.self) ?? 0.05
        guard (0...1).contains(threshold) else {
            throw .invalid(name: "METERLAKE_REJECT_THRESHOLD", reason: "must be a share between 0 and 1")
        }
        self.init(
            database: try DatabaseSettings(environment: environment), rejectThreshold: threshold,
            scratchDirectory: environment["METERLAKE_SCRATCH_DIR"] ?? "/tmp",
            bucket: environment["METERLAKE_LAKE_DIR"] == nil ? environment["METERLAKE_BUCKET"] : nil)
        let zones = ZoneDatabase.standard(environment: environment)
        try zones.verify()
        transforms = VendorCatalog.transforms(zones: zones)
    }

    /// Whether a file whose load ended with `summary` is accepted: it has rows, and its share of
    /// rejected rows is at most the threshold (exactly the threshold is accepted).
    public func accepts(rowsProcessed: Int, rowsRejected: Int) -> Bool {
        rowsProcessed > 0 && Double(rowsRejected) / Double(rowsProcessed) <= rejectThreshold
    }
}
