/// The parts of the Parquet footer and page headers a flat-column reader needs (parquet.md §3),
/// decoded from the Thrift compact protocol. Fields the reader does not use are skipped.

/// Physical types (parquet.thrift `Type`).
public enum PhysicalType: Int32, Sendable, CustomStringConvertible {
    case boolean = 0, int32, int64, int96, float, double, byteArray, fixedLenByteArray

    public var description: String {
        switch self {
        case .boolean: "BOOLEAN"
        case .int32: "INT32"
        case .int64: "INT64"
        case .int96: "INT96"
        case .float: "FLOAT"
        case .double: "DOUBLE"
        case .byteArray: "BYTE_ARRAY"
        case .fixedLenByteArray: "FIXED_LEN_BYTE_ARRAY"
        }
    }
}

/// Compression codecs (parquet.thrift `CompressionCodec`).
enum Codec: Int32 {
    case uncompressed = 0, snappy, gzip, lzo, brotli, lz4, zstd, lz4Raw

    var name: String {
        switch self {
        case .uncompressed: "UNCOMPRESSED"
        case .snappy: "SNAPPY"
        case .gzip: "GZIP"
        case .lzo: "LZO"
        case .brotli: "BROTLI"
        case .lz4: "LZ4"
        case .zstd: "ZSTD"
        case .lz4Raw: "LZ4_RAW"
        }
    }
}

/// Value encodings (parquet.thrift `Encoding`).
enum Encoding: Int32 {
    case plain = 0, plainDictionary = 2, rle = 3, bitPacked = 4, deltaBinaryPacked = 5, deltaLengthByteArray = 6
    case deltaByteArray = 7, rleDictionary = 8, byteStreamSplit = 9

    static func named(_ raw: Int32) -> String {
        switch Encoding(rawValue: raw) {
        case .plain: "PLAIN"
        case .plainDictionary: "PLAIN_DICTIONARY"
        case .rle: "RLE"
        case .bitPacked: "BIT_PACKED"
        case .deltaBinaryPacked: "DELTA_BINARY_PACKED"
        case .deltaLengthByteArray: "DELTA_LENGTH_BYTE_ARRAY"
        case .deltaByteArray: "DELTA_BYTE_ARRAY"
        case .rleDictionary: "RLE_DICTIONARY"
        case .byteStreamSplit: "BYTE_STREAM_SPLIT"
        case nil: raw == 10 ? "ALP" : "encoding \(raw)"
        }
    }
}

/// A `LogicalType` union member, as far as a flat reader cares.
enum LogicalTypeAnnotation: Equatable {
    case string, enumeration, json, bson, uuid, date, unknownNull, float16
    case decimal(scale: Int32, precision: Int32)
    case time(utc: Bool, unit: TimeUnit)
    case timestamp(utc: Bool, unit: TimeUnit)
    case integer(bitWidth: Int8, signed: Bool)
    /// A group type (MAP, LIST) or a member this reader does not know.
    case other(Int16)
}

/// The unit of a TIME or TIMESTAMP.
public enum TimeUnit: Sendable, Equatable {
    case millis, micros, nanos
}

struct SchemaElement {
    var type: Int32?
    var typeLength: Int32?
    var repetition: Int32?
    var name = ""
    var numChildren: Int32?
    var convertedType: Int32?
    var scale: Int32?
    var precision: Int32?
    var logicalType: LogicalTypeAnnotation?
}

struct ColumnMetaData {
    var type: Int32 = -1
    var path: [String] = []
    var codec: Int32 = 0
    var numValues: Int64 = 0
    var totalCompressedSize: Int64 = 0
    var dataPageOffset: Int64 = 0
    var dictionaryPageOffset: Int64?
}

struct ColumnChunkMetaData {
    var filePath: String?
    var metaData: ColumnMetaData?
    var encrypted = false
}

struct RowGroupMetaData {
    var columns: [ColumnChunkMetaData] = []
    var numRows: Int64 = 0
}

struct FileMetaData {
    var version: Int32 = 0
    var schema: [SchemaElement] = []
    var numRows: Int64 = 0
    var rowGroups: [RowGroupMetaData] = []
    var createdBy: String?
    var encrypted = false
}

enum PageType: Int32 {
    case dataPage = 0, indexPage = 1, dictionaryPage = 2, dataPageV2 = 3
}

struct PageHeader {
    var type: Int32 = -1
    var uncompressedSize = -1
    var compressedSize = -1
    /// v1 and dictionary pages: num_values and encoding.
    var numValues = -1
    var encoding: Int32 = -1
    /// v2 pages only.
    var numNulls = 0
    var definitionLevelsLength = 0
    var repetitionLevelsLength = 0
    var isCompressed = true
    var seenPageHeader = false
}

// MARK: - Decoding

extension FileMetaData {
    init(decoding reader: inout ThriftReader) throws(ParquetError) {
        var seen = (version: false, schema: false, rows: false, rowGroups: false)
        try reader.readStruct(depth: 0) { (reader: inout ThriftReader, id, type) throws(ParquetError) -> Bool in
            switch (id, type) {
            case (1, .i32): version = try reader.readI32(); seen.version = true
            case (2, .list): schema = try reader.readList(of: .structure, depth: 1) { (r: inout ThriftReader) throws(ParquetError) in try SchemaElement(decoding: &r, depth: 2) }; seen.schema = true
            case (3, .i64): numRows = try reader.readCount64("num_rows"); seen.rows = true
            case (4, .list): rowGroups = try reader.readList(of: .structure, depth: 1) { (r: inout ThriftReader) throws(ParquetError) in try RowGroupMetaData(decoding: &r, depth: 2) }; seen.rowGroups = true
            case (6, .binary): createdBy = String(decoding: try reader.readBinary(), as: UTF8.self)
            case (8, .structure): encrypted = true; return false
            default: return false
            }
            return true
        }
        guard seen.version, seen.schema, seen.rows, seen.rowGroups else {
            throw reader.error("FileMetaData lacks a required field (version, schema, num_rows or row_groups)")
        }
    }
}

extension SchemaElement {
    init(decoding reader: inout ThriftReader, depth: Int) throws(ParquetError) {
        var named = false
        try reader.readStruct(depth: depth) { (reader: inout ThriftReader, id, type) throws(ParquetError) -> Bool in
            switch (id, type) {
            case (1, .i32): self.type = try reader.readI32()
            case (2, .i32): typeLength = try reader.readI32()
            case (3, .i32): repetition = try reader.readI32()
            case (4, .binary): name = try reader.readString(); named = true
            case (5, .i32): numChildren = try reader.readI32()
            case (6, .i32): convertedType = try reader.readI32()
            case (7, .i32): scale = try reader.readI32()
            case (8, .i32): precision = try reader.readI32()
            case (10, .structure): logicalType = try LogicalTypeAnnotation(decoding: &reader, depth: depth + 1)
            default: return false
            }
            return true
        }
        guard named else { throw reader.error("a schema element without a name") }
    }
}

extension LogicalTypeAnnotation {
    init(decoding reader: inout ThriftReader, depth: Int) throws(ParquetError) {
        var member: LogicalTypeAnnotation?
        try reader.readStruct(depth: depth) { (reader: inout ThriftReader, id, type) throws(ParquetError) -> Bool in
            guard type == .structure else { return false }
            switch id {
            case 1: member = .string
            case 4: member = .enumeration
            case 6: member = .date
            case 11: member = .unknownNull
            case 12: member = .json
            case 13: member = .bson
            case 14: member = .uuid
            case 15: member = .float16
            case 5:
                var scale: Int32 = 0, precision: Int32 = 0
                try reader.readStruct(depth: depth + 1) { (reader: inout ThriftReader, id, type) throws(ParquetError) -> Bool in
                    switch (id, type) {
                    case (1, .i32): scale = try reader.readI32()
                    case (2, .i32): precision = try reader.readI32()
                    default: return false
                    }
                    return true
                }
                member = .decimal(scale: scale, precision: precision)
                return true
            case 7, 8:
                var utc = true, unit = TimeUnit.millis
                try reader.readStruct(depth: depth + 1) { (reader: inout ThriftReader, field, type) throws(ParquetError) -> Bool in
                    switch (field, type) {
                    case (1, .boolTrue), (1, .boolFalse): utc = try reader.bool(type)
                    case (2, .structure): unit = try TimeUnit(decoding: &reader, depth: depth + 2)
                    default: return false
                    }
                    return true
                }
                member = id == 7 ? .time(utc: utc, unit: unit) : .timestamp(utc: utc, unit: unit)
                return true
            case 10:
                var width: Int8 = 0, signed = true
                try reader.readStruct(depth: depth + 1) { (reader: inout ThriftReader, id, type) throws(ParquetError) -> Bool in
                    switch (id, type) {
                    case (1, .byte): width = Int8(bitPattern: try reader.readByte())
                    case (2, .boolTrue), (2, .boolFalse): signed = try reader.bool(type)
                    default: return false
                    }
                    return true
                }
                member = .integer(bitWidth: width, signed: signed)
                return true
            default:
                member = .other(id)
            }
            return false  // an empty struct (or an unknown member): skip its body
        }
        guard let member else { throw reader.error("a LogicalType with no member set") }
        self = member
    }
}

extension TimeUnit {
    init(decoding reader: inout ThriftReader, depth: Int) throws(ParquetError) {
        var unit: TimeUnit?
        var other: Int16?
        try reader.readStruct(depth: depth) { (_: inout ThriftReader, id, type) throws(ParquetError) -> Bool in
            switch id {
            case 1: unit = .millis
            case 2: unit = .micros
            case 3: unit = .nanos
            default: other = id
            }
            return false
        }
        guard let unit else {
            throw .unsupported("time unit \(other.map { "member \($0)" } ?? "missing")")
        }
        self = unit
    }
}

extension RowGroupMetaData {
    init(decoding reader: inout ThriftReader, depth: Int) throws(ParquetError) {
        var seen = (columns: false, rows: false)
        try reader.readStruct(depth: depth) { (reader: inout ThriftReader, id, type) throws(ParquetError) -> Bool in
            switch (id, type) {
            case (1, .list): columns = try reader.readList(of: .structure, depth: depth + 1) { (r: inout ThriftReader) throws(ParquetError) in try ColumnChunkMetaData(decoding: &r, depth: depth + 2) }; seen.columns = true
            case (3, .i64): numRows = try reader.readCount64("row group num_rows"); seen.rows = true
            default: return false
            }
            return true
        }
        guard seen.columns, seen.rows else { throw reader.error("a RowGroup lacks columns or num_rows") }
    }
}

extension ColumnChunkMetaData {
    init(decoding reader: inout ThriftReader, depth: Int) throws(ParquetError) {
        try reader.readStruct(depth: depth) { (reader: inout ThriftReader, id, type) throws(ParquetError) -> Bool in
            switch (id, type) {
            case (1, .binary): filePath = String(decoding: try reader.readBinary(), as: UTF8.self)
            case (3, .structure): metaData = try ColumnMetaData(decoding: &reader, depth: depth + 1)
            case (8, _), (9, _): encrypted = true; return false
            default: return false
            }
            return true
        }
    }
}

extension ColumnMetaData {
    init(decoding reader: inout ThriftReader, depth: Int) throws(ParquetError) {
        var seen = (type: false, codec: false, values: false, size: false, offset: false)
        try reader.readStruct(depth: depth) { (reader: inout ThriftReader, id, type) throws(ParquetError) -> Bool in
            switch (id, type) {
            case (1, .i32): self.type = try reader.readI32(); seen.type = true
            case (3, .list): path = try reader.readList(of: .binary, depth: depth + 1) { (r: inout ThriftReader) throws(ParquetError) in try r.readString() }
            case (4, .i32): codec = try reader.readI32(); seen.codec = true
            case (5, .i64): numValues = try reader.readCount64("num_values"); seen.values = true
            case (7, .i64): totalCompressedSize = try reader.readCount64("total_compressed_size"); seen.size = true
            case (9, .i64): dataPageOffset = try reader.readCount64("data_page_offset"); seen.offset = true
            case (11, .i64): dictionaryPageOffset = try reader.readCount64("dictionary_page_offset")
            default: return false
            }
            return true
        }
        guard seen.type, seen.codec, seen.values, seen.size, seen.offset else {
            throw reader.error("a ColumnMetaData lacks a required field (type, codec, num_values, total_compressed_size or data_page_offset)")
        }
    }
}

extension PageHeader {
    init(decoding reader: inout ThriftReader) throws(ParquetError) {
        try reader.readStruct(depth: 0) { (reader: inout ThriftReader, id, type) throws(ParquetError) -> Bool in
            switch (id, type) {
            case (1, .i32): self.type = try reader.readI32()
            case (2, .i32): uncompressedSize = try reader.readCount("uncompressed_page_size")
            case (3, .i32): compressedSize = try reader.readCount("compressed_page_size")
            case (5, .structure), (7, .structure):
                seenPageHeader = true
                try reader.readStruct(depth: 1) { (reader: inout ThriftReader, id, type) throws(ParquetError) -> Bool in
                    switch (id, type) {
                    case (1, .i32): numValues = try reader.readCount("num_values")
                    case (2, .i32): encoding = try reader.readI32()
                    default: return false
                    }
                    return true
                }
            case (8, .structure):
                seenPageHeader = true
                try reader.readStruct(depth: 1) { (reader: inout ThriftReader, id, type) throws(ParquetError) -> Bool in
                    switch (id, type) {
                    case (1, .i32): numValues = try reader.readCount("num_values")
                    case (2, .i32): numNulls = try reader.readCount("num_nulls")
                    case (4, .i32): encoding = try reader.readI32()
                    case (5, .i32): definitionLevelsLength = try reader.readCount("definition_levels_byte_length")
                    case (6, .i32): repetitionLevelsLength = try reader.readCount("repetition_levels_byte_length")
                    case (7, .boolTrue), (7, .boolFalse): isCompressed = try reader.bool(type)
                    default: return false
                    }
                    return true
                }
            default: return false
            }
            return true
        }
        guard type >= 0, uncompressedSize >= 0, compressedSize >= 0 else {
            throw reader.error("a PageHeader lacks type, uncompressed_page_size or compressed_page_size")
        }
    }
}
