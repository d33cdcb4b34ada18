/// Byte-array values (BYTE_ARRAY, FIXED_LEN_BYTE_ARRAY) packed into one buffer: value `i` is
/// `bytes[offsets[i]..<offsets[i + 1]]`.
public struct ByteArrayValues: Sendable, Equatable {
    public var offsets: [Int]
    public var bytes: [UInt8]

    public init(offsets: [Int] = [0], bytes: [UInt8] = []) {
        self.offsets = offsets
        self.bytes = bytes
    }

    public var count: Int { offsets.count - 1 }

    public subscript(index: Int) -> ArraySlice<UInt8> { bytes[offsets[index]..<offsets[index + 1]] }
}

/// A legacy INT96 timestamp: nanoseconds within a Julian day.
public struct Int96Value: Sendable, Equatable {
    public var nanosecondsOfDay: Int64
    public var julianDay: Int32

    /// Nanoseconds since 1970-01-01T00:00:00Z (parquet.md §9), or `nil` outside Int64's range.
    public var unixNanoseconds: Int64? {
        let (days, overflow1) = (Int64(julianDay) - 2_440_588).multipliedReportingOverflow(by: 86_400_000_000_000)
        let (total, overflow2) = days.addingReportingOverflow(nanosecondsOfDay)
        return overflow1 || overflow2 ? nil : total
    }
}

/// The non-null values of one page (or a dictionary), in the column's physical type.
public enum ColumnStorage: Sendable, Equatable {
    case boolean([Bool])
    case int32([Int32])
    case int64([Int64])
    case int96([Int96Value])
    case float([Float])
    case double([Double])
    case bytes(ByteArrayValues)
    /// Byte arrays left dictionary-encoded: value `i` is `dictionary[indices[i]]` (every index
    /// was checked against the dictionary's size).
    case dictionary(ByteArrayValues, indices: [Int32])

    public var count: Int {
        switch self {
        case .boolean(let values): values.count
        case .int32(let values): values.count
        case .int64(let values): values.count
        case .int96(let values): values.count
        case .float(let values): values.count
        case .double(let values): values.count
        case .bytes(let values): values.count
        case .dictionary(_, let indices): indices.count
        }
    }
}

/// One decoded data page: `rowCount` rows, of which those with `validity[i] == true` (all of
/// them when `validity` is nil) have a value, in order, in `values`.
public struct ColumnPage: Sendable, Equatable {
    public var rowCount: Int
    public var validity: [Bool]?
    public var values: ColumnStorage

    /// About what the page holds in memory: its validity flags and its values.
    public var bytesHeld: Int {
        let flags = validity?.count ?? 0
        switch values {
        case .boolean(let values): return flags + values.count
        case .int32(let values): return flags + values.count * 4
        case .int64(let values): return flags + values.count * 8
        case .int96(let values): return flags + values.count * 12
        case .float(let values): return flags + values.count * 4
        case .double(let values): return flags + values.count * 8
        case .bytes(let values): return flags + values.offsets.count * 8 + values.bytes.count
        case .dictionary(let dictionary, let indices):
            return flags + indices.count * 4 + dictionary.offsets.count * 8 + dictionary.bytes.count
        }
    }
}

/// One cell, as stored (before its logical type is applied).
public enum ParquetValue: Sendable, Equatable {
    case null
    case boolean(Bool)
    case int32(Int32)
    case int64(Int64)
    case int96(Int96Value)
    case float(Float)
    case double(Double)
    case bytes(ArraySlice<UInt8>)
}

extension ColumnStorage {
    /// The value at `index` (a position among the non-null values).
    @inline(__always)
    public func value(at index: Int) -> ParquetValue {
        switch self {
        case .boolean(let values): .boolean(values[index])
        case .int32(let values): .int32(values[index])
        case .int64(let values): .int64(values[index])
        case .int96(let values): .int96(values[index])
        case .float(let values): .float(values[index])
        case .double(let values): .double(values[index])
        case .bytes(let values): .bytes(values[index])
        case .dictionary(let dictionary, let indices): .bytes(dictionary[Int(indices[index])])
        }
    }
}

extension ParquetColumn {
    /// The unscaled integer of a DECIMAL value (INT32, INT64, or big-endian two's complement in a
    /// byte array of at most 16 bytes), or `nil` for other values.
    public func unscaledDecimal(_ value: ParquetValue) -> Int128? {
        switch value {
        case .int32(let number): return Int128(number)
        case .int64(let number): return Int128(number)
        case .bytes(let bytes):
            guard !bytes.isEmpty, bytes.count <= 16 else { return bytes.isEmpty ? 0 : nil }
            var unsigned: UInt128 = bytes.first! & 0x80 != 0 ? ~0 : 0
            for byte in bytes { unsigned = unsigned << 8 | UInt128(byte) }
            return Int128(bitPattern: unsigned)
        default: return nil
        }
    }
}
