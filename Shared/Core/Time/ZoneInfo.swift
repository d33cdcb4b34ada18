import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Why an IANA time zone could not be used.
public enum ZoneError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The name is not a zone name (empty, too long, `..`, or characters a zone name never has).
    case invalidName(String)
    /// No such zone in the zone database.
    case unknownZone(name: String, directory: String)
    /// The zone file is not a TZif file this reader understands.
    case malformed(name: String, reason: String)

    public var description: String {
        switch self {
        case .invalidName(let name): "\"\(name.prefix(64))\" is not an IANA time zone name"
        case .unknownZone(let name, let directory): "unknown time zone \"\(name)\" (not in \(directory))"
        case .malformed(let name, let reason): "the zone file of \(name) is malformed: \(reason)"
        }
    }
}

/// One IANA time zone's rules, read from a TZif file (RFC 8536): the transitions it lists, then
/// its POSIX TZ footer for instants after the last one.
///
/// Wall times are "local seconds": the seconds since 1970-01-01T00:00 of a wall-clock reading, as
/// if that reading were UTC. ``offset(at:)`` maps instants to offsets; ``instants(atLocal:)``
/// maps a wall time back to the instants that show it: none in a spring-forward gap, two in a
/// fall-back hour (earlier first, the daylight one).
public struct ZoneRules: Sendable {
    public let name: String
    private let transitions: [Int64]
    private let offsets: [Int32]
    private let initialOffset: Int32
    private let rule: PosixZoneRule?

    /// The fixed UTC zone.
    public static let utc = ZoneRules(name: "UTC", transitions: [], offsets: [], initialOffset: 0, rule: nil)

    init(name: String, transitions: [Int64], offsets: [Int32], initialOffset: Int32, rule: PosixZoneRule?) {
        self.name = name
        self.transitions = transitions
        self.offsets = offsets
        self.initialOffset = initialOffset
        self.rule = rule
    }

    /// Parses a TZif file's bytes.
    public init(name: String, tzif bytes: [UInt8]) throws(ZoneError) {
        func fail(_ reason: String) -> ZoneError { .malformed(name: name, reason: reason) }
        var reader = TZifReader(bytes: bytes)
        guard let header = reader.header(), header.magic else { throw fail("no TZif header") }
        var counts = header
        var timeSize = 4
        if header.version >= 2 {
            // Skip the 32-bit block; the 64-bit one follows with its own header.
            guard reader.skip(header.blockSize(timeSize: 4)), let second = reader.header(), second.magic else {
                throw fail("truncated version 2 header")
            }
            counts = second
            timeSize = 8
        }
        guard counts.typeCount > 0, counts.typeCount <= 256, counts.timeCount <= 100_000 else { throw fail("implausible counts") }
        var transitions: [Int64] = []
        transitions.reserveCapacity(counts.timeCount)
        for _ in 0..<counts.timeCount {
            guard let time = reader.integer(size: timeSize) else { throw fail("truncated transitions") }
            transitions.append(time)
        }
        var indices: [Int] = []
        for _ in 0..<counts.timeCount {
            guard let index = reader.integer(size: 1), index < counts.typeCount else { throw fail("bad type index") }
            indices.append(Int(index))
        }
        var typeOffsets: [Int32] = []
        for _ in 0..<counts.typeCount {
            guard let offset = reader.integer(size: 4), reader.skip(2) else { throw fail("truncated types") }
            guard abs(offset) < 26 * 3600 else { throw fail("offset out of range") }
            typeOffsets.append(Int32(offset))
        }
        guard reader.skip(counts.charCount + counts.leapCount * (timeSize + 4) + counts.isStdCount + counts.isUTCCount) else {
            throw fail("truncated data block")
        }
        guard zip(transitions, transitions.dropFirst()).allSatisfy({ $0 < $1 }) else { throw fail("transitions out of order") }
        var rule: PosixZoneRule?
        if header.version >= 2, let footer = reader.footer(), !footer.isEmpty {
            guard let parsed = PosixZoneRule(footer) else { throw fail("unsupported TZ footer \"\(footer)\"") }
            rule = parsed
        }
        self.init(name: name, transitions: transitions, offsets: indices.map { typeOffsets[$0] }, initialOffset: typeOffsets[0], rule: rule)
    }

    /// The UTC offset, in seconds, in effect at `instant` (Unix seconds).
    public func offset(at instant: Int64) -> Int {
        if let last = transitions.last, instant >= last, let rule {
            return rule.offset(at: instant)
        }
        // The last transition at or before `instant`.
        var (low, high) = (0, transitions.count)
        while low < high {
            let middle = (low + high) / 2
            if transitions[middle] <= instant { low = middle + 1 } else { high = middle }
        }
        if low == 0 { return transitions.isEmpty ? (rule?.offset(at: instant) ?? Int(initialOffset)) : Int(initialOffset) }
        return Int(offsets[low - 1])
    }

    /// The instants (Unix seconds) whose wall time here is `local`: one normally, none in a gap,
    /// two in a repeated hour (ascending: the earlier one keeps the offset before the change).
    public func instants(atLocal local: Int64) -> [Int64] {
        // Offsets are within ±26 h, so every candidate offset is in effect within that of `local`.
        var candidates = Set<Int>()
        var probe = local - 26 * 3600
        while probe <= local + 26 * 3600 {
            candidates.insert(offset(at: probe))
            probe += 1800
        }
        return candidates.map { local - Int64($0) }.filter { offset(at: $0) == Int(local - $0) }.sorted()
    }

    /// The wall time (local seconds) of `instant`.
    public func local(_ instant: Int64) -> Int64 { instant + Int64(offset(at: instant)) }

    /// The first instant of the local day that contains `instant` (local midnight, or the first
    /// instant after it when midnight falls in a gap).
    public func startOfLocalDay(containing instant: Int64) -> Int64 {
        let midnight = floorDivide(local(instant), 86_400) * 86_400
        return firstInstant(atOrAfterLocal: midnight)
    }

    /// The first instant whose wall time is `local` or, in a gap, the end of the gap.
    public func firstInstant(atOrAfterLocal local: Int64) -> Int64 {
        if let first = instants(atLocal: local).first { return first }
        // In a gap: the first wall minute after it is the transition's own instant.
        var probe = local
        while probe < local + 26 * 3600 {
            probe += 60
            if let first = instants(atLocal: probe).first { return first }
        }
        return local - Int64(offset(at: local))
    }
}

/// `value / divisor` rounded toward minus infinity (days before 1970 included).
public func floorDivide(_ value: Int64, _ divisor: Int64) -> Int64 {
    value >= 0 ? value / divisor : -((-value + divisor - 1) / divisor)
}

/// A POSIX TZ string as TZif footers hold it: `CET-1CEST,M3.5.0,M10.5.0/3`, `<+03>-3`, `UTC0`.
struct PosixZoneRule: Sendable {
    /// Seconds east of UTC (the POSIX sign inverted).
    var standardOffset: Int
    var daylight: (offset: Int, start: DateRule, startTime: Int, end: DateRule, endTime: Int)?

    enum DateRule: Sendable, Equatable {
        /// `Mm.w.d`: day `d` (0 = Sunday) of week `w` (5 = last) of month `m`.
        case monthWeekDay(month: Int, week: Int, weekday: Int)
        /// `Jn`: day 1...365, February 29 never counted.
        case julianNoLeap(Int)
        /// `n`: day 0...365, February 29 counted.
        case zeroBased(Int)
    }

    init?(_ text: String) {
        var scanner = Array(text.utf8)[...]
        guard Self.name(&scanner), let standard = Self.time(&scanner, signed: true) else { return nil }
        standardOffset = -standard
        if scanner.isEmpty {
            daylight = nil
            return
        }
        guard Self.name(&scanner) else { return nil }
        var daylightOffset = standardOffset + 3600
        if let first = scanner.first, first != UInt8(ascii: ",") {
            guard let explicit = Self.time(&scanner, signed: true) else { return nil }
            daylightOffset = -explicit
        }
        guard scanner.popFirst() == UInt8(ascii: ","), let start = Self.dateRule(&scanner) else { return nil }
        let startTime = Self.ruleTime(&scanner)
        guard let startTime, scanner.popFirst() == UInt8(ascii: ","), let end = Self.dateRule(&scanner), let endTime = Self.ruleTime(&scanner),
            scanner.isEmpty
        else { return nil }
        daylight = (daylightOffset, start, startTime, end, endTime)
    }

    func offset(at instant: Int64) -> Int {
        guard let daylight else { return standardOffset }
        let year = Timestamp.civil(days: Int(floorDivide(instant + Int64(standardOffset), 86_400))).year
        // Start is given in standard time, end in daylight time.
        let start = Int64(Self.day(daylight.start, year: year)) * 86_400 + Int64(daylight.startTime - standardOffset)
        let end = Int64(Self.day(daylight.end, year: year)) * 86_400 + Int64(daylight.endTime - daylight.offset)
        let inDaylight = start < end ? (instant >= start && instant < end) : !(instant >= end && instant < start)
        return inDaylight ? daylight.offset : standardOffset
    }

    /// Days since 1970-01-01 of a rule's day in `year`.
    static func day(_ rule: DateRule, year: Int) -> Int {
        let january1 = Timestamp.days(year: year, month: 1, day: 1)
        let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
        switch rule {
        case .julianNoLeap(let n): return january1 + n - 1 + (leap && n >= 60 ? 1 : 0)
        case .zeroBased(let n): return january1 + n
        case .monthWeekDay(let month, let week, let weekday):
            let first = Timestamp.days(year: year, month: month, day: 1)
            let firstWeekday = Int(floorDivide(Int64(first) + 4, 7) * -7 + Int64(first) + 4)  // 1970-01-01 was a Thursday
            var day = first + (weekday - firstWeekday + 7) % 7 + (week - 1) * 7
            let nextMonth = month == 12 ? Timestamp.days(year: year + 1, month: 1, day: 1) : Timestamp.days(year: year, month: month + 1, day: 1)
            while day >= nextMonth { day -= 7 }
            return day
        }
    }

    private static func name(_ scanner: inout ArraySlice<UInt8>) -> Bool {
        if scanner.first == UInt8(ascii: "<") {
            guard let close = scanner.firstIndex(of: UInt8(ascii: ">")) else { return false }
            scanner = scanner[(close + 1)...]
            return true
        }
        let letters = scanner.prefix { ($0 | 0x20) >= UInt8(ascii: "a") && ($0 | 0x20) <= UInt8(ascii: "z") }
        guard letters.count >= 3 else { return false }
        scanner = scanner.dropFirst(letters.count)
        return true
    }

    /// `[+-]hh[:mm[:ss]]` as seconds.
    private static func time(_ scanner: inout ArraySlice<UInt8>, signed: Bool) -> Int? {
        var sign = 1
        if signed, let first = scanner.first, first == UInt8(ascii: "+") || first == UInt8(ascii: "-") {
            sign = first == UInt8(ascii: "-") ? -1 : 1
            scanner = scanner.dropFirst()
        }
        var parts: [Int] = []
        repeat {
            if !parts.isEmpty { scanner = scanner.dropFirst() }
            let digits = scanner.prefix { $0 >= 0x30 && $0 <= 0x39 }
            guard !digits.isEmpty, digits.count <= 3 else { return nil }
            parts.append(digits.reduce(0) { $0 * 10 + Int($1 - 0x30) })
            scanner = scanner.dropFirst(digits.count)
        } while scanner.first == UInt8(ascii: ":") && parts.count < 3
        let seconds = parts[0] * 3600 + (parts.count > 1 ? parts[1] * 60 : 0) + (parts.count > 2 ? parts[2] : 0)
        guard seconds <= 167 * 3600 else { return nil }
        return sign * seconds
    }

    private static func ruleTime(_ scanner: inout ArraySlice<UInt8>) -> Int? {
        guard scanner.first == UInt8(ascii: "/") else { return 7200 }
        scanner = scanner.dropFirst()
        return time(&scanner, signed: true)
    }

    private static func number(_ scanner: inout ArraySlice<UInt8>) -> Int? {
        let digits = scanner.prefix { $0 >= 0x30 && $0 <= 0x39 }
        guard !digits.isEmpty, digits.count <= 3 else { return nil }
        scanner = scanner.dropFirst(digits.count)
        return digits.reduce(0) { $0 * 10 + Int($1 - 0x30) }
    }

    private static func dateRule(_ scanner: inout ArraySlice<UInt8>) -> DateRule? {
        switch scanner.first {
        case UInt8(ascii: "M")?:
            scanner = scanner.dropFirst()
            guard let month = number(&scanner), scanner.popFirst() == UInt8(ascii: "."), let week = number(&scanner),
                scanner.popFirst() == UInt8(ascii: "."), let weekday = number(&scanner),
                (1...12).contains(month), (1...5).contains(week), (0...6).contains(weekday)
            else { return nil }
            return .monthWeekDay(month: month, week: week, weekday: weekday)
        case UInt8(ascii: "J")?:
            scanner = scanner.dropFirst()
            guard let day = number(&scanner), (1...365).contains(day) else { return nil }
            return .julianNoLeap(day)
        default:
            guard let day = number(&scanner), (0...365).contains(day) else { return nil }
            return .zeroBased(day)
        }
    }
}

/// Big-endian fields of a TZif file.
private struct TZifReader {
    let bytes: [UInt8]
    var position = 0

    struct Header {
        var magic: Bool
        var version: Int
        var isUTCCount, isStdCount, leapCount, timeCount, typeCount, charCount: Int

        func blockSize(timeSize: Int) -> Int {
            timeCount * timeSize + timeCount + typeCount * 6 + charCount + leapCount * (timeSize + 4) + isStdCount + isUTCCount
        }
    }

    mutating func header() -> Header? {
        guard position + 44 <= bytes.count else { return nil }
        let magic = bytes[position..<position + 4].elementsEqual("TZif".utf8)
        let version = bytes[position + 4] == 0 ? 1 : Int(bytes[position + 4]) - 0x30
        position += 20
        var counts: [Int] = []
        for _ in 0..<6 {
            guard let count = integer(size: 4), count >= 0, count < 1 << 20 else { return nil }
            counts.append(Int(count))
        }
        return Header(magic: magic, version: version, isUTCCount: counts[0], isStdCount: counts[1], leapCount: counts[2],
                      timeCount: counts[3], typeCount: counts[4], charCount: counts[5])
    }

    /// A signed big-endian integer of 1, 4 or 8 bytes (1 is unsigned).
    mutating func integer(size: Int) -> Int64? {
        guard position + size <= bytes.count else { return nil }
        var value: UInt64 = 0
        for byte in bytes[position..<position + size] { value = value << 8 | UInt64(byte) }
        position += size
        switch size {
        case 1: return Int64(value)
        case 4: return Int64(Int32(bitPattern: UInt32(value)))
        default: return Int64(bitPattern: value)
        }
    }

    mutating func skip(_ count: Int) -> Bool {
        guard count >= 0, position + count <= bytes.count else { return false }
        position += count
        return true
    }

    /// The footer: `\n` TZ string `\n`.
    mutating func footer() -> String? {
        guard position < bytes.count, bytes[position] == 0x0A,
            let end = bytes[(position + 1)...].firstIndex(of: 0x0A)
        else { return nil }
        return String(decoding: bytes[(position + 1)..<end], as: UTF8.self)
    }
}

/// The zone database: TZif files under one directory, read once each.
///
/// Where it looks, first found wins: `TZDIR`, the `zoneinfo` folder beside the executable (a Lambda
/// bundle carries one: Lambda's base image may have none), `/usr/share/zoneinfo`.
public final class ZoneDatabase: Sendable {
    public let directory: String
    private let cache = Mutex<[String: ZoneRules]>([:])

    public init(directory: String) {
        self.directory = directory
    }

    /// The database a function or tool uses, found as described above.
    public static func standard(environment: Environment = Environment()) -> ZoneDatabase {
        var candidates: [String] = []
        if let configured = environment["TZDIR"], !configured.isEmpty { candidates.append(configured) }
        if let task = environment["LAMBDA_TASK_ROOT"] { candidates.append(task + "/zoneinfo") }
        candidates.append(ExecutablePath.directory() + "/zoneinfo")
        candidates.append("/usr/share/zoneinfo")
        let found = candidates.first { access($0 + "/UTC", R_OK) == 0 } ?? "/usr/share/zoneinfo"
        return ZoneDatabase(directory: found)
    }

    /// Fails unless the database can read a real zone: run at start, so a bundle without its
    /// zone files fails its cold start instead of every vendor file.
    public func verify() throws(ConfigurationError) {
        do {
            _ = try rules("Europe/Berlin")
        } catch {
            throw .invalid(name: "TZDIR", reason: "no usable zone database at \(directory): \(error)")
        }
    }

    /// The rules of the IANA zone `name` (`Europe/Berlin`; legacy aliases such as `US/Pacific`
    /// resolve as the database links them).
    public func rules(_ name: String) throws(ZoneError) -> ZoneRules {
        guard Self.isValidName(name) else { throw .invalidName(name) }
        if name == "UTC" || name == "Etc/UTC" { return .utc }
        if let cached = cache.withLock({ $0[name] }) { return cached }
        guard let bytes = FileIO.readAll(directory + "/" + name) else { throw .unknownZone(name: name, directory: directory) }
        let rules = try ZoneRules(name: name, tzif: bytes)
        cache.withLock { $0[name] = rules }
        return rules
    }

    /// A zone name: `Area/Location` segments of letters, digits, `_`, `-`, `+`; no `.` segments.
    static func isValidName(_ name: String) -> Bool {
        guard !name.isEmpty, name.utf8.count <= 64, !name.hasPrefix("/"), !name.hasSuffix("/") else { return false }
        for segment in name.split(separator: "/", omittingEmptySubsequences: false) {
            guard !segment.isEmpty, segment.first != ".",
                segment.utf8.allSatisfy({ byte in
                    (byte | 0x20) >= UInt8(ascii: "a") && (byte | 0x20) <= UInt8(ascii: "z") || (0x30...0x39).contains(byte)
                        || byte == UInt8(ascii: "_") || byte == UInt8(ascii: "-") || byte == UInt8(ascii: "+")
                })
            else { return false }
        }
        return true
    }
}
