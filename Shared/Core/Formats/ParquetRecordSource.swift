import Parquet

/// Parquet files of the upload format (docs/file-format.md, "Parquet"): columns are matched to
/// the canonical fields by name, case-insensitively (Snowflake upper-cases names); other columns
/// become `other_metrics` members. Rows are read row group by row group, page by page: memory
/// holds one row group's stored column chunks and one decoded page per column.
public final class ParquetRecordSource: RecordSource {
    private let file: ParquetFile
    private var columns: [Column]
    private var group = -1
    private var rowsLeftInGroup = 0
    private var row = 0
    /// What the columns' current pages and dictionaries may hold together (``ParquetLimits``).
    private let maximumBytesInFlight: Int
    /// What the columns' current pages and dictionaries hold (``ColumnPage/bytesHeld``).
    private var bytesInFlight = 0

    private struct Column {
        let index: Int
        let name: String
        let target: Target
        let conversion: Conversion
        var reader: ColumnChunkReader?
        var page: ColumnPage?
        /// What the reader's dictionary holds, as last counted in ``bytesInFlight``.
        var dictionaryBytes = 0
        var rowInPage = 0
        var valueInPage = 0
    }

    private enum Target {
        case canonical(CanonicalField)
        case extra(String)
    }

    /// How a stored value becomes a field, from the column's physical and logical type.
    private enum Conversion {
        /// UTF-8 text; `hex` renders fixed-length bytes (a UUID, a hash) as lower-case hex.
        case text, hex, signed, unsigned, real, boolean, timeOfDay
        case decimal(scale: Int)
        case timestamp(nanosecondsPerUnit: Int64, zoned: Bool)
        case date, int96
    }

    public init(input: any RandomAccessInput, limits: ValidationLimits) throws(FileFormatError) {
        maximumBytesInFlight = limits.parquet.maximumBytesInFlight
        do {
            file = try ParquetFile(input: input, limits: limits.parquet)
        } catch {
            throw .parquet(error)
        }
        var seen: [String: String] = [:]
        var columns: [Column] = []
        for (index, column) in file.columns.enumerated() {
            let folded = column.name.lowercased()
            if let earlier = seen[folded] { throw .duplicateHeader(name: earlier == column.name ? column.name : "\(earlier)\" and \"\(column.name)") }
            seen[folded] = column.name
            let target: Target = CanonicalField(header: column.name).map(Target.canonical) ?? .extra(column.name)
            columns.append(Column(index: index, name: column.name, target: target, conversion: try Self.conversion(for: column)))
        }
        let present = Set(columns.compactMap { if case .canonical(let field) = $0.target { field } else { nil } })
        let missing = CanonicalField.required.filter { !present.contains($0) }.map(\.name)
        if !missing.isEmpty {
            // Snowflake's HEADER = FALSE writes generic names: say what to change.
            if !file.columns.isEmpty, file.columns.allSatisfy({ Self.isGenericName($0.name) }) {
                throw .missingColumnsGenericNames(missing)
            }
            throw .missingColumns(missing)
        }
        self.columns = columns
    }

    /// `_COL_0`, `col1`: the names Snowflake writes when an unload has no `HEADER = TRUE`.
    static func isGenericName(_ name: String) -> Bool {
        let lowered = name.lowercased()
        let digits = lowered.hasPrefix("_col_") ? lowered.dropFirst(5) : lowered.hasPrefix("col") ? lowered.dropFirst(3) : ""
        return !digits.isEmpty && digits.allSatisfy(\.isASCII) && digits.allSatisfy(\.isNumber)
    }

    private static func conversion(for column: ParquetColumn) throws(FileFormatError) -> Conversion {
        switch (column.physicalType, column.logicalType) {
        case (_, .decimal(let scale, _)): return .decimal(scale: scale)
        case (.byteArray, _): return .text
        case (.fixedLenByteArray, _): return .hex
        case (.boolean, _): return .boolean
        case (.float, _), (.double, _): return .real
        case (.int96, _): return .int96
        case (_, .date): return .date
        case (_, .time): return .timeOfDay
        case (_, .timestamp(let unit, let utc)):
            let perUnit: Int64 = switch unit {
            case .millis: 1_000_000
            case .micros: 1_000
            case .nanos: 1
            }
            return .timestamp(nanosecondsPerUnit: perUnit, zoned: utc)
        case (_, .integer(_, false)): return .unsigned
        default: return .signed
        }
    }

    public func next() throws(FileFormatError) -> RawRecord? {
        while rowsLeftInGroup == 0 {
            group += 1
            guard group < file.rowGroupCount else { return nil }
            rowsLeftInGroup = Int(file.rowCount(ofRowGroup: group))
            guard rowsLeftInGroup > 0 else { continue }
            for index in columns.indices {
                do {
                    columns[index].reader = try file.columnChunk(rowGroup: group, column: columns[index].index)
                } catch {
                    throw .parquet(error)
                }
                columns[index].page = nil
                columns[index].dictionaryBytes = 0
            }
            bytesInFlight = 0
        }
        rowsLeftInGroup -= 1
        row += 1
        var raw = RawRecord(line: 0, row: row)
        for index in columns.indices {
            let value = try nextValue(&columns[index])
            switch columns[index].target {
            case .canonical(let field):
                raw[field] = try convert(value, columns[index])
            case .extra(let name):
                if let member = try extra(value, columns[index]) { raw.extras.append(JSONMember(name, member)) }
            }
        }
        return raw
    }

    /// The column's value for the current row, moving to its next page when one runs out.
    private func nextValue(_ column: inout Column) throws(FileFormatError) -> ParquetValue {
        while column.page == nil || column.rowInPage == column.page!.rowCount {
            let page: ColumnPage?
            do { page = try column.reader?.nextPage() } catch { throw .parquet(error) }
            guard let page else { throw .parquet(.malformed("column \"\(column.name)\" ends before row \(row)")) }
            // One page per column is held at a time, and each column's dictionary for the row
            // group: together they must fit the budget.
            let dictionary = column.reader?.dictionaryBytesHeld ?? 0
            bytesInFlight += page.bytesHeld - (column.page?.bytesHeld ?? 0) + dictionary - column.dictionaryBytes
            column.dictionaryBytes = dictionary
            guard bytesInFlight <= maximumBytesInFlight else {
                throw .parquet(.limitExceeded(
                    "row \(row): the current pages of all columns hold \(bytesInFlight) bytes, more than the limit of "
                        + "\(maximumBytesInFlight) (column \"\(column.name)\")"))
            }
            column.page = page
            column.rowInPage = 0
            column.valueInPage = 0
        }
        let page = column.page!
        defer { column.rowInPage += 1 }
        if let validity = page.validity, !validity[column.rowInPage] { return .null }
        defer { column.valueInPage += 1 }
        return page.values.value(at: column.valueInPage)
    }

    private func text(_ bytes: ArraySlice<UInt8>, _ column: Column) throws(FileFormatError) -> String {
        guard let text = Text.string(bytes) else {
            throw .parquet(.malformed("row \(row), column \"\(column.name)\": a string that is not valid UTF-8"))
        }
        return text
    }

    /// A canonical field's value.
    private func convert(_ value: ParquetValue, _ column: Column) throws(FileFormatError) -> RawField? {
        switch (value, column.conversion) {
        case (.null, _): return nil
        case (.bytes(let bytes), .text): return .text(try text(bytes, column))
        case (.bytes(let bytes), .hex):
            let digits = Array("0123456789abcdef".utf8)
            return .text(String(decoding: bytes.flatMap { [digits[Int($0 >> 4)], digits[Int($0 & 15)]] }, as: UTF8.self))
        case (.boolean(let flag), _): return .json(.bool(flag))
        case (.float(let number), _): return .number(Double(number))
        case (.double(let number), _): return .number(number)
        case (_, .decimal(let scale)):
            let unscaled = try self.unscaled(value, column)
            if scale == 0, let whole = Int64(exactly: unscaled) { return .integer(whole) }
            return .number(Double(unscaled) / Self.powerOfTen(scale))
        case (.int32(let number), .unsigned): return .integer(Int64(UInt32(bitPattern: number)))
        case (.int64(let number), .unsigned): return number >= 0 ? .integer(number) : .number(Double(UInt64(bitPattern: number)))
        case (.int32(let days), .date): return .timestamp(seconds: Int64(days) * 86_400, nanoseconds: 0, zoned: false)
        case (.int64(let count), .timestamp(let perUnit, let zoned)):
            let (nanoseconds, overflow) = count.multipliedReportingOverflow(by: perUnit)
            guard !overflow else {
                // Beyond 1677…2262 in nanoseconds: whole seconds still fit.
                let perSecond = 1_000_000_000 / perUnit
                let (seconds, rest) = Timestamp.floorDivide(count, perSecond)
                return .timestamp(seconds: seconds, nanoseconds: Int32(rest * perUnit), zoned: zoned)
            }
            let (seconds, rest) = Timestamp.floorDivide(nanoseconds, 1_000_000_000)
            return .timestamp(seconds: seconds, nanoseconds: Int32(rest), zoned: zoned)
        case (.int96(let stamp), _):
            guard let nanoseconds = stamp.unixNanoseconds else {
                throw .parquet(.malformed("row \(row), column \"\(column.name)\": an INT96 timestamp out of range"))
            }
            let (seconds, rest) = Timestamp.floorDivide(nanoseconds, 1_000_000_000)
            return .timestamp(seconds: seconds, nanoseconds: Int32(rest), zoned: true)
        case (.int32(let number), _): return .integer(Int64(number))
        case (.int64(let number), _): return .integer(number)
        case (.bytes, _):
            throw .parquet(.unsupported("column \"\(column.name)\": byte values of this type"))
        }
    }

    /// An `other_metrics` member's value; `nil` for a null (left out, as an empty CSV cell is).
    private func extra(_ value: ParquetValue, _ column: Column) throws(FileFormatError) -> JSONValue? {
        guard let typed = try convert(value, column) else { return nil }
        switch typed {
        case .integer(let number): return .number(String(number))
        case .number(let number):
            if case .decimal(let scale) = column.conversion { return .number(Self.decimalText(try unscaled(value, column), scale: scale)) }
            return number.isFinite ? .number(number.description) : .null
        case .timestamp(let seconds, let nanoseconds, let zoned):
            if case .date = column.conversion { return .string(String(Timestamp.rfc3339(seconds: seconds, nanoseconds: 0, zoned: false).prefix(10))) }
            return .string(Timestamp.rfc3339(seconds: seconds, nanoseconds: nanoseconds, zoned: zoned))
        case .text(let text): return .string(text)
        case .json(let json): return json
        }
    }

    private func unscaled(_ value: ParquetValue, _ column: Column) throws(FileFormatError) -> Int128 {
        guard let unscaled = file.columns[column.index].unscaledDecimal(value) else {
            throw .parquet(.malformed("row \(row), column \"\(column.name)\": a DECIMAL wider than 16 bytes"))
        }
        return unscaled
    }

    /// The exact decimal text of unscaled × 10^-scale (`-12.340` for -12340, scale 3).
    static func decimalText(_ unscaled: Int128, scale: Int) -> String {
        guard scale > 0 else { return String(unscaled) }
        let digits = String(unscaled.magnitude)
        let padded = String(repeating: "0", count: max(0, scale + 1 - digits.count)) + digits
        let point = padded.index(padded.endIndex, offsetBy: -scale)
        return (unscaled < 0 ? "-" : "") + padded[..<point] + "." + padded[point...]
    }

    private static func powerOfTen(_ exponent: Int) -> Double {
        var value = 1.0
        for _ in 0..<exponent { value *= 10 }
        return value
    }
}
