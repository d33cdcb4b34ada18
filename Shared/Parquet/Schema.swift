/// What a column's values mean, from its LogicalType or, failing that, its legacy ConvertedType.
public enum ParquetLogicalType: Sendable, Equatable, CustomStringConvertible {
    /// No annotation: the physical type says it all (BYTE_ARRAY without one is raw bytes).
    case none
    /// UTF-8 text (STRING, UTF8, ENUM, JSON).
    case string
    /// An integer of `bitWidth` bits; unsigned ones reinterpret the stored bits.
    case integer(bitWidth: Int, signed: Bool)
    /// Days since 1970-01-01.
    case date
    /// A count of `unit` since the epoch; `utc` is false for local (zone-less) wall-clock values.
    case timestamp(unit: TimeUnit, utc: Bool)
    /// A time of day (read as its integer count).
    case time(unit: TimeUnit)
    /// unscaled × 10^-scale.
    case decimal(scale: Int, precision: Int)

    public var description: String {
        switch self {
        case .none: "none"
        case .string: "STRING"
        case .integer(let width, let signed): "\(signed ? "INT" : "UINT")\(width)"
        case .date: "DATE"
        case .timestamp(let unit, let utc): "TIMESTAMP(\(unit), \(utc ? "UTC" : "local"))"
        case .time(let unit): "TIME(\(unit))"
        case .decimal(let scale, let precision): "DECIMAL(\(precision), \(scale))"
        }
    }
}

/// One leaf column of a flat schema.
public struct ParquetColumn: Sendable, Equatable {
    /// The name as written (Snowflake unloads upper-case it).
    public var name: String
    public var physicalType: PhysicalType
    /// The width of a FIXED_LEN_BYTE_ARRAY (12 for INT96, 0 otherwise).
    public var typeLength: Int
    /// OPTIONAL (max definition level 1) rather than REQUIRED.
    public var isOptional: Bool
    public var logicalType: ParquetLogicalType
}

extension ParquetColumn {
    /// The leaf columns of a flat schema; anything nested or ill-formed is refused.
    static func columns(of schema: [SchemaElement], limits: ParquetLimits) throws(ParquetError) -> [ParquetColumn] {
        guard let root = schema.first else { throw .malformed("the schema is empty") }
        let children = Int(root.numChildren ?? 0)
        guard children >= 0 else { throw .malformed("the schema root has a negative number of children") }
        guard children == schema.count - 1 else {
            if children > schema.count - 1 {
                throw .malformed("the schema root declares \(children) children but only \(schema.count - 1) elements follow")
            }
            throw .unsupported("nested columns: the schema has \(schema.count - 1) elements below the root but \(children) top-level fields")
        }
        guard children <= limits.maximumColumns else {
            throw .limitExceeded("\(children) columns, more than the limit of \(limits.maximumColumns)")
        }
        var columns: [ParquetColumn] = []
        for element in schema.dropFirst() {
            guard element.numChildren == nil || element.numChildren == 0 && element.type != nil else {
                throw .unsupported("nested column \"\(element.name)\" (a group of \(element.numChildren ?? 0) fields); only flat schemas are read")
            }
            guard let rawType = element.type else { throw .malformed("column \"\(element.name)\" has no physical type") }
            guard let type = PhysicalType(rawValue: rawType) else {
                throw .malformed("column \"\(element.name)\" has unknown physical type \(rawType)")
            }
            let optional: Bool
            switch element.repetition ?? 0 {
            case 0: optional = false
            case 1: optional = true
            case 2: throw .unsupported("repeated column \"\(element.name)\" (a list); only flat schemas are read")
            case let other: throw .malformed("column \"\(element.name)\" has unknown repetition type \(other)")
            }
            var length = 0
            if type == .fixedLenByteArray {
                guard let declared = element.typeLength, declared > 0, declared <= 1 << 20 else {
                    throw .malformed("FIXED_LEN_BYTE_ARRAY column \"\(element.name)\" has no valid type_length (\(element.typeLength.map(String.init) ?? "absent"))")
                }
                length = Int(declared)
            } else if type == .int96 {
                length = 12
            }
            let logical = try logicalType(of: element, type: type, length: length)
            columns.append(ParquetColumn(name: element.name, physicalType: type, typeLength: length, isOptional: optional, logicalType: logical))
        }
        return columns
    }

    private static func logicalType(of element: SchemaElement, type: PhysicalType, length: Int) throws(ParquetError) -> ParquetLogicalType {
        let name = element.name
        func decimal(scale: Int32, precision: Int32) throws(ParquetError) -> ParquetLogicalType {
            let maximum: Int32 = switch type {
            case .int32: 9
            case .int64: 18
            case .fixedLenByteArray: min(38, Int32((Double(8 * length - 1) * 0.30103).rounded(.down)))
            case .byteArray: 38
            default: 0
            }
            guard maximum > 0 else { throw .malformed("DECIMAL column \"\(name)\" stored as \(type)") }
            guard precision >= 1, precision <= maximum, scale >= 0, scale <= precision else {
                throw .malformed("DECIMAL column \"\(name)\": precision \(precision) and scale \(scale) do not fit \(type)\(type == .fixedLenByteArray ? "(\(length))" : "")")
            }
            return .decimal(scale: Int(scale), precision: Int(precision))
        }
        func expect(_ types: PhysicalType..., for what: String) throws(ParquetError) {
            guard types.contains(type) else { throw .malformed("column \"\(name)\" is annotated \(what) but stored as \(type)") }
        }
        if let logical = element.logicalType {
            switch logical {
            case .string, .enumeration, .json:
                try expect(.byteArray, for: "STRING")
                return .string
            case .bson, .uuid: return .none
            case .unknownNull: return .none
            case .date:
                try expect(.int32, for: "DATE")
                return .date
            case .timestamp(let utc, let unit):
                try expect(.int64, for: "TIMESTAMP")
                return .timestamp(unit: unit, utc: utc)
            case .time(_, let unit):
                try expect(.int32, .int64, for: "TIME")
                return .time(unit: unit)
            case .integer(let width, let signed):
                try expect(.int32, .int64, for: "INTEGER")
                guard [8, 16, 32, 64].contains(width), width <= (type == .int32 ? 32 : 64) else {
                    throw .malformed("column \"\(name)\": INTEGER bit width \(width) on \(type)")
                }
                return .integer(bitWidth: Int(width), signed: signed)
            case .decimal(let scale, let precision):
                return try decimal(scale: scale, precision: precision)
            case .float16:
                throw .unsupported("column \"\(name)\": FLOAT16 values")
            case .other(let id):
                throw .unsupported("column \"\(name)\": logical type \(id) (maps, lists and newer types are not read)")
            }
        }
        switch element.convertedType {
        case nil: return .none
        case 0?, 4?, 19?:  // UTF8, ENUM, JSON
            try expect(.byteArray, for: "UTF8")
            return .string
        case 5?: return try decimal(scale: element.scale ?? 0, precision: element.precision ?? 0)
        case 6?:
            try expect(.int32, for: "DATE")
            return .date
        case 7?: return .time(unit: .millis)
        case 8?: return .time(unit: .micros)
        case 9?, 10?:
            try expect(.int64, for: "TIMESTAMP")
            return .timestamp(unit: element.convertedType == 9 ? .millis : .micros, utc: true)
        case let converted? where (11...18).contains(converted):
            try expect(.int32, .int64, for: "INT/UINT")
            let widths = [8, 16, 32, 64]
            return .integer(bitWidth: widths[Int(converted - 11) % 4], signed: converted >= 15)
        case 20?: return .none  // BSON: bytes
        case let converted?:
            throw .unsupported("column \"\(name)\": converted type \(converted) (maps, lists and intervals are not read)")
        }
    }
}
