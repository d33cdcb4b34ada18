import Parquet

/// One rule a row broke, with where and what: the file's line, the data row, the column and the
/// offending value (each of these two cut to 100 characters).
public struct SchemaViolation: Equatable, Sendable, CustomStringConvertible {
    /// Stable codes: reports, dashboards and tests match on them.
    public enum Code: String, Sendable, CaseIterable {
        case missingValue = "missing_value"
        case invalidNumber = "invalid_number"
        case notFinite = "not_finite"
        case invalidTimestamp = "invalid_timestamp"
        case naiveTimestamp = "naive_timestamp"
        case timestampTooEarly = "timestamp_too_early"
        case timestampInFuture = "timestamp_in_future"
        case misalignedTimestamp = "misaligned_timestamp"
        case invalidInterval = "invalid_interval"
        case negativeValue = "negative_value"
        case implausibleValue = "implausible_value"
        case outOfRange = "out_of_range"
        case invalidQuality = "invalid_quality"
        case invalidIdentifier = "invalid_identifier"
        case invalidType = "invalid_type"
        case invalidUTCOffset = "invalid_utc_offset"
        case wrongColumnCount = "wrong_column_count"
        case duplicateReading = "duplicate_reading"
        case invalidMetric = "invalid_metric"
    }

    public var code: Code
    /// The line in the file (CSV, NDJSON) or the element's line (JSON) where the row starts;
    /// 0 for Parquet, which has rows but no lines.
    public var line: Int
    /// The 1-based data row (header excluded).
    public var row: Int
    public var column: String
    public var value: String
    public var message: String

    public init(_ code: Code, line: Int, row: Int, column: String, value: String, message: String) {
        self.code = code
        self.line = line
        self.row = row
        // A column's name comes from the file too (a header, a JSON key): cut like the value.
        self.column = Self.cut(column)
        self.value = Self.cut(value)
        self.message = message
    }

    /// At most 100 characters, with `…` when cut (checked on UTF-8 first: a long text is not
    /// counted character by character).
    static func cut(_ text: String) -> String {
        guard text.utf8.count > 100, text.count > 100 else { return text }
        return String(text.prefix(100)) + "…"
    }

    public var description: String {
        "\(line > 0 ? "line \(line), " : "")row \(row), column \(column), value \"\(value)\": \(message) [\(code.rawValue)]"
    }
}

/// A file that cannot be read as a whole: nothing from it may load. Each case says where.
public enum FileFormatError: Error, Equatable, Sendable, CustomStringConvertible, ReportableError {
    case invalidUTF8(line: Int)
    case unterminatedQuote(line: Int)
    case strayQuote(line: Int, column: Int)
    case fieldTooLong(line: Int, limit: Int)
    case recordTooLong(line: Int, limit: Int)
    case tooManyColumns(line: Int, count: Int, limit: Int)
    case columnCountMismatch(line: Int, expected: Int, actual: Int)
    case missingHeader
    case emptyHeader(column: Int)
    case duplicateHeader(name: String)
    case missingColumns([String])
    /// Required columns missing from a Parquet file whose columns all have generic names.
    case missingColumnsGenericNames([String])
    /// The Parquet reader refused the file (malformed, unsupported or over a limit).
    case parquet(ParquetError)
    case invalidJSON(JSONSyntaxError)
    case notAReading(line: Int, reason: String)
    case documentTooLarge(limit: Int)
    case notAnEnvelope(reason: String)
    case decompressedTooLarge(limit: Int64)
    case compressionRatio(limit: Int64)
    case corruptCompression(reason: String)
    case unsupportedFormat(String)
    case unreadable(reason: String)

    public var errorType: String { "File.Invalid" }

    public var description: String {
        switch self {
        case .invalidUTF8(let line): "line \(line): not valid UTF-8"
        case .unterminatedQuote(let line): "the quoted field that starts on line \(line) is never closed"
        case .strayQuote(let line, let column): "line \(line), field \(column): a quote inside an unquoted field"
        case .fieldTooLong(let line, let limit): "line \(line): a field longer than \(limit) bytes"
        case .recordTooLong(let line, let limit): "line \(line): a record longer than \(limit) bytes"
        case .tooManyColumns(let line, let count, let limit): "line \(line): \(count) columns, more than the limit of \(limit)"
        case .columnCountMismatch(let line, let expected, let actual): "line \(line): \(actual) fields, the header has \(expected)"
        case .missingHeader: "the file is empty: no header row"
        case .emptyHeader(let column): "header column \(column) has no name"
        case .duplicateHeader(let name): "column \"\(name)\" appears twice in the header (names are case-insensitive)"
        case .missingColumns(let names): "required columns missing: \(names.joined(separator: ", "))"
        case .missingColumnsGenericNames(let names):
            "required columns missing: \(names.joined(separator: ", ")); the columns have generic names (_COL_0, …): unload from Snowflake with HEADER = TRUE"
        case .parquet(let error): error.description
        case .invalidJSON(let error): error.description
        case .notAReading(let line, let reason): "line \(line): \(reason)"
        case .documentTooLarge(let limit): "the JSON document is larger than \(limit) bytes; use NDJSON for large files"
        case .notAnEnvelope(let reason): "the JSON document is neither an array of readings nor a fetcher envelope: \(reason)"
        case .decompressedTooLarge(let limit): "decompressed data exceeds \(limit) bytes"
        case .compressionRatio(let limit): "the compression ratio exceeds \(limit):1 (a decompression bomb?)"
        case .corruptCompression(let reason): "corrupt gzip data: \(reason)"
        case .unsupportedFormat(let what): "unsupported format: \(what)"
        case .unreadable(let reason): "the file cannot be read: \(reason)"
        }
    }
}
