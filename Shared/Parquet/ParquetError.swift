/// Why a Parquet file cannot be read. Every message says what was wrong and where (footer, row
/// group, column, page offset), so a quarantine report can be acted on.
public enum ParquetError: Error, Equatable, Sendable, CustomStringConvertible {
    /// Not a Parquet file at all: too small, or the magic bytes are missing.
    case notParquet(String)
    /// A Parquet file whose bytes contradict themselves or the format.
    case malformed(String)
    /// A valid file that uses something this reader does not read (nested columns, encryption,
    /// a codec or encoding outside the supported set).
    case unsupported(String)
    /// A declared size or count above the configured ``ParquetLimits`` (a guard against
    /// allocation bombs).
    case limitExceeded(String)
    /// The file could not be read from its storage.
    case io(String)

    public var description: String {
        switch self {
        case .notParquet(let reason): "not a Parquet file: \(reason)"
        case .malformed(let reason): "malformed Parquet: \(reason)"
        case .unsupported(let reason): "unsupported Parquet feature: \(reason)"
        case .limitExceeded(let reason): "Parquet limit exceeded: \(reason)"
        case .io(let reason): "cannot read the Parquet file: \(reason)"
        }
    }

    /// The same error with `context` (where it happened) in front of its message.
    func located(_ context: String) -> ParquetError {
        switch self {
        case .notParquet(let reason): .notParquet(reason)
        case .malformed(let reason): .malformed("\(context): \(reason)")
        case .unsupported(let reason): .unsupported("\(context): \(reason)")
        case .limitExceeded(let reason): .limitExceeded("\(context): \(reason)")
        case .io(let reason): .io("\(context): \(reason)")
        }
    }
}

/// Caps on what a file may make the reader allocate. A declared size above a cap is refused
/// before any allocation; the defaults are generous for real writers (pyarrow writes 1 MiB pages,
/// Snowflake 128 MB row groups).
public struct ParquetLimits: Sendable, Equatable {
    /// The footer (FileMetaData).
    public var maximumFooterBytes = 16 * 1024 * 1024
    /// One page, compressed or not.
    public var maximumPageBytes = 64 * 1024 * 1024
    /// One column chunk as stored (read into memory whole).
    public var maximumChunkBytes: Int64 = 512 * 1024 * 1024
    /// Entries of one dictionary page.
    public var maximumDictionaryEntries = 16 * 1024 * 1024
    /// Rows in one row group: 16.7M, far above what writers put in one (pyarrow 1M, Snowflake
    /// and Spark fewer), and what a function reads through in seconds.
    public var maximumRowGroupRows: Int64 = 1 << 24
    /// Values one data page may declare. Every per-page allocation (levels, validity, dictionary
    /// indices, DELTA values, the values themselves) is at most this many elements, whatever a
    /// run-length encoding can claim in a few bytes. Writers cut pages at 20,000 rows (pyarrow,
    /// parquet-mr) or about 1 MB; a page of a million values is still read.
    public var maximumPageValues = 1 << 20
    /// Rows a file may declare per byte of its size, beyond a first `rowAllowance`: a reading
    /// takes several bytes even compressed, so a small file that claims millions of rows is a
    /// bomb (time, not memory), refused before any page is read.
    public var maximumRowsPerFileByte: Int64 = 2
    public var rowAllowance: Int64 = 1 << 20
    /// Cells (rows × columns) a file may declare per byte beyond a first `cellAllowance`: every
    /// cell costs the reader time even when all columns share one all-null page.
    public var maximumCellsPerFileByte: Int64 = 32
    public var cellAllowance: Int64 = 1 << 24
    /// One dictionary page, uncompressed (a dictionary is held for its whole row group).
    public var maximumDictionaryBytes = 16 * 1024 * 1024
    /// Bytes the current pages of all columns may hold together (one page per column is decoded
    /// at a time; a file of many columns with large pages is refused rather than exhausting memory).
    public var maximumBytesInFlight = 96 * 1024 * 1024
    /// Bytes one page's values may expand to (DELTA_BYTE_ARRAY repeats prefixes).
    public var maximumPageValueBytes = 256 * 1024 * 1024
    /// Leaf columns in the schema.
    public var maximumColumns = 4096
    /// Nesting of Thrift structures (Parquet metadata needs about 8).
    public var maximumThriftDepth = 48

    public init() {}
}
