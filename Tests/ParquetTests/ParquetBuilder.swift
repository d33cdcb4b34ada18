/// Handcrafted Parquet files for the guard tests: a Thrift compact-protocol writer over a small
/// value tree, so a test can build a valid file and then break exactly one thing in it.
indirect enum Thrift {
    case i8(Int8)
    case i32(Int32)
    case i64(Int64)
    case binary([UInt8])
    case bool(Bool)
    case list(UInt8, [Thrift])
    case structure([(Int16, Thrift)])
    /// Bytes written as they are (a broken encoding on purpose), as a field of type `type`.
    case raw([UInt8], type: UInt8 = 12)

    static func string(_ text: String) -> Thrift { .binary(Array(text.utf8)) }

    var typeCode: UInt8 {
        switch self {
        case .bool(let value): value ? 1 : 2
        case .i8: 3
        case .i32: 5
        case .i64: 6
        case .binary: 8
        case .list: 9
        case .structure: 12
        case .raw(_, let type): type
        }
    }

    var encoded: [UInt8] {
        var out: [UInt8] = []
        encodeValue(into: &out)
        return out
    }

    private func encodeValue(into out: inout [UInt8]) {
        switch self {
        case .i8(let value): out.append(UInt8(bitPattern: value))
        case .i32(let value): Thrift.varint(UInt64(bitPattern: (Int64(value) << 1) ^ (Int64(value) >> 63)), into: &out)
        case .i64(let value): Thrift.varint(UInt64(bitPattern: (value << 1) ^ (value >> 63)), into: &out)
        case .binary(let bytes):
            Thrift.varint(UInt64(bytes.count), into: &out)
            out += bytes
        case .bool(let value): out.append(value ? 1 : 2)  // as a list element
        case .list(let type, let elements):
            if elements.count < 15 {
                out.append(UInt8(elements.count) << 4 | type)
            } else {
                out.append(0xF0 | type)
                Thrift.varint(UInt64(elements.count), into: &out)
            }
            for element in elements { element.encodeValue(into: &out) }
        case .structure(let fields):
            var last: Int16 = 0
            for (id, value) in fields {
                let delta = id - last
                if delta > 0, delta <= 15 {
                    out.append(UInt8(delta) << 4 | value.typeCode)
                } else {
                    out.append(value.typeCode)
                    Thrift.varint(UInt64(bitPattern: (Int64(id) << 1) ^ (Int64(id) >> 63)), into: &out)
                }
                last = id
                if case .bool = value { continue }  // a bool field lives in its type nibble
                value.encodeValue(into: &out)
            }
            out.append(0)
        case .raw(let bytes, _): out += bytes
        }
    }

    static func varint(_ value: UInt64, into out: inout [UInt8]) {
        var value = value
        while value >= 0x80 {
            out.append(UInt8(value & 0x7F) | 0x80)
            value >>= 7
        }
        out.append(UInt8(value))
    }

    /// Replaces (or adds) field `id` of a struct.
    func setting(_ id: Int16, _ value: Thrift?) -> Thrift {
        guard case .structure(var fields) = self else { return self }
        fields.removeAll { $0.0 == id }
        if let value { fields.append((id, value)) }
        fields.sort { $0.0 < $1.0 }
        return .structure(fields)
    }
}

/// A one-column file (INT32 by default) built page by page. `build()` lays out
/// `PAR1 | pages | footer | length | PAR1` and fills in offsets and sizes, unless a test
/// overrides them through the hooks.
struct ParquetBuilder {
    var name = "v"
    var physicalType: Int32 = 1
    var repetition: Int32 = 1  // OPTIONAL
    var extraSchema: [(Int16, Thrift)] = []
    var codec: Int32 = 0
    /// Each page as (header, body).
    var pages: [(header: Thrift, body: [UInt8])] = []
    var rows: Int64 = 0
    /// Rewrites the column metadata / file metadata after the builder has filled them in.
    var editColumn: (Thrift) -> Thrift = { $0 }
    var editFile: (Thrift) -> Thrift = { $0 }

    /// A PLAIN, uncompressed v1 data page of INT32 values; `nil` entries are nulls.
    static func int32Page(_ values: [Int32?], optional: Bool = true) -> (header: Thrift, body: [UInt8]) {
        var body: [UInt8] = []
        if optional {
            let levels = rle(values.map { $0 == nil ? 0 : 1 }, width: 1)
            body += uint32LE(levels.count) + levels
        }
        for value in values.compactMap({ $0 }) { body += uint32LE(Int(UInt32(bitPattern: value))) }
        return (dataPageHeader(values: values.count, encoding: 0, size: body.count), body)
    }

    static func dataPageHeader(values: Int, encoding: Int32, size: Int, compressedSize: Int? = nil) -> Thrift {
        .structure([
            (1, .i32(0)), (2, .i32(Int32(size))), (3, .i32(Int32(compressedSize ?? size))),
            (5, .structure([(1, .i32(Int32(values))), (2, .i32(encoding)), (3, .i32(3)), (4, .i32(3))])),
        ])
    }

    static func dictionaryPageHeader(values: Int, size: Int) -> Thrift {
        .structure([(1, .i32(2)), (2, .i32(Int32(size))), (3, .i32(Int32(size))), (7, .structure([(1, .i32(Int32(values))), (2, .i32(0))]))])
    }

    /// RLE runs of `values` (one run per change of value), hybrid encoding of width `width`.
    static func rle(_ values: [Int], width: Int) -> [UInt8] {
        var out: [UInt8] = []
        var index = 0
        while index < values.count {
            var end = index
            while end < values.count, values[end] == values[index] { end += 1 }
            Thrift.varint(UInt64(end - index) << 1, into: &out)
            for byte in 0..<(width + 7) / 8 { out.append(UInt8(truncatingIfNeeded: values[index] >> (8 * byte))) }
            index = end
        }
        return out
    }

    static func uint32LE(_ value: Int) -> [UInt8] { (0..<4).map { UInt8(truncatingIfNeeded: value >> (8 * $0)) } }

    func build() -> [UInt8] {
        var file = Array("PAR1".utf8)
        let start = file.count
        var dictionaryOffset: Int?
        var dataOffset: Int?
        for page in pages {
            if case .structure(let fields) = page.header, fields.contains(where: { $0.0 == 1 && $0.1.isI32(2) }) {
                dictionaryOffset = dictionaryOffset ?? file.count
            } else {
                dataOffset = dataOffset ?? file.count
            }
            file += page.header.encoded + page.body
        }
        var columnMeta: Thrift = .structure([
            (1, .i32(physicalType)), (2, .list(5, [.i32(0), .i32(3)])), (3, .list(8, [.string(name)])), (4, .i32(codec)),
            (5, .i64(rows)), (6, .i64(Int64(file.count - start))), (7, .i64(Int64(file.count - start))),
            (9, .i64(Int64(dataOffset ?? start))),
        ])
        if let dictionaryOffset { columnMeta = columnMeta.setting(11, .i64(Int64(dictionaryOffset))) }
        columnMeta = editColumn(columnMeta)
        let schema: Thrift = .list(12, [
            .structure([(4, .string("schema")), (5, .i32(1))]),
            .structure([(1, .i32(physicalType)), (3, .i32(repetition)), (4, .string(name))] + extraSchema),
        ])
        let chunk: Thrift = .structure([(Int16(2), Thrift.i64(0)), (Int16(3), columnMeta)])
        let rowGroup: Thrift = .structure([(1, .list(12, [chunk])), (2, .i64(0)), (3, .i64(rows))])
        let fields: [(Int16, Thrift)] = [
            (1, .i32(2)), (2, schema), (3, .i64(rows)), (4, .list(12, [rowGroup])), (6, .string("meterlake test builder")),
        ]
        let metadata = editFile(.structure(fields))
        let footer = metadata.encoded
        file += footer + Self.uint32LE(footer.count) + Array("PAR1".utf8)
        return file
    }
}

extension Thrift {
    func isI32(_ expected: Int32) -> Bool {
        if case .i32(let value) = self { return value == expected }
        return false
    }
}
