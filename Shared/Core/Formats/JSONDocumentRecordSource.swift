#if canImport(Glibc)
import Glibc
#endif

/// A whole JSON document, streamed: a bare array of readings, or the fetcher envelope
/// `{source, organization_id, site_id, fetched_at, data_range, readings}` with its members in any
/// order. Memory holds a window of the document (one reading at most, capped at
/// `limits.maximumRecordBytes`, plus a read chunk), whatever the document's size.
///
/// The envelope's members are checked as they arrive. `source` and `organization_id` may come
/// before or after `readings`; if they disagree with the file's location the file fails as a
/// whole (the load is one transaction, so nothing of it stays). `site_id` and `utc_offset` shape
/// how the readings are read, so they must come before `readings`. Every strictness of
/// ``JSONParser`` holds, and errors name the line and column in the whole document.
public final class JSONDocumentRecordSource: RecordSource {
    private let source: any ByteSource
    private let maximumRecordBytes: Int
    /// The cap of the value being parsed: a reading's, or (a vendor answer) the answers' budget left.
    private var valueCap: Int
    private let maximumDepth: Int
    private let expectedSource: SourceSystem
    private let expectedOrganization: Int64
    private let transforms: VendorTransforms
    private let maximumAnswerBytes: Int
    private let readAhead: Int

    /// The window: bytes of the document from its line `baseLine`, after `baseColumn` bytes of
    /// that line, so that positions stay exact once the front is dropped.
    private var window: [UInt8]
    private var position = 0
    /// Bytes dropped from the window's front so far: `dropped + position` is an offset in the
    /// document, which stays right across a read (a window index saved before one does not).
    private var dropped = 0
    private var ended = false
    private var baseLine = 1
    private var baseColumn = 0
    /// Line (within the window) of `window[lineCursor.position]`, counted incrementally.
    private var lineCursor = (position: 0, line: 1)

    private enum State {
        case array(first: Bool)
        case readings(first: Bool)
        /// A vendor envelope's `readings`: answers kept whole until the envelope is read.
        case vendorAnswers(first: Bool)
        case membersAfterReadings
        /// A vendor envelope, transformed: its records are handed out from `transformed`.
        case transformed
        case finished
    }
    private var state = State.finished
    private var row = 0
    private let fieldCache = FieldCache()
    private let keyCache = JSONKeyCache()
    private var keys: [String] = []
    private var envelopeKeys = Set<String>()

    public private(set) var declaredUTCOffset: Int?
    public private(set) var declaredSiteID: String?
    /// The envelope's members other than `readings`, as far as read (empty for a bare array).
    public private(set) var envelope: [JSONMember] = []
    /// The envelope's `vendor_format`, when its readings are a vendor's answers.
    public private(set) var vendorFormat: (any VendorEnvelopeTransform)?
    private var answers: [(line: Int, value: JSONValue)] = []
    private var answerBytes = 0
    private var transformed: [RawRecord] = []
    private var transformedIndex = 0

    /// Reads up to the first reading: the opening bracket of a bare array, or an envelope's
    /// members before `readings`.
    /// - Parameters:
    ///   - expectedSource: The lake path's source; an envelope naming another is refused.
    ///   - expectedOrganization: The lake path's organisation; an envelope naming another is refused.
    ///   - transforms: The vendor envelopes it can read (by `vendor_format`).
    public init(
        source: any ByteSource, limits: ValidationLimits, prefix: [UInt8] = [], expectedSource: SourceSystem,
        expectedOrganization: Int64, transforms: VendorTransforms = VendorTransforms()
    ) throws(FileFormatError) {
        self.source = source
        self.transforms = transforms
        self.maximumAnswerBytes = limits.maximumVendorAnswerBytes
        self.readAhead = max(1, limits.jsonReadAheadBytes)
        self.maximumRecordBytes = limits.maximumRecordBytes
        self.valueCap = limits.maximumRecordBytes
        self.maximumDepth = limits.maximumNestingDepth
        self.expectedSource = expectedSource
        self.expectedOrganization = expectedOrganization
        self.window = prefix
        if try ensure(3), window.starts(with: [0xEF, 0xBB, 0xBF]) { position = 3 }
        switch try peek() {
        case UInt8(ascii: "[")?:
            position += 1
            state = .array(first: true)
        case UInt8(ascii: "{")?:
            position += 1
            try readMembers(first: true)
        case nil:
            throw .notAnEnvelope(reason: "the document is empty")
        default:
            throw .notAnEnvelope(reason: "it starts with neither [ nor {")
        }
    }

    public func next() throws(FileFormatError) -> RawRecord? {
        while true {
            let inEnvelope: Bool
            let first: Bool
            switch state {
            case .finished:
                return nil
            case .membersAfterReadings:
                try readMembers(first: false)
                continue
            case .vendorAnswers(let isFirst):
                try readAnswers(first: isFirst)
                continue
            case .transformed:
                guard transformedIndex < transformed.count else {
                    state = .finished
                    transformed = []
                    return nil
                }
                transformedIndex += 1
                return transformed[transformedIndex - 1]
            case .array(let isFirst):
                (inEnvelope, first) = (false, isFirst)
            case .readings(let isFirst):
                (inEnvelope, first) = (true, isFirst)
            }
            switch try peek() {
            case UInt8(ascii: "]")?:
                position += 1
                try closeReadings(inEnvelope: inEnvelope)
                continue
            case UInt8(ascii: ",")? where !first:
                position += 1
            default:
                if !first { throw syntaxError("expected ',' or ']' in an array") }
            }
            state = inEnvelope ? .readings(first: false) : .array(first: false)
            _ = try peek()
            let line = lineNumber()
            let (fields, next) = (fieldCache, row + 1)
            // Moved out and back (not copied), so the parser reuses the same storage record after record.
            var keys: [String] = []
            swap(&keys, &self.keys)
            defer { swap(&keys, &self.keys) }
            let record = try parse(line: line) { (parser: inout JSONParser) throws(FileFormatError) in
                try parser.parseRecord(depth: 2, line: line, row: next, fields: fields, keys: &keys)
            }
            row = next
            return record
        }
    }

    // MARK: - The envelope

    /// Reads members up to the `readings` array (leaving the window just inside it) or to the
    /// envelope's end.
    private func readMembers(first isFirst: Bool) throws(FileFormatError) {
        var first = isFirst
        while true {
            switch try peek() {
            case UInt8(ascii: "}")?:
                position += 1
                return try finishEnvelope()
            case UInt8(ascii: ",")? where !first:
                position += 1
            default:
                if !first { throw syntaxError("expected ',' or '}' in an object") }
            }
            first = false
            guard try peek() == UInt8(ascii: "\"") else { throw syntaxError("expected a string key") }
            // Parsing may read more and drop what was parsed: the key's start as a document offset.
            let keyStart = dropped + position
            let key = try parse(line: lineNumber()) { (parser: inout JSONParser) throws(JSONSyntaxError) in try parser.parseString() }
            guard envelopeKeys.insert(key).inserted else {
                position = keyStart - dropped
                throw syntaxError("duplicate key \"\(key)\"")
            }
            guard try peek() == UInt8(ascii: ":") else { throw syntaxError("expected ':'") }
            position += 1
            if key == "readings" {
                guard try peek() == UInt8(ascii: "[") else { throw .notAnEnvelope(reason: "readings must be an array") }
                position += 1
                state = vendorFormat == nil ? .readings(first: true) : .vendorAnswers(first: true)
                return
            }
            _ = try peek()
            let value = try parse(line: lineNumber()) { (parser: inout JSONParser) throws(JSONSyntaxError) in
                try parser.parseValue(depth: 1)
            }
            try check(JSONMember(key, value))
            envelope.append(JSONMember(key, value))
        }
    }

    private func closeReadings(inEnvelope: Bool) throws(FileFormatError) {
        if inEnvelope {
            state = .membersAfterReadings
        } else {
            try expectEnd()
            state = .finished
        }
    }

    private func finishEnvelope() throws(FileFormatError) {
        try expectEnd()
        guard envelopeKeys.contains("readings") else { throw .notAnEnvelope(reason: "no \"readings\" array") }
        state = .finished
        if let vendorFormat {
            // The whole envelope is known: its transform can join the answers into records.
            transformed = try vendorFormat.records(VendorEnvelope(format: vendorFormat.format, members: envelope, answers: answers))
            answers = []
            state = .transformed
        }
    }

    /// Reads a vendor envelope's answers, each whole, up to the end of `readings`.
    private func readAnswers(first isFirst: Bool) throws(FileFormatError) {
        var first = isFirst
        while true {
            switch try peek() {
            case UInt8(ascii: "]")?:
                position += 1
                state = .membersAfterReadings
                return
            case UInt8(ascii: ",")? where !first:
                position += 1
            default:
                if !first { throw syntaxError("expected ',' or ']' in an array") }
            }
            first = false
            _ = try peek()
            let (line, start) = (lineNumber(), dropped + position)
            // One answer may be larger than a reading (a month of quarter hours), within the budget left.
            valueCap = max(1, maximumAnswerBytes - answerBytes)
            defer { valueCap = maximumRecordBytes }
            let value: JSONValue
            do {
                value = try parse(line: line) { (parser: inout JSONParser) throws(JSONSyntaxError) in try parser.parseValue(depth: 2) }
            } catch .recordTooLong {
                throw .notAnEnvelope(reason: "the vendor answers exceed \(maximumAnswerBytes) bytes; fetch shorter windows")
            }
            answerBytes += dropped + position - start
            guard answerBytes <= maximumAnswerBytes else {
                throw .notAnEnvelope(reason: "the vendor answers exceed \(maximumAnswerBytes) bytes; fetch shorter windows")
            }
            answers.append((line, value))
        }
    }

    /// Checks one envelope member as it arrives.
    private func check(_ member: JSONMember) throws(FileFormatError) {
        switch member.key {
        case "source":
            guard case .string(let name) = member.value, let named = SourceSystem(rawValue: name.lowercased()) else {
                throw .notAnEnvelope(reason: "source must be one of \(SourceSystem.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            guard named == expectedSource else {
                throw .notAnEnvelope(reason: "source \"\(name)\" does not match the file's location (\(expectedSource.rawValue))")
            }
        case "organization_id":
            let text: String? = switch member.value {
            case .number(let literal), .string(let literal): literal
            default: nil
            }
            guard let text, Int64(text) == expectedOrganization else {
                throw .notAnEnvelope(reason: "organization_id \(member.value.serialized) does not match the file's location (\(expectedOrganization))")
            }
        case "vendor_format":
            guard !envelopeKeys.contains("readings") else {
                throw .notAnEnvelope(reason: "vendor_format must come before readings (it says how they are read)")
            }
            guard case .string(let name) = member.value, let transform = transforms.byFormat[name] else {
                let known = transforms.byFormat.keys.sorted().joined(separator: ", ")
                throw .notAnEnvelope(reason: "vendor_format \(member.value.serialized) is not one this validator reads (\(known.isEmpty ? "none" : known))")
            }
            guard transform.source == expectedSource else {
                throw .notAnEnvelope(reason: "vendor_format \(name) does not match the file's location (\(expectedSource.rawValue))")
            }
            vendorFormat = transform
        case "site_id", "utc_offset":
            // They shape how the readings are read: after them they would come too late.
            guard !envelopeKeys.contains("readings") else {
                throw .notAnEnvelope(reason: "\(member.key) must come before readings (it shapes how they are read)")
            }
            if member.key == "site_id" {
                switch member.value {
                case .string(let site): declaredSiteID = site
                case .number(let literal): declaredSiteID = literal
                case .null: break
                default: throw .notAnEnvelope(reason: "site_id must be a string or number")
                }
            } else if case .string(let offset) = member.value {
                guard let seconds = ISO8601.offset(Array(offset.utf8)[...]) else {
                    throw .notAnEnvelope(reason: "utc_offset must be Z or ±HH:MM")
                }
                declaredUTCOffset = seconds
            }
        default:
            break
        }
    }

    // MARK: - The window

    /// Makes at least `count` bytes available from `position` (fewer at the end); false when none.
    private func ensure(_ count: Int) throws(FileFormatError) -> Bool {
        while window.count - position < count, !ended { try fill() }
        return position < window.count
    }

    /// Reads the next chunk, first dropping what was parsed when it is most of the window.
    private func fill() throws(FileFormatError) {
        let chunk = try source.read()
        guard !chunk.isEmpty else {
            ended = true
            return
        }
        if position > 0, position >= window.count / 2 { drop(position) }
        window.append(contentsOf: chunk)
    }

    /// Drops the window's first `count` bytes, keeping line and column counts exact.
    private func drop(_ count: Int) {
        let (newlines, lastNewline) = LineBreaks.find(in: window, 0..<count)
        if let lastNewline {
            baseLine += newlines
            baseColumn = count - lastNewline - 1
        } else {
            baseColumn += count
        }
        window.removeSubrange(0..<count)
        position -= count
        dropped += count
        lineCursor = (0, 1)
    }

    /// The next significant byte (white space skipped), reading more as needed; nil at the end.
    private func peek() throws(FileFormatError) -> UInt8? {
        while true {
            while position < window.count {
                switch window[position] {
                case 0x20, 0x09, 0x0A, 0x0D: position += 1
                default: return window[position]
                }
            }
            guard !ended else { return nil }
            try fill()
        }
    }

    private func expectEnd() throws(FileFormatError) {
        guard try peek() == nil else { throw syntaxError("unexpected content after the value") }
    }

    /// Runs `body` on a parser over the window from `position`, capped at one record. When it
    /// stops at the window's end before the document's, more is read and it runs again; at the
    /// cap, the reading is too long.
    private func parse<T, Failure: Error>(line: Int, _ body: (inout JSONParser) throws(Failure) -> T) throws(FileFormatError) -> T {
        // Most values are short: with this much read ahead they never stop at the window's edge,
        // which would cost a failed parse and its error.
        _ = try ensure(min(valueCap, readAhead))
        while true {
            let available = window.count - position
            let capped = available >= valueCap
            var parser = JSONParser(bytes: window, range: position..<position + min(available, valueCap), maximumDepth: maximumDepth)
            parser.keyCache = keyCache
            parser.keyCacheDepth = 2
            do {
                let value = try body(&parser)
                // A value that ends at the window's edge may go on in the next chunk (a number).
                if parser.position >= window.count, !ended, !capped {
                    parser = JSONParser(bytes: [])  // (releases the window before it grows)
                    try fill()
                    continue
                }
                position = parser.position
                return value
            } catch {
                let stoppedAtEdge = parser.position >= parser.end - 16
                if stoppedAtEdge, capped { throw .recordTooLong(line: line, limit: valueCap) }
                if stoppedAtEdge, !ended {
                    parser = JSONParser(bytes: [])
                    try fill()
                    continue
                }
                throw absolute(error)
            }
        }
    }

    /// An error of a parser over the window, with its line and column in the whole document.
    private func absolute(_ error: any Error) -> FileFormatError {
        func shifted(_ syntax: JSONSyntaxError) -> JSONSyntaxError {
            JSONSyntaxError(reason: syntax.reason, line: baseLine + syntax.line - 1,
                            column: syntax.line == 1 ? baseColumn + syntax.column : syntax.column)
        }
        switch error {
        case let syntax as JSONSyntaxError: return .invalidJSON(shifted(syntax))
        case FileFormatError.invalidJSON(let syntax): return .invalidJSON(shifted(syntax))
        case let format as FileFormatError: return format
        default: return .unreadable(reason: "\(error)")
        }
    }

    private func syntaxError(_ reason: String) -> FileFormatError {
        absolute(JSONParser(bytes: window, range: position..<window.count).error(reason))
    }

    /// The document's line at `position` (records come in order: counted incrementally).
    private func lineNumber() -> Int {
        if position < lineCursor.position { lineCursor = (0, 1) }
        // Records are usually one line each: only the bytes since the last record are searched.
        let line = lineCursor.line + LineBreaks.find(in: window, lineCursor.position..<position).count
        lineCursor = (position, line)
        return baseLine + line - 1
    }
}
