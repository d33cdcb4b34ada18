/// Yields raw records from a file of one format.
public protocol RecordSource: AnyObject {
    func next() throws(FileFormatError) -> RawRecord?
    /// A UTC offset the file declares for its naive timestamps (an envelope's `utc_offset`).
    var declaredUTCOffset: Int? { get }
    /// A site id the file declares for records without one (an envelope's `site_id`).
    var declaredSiteID: String? { get }
}

extension RecordSource {
    public var declaredUTCOffset: Int? { nil }
    public var declaredSiteID: String? { nil }
}

/// CSV with a header row. Header names are matched case-insensitively; unknown columns become
/// `other_metrics` members (numbers as numbers, other text as strings, empty cells left out).
public final class CSVRecordSource: RecordSource {
    private var reader: CSVReader
    private var columns: [Column] = []
    private var row = 0
    private var header: [String] = []

    private enum Column {
        case canonical(CanonicalField)
        case extra(String)
    }

    public init(source: any ByteSource, limits: ValidationLimits) throws(FileFormatError) {
        reader = CSVReader(source: source, limits: limits)
        guard let first = try reader.next() else { throw .missingHeader }
        var seen = Set<String>()
        for (index, raw) in first.fields.enumerated() {
            let name = raw.trimmingSpaces()
            guard !name.isEmpty else { throw .emptyHeader(column: index + 1) }
            guard seen.insert(name.lowercased()).inserted else { throw .duplicateHeader(name: name) }
            columns.append(CanonicalField(header: name).map(Column.canonical) ?? .extra(name))
        }
        header = first.fields
        let present = Set(columns.compactMap { if case .canonical(let field) = $0 { field } else { nil } })
        let missing = CanonicalField.required.filter { !present.contains($0) }.map(\.name)
        guard missing.isEmpty else { throw .missingColumns(missing) }
    }

    public func next() throws(FileFormatError) -> RawRecord? {
        while let record = try reader.next() {
            row += 1
            var raw = RawRecord(line: record.line, row: row)
            guard record.fields.count == columns.count else {
                // The row cannot be matched to the header; the decoder reports it as rejected.
                raw.malformed = SchemaViolation(
                    .wrongColumnCount, line: record.line, row: row, column: "*", value: record.fields.joined(separator: ","),
                    message: "\(record.fields.count) fields, the header has \(columns.count)")
                return raw
            }
            for (column, value) in zip(columns, record.fields) {
                switch column {
                case .canonical(let field):
                    raw[field] = .text(value)
                case .extra(let name):
                    guard !value.isEmpty else { continue }
                    raw.extras.append(JSONMember(name, CSVRecordSource.isJSONNumber(value) ? .number(value) : .string(value)))
                }
            }
            return raw
        }
        return nil
    }

    /// Whether `text` is a JSON number literal (so it can be stored as one unchanged).
    static func isJSONNumber(_ text: String) -> Bool {
        // -? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?
        var bytes = text.utf8[...]
        func digits() -> Int {
            let count = bytes.prefix { $0 >= 0x30 && $0 <= 0x39 }.count
            bytes = bytes.dropFirst(count)
            return count
        }
        if bytes.first == UInt8(ascii: "-") { bytes = bytes.dropFirst() }
        if bytes.first == UInt8(ascii: "0") {
            bytes = bytes.dropFirst()
        } else if digits() == 0 {
            return false
        }
        if bytes.first == UInt8(ascii: ".") {
            bytes = bytes.dropFirst()
            guard digits() > 0 else { return false }
        }
        if bytes.first == UInt8(ascii: "e") || bytes.first == UInt8(ascii: "E") {
            bytes = bytes.dropFirst()
            if bytes.first == UInt8(ascii: "+") || bytes.first == UInt8(ascii: "-") { bytes = bytes.dropFirst() }
            guard digits() > 0 else { return false }
        }
        return bytes.isEmpty
    }
}

/// The field each key of the previous record named, by position: records repeat their keys, so
/// the mapping is looked up once, not on every line.
final class FieldCache {
    private var entries: [(key: String, field: CanonicalField?)] = []

    func field(for key: String, at index: Int) -> CanonicalField? {
        if index < entries.count, entries[index].key == key { return entries[index].field }
        let field = CanonicalField(header: key)
        if index == entries.count { entries.append((key, field)) } else if index < entries.count { entries[index] = (key, field) }
        return field
    }
}

/// Newline-delimited JSON: one object per line, blank lines skipped. Memory holds one line.
public final class NDJSONRecordSource: RecordSource {
    private let source: any ByteSource
    private let limits: ValidationLimits
    private var buffer: [UInt8] = []
    private var position = 0
    private var ended = false
    private var line = 0
    private var row = 0
    private let keyCache = JSONKeyCache()
    private let fieldCache = FieldCache()
    private var keys: [String] = []

    public init(source: any ByteSource, limits: ValidationLimits, prefix: [UInt8] = []) {
        self.source = source
        self.limits = limits
        self.buffer = prefix
    }

    /// Whether the leading byte-order mark (if any) was dealt with.
    private var startChecked = false

    public func next() throws(FileFormatError) -> RawRecord? {
        while let (first, end) = try nextLine() {
            var start = first
            if !startChecked {
                // A UTF-8 byte-order mark before the first line is not part of the JSON.
                startChecked = true
                if end - start >= 3, buffer[start] == 0xEF, buffer[start + 1] == 0xBB, buffer[start + 2] == 0xBF { start += 3 }
            }
            var parser = JSONParser(bytes: buffer, range: start..<end, maximumDepth: limits.maximumNestingDepth)
            parser.keyCache = keyCache
            guard parser.peek() != nil else { continue }
            let record: RawRecord
            do {
                record = try parser.parseRecord(depth: 0, line: line, row: row + 1, fields: fieldCache, keys: &keys)
                try parser.expectEnd()
            } catch let error as JSONSyntaxError {
                throw .invalidJSON(JSONSyntaxError(reason: error.reason, line: line, column: error.column))
            } catch FileFormatError.invalidJSON(let error) {
                // The buffer may hold earlier lines: the record's own line number is the one to report.
                throw .invalidJSON(JSONSyntaxError(reason: error.reason, line: line, column: error.column))
            } catch let error as FileFormatError {
                throw error
            } catch {
                throw .unreadable(reason: "\(error)")
            }
            row += 1
            return record
        }
        return nil
    }

    /// The byte range of the next line in `buffer` (without its line break), or `nil` at the end.
    private func nextLine() throws(FileFormatError) -> (Int, Int)? {
        // Bytes before `scanned` hold no line break: a long line is searched once, not once per chunk.
        var scanned = position
        while true {
            if let newline = buffer[scanned...].firstIndex(of: 0x0A) {
                let start = position
                position = newline + 1
                line += 1
                let end = newline > start && buffer[newline - 1] == 0x0D ? newline - 1 : newline
                guard end - start <= limits.maximumRecordBytes else { throw .recordTooLong(line: line, limit: limits.maximumRecordBytes) }
                return (start, end)
            }
            if buffer.count - position > limits.maximumRecordBytes {
                throw .recordTooLong(line: line + 1, limit: limits.maximumRecordBytes)
            }
            if ended {
                guard position < buffer.count else { return nil }
                let start = position
                position = buffer.count
                line += 1
                return (start, buffer.count)
            }
            let chunk = try source.read()
            if chunk.isEmpty {
                ended = true
            } else {
                // Drop what was read only when it is most of the buffer, so that a line spanning
                // many chunks is appended to, not copied again for each one.
                if position > buffer.count / 2 {
                    buffer.removeSubrange(0..<position)
                    position = 0
                }
                scanned = buffer.count
                buffer.append(contentsOf: chunk)
            }
        }
    }
}

extension String {
    /// Whether the two are equal ignoring case: ASCII letters compared byte by byte without
    /// allocating, anything else through `lowercased()`.
    func equalsIgnoringCase(_ other: String) -> Bool {
        // withUTF8 on copies: contiguous bytes for every string (a native one is not copied).
        var (mine, theirs) = (self, other)
        let ascii = mine.withUTF8 { a in theirs.withUTF8 { b in String.asciiEqualsIgnoringCase(a, b) } }
        return ascii ?? (lowercased() == other.lowercased())
    }

    /// Whether two ASCII byte strings are equal ignoring the case of letters; nil when either is
    /// not ASCII (its case folding is Unicode's, and may change its length).
    private static func asciiEqualsIgnoringCase(_ a: UnsafeBufferPointer<UInt8>, _ b: UnsafeBufferPointer<UInt8>) -> Bool? {
        guard a.allSatisfy({ $0 < 0x80 }), b.allSatisfy({ $0 < 0x80 }) else { return nil }
        guard a.count == b.count else { return false }
        for index in 0..<a.count where a[index] != b[index] {
            let folded = a[index] | 0x20
            guard folded == b[index] | 0x20, folded >= 0x61, folded <= 0x7A else { return false }
        }
        return true
    }

    /// Whether any UTF-8 byte satisfies `predicate`.
    func containsUTF8Byte(where predicate: (UInt8) -> Bool) -> Bool {
        var text = self
        return text.withUTF8 { $0.contains(where: predicate) }
    }

    /// Without leading and trailing spaces and tabs; the string itself when there are none.
    func trimmingSpaces() -> String {
        guard let first = utf8.first, let last = utf8.last, first == 0x20 || first == 0x09 || last == 0x20 || last == 0x09 else {
            return self
        }
        return String(drop { $0 == " " || $0 == "\t" }.reversed().drop { $0 == " " || $0 == "\t" }.reversed())
    }
}
