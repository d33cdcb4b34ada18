import Parquet

/// Every limit the readers and schema checks apply, in one value. The defaults are the product's;
/// a deployment or a test changes a copy.
public struct ValidationLimits: Sendable, Equatable {
    /// Allowed `reading_interval_seconds`.
    public var allowedIntervals: Set<Int> = [300, 900, 3600]
    /// Readings before this (Unix seconds) are rejected: 2000-01-01T00:00:00Z.
    public var earliestTimestamp: Int64 = 946_684_800
    /// How far ahead of "now" an interval may start.
    public var futureTolerance: Int64 = 86_400
    /// The largest plausible power of one device or site, W. Energy above this power for the
    /// whole interval is implausible.
    public var maximumPowerW: Double = 1_000_000_000
    public var irradianceRange: ClosedRange<Double> = 0...2000
    public var temperatureRange: ClosedRange<Double> = -60...100
    /// Longest site or device id, in bytes.
    public var maximumIdentifierBytes = 200
    /// One row's `other_metrics`: values (every member, element and nested value counts) and
    /// bytes (names and values, about as stored). A row over either is rejected, not the file.
    public var maximumOtherMetricsValues = 1024
    public var maximumOtherMetricsBytes = 64 * 1024
    /// Memory the in-file duplicate check may use (512 bytes per device and 14-day window). Past
    /// it, rows of windows it does not hold are checked by the database instead, exactly.
    public var maximumDuplicateTrackerBytes = 16 * 1024 * 1024
    /// A UTC offset (seconds) applied to naive timestamps of files that declare none; `nil` rejects them.
    public var defaultUTCOffset: Int?

    // MARK: Structure
    public var maximumFieldBytes = 64 * 1024
    public var maximumRecordBytes = 1024 * 1024
    public var maximumColumns = 256
    /// What a Parquet file may make the reader allocate (page, chunk, footer and dictionary caps).
    public var parquet = ParquetLimits()
    /// A Parquet file that is not read from disk (gzip-compressed) is held in memory up to this
    /// size. (JSON documents are streamed: only each reading is capped, by `maximumRecordBytes`.)
    public var maximumDocumentBytes = 256 * 1024 * 1024
    public var maximumNestingDepth = 64
    /// How far a JSON document's window reads ahead before parsing a value: a tuning, not a guard
    /// (a longer value is parsed again once more is read). The fuzz target makes it small, so that
    /// the window drops its front far more often than real files make it.
    public var jsonReadAheadBytes = 64 * 1024
    /// A vendor envelope's answers are held whole until its transform joins them (a month of
    /// SolarEdge quarter hours with sensors is under 1 MB): this caps their bytes, and so the
    /// parsed tree (about 30 bytes of tree per byte of the densest JSON: 8 MiB stays under 300 MB).
    public var maximumVendorAnswerBytes = 8 * 1024 * 1024
    /// Decompressed bytes allowed from one gzip file.
    public var maximumDecompressedBytes: Int64 = 16 * 1024 * 1024 * 1024
    /// Decompressed/compressed ratio above which a gzip file counts as a bomb (checked past 1 MiB).
    public var maximumCompressionRatio: Int64 = 1000

    public init() {}

    /// The step that every allowed interval is a multiple of (the duplicate check's slot size).
    var slotSeconds: Int64 {
        func gcd(_ a: Int, _ b: Int) -> Int { b == 0 ? a : gcd(b, a % b) }
        return Int64(max(1, allowedIntervals.reduce(0, gcd)))
    }
}
