#if canImport(Glibc)
import Glibc
#endif

/// A JSON value. Numbers keep their literal text, so values such as 9007199254740993 survive a
/// round trip into `other_metrics` exactly; ``JSONValue/double`` converts on demand.
///
/// Not `indirect`: nesting goes through arrays, which are already references, and an indirect
/// enum would box every string and number on the heap.
public enum JSONValue: Equatable, Sendable {
    case null
    case bool(Bool)
    case number(String)
    case string(String)
    case array([JSONValue])
    case object([JSONMember])

    /// The number as a `Double` (`nil` for other values).
    public var double: Double? {
        if case .number(let literal) = self { return Double(literal) }
        return nil
    }

    /// A string, or a number's literal (vendors send ids and codes as either).
    public var text: String? {
        switch self {
        case .string(let text), .number(let text): text
        default: nil
        }
    }

    /// The member `key` of an object (exact match).
    public subscript(key: String) -> JSONValue? {
        guard case .object(let members) = self else { return nil }
        return members.first { $0.key == key }?.value
    }

    /// Compact JSON text for this value.
    public var serialized: String {
        var writer = JSONWriter()
        writer.value(self)
        return String(decoding: writer.bytes, as: UTF8.self)
    }
}

/// One member of a JSON object, in document order.
public struct JSONMember: Equatable, Sendable {
    public var key: String
    public var value: JSONValue
    public init(_ key: String, _ value: JSONValue) {
        self.key = key
        self.value = value
    }
}

extension JSONWriter {
    /// Writes any ``JSONValue``.
    public mutating func value(_ value: JSONValue) {
        switch value {
        case .null: null()
        case .bool(let flag): bool(flag)
        case .number(let literal): raw(literal)
        case .string(let text): string(text)
        case .array(let elements):
            beginArray()
            for element in elements { self.value(element) }
            endArray()
        case .object(let members):
            beginObject()
            for member in members {
                key(member.key)
                self.value(member.value)
            }
            endObject()
        }
    }
}

/// The keys of the last object parsed, by member position (see ``JSONParser/keyCache``).
/// Owned by one reader.
///
/// It also remembers how many of those keys the last record that parsed whole had, in order and
/// checked: a record whose first keys are byte for byte the same, at the same positions, has
/// already passed the duplicate checks for them, so ``JSONParser/parseRecord(depth:line:row:fields:keys:)``
/// checks only the keys after them (9 keys cost 36 comparisons a record otherwise).
public final class JSONKeyCache {
    // One reader's, used by one thread: the runtime's exclusivity checks cost more than the lookups.
    @exclusivity(unchecked) private var entries: [(bytes: [UInt8], key: String)] = []
    /// How many leading entries are the keys of the last record that parsed whole (checked distinct).
    @exclusivity(unchecked) private var trusted = 0

    public init() {}

    func key(at index: Int, matching bytes: ArraySlice<UInt8>) -> String? {
        guard index < entries.count, entries[index].bytes.count == bytes.count else { return nil }
        let equal = entries[index].bytes.withUnsafeBytes { cached in
            bytes.withUnsafeBytes { candidate in memcmp(cached.baseAddress!, candidate.baseAddress!, candidate.count) == 0 }
        }
        return equal ? entries[index].key : nil
    }

    /// Remembers `key` at `index`; false when the cache is full or `index` is past its end.
    @discardableResult
    func remember(_ key: String, bytes: [UInt8], at index: Int) -> Bool {
        guard index <= entries.count, index < 256 else { return false }
        if index == entries.count { entries.append((bytes, key)) } else { entries[index] = (bytes, key) }
        trusted = min(trusted, index)
        return true
    }

    /// The trusted prefix's length, forgotten until ``trust(_:)`` says it again: a record that
    /// fails part way leaves nothing trusted.
    func takeTrusted() -> Int {
        defer { trusted = 0 }
        return trusted
    }

    /// The first `count` entries are the keys of a record that parsed whole.
    func trust(_ count: Int) {
        trusted = min(count, entries.count)
    }
}

/// Line breaks in a byte range, found with memchr at vector speed (a streamed document's window
/// can be large, and errors and positions count them from its start).
enum LineBreaks {
    /// How many line feeds `bytes[range]` holds, and the index of the last one.
    static func find(in bytes: [UInt8], _ range: Range<Int>) -> (count: Int, last: Int?) {
        var (count, last): (Int, Int?) = (0, nil)
        bytes.withUnsafeBufferPointer { buffer in
            guard let base = buffer.baseAddress else { return }
            var from = range.lowerBound
            while from < range.upperBound, let found = memchr(base + from, 0x0A, range.upperBound - from) {
                let index = UnsafePointer<UInt8>(found.assumingMemoryBound(to: UInt8.self)) - base
                count += 1
                last = index
                from = index + 1
            }
        }
        return (count, last)
    }
}

/// Why JSON text was refused, with the line and column (1-based, in bytes) where it went wrong.
public struct JSONSyntaxError: Error, Equatable, Sendable, CustomStringConvertible {
    public var reason: String
    public var line: Int
    public var column: Int

    public init(reason: String, line: Int, column: Int) {
        self.reason = reason
        self.line = line
        self.column = column
    }

    public var description: String { "invalid JSON at line \(line), column \(column): \(reason)" }
}

/// A strict RFC 8259 parser over UTF-8 bytes.
///
/// Beyond the grammar it refuses what would make components disagree: duplicate keys, nesting
/// deeper than `maximumDepth`, lone surrogate escapes, invalid UTF-8 and NUL characters in strings
/// (PostgreSQL text cannot hold them). `NaN` and `Infinity` are not JSON and are refused as such.
public struct JSONParser {
    let bytes: [UInt8]
    public private(set) var position: Int
    let end: Int
    let maximumDepth: Int

    /// Parses `bytes[range]`.
    public init(bytes: [UInt8], range: Range<Int>? = nil, maximumDepth: Int = 64) {
        self.bytes = bytes
        self.position = range?.lowerBound ?? 0
        self.end = range?.upperBound ?? bytes.count
        self.maximumDepth = maximumDepth
    }

    /// Parses exactly one value with nothing but white space after it.
    public static func parse(_ bytes: [UInt8], maximumDepth: Int = 64) throws(JSONSyntaxError) -> JSONValue {
        var parser = JSONParser(bytes: bytes, maximumDepth: maximumDepth)
        let value = try parser.parseValue(depth: 0)
        try parser.expectEnd()
        return value
    }

    // MARK: - Cursor

    public var isAtEnd: Bool { position >= end }

    public mutating func skipWhitespace() {
        while position < end {
            switch bytes[position] {
            case 0x20, 0x09, 0x0A, 0x0D: position += 1
            default: return
            }
        }
    }

    /// The next significant byte without consuming it.
    public mutating func peek() -> UInt8? {
        skipWhitespace()
        return position < end ? bytes[position] : nil
    }

    public mutating func expect(_ byte: UInt8) throws(JSONSyntaxError) {
        guard peek() == byte else { throw error("expected '\(Character(Unicode.Scalar(byte)))'") }
        position += 1
    }

    public mutating func expectEnd() throws(JSONSyntaxError) {
        skipWhitespace()
        guard position >= end else { throw error("unexpected content after the value") }
    }

    /// An error at the current position.
    public func error(_ reason: String) -> JSONSyntaxError {
        let breaks = LineBreaks.find(in: bytes, 0..<min(position, bytes.count))
        let lineStart = breaks.last.map { $0 + 1 } ?? 0
        return JSONSyntaxError(reason: reason, line: breaks.count + 1, column: position - lineStart + 1)
    }

    // MARK: - Values

    /// Parses an object straight into a raw record: canonical members (matched by `fields`,
    /// case-insensitively) into their slots, the rest into `extras`; no member array in between.
    /// The checks are those of ``parseValue(depth:)``, plus names being case-insensitive: an
    /// exact duplicate key is a syntax error at the key, one that differs only in case is
    /// reported once the object has parsed. `keys` is scratch space, reused from record to record.
    mutating func parseRecord(
        depth: Int, line: Int, row: Int, fields: FieldCache, keys: inout [String]
    ) throws(FileFormatError) -> RawRecord {
        guard peek() == UInt8(ascii: "{") else {
            // Not an object: parse it (for its syntax errors), then refuse it.
            do { _ = try parseValue(depth: depth) } catch { throw .invalidJSON(error) }
            throw .notAReading(line: line, reason: "a reading must be a JSON object")
        }
        guard depth < maximumDepth else { throw .invalidJSON(error("nesting deeper than \(maximumDepth) levels")) }
        position += 1
        var raw = RawRecord(line: line, row: row)
        var caseDuplicate: String?
        keys.removeAll(keepingCapacity: true)
        // Records are small: a linear scan beats hashing until one grows large; then sets of the
        // keys as written and as folded keep the checks linear (a record of 87k keys is hostile).
        var exactKeys = Set<String>()
        var foldedKeys = Set<String>()
        var setsBuilt = false
        // Leading keys that repeat the last whole record's, byte for byte at the same positions,
        // were checked then against the same earlier keys: they need no check again.
        let cache = depth == keyCacheDepth ? keyCache : nil
        let trusted = cache?.takeTrusted() ?? 0
        var inTrustedPrefix = true
        var cachedPrefix = 0
        do {
            if peek() == UInt8(ascii: "}") {
                position += 1
                cache?.trust(0)
                return raw
            }
            while true {
                guard peek() == UInt8(ascii: "\"") else { throw error("expected a string key") }
                let keyStart = position
                let index = keys.count
                let (key, cached) = try parseKey(index: cache == nil ? -1 : index)
                inTrustedPrefix = inTrustedPrefix && cached == .hit && index < trusted
                if cachedPrefix == index, cached != .none { cachedPrefix += 1 }
                if !inTrustedPrefix {
                    if index >= 16, !setsBuilt {
                        exactKeys = Set(keys)
                        foldedKeys = Set(keys.map { $0.lowercased() })
                        setsBuilt = true
                    }
                    let length = key.utf8.count
                    guard setsBuilt ? !exactKeys.contains(key) : !keys.contains(where: { $0.utf8.count == length && $0 == key }) else {
                        position = keyStart
                        throw error("duplicate key \"\(key)\"")
                    }
                }
                try expect(UInt8(ascii: ":"))
                let value = try parseValue(depth: depth + 1)
                if let field = fields.field(for: key, at: index) {
                    if raw[field] != nil { caseDuplicate = caseDuplicate ?? key }
                    raw[field] = .json(value)
                } else {
                    // Extras that differ from an earlier key in case only.
                    if caseDuplicate == nil, !inTrustedPrefix,
                        setsBuilt ? foldedKeys.contains(key.lowercased()) : keys.contains(where: { $0.equalsIgnoringCase(key) }) {
                        caseDuplicate = key
                    }
                    raw.extras.append(JSONMember(key, value))
                }
                keys.append(key)
                if setsBuilt {
                    exactKeys.insert(key)
                    foldedKeys.insert(key.lowercased())
                }
                switch peek() {
                case UInt8(ascii: ","): position += 1
                case UInt8(ascii: "}"):
                    position += 1
                    if let caseDuplicate {
                        throw FileFormatError.notAReading(line: line, reason: "key \"\(caseDuplicate)\" appears twice (names are case-insensitive)")
                    }
                    cache?.trust(cachedPrefix)
                    return raw
                default: throw error("expected ',' or '}' in an object")
                }
            }
        } catch let syntax as JSONSyntaxError {
            throw .invalidJSON(syntax)
        } catch let format as FileFormatError {
            throw format
        } catch {
            throw .unreadable(reason: "\(error)")
        }
    }

    public mutating func parseValue(depth: Int) throws(JSONSyntaxError) -> JSONValue {
        guard depth < maximumDepth else { throw error("nesting deeper than \(maximumDepth) levels") }
        guard let byte = peek() else { throw error("unexpected end of input") }
        switch byte {
        case UInt8(ascii: "{"):
            position += 1
            var members: [JSONMember] = []
            var keys = Set<String>()
            if peek() == UInt8(ascii: "}") {
                position += 1
                return .object(members)
            }
            while true {
                guard peek() == UInt8(ascii: "\"") else { throw error("expected a string key") }
                let keyStart = position
                let (key, _) = try parseKey(index: depth == keyCacheDepth ? members.count : -1)
                // Records are small: a linear scan beats hashing until an object grows large.
                let duplicate: Bool
                if members.count < 16 {
                    duplicate = members.contains { $0.key == key }
                } else {
                    if keys.isEmpty { keys = Set(members.map(\.key)) }
                    duplicate = !keys.insert(key).inserted
                }
                guard !duplicate else {
                    position = keyStart
                    throw error("duplicate key \"\(key)\"")
                }
                try expect(UInt8(ascii: ":"))
                members.append(JSONMember(key, try parseValue(depth: depth + 1)))
                switch peek() {
                case UInt8(ascii: ","): position += 1
                case UInt8(ascii: "}"):
                    position += 1
                    return .object(members)
                default: throw error("expected ',' or '}' in an object")
                }
            }
        case UInt8(ascii: "["):
            position += 1
            var elements: [JSONValue] = []
            if peek() == UInt8(ascii: "]") {
                position += 1
                return .array(elements)
            }
            while true {
                elements.append(try parseValue(depth: depth + 1))
                switch peek() {
                case UInt8(ascii: ","): position += 1
                case UInt8(ascii: "]"):
                    position += 1
                    return .array(elements)
                default: throw error("expected ',' or ']' in an array")
                }
            }
        case UInt8(ascii: "\""):
            return .string(try parseString())
        case UInt8(ascii: "t"): try literal("true"); return .bool(true)
        case UInt8(ascii: "f"): try literal("false"); return .bool(false)
        case UInt8(ascii: "n"): try literal("null"); return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            return .number(try parseNumber())
        default:
            throw error("unexpected character '\(Character(Unicode.Scalar(byte)))'")
        }
    }

    private mutating func literal(_ word: StaticString) throws(JSONSyntaxError) {
        let count = word.utf8CodeUnitCount
        guard position + count <= end else { throw error("invalid literal") }
        for index in 0..<count where bytes[position + index] != word.utf8Start[index] {
            throw error("invalid literal")
        }
        position += count
    }

    /// A number's literal text, validated against the JSON grammar.
    private mutating func parseNumber() throws(JSONSyntaxError) -> String {
        let start = position
        if bytes[position] == UInt8(ascii: "-") { position += 1 }
        func digits() -> Int {
            let first = position
            while position < end, bytes[position] >= 0x30, bytes[position] <= 0x39 { position += 1 }
            return position - first
        }
        guard position < end else { throw error("invalid number") }
        if bytes[position] == UInt8(ascii: "0") {
            position += 1
        } else if digits() == 0 {
            throw error("invalid number")
        }
        if position < end, bytes[position] == UInt8(ascii: ".") {
            position += 1
            guard digits() > 0 else { throw error("invalid number: no digits after '.'") }
        }
        if position < end, bytes[position] == UInt8(ascii: "e") || bytes[position] == UInt8(ascii: "E") {
            position += 1
            if position < end, bytes[position] == UInt8(ascii: "+") || bytes[position] == UInt8(ascii: "-") { position += 1 }
            guard digits() > 0 else { throw error("invalid number: no digits in the exponent") }
        }
        if position < end, bytes[position] >= 0x30, bytes[position] <= 0x39 {
            throw error("invalid number: leading zero")
        }
        return String(decoding: bytes[start..<position], as: UTF8.self)
    }

    /// Remembered keys of the previous top-level object, by member position: NDJSON records
    /// repeat the same keys line after line, so a key whose bytes match is reused, not rebuilt.
    public var keyCache: JSONKeyCache?
    /// The depth of the objects whose keys the cache remembers (0 for NDJSON records).
    public var keyCacheDepth = 0

    /// Whether a key came from the cache, went into it, or neither.
    enum KeyCaching { case hit, remembered, none }

    /// An object key; top-level keys go through the cache when there is one.
    private mutating func parseKey(index: Int) throws(JSONSyntaxError) -> (String, KeyCaching) {
        guard let cache = keyCache, index >= 0 else { return (try parseString(), .none) }
        let start = position + 1
        var end = start
        while end < self.end, bytes[end] != UInt8(ascii: "\""), bytes[end] != UInt8(ascii: "\\") { end += 1 }
        if end < self.end, bytes[end] == UInt8(ascii: "\""), let cached = cache.key(at: index, matching: bytes[start..<end]) {
            position = end + 1
            return (cached, .hit)
        }
        let key = try parseString()
        // Only a key without escapes is remembered: its bytes are then exactly the key's.
        if end < self.end, bytes[end] == UInt8(ascii: "\""), cache.remember(key, bytes: Array(bytes[start..<end]), at: index) {
            return (key, .remembered)
        }
        return (key, .none)
    }

    /// A string (the opening quote is next), unescaped and validated.
    public mutating func parseString() throws(JSONSyntaxError) -> String {
        position += 1
        let start = position
        // Fast path: no escapes, ASCII or valid UTF-8 checked by the String initialiser.
        while position < end {
            let byte = bytes[position]
            if byte == UInt8(ascii: "\"") {
                let slice = bytes[start..<position]
                position += 1
                guard let text = Text.string(slice) else {
                    position = start
                    throw error("invalid UTF-8 in a string")
                }
                return text
            }
            if byte == UInt8(ascii: "\\") { break }
            if byte < 0x20 { throw error(byte == 0 ? "NUL character in a string" : "unescaped control character in a string") }
            position += 1
        }
        // Slow path: escapes.
        var buffer = Array(bytes[start..<position])
        while position < end {
            let byte = bytes[position]
            switch byte {
            case UInt8(ascii: "\""):
                position += 1
                guard let text = Text.string(buffer) else {
                    throw error("invalid UTF-8 in a string")
                }
                return text
            case UInt8(ascii: "\\"):
                position += 1
                guard position < end else { throw error("unterminated escape") }
                let escape = bytes[position]
                position += 1
                switch escape {
                case UInt8(ascii: "\""): buffer.append(0x22)
                case UInt8(ascii: "\\"): buffer.append(0x5C)
                case UInt8(ascii: "/"): buffer.append(0x2F)
                case UInt8(ascii: "b"): buffer.append(0x08)
                case UInt8(ascii: "f"): buffer.append(0x0C)
                case UInt8(ascii: "n"): buffer.append(0x0A)
                case UInt8(ascii: "r"): buffer.append(0x0D)
                case UInt8(ascii: "t"): buffer.append(0x09)
                case UInt8(ascii: "u"):
                    var scalar = try hex4()
                    if (0xD800..<0xDC00).contains(scalar) {
                        guard position + 1 < end, bytes[position] == UInt8(ascii: "\\"), bytes[position + 1] == UInt8(ascii: "u") else {
                            throw error("lone surrogate \\u\(String(scalar, radix: 16))")
                        }
                        position += 2
                        let low = try hex4()
                        guard (0xDC00..<0xE000).contains(low) else { throw error("lone surrogate \\u\(String(scalar, radix: 16))") }
                        scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                    } else if (0xDC00..<0xE000).contains(scalar) {
                        throw error("lone surrogate \\u\(String(scalar, radix: 16))")
                    }
                    guard scalar != 0 else { throw error("NUL character in a string") }
                    buffer.append(contentsOf: String(Character(Unicode.Scalar(scalar)!)).utf8)
                default:
                    throw error("invalid escape \\\(Character(Unicode.Scalar(escape)))")
                }
            default:
                if byte < 0x20 { throw error(byte == 0 ? "NUL character in a string" : "unescaped control character in a string") }
                buffer.append(byte)
                position += 1
            }
        }
        throw error("unterminated string")
    }

    private mutating func hex4() throws(JSONSyntaxError) -> UInt32 {
        guard position + 4 <= end else { throw error("short \\u escape") }
        var value: UInt32 = 0
        for _ in 0..<4 {
            let byte = bytes[position]
            let digit: UInt32
            switch byte {
            case 0x30...0x39: digit = UInt32(byte - 0x30)
            case 0x61...0x66: digit = UInt32(byte - 0x57)
            case 0x41...0x46: digit = UInt32(byte - 0x37)
            default: throw error("invalid \\u escape")
            }
            value = value << 4 | digit
            position += 1
        }
        return value
    }
}
