/// One CSV record: its fields and the line it starts on.
public struct CSVRecord: Equatable, Sendable {
    public var fields: [String]
    public var line: Int

    public init(fields: [String], line: Int) {
        self.fields = fields
        self.line = line
    }
}

/// An RFC 4180 reader that streams: quoted fields, doubled quotes, quoted line breaks, CRLF, LF
/// and lone CR line endings, a leading UTF-8 BOM. Memory holds one record; fields, records and
/// column counts are capped by ``ValidationLimits``. Blank lines are skipped.
public struct CSVReader {
    private let source: any ByteSource
    private let limits: ValidationLimits
    private var chunk: [UInt8] = []
    private var position = 0
    private var ended = false
    private var line = 1
    private var started = false

    public init(source: any ByteSource, limits: ValidationLimits) {
        self.source = source
        self.limits = limits
    }

    /// The next record, or `nil` at the end of the file.
    public mutating func next() throws(FileFormatError) -> CSVRecord? {
        if !started {
            started = true
            try skipByteOrderMark()
        }
        while true {
            guard let byte = try peek() else { return nil }
            // Blank lines between records are not records.
            if byte == 0x0A || byte == 0x0D {
                try consumeLineBreak()
                continue
            }
            return try record()
        }
    }

    private mutating func record() throws(FileFormatError) -> CSVRecord {
        let startLine = line
        var fields: [String] = []
        var field: [UInt8] = []
        var recordBytes = 0
        while true {
            field.removeAll(keepingCapacity: true)
            let quoted = try peek() == 0x22
            if quoted {
                position += 1
                try quotedField(into: &field, startLine: startLine)
            } else {
                try unquotedField(into: &field, startLine: startLine, column: fields.count + 1)
            }
            recordBytes += field.count + 1
            if recordBytes > limits.maximumRecordBytes { throw .recordTooLong(line: startLine, limit: limits.maximumRecordBytes) }
            guard let text = Text.string(field) else { throw .invalidUTF8(line: line) }
            fields.append(text)
            if fields.count > limits.maximumColumns {
                throw .tooManyColumns(line: startLine, count: fields.count, limit: limits.maximumColumns)
            }
            switch try peek() {
            case 0x2C?:
                position += 1
            case nil:
                return CSVRecord(fields: fields, line: startLine)
            case 0x0A?, 0x0D?:
                try consumeLineBreak()
                return CSVRecord(fields: fields, line: startLine)
            case let other?:
                // Only reachable after a closing quote.
                _ = other
                throw .strayQuote(line: line, column: fields.count)
            }
        }
    }

    /// Reads up to the next `,`, line break or end; a quote inside is an error.
    private mutating func unquotedField(into field: inout [UInt8], startLine: Int, column: Int) throws(FileFormatError) {
        while true {
            if position >= chunk.count, try !refill() { return }
            let start = position
            var stop = position
            var found = false
            chunk.withUnsafeBufferPointer { buffer in
                while stop < buffer.count {
                    let byte = buffer[stop]
                    if byte == 0x2C || byte == 0x0A || byte == 0x0D || byte == 0x22 { found = true; break }
                    stop += 1
                }
            }
            field.append(contentsOf: chunk[start..<stop])
            position = stop
            if field.count > limits.maximumFieldBytes { throw .fieldTooLong(line: startLine, limit: limits.maximumFieldBytes) }
            if found {
                if chunk[position] == 0x22 { throw .strayQuote(line: line, column: column) }
                return
            }
        }
    }

    /// Reads a quoted field after its opening quote, through its closing quote.
    private mutating func quotedField(into field: inout [UInt8], startLine: Int) throws(FileFormatError) {
        // A CR counts as a line break at once; an LF right after it (in this chunk or the next)
        // belongs to the same CRLF and does not count again.
        var afterCR = false
        while true {
            if position >= chunk.count, try !refill() { throw .unterminatedQuote(line: startLine) }
            let start = position
            var stop = position
            chunk.withUnsafeBufferPointer { buffer in
                while stop < buffer.count, buffer[stop] != 0x22 {
                    switch buffer[stop] {
                    case 0x0A:
                        if !afterCR { line += 1 }
                        afterCR = false
                    case 0x0D:
                        line += 1
                        afterCR = true
                    default:
                        afterCR = false
                    }
                    stop += 1
                }
            }
            field.append(contentsOf: chunk[start..<stop])
            position = stop
            if field.count > limits.maximumFieldBytes { throw .fieldTooLong(line: startLine, limit: limits.maximumFieldBytes) }
            guard position < chunk.count else { continue }
            // A quote: doubled means a literal quote, else the field ends.
            position += 1
            if try peek() == 0x22 {
                field.append(0x22)
                position += 1
            } else {
                return
            }
        }
    }

    private mutating func consumeLineBreak() throws(FileFormatError) {
        guard let byte = try peek() else { return }
        position += 1
        if byte == 0x0D, try peek() == 0x0A { position += 1 }
        line += 1
    }

    private mutating func skipByteOrderMark() throws(FileFormatError) {
        guard try peek() == 0xEF else { return }
        // The BOM may straddle a chunk boundary; gather three bytes.
        while chunk.count - position < 3, try refill(keep: true) {}
        if chunk.count - position >= 3, chunk[position + 1] == 0xBB, chunk[position + 2] == 0xBF { position += 3 }
    }

    private mutating func peek() throws(FileFormatError) -> UInt8? {
        if position >= chunk.count, try !refill() { return nil }
        return chunk[position]
    }

    /// Loads the next chunk (keeping unread bytes when `keep`); false at the end.
    private mutating func refill(keep: Bool = false) throws(FileFormatError) -> Bool {
        guard !ended else { return false }
        let next = try source.read()
        if next.isEmpty {
            ended = true
            return false
        }
        chunk = keep ? Array(chunk[position...]) + next : next
        position = 0
        return true
    }
}
