/// A decoder of the Thrift compact protocol (parquet.md §2), bounded by its buffer: every length
/// and count is checked against the bytes left before anything is allocated, and nesting is
/// capped, so a hostile footer or page header fails with a typed error.
struct ThriftReader {
    /// Compact-protocol type codes.
    enum FieldType: UInt8 {
        case stop = 0, boolTrue = 1, boolFalse = 2, byte = 3, i16 = 4, i32 = 5, i64 = 6, double = 7
        case binary = 8, list = 9, set = 10, map = 11, structure = 12, uuid = 13
    }

    private let bytes: [UInt8]
    private(set) var position: Int
    private let end: Int
    private let maximumDepth: Int
    /// What is being decoded, for error messages ("footer", "page header at offset 1234").
    let context: String

    init(_ bytes: [UInt8], range: Range<Int>, maximumDepth: Int, context: String) {
        self.bytes = bytes
        self.position = range.lowerBound
        self.end = range.upperBound
        self.maximumDepth = maximumDepth
        self.context = context
    }

    var remaining: Int { end - position }

    func error(_ reason: String) -> ParquetError { .malformed("\(context): \(reason)") }

    // MARK: - Scalars

    mutating func readByte() throws(ParquetError) -> UInt8 {
        guard position < end else { throw error("ends early (truncated metadata)") }
        defer { position += 1 }
        return bytes[position]
    }

    mutating func readVarint() throws(ParquetError) -> UInt64 {
        var result: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            let byte = try readByte()
            guard shift < 64, shift < 63 || byte <= 1 else { throw error("a varint longer than 64 bits") }
            result |= UInt64(byte & 0x7F) << shift
            if byte & 0x80 == 0 { return result }
            shift += 7
        }
    }

    mutating func readI64() throws(ParquetError) -> Int64 {
        let raw = try readVarint()
        return Int64(bitPattern: (raw >> 1) ^ (0 &- (raw & 1)))
    }

    mutating func readI32() throws(ParquetError) -> Int32 {
        let value = try readI64()
        guard let narrow = Int32(exactly: value) else { throw error("an i32 out of range (\(value))") }
        return narrow
    }

    mutating func readI16() throws(ParquetError) -> Int16 {
        let value = try readI64()
        guard let narrow = Int16(exactly: value) else { throw error("an i16 out of range (\(value))") }
        return narrow
    }

    /// An i32 that is a size, count or offset: negative values are refused.
    mutating func readCount(_ name: String) throws(ParquetError) -> Int {
        let value = try readI32()
        guard value >= 0 else { throw error("negative \(name) (\(value))") }
        return Int(value)
    }

    /// An i64 that is a size, count or offset: negative values are refused.
    mutating func readCount64(_ name: String) throws(ParquetError) -> Int64 {
        let value = try readI64()
        guard value >= 0 else { throw error("negative \(name) (\(value))") }
        return value
    }

    mutating func readBinary() throws(ParquetError) -> ArraySlice<UInt8> {
        let length = try readVarint()
        guard length <= UInt64(remaining) else { throw error("a string of \(length) bytes, past the end of the metadata") }
        defer { position += Int(length) }
        return bytes[position..<position + Int(length)]
    }

    mutating func readString() throws(ParquetError) -> String {
        let raw = try readBinary()
        guard let text = String(validating: raw, as: UTF8.self) else { throw error("a string that is not UTF-8") }
        return text
    }

    // MARK: - Structures

    /// Calls `body` for each field of a struct with its id and type; `body` returns `false` for a
    /// field it does not know, which is then skipped by type.
    mutating func readStruct(
        depth: Int, _ body: (inout ThriftReader, Int16, FieldType) throws(ParquetError) -> Bool
    ) throws(ParquetError) {
        guard depth < maximumDepth else { throw error("structures nested deeper than \(maximumDepth) levels") }
        var lastID: Int16 = 0
        while true {
            let header = try readByte()
            guard let type = FieldType(rawValue: header & 0x0F) else { throw error("unknown field type \(header & 0x0F)") }
            if type == .stop { return }
            let delta = Int16(header >> 4)
            let id = delta == 0 ? try readI16() : lastID &+ delta
            lastID = id
            if try !body(&self, id, type) {
                try skip(type, depth: depth + 1)
            }
        }
    }

    /// The value of a bool field (the compact protocol stores it in the type nibble).
    func bool(_ type: FieldType) throws(ParquetError) -> Bool {
        switch type {
        case .boolTrue: return true
        case .boolFalse: return false
        default: throw error("expected a bool field, found type \(type.rawValue)")
        }
    }

    /// A list header: the element count (bounded by the bytes left, as every element takes at
    /// least one byte) and the element type.
    mutating func readListHeader() throws(ParquetError) -> (count: Int, type: FieldType) {
        let header = try readByte()
        guard let type = FieldType(rawValue: header & 0x0F) else { throw error("unknown list element type \(header & 0x0F)") }
        var count = UInt64(header >> 4)
        if count == 15 { count = try readVarint() }
        let minimumElementBytes: UInt64 = switch type {
        case .double: 8
        case .uuid: 16
        default: 1
        }
        guard count <= UInt64(remaining) / minimumElementBytes else {
            throw error("a list of \(count) elements, more than the metadata's remaining \(remaining) bytes can hold")
        }
        return (Int(count), type)
    }

    /// Reads a list whose elements `element` decodes.
    mutating func readList<Element>(
        of expected: FieldType, depth: Int, _ element: (inout ThriftReader) throws(ParquetError) -> Element
    ) throws(ParquetError) -> [Element] {
        let (count, type) = try readListHeader()
        guard type == expected || count == 0 else { throw error("a list of type \(type.rawValue) where \(expected.rawValue) was expected") }
        guard depth < maximumDepth else { throw error("structures nested deeper than \(maximumDepth) levels") }
        var elements: [Element] = []
        for _ in 0..<count { elements.append(try element(&self)) }
        return elements
    }

    /// Skips one value of `type`, however nested, within the depth cap.
    mutating func skip(_ type: FieldType, depth: Int) throws(ParquetError) {
        guard depth < maximumDepth else { throw error("structures nested deeper than \(maximumDepth) levels") }
        switch type {
        case .stop: throw error("a stop marker where a value was expected")
        case .boolTrue, .boolFalse: return
        case .byte: _ = try readByte()
        case .i16, .i32, .i64: _ = try readVarint()
        case .double: try advance(8)
        case .uuid: try advance(16)
        case .binary: _ = try readBinary()
        case .list, .set:
            let (count, elementType) = try readListHeader()
            for _ in 0..<count {
                if elementType == .boolTrue || elementType == .boolFalse { _ = try readByte() } else { try skip(elementType, depth: depth + 1) }
            }
        case .map:
            let count = try readVarint()
            guard count <= UInt64(remaining) else { throw error("a map of \(count) entries, past the end of the metadata") }
            guard count > 0 else { return }
            let types = try readByte()
            guard let keyType = FieldType(rawValue: types >> 4), let valueType = FieldType(rawValue: types & 0x0F) else {
                throw error("unknown map types \(types)")
            }
            for _ in 0..<count {
                if keyType == .boolTrue || keyType == .boolFalse { _ = try readByte() } else { try skip(keyType, depth: depth + 1) }
                if valueType == .boolTrue || valueType == .boolFalse { _ = try readByte() } else { try skip(valueType, depth: depth + 1) }
            }
        case .structure:
            try readStruct(depth: depth) { _, _, _ in false }
        }
    }

    private mutating func advance(_ count: Int) throws(ParquetError) {
        guard count <= remaining else { throw error("ends early (truncated metadata)") }
        position += count
    }
}
