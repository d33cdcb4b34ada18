/// A value as a reader found it: CSV text, a JSON value, or a typed Parquet value.
public enum RawField: Sendable, Equatable {
    case text(String)
    case json(JSONValue)
    /// A whole number (Parquet integers, DECIMAL with scale 0).
    case integer(Int64)
    /// A binary floating-point number (Parquet FLOAT, DOUBLE, scaled DECIMAL).
    case number(Double)
    /// A point in time: whole Unix seconds plus `nanoseconds` (0..<10^9). `zoned` is false for a
    /// zone-less wall-clock value (Parquet TIMESTAMP with isAdjustedToUTC = false, DATE), which
    /// is read as UTC unless the file's `utc_offset` or the configured default says otherwise.
    case timestamp(seconds: Int64, nanoseconds: Int32, zoned: Bool)
}

/// One record before checking: its canonical fields (indexed by ``CanonicalField``), the extra
/// columns destined for `other_metrics`, and where it is in the file.
public struct RawRecord: Sendable {
    public var line: Int
    public var row: Int
    public var fields: [RawField?]
    public var extras: [JSONMember]
    /// Set when the reader could not split the row (a CSV row with the wrong field count).
    public var malformed: SchemaViolation?

    public init(line: Int, row: Int, fields: [RawField?] = Array(repeating: nil, count: CanonicalField.allCases.count), extras: [JSONMember] = []) {
        self.line = line
        self.row = row
        self.fields = fields
        self.extras = extras
    }

    public subscript(field: CanonicalField) -> RawField? {
        get { fields[field.rawValue] }
        set { fields[field.rawValue] = newValue }
    }
}

/// Checks records against the upload file format and turns the good ones into ``MeterReading``s.
///
/// Every violation of a record is reported, not just the first. The duplicate check spans the
/// whole file (one decoder per file) in bounded memory: see ``DuplicateTracker``; what it cannot
/// hold it hands on (``lastReadingNeedsDuplicateCheck``, ``ReadingBatch/pendingDuplicateChecks``).
public struct ReadingDecoder {
    public let limits: ValidationLimits
    public let source: SourceSystem
    public let organizationID: Int64
    /// "Now" for the future check, Unix seconds.
    public let now: Int64
    /// Stamped on every reading, Unix milliseconds.
    public let ingestedAt: Int64
    /// A UTC offset declared by the file (an envelope's `utc_offset`), seconds.
    public var declaredUTCOffset: Int?
    /// A site id declared by the file (an envelope's `site_id`) for records that name none.
    public var declaredSiteID: String?
    private var duplicates: DuplicateTracker
    /// Set by ``decode(_:violations:)`` when the reading it returned could not be checked against
    /// the file's other readings within the tracker's memory (see ``DuplicateTracker``): the
    /// loader must check it.
    public private(set) var lastReadingNeedsDuplicateCheck = false
    /// The message of a `duplicate_reading` violation, wherever it is found.
    public static let duplicateMessage = "another row of this file has the same site, device and timestamp"

    public init(limits: ValidationLimits, source: SourceSystem, organizationID: Int64, now: Int64, ingestedAt: Int64) {
        self.limits = limits
        self.source = source
        self.organizationID = organizationID
        self.now = now
        self.ingestedAt = ingestedAt
        self.duplicates = DuplicateTracker(slotSeconds: limits.slotSeconds, maximumBytes: limits.maximumDuplicateTrackerBytes)
    }

    /// The reading, or `nil` with the record's violations appended to `violations`.
    public mutating func decode(_ record: RawRecord, violations: inout [SchemaViolation]) -> MeterReading? {
        if let malformed = record.malformed {
            violations.append(malformed)
            return nil
        }
        var context = RecordContext(record: record, limits: limits)
        let siteID = context.identifier(.externalSiteID, fallback: declaredSiteID)
        let deviceID = context.identifier(.externalDeviceID, fallback: nil)
        let offset = context.utcOffset(default: declaredUTCOffset ?? limits.defaultUTCOffset)
        let timestamp = context.timestamp(offset: offset)
        let interval = context.interval()
        let energy = context.number(.energyWh)
        let power = context.number(.powerW)
        let irradiance = context.number(.irradianceWm2)
        let temperature = context.number(.temperatureC)
        let quality = context.quality()
        let otherMetrics = context.otherMetrics()

        if let timestamp {
            if timestamp < limits.earliestTimestamp {
                context.violation(.timestampTooEarly, .timestamp, "before \(Timestamp.rfc3339(milliseconds: limits.earliestTimestamp * 1000))")
            } else if timestamp > now + limits.futureTolerance {
                context.violation(.timestampInFuture, .timestamp, "more than \(limits.futureTolerance) s after now")
            }
            if let interval, limits.allowedIntervals.contains(interval), timestamp % Int64(interval) != 0 {
                context.violation(.misalignedTimestamp, .timestamp, "not aligned to the start of a \(interval)-second interval")
            }
        }
        if let energy {
            if energy < 0 {
                context.violation(.negativeValue, .energyWh, "energy must not be negative")
            } else if let interval, energy > limits.maximumPowerW * Double(interval) / 3600 {
                context.violation(.implausibleValue, .energyWh, "more energy than \(limits.maximumPowerW) W for \(interval) s")
            }
        }
        if let power {
            if power < 0 {
                context.violation(.negativeValue, .powerW, "power must not be negative")
            } else if power > limits.maximumPowerW {
                context.violation(.implausibleValue, .powerW, "more than \(limits.maximumPowerW) W")
            }
        }
        if let irradiance, !limits.irradianceRange.contains(irradiance) {
            context.violation(.outOfRange, .irradianceWm2, "irradiance must be within \(limits.irradianceRange.lowerBound)…\(limits.irradianceRange.upperBound) W/m²")
        }
        if let temperature, !limits.temperatureRange.contains(temperature) {
            context.violation(.outOfRange, .temperatureC, "temperature must be within \(limits.temperatureRange.lowerBound)…\(limits.temperatureRange.upperBound) °C")
        }
        // `missing` means the energy figure is absent; the meter may still report power,
        // irradiance or temperature for the interval.
        if quality == .missing, energy != nil {
            context.violation(.invalidQuality, .quality, "a reading of quality \"missing\" carries no energy")
        }

        guard context.violations.isEmpty, let siteID, let deviceID, let timestamp, let interval, let quality else {
            violations.append(contentsOf: context.violations)
            return nil
        }
        switch duplicates.insert(site: siteID, device: deviceID, timestamp: timestamp) {
        case .new:
            lastReadingNeedsDuplicateCheck = false
        case .unknown:
            lastReadingNeedsDuplicateCheck = true
        case .duplicate:
            context.violation(.duplicateReading, .timestamp, Self.duplicateMessage)
            violations.append(contentsOf: context.violations)
            return nil
        }
        return MeterReading(
            sourceSystem: source, organizationID: organizationID, externalSiteID: siteID, externalDeviceID: deviceID,
            timestamp: timestamp, readingIntervalSeconds: interval, energyWh: energy, powerW: power,
            irradianceWm2: irradiance, temperatureC: temperature, otherMetrics: otherMetrics, quality: quality,
            ingestedAt: ingestedAt)
    }
}

/// The per-record work of the decoder: reading each field and collecting violations.
private struct RecordContext {
    let record: RawRecord
    let limits: ValidationLimits
    var violations: [SchemaViolation] = []

    init(record: RawRecord, limits: ValidationLimits) {
        self.record = record
        self.limits = limits
    }

    mutating func violation(_ code: SchemaViolation.Code, _ field: CanonicalField, _ message: String) {
        violations.append(SchemaViolation(code, line: record.line, row: record.row, column: field.name, value: display(record[field]), message: message))
    }

    /// The field's text, or `nil` when absent, empty or JSON null; a JSON value of another type
    /// is reported and also gives `nil`.
    mutating func text(_ field: CanonicalField, allowNumber: Bool = true) -> String? {
        switch record[field] {
        case nil, .json(.null): return nil
        case .text(let text):
            let trimmed = text.trimmingSpaces()
            return trimmed.isEmpty ? nil : trimmed
        case .json(.string(let text)):
            let trimmed = text.trimmingSpaces()
            return trimmed.isEmpty ? nil : trimmed
        case .json(.number(let literal)) where allowNumber:
            return literal
        case .integer(let value) where allowNumber:
            return String(value)
        case .number(let value) where allowNumber:
            return value.description
        case .json, .integer, .number, .timestamp:
            violation(.invalidType, field, "expected \(allowNumber ? "a string or number" : "a string")")
            return nil
        }
    }

    /// The text of a required field; absent or empty is `missing_value`, unless a wrong type
    /// was already reported for it.
    mutating func required(_ field: CanonicalField, allowNumber: Bool = true, fallback: String? = nil) -> String? {
        let before = violations.count
        guard let value = text(field, allowNumber: allowNumber) ?? fallback else {
            if violations.count == before { violation(.missingValue, field, "required") }
            return nil
        }
        return value
    }

    mutating func identifier(_ field: CanonicalField, fallback: String?) -> String? {
        guard let value = required(field, fallback: fallback) else { return nil }
        if value.utf8.count > limits.maximumIdentifierBytes {
            violation(.invalidIdentifier, field, "longer than \(limits.maximumIdentifierBytes) bytes")
            return nil
        }
        // C0 controls and DEL are single bytes in UTF-8, never part of a longer sequence.
        if value.containsUTF8Byte(where: { $0 < 0x20 || $0 == 0x7F }) {
            violation(.invalidIdentifier, field, "contains control characters")
            return nil
        }
        return value
    }

    mutating func number(_ field: CanonicalField) -> Double? {
        switch record[field] {
        case .json(.bool)?, .timestamp?:
            violation(.invalidType, field, "expected a number")
            return nil
        case .integer(let value)?:
            return Double(value)
        case .number(let value)?:
            guard value.isFinite else {
                violation(.notFinite, field, "NaN and infinite values are not readings")
                return nil
            }
            return value
        default:
            break
        }
        guard let text = text(field) else { return nil }
        guard let value = Text.double(text) else {
            violation(.invalidNumber, field, "not a number")
            return nil
        }
        guard value.isFinite else {
            violation(.notFinite, field, "NaN and infinite values are not readings")
            return nil
        }
        return value
    }

    mutating func interval() -> Int? {
        guard let text = required(.readingIntervalSeconds) else { return nil }
        guard let seconds = Int(text) ?? wholeNumber(record[.readingIntervalSeconds]) else {
            violation(.invalidInterval, .readingIntervalSeconds, "not a whole number of seconds")
            return nil
        }
        guard limits.allowedIntervals.contains(seconds) else {
            violation(.invalidInterval, .readingIntervalSeconds, "allowed intervals are \(limits.allowedIntervals.sorted().map(String.init).joined(separator: ", ")) s")
            return nil
        }
        return seconds
    }

    mutating func quality() -> ReadingQuality? {
        guard let text = text(.quality, allowNumber: false) else { return .measured }
        guard let quality = ReadingQuality(rawValue: text) ?? ReadingQuality(rawValue: text.lowercased()) else {
            violation(.invalidQuality, .quality, "expected measured, estimated or missing")
            return nil
        }
        return quality
    }

    mutating func utcOffset(default fallback: Int?) -> Int? {
        guard let text = text(.utcOffset, allowNumber: false) else { return fallback }
        guard let offset = ISO8601.offset(Array(text.utf8)[...]) else {
            violation(.invalidUTCOffset, .utcOffset, "expected Z or ±HH:MM")
            return fallback
        }
        return offset
    }

    /// A typed number that is a whole number (a DOUBLE 300.0 is an interval of 300 s).
    private func wholeNumber(_ field: RawField?) -> Int? {
        guard case .number(let value)? = field, value.rounded() == value, abs(value) < 1e15 else { return nil }
        return Int(value)
    }

    mutating func timestamp(offset: Int?) -> Int64? {
        if case .timestamp(let seconds, let nanoseconds, let zoned)? = record[.timestamp] {
            guard nanoseconds == 0 else {
                violation(.invalidTimestamp, .timestamp, "fractional seconds: an interval starts on a whole second")
                return nil
            }
            return zoned ? seconds : seconds - Int64(offset ?? 0)
        }
        guard let text = required(.timestamp, allowNumber: false) else { return nil }
        switch ISO8601.parse(text) {
        case .invalid(let reason):
            violation(.invalidTimestamp, .timestamp, reason)
            return nil
        case .zoned(let seconds):
            return seconds
        case .naive(let seconds):
            guard let offset else {
                violation(.naiveTimestamp, .timestamp, "no time zone: add Z or an offset, or declare utc_offset for the file")
                return nil
            }
            return seconds - Int64(offset)
        }
    }

    /// Extra columns, plus the members of an `other_metrics` object or JSON text.
    mutating func otherMetrics() -> [JSONMember] {
        guard !record.extras.isEmpty else { return [] }
        var members: [JSONMember] = []
        members.reserveCapacity(record.extras.count)
        // A few extras per row is the rule: a linear scan, not a set, keeps the first of each name.
        var seen = SmallStringSet()
        for extra in record.extras {
            if extra.key.equalsIgnoringCase("other_metrics") {
                var nested: JSONValue?
                switch extra.value {
                case .object: nested = extra.value
                case .string(let text) where !text.trimmingSpaces().isEmpty:
                    nested = try? JSONParser.parse(Array(text.utf8), maximumDepth: limits.maximumNestingDepth)
                case .null, .string: continue
                default: nested = nil
                }
                guard case .object(let inner)? = nested else {
                    violations.append(SchemaViolation(.invalidType, line: record.line, row: record.row, column: "other_metrics", value: extra.value.serialized, message: "other_metrics must be a JSON object"))
                    continue
                }
                for member in inner where seen.insert(member.key) { members.append(member) }
            } else if extra.value != .null, seen.insert(extra.key) {
                members.append(extra)
            }
        }
        if let problem = OtherMetricsCheck.problem(in: members, limits: limits) {
            violations.append(SchemaViolation(.invalidMetric, line: record.line, row: record.row, column: problem.column,
                                              value: problem.value, message: problem.message))
        }
        return members
    }

    private func display(_ field: RawField?) -> String {
        switch field {
        case nil: ""
        case .text(let text): text
        case .json(.string(let text)): text
        case .json(let value): value.serialized
        case .integer(let value): String(value)
        case .number(let value): value.description
        case .timestamp(let seconds, let nanoseconds, let zoned):
            Timestamp.rfc3339(seconds: seconds, nanoseconds: nanoseconds, zoned: zoned)
        }
    }
}

/// Names seen so far: a linear scan while few, a hash set beyond that.
private struct SmallStringSet {
    private var names: [String] = []
    private var set: Set<String>?

    /// Adds `name`; `false` if it was already there.
    mutating func insert(_ name: String) -> Bool {
        if set != nil { return set!.insert(name).inserted }
        if names.contains(name) { return false }
        names.append(name)
        if names.count > 16 { set = Set(names) }
        return true
    }
}

/// Remembers which (site, device, interval start) a file has already delivered, exactly, in
/// bounded memory.
///
/// Per device, a sparse bitmap of time slots (the greatest common divisor of the allowed
/// intervals, 300 s by default) in 4096-slot pages: dense data costs one bit per reading, and a
/// page only exists where a device has data. A million 5-minute readings of one device take
/// about 125 KB, not the tens of megabytes a set of keys would. Pages are capped: once the
/// budget is spent, a reading in a page that does not exist is ``Seen/unknown`` and the caller
/// has it checked elsewhere (the loader, in the database); readings in existing pages are still
/// answered exactly.
public struct DuplicateTracker: Sendable {
    public enum Seen: Sendable, Equatable {
        case new
        case duplicate
        /// Beyond the memory budget: neither recorded nor known.
        case unknown
    }

    private let slotSeconds: Int64
    /// One device's page: the site and device compared by bytes, as the database compares ids
    /// (``ByteString``), and the page's index. One flat table, so a reading costs one lookup.
    private struct PageKey: Hashable {
        var site: ByteString
        var device: ByteString
        var page: Int64
    }
    private var pages: [PageKey: [UInt64]] = [:]
    private let maximumPages: Int
    private static let pageSlots: Int64 = 4096
    /// Bytes of one page's bitmap.
    public static let pageBytes = Int(pageSlots / 8)

    public init(slotSeconds: Int64, maximumBytes: Int = .max) {
        self.slotSeconds = slotSeconds
        self.maximumPages = max(1, maximumBytes / Self.pageBytes)
    }

    /// Whether the budget ran out (some readings came back ``Seen/unknown``).
    public private(set) var isFull = false

    /// Records the reading.
    public mutating func insert(site: String, device: String, timestamp: Int64) -> Seen {
        let slot = Timestamp.floorDivide(timestamp, slotSeconds).0
        let page = Timestamp.floorDivide(slot, Self.pageSlots).0
        let bit = Int(slot - page * Self.pageSlots)
        let key = PageKey(site: ByteString(site), device: ByteString(device), page: page)
        let mask: UInt64 = 1 << UInt64(bit % 64)
        guard let index = pages.index(forKey: key) else {
            guard pages.count < maximumPages else {
                isFull = true
                return .unknown
            }
            var words = [UInt64](repeating: 0, count: Int(Self.pageSlots / 64))
            words[bit / 64] = mask
            pages[key] = words
            return .new
        }
        var seen = Seen.new
        pages.values[index].withUnsafeMutableBufferPointer { words in
            if words[bit / 64] & mask != 0 { seen = .duplicate }
            words[bit / 64] |= mask
        }
        return seen
    }
}
