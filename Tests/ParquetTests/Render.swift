import Parquet

/// Renders cells the way `make_corpus.py` renders pyarrow's reading of the same file, so every
/// value of every column can be compared exactly (see that script for the rules).
enum Render {
    static func cell(_ value: ParquetValue, column: ParquetColumn) -> String? {
        if case .null = value { return nil }
        if case .decimal(let scale, _) = column.logicalType {
            guard let unscaled = column.unscaledDecimal(value) else { return "<bad decimal>" }
            return "\(unscaled)e-\(scale)"
        }
        switch value {
        case .null: return nil
        case .boolean(let flag): return flag ? "true" : "false"
        case .int32(let number):
            if case .integer(_, false) = column.logicalType { return String(UInt32(bitPattern: number)) }
            return String(number)
        case .int64(let number):
            if case .integer(_, false) = column.logicalType { return String(UInt64(bitPattern: number)) }
            return String(number)
        case .int96(let stamp): return stamp.unixNanoseconds.map(String.init) ?? "<int96 out of range>"
        case .float(let number): return "f" + hex(UInt64(number.bitPattern), digits: 8)
        case .double(let number): return "d" + hex(number.bitPattern, digits: 16)
        case .bytes(let bytes):
            if column.logicalType == .string { return String(decoding: bytes, as: UTF8.self) }
            return "x" + bytes.map { hex(UInt64($0), digits: 2) }.joined()
        }
    }

    static func hex(_ value: UInt64, digits: Int) -> String {
        let text = String(value, radix: 16)
        return String(repeating: "0", count: max(0, digits - text.count)) + text
    }

    /// Every cell of every column, read row group by row group, page by page.
    static func file(_ file: ParquetFile) throws -> [String: [String?]] {
        var result: [String: [String?]] = [:]
        for (index, column) in file.columns.enumerated() {
            var cells: [String?] = []
            for group in 0..<file.rowGroupCount {
                let reader = try file.columnChunk(rowGroup: group, column: index)
                while let page = try reader.nextPage() {
                    var next = 0
                    for row in 0..<page.rowCount {
                        if let validity = page.validity, !validity[row] {
                            cells.append(nil)
                        } else {
                            cells.append(cell(page.values.value(at: next), column: column))
                            next += 1
                        }
                    }
                }
            }
            result[column.name] = cells
        }
        return result
    }
}
