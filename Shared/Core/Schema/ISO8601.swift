/// Parses the timestamp forms of the upload format, on bytes, with no Foundation:
/// `YYYY-MM-DDTHH:MM[:SS[.fraction]]` followed by `Z`, `±HH:MM`, `±HHMM`, `±HH` or nothing (naive).
/// A space may stand for `T` (Snowflake's default text form). Calendar values are checked
/// (2026-02-29 and 24:00 are refused); a fraction must be zero, since interval starts are whole
/// seconds.
public enum ISO8601 {
    public enum Result: Equatable, Sendable {
        /// Unix seconds, UTC.
        case zoned(Int64)
        /// Seconds as if the wall time were UTC; the caller applies the zone.
        case naive(Int64)
        case invalid(String)
    }

    /// Parses a string's UTF-8 in place (no copy for native strings).
    public static func parse(_ text: String) -> Result {
        var text = text
        return text.withUTF8 { parse(buffer: $0) }
    }

    public static func parse(_ bytes: [UInt8]) -> Result {
        bytes.withUnsafeBufferPointer { parse(buffer: $0) }
    }

    static func parse(buffer bytes: UnsafeBufferPointer<UInt8>) -> Result {
        var cursor = Cursor(bytes: bytes)
        let expected = "expected YYYY-MM-DDTHH:MM:SS with Z or an offset"
        guard let year = cursor.number(4), cursor.take(0x2D), let month = cursor.number(2), cursor.take(0x2D),
            let day = cursor.number(2)
        else {
            return .invalid(expected)
        }
        guard cursor.take(UInt8(ascii: "T")) || cursor.take(UInt8(ascii: "t")) || cursor.take(0x20) else {
            return .invalid(cursor.atEnd ? "a date without a time" : expected)
        }
        guard let hour = cursor.number(2), cursor.take(0x3A), let minute = cursor.number(2) else { return .invalid(expected) }
        var second = 0
        if cursor.take(0x3A) {
            guard let value = cursor.number(2) else { return .invalid(expected) }
            second = value
            if cursor.take(0x2E) || cursor.take(0x2C) {
                let start = cursor.index
                while let byte = cursor.current, byte >= 0x30, byte <= 0x39 {
                    if byte != 0x30 { return .invalid("fractional seconds: an interval starts on a whole second") }
                    cursor.index += 1
                }
                guard cursor.index > start else { return .invalid(expected) }
            }
        }
        guard (1...12).contains(month) else { return .invalid("month \(month) does not exist") }
        guard (1...daysIn(month: month, year: year)).contains(day) else {
            return .invalid("day \(day) does not exist in \(year)-\(month < 10 ? "0" : "")\(month)")
        }
        guard hour <= 23, minute <= 59, second <= 59 else { return .invalid("time of day out of range") }
        let wall = Int64(Timestamp.days(year: year, month: month, day: day)) * 86_400
            + Int64(hour * 3600 + minute * 60 + second)
        if cursor.atEnd { return .naive(wall) }
        guard let offset = offset(buffer: UnsafeBufferPointer(rebasing: bytes[cursor.index...])) else {
            return .invalid("invalid zone: expected Z or ±HH:MM")
        }
        return .zoned(wall - Int64(offset))
    }

    /// A position in the bytes being parsed. A value, not captured state: the parse runs
    /// millions of times a file and a closure over a mutable local costs runtime access checks.
    private struct Cursor {
        let bytes: UnsafeBufferPointer<UInt8>
        var index = 0

        var atEnd: Bool { index >= bytes.count }
        var current: UInt8? { index < bytes.count ? bytes[index] : nil }

        /// `digits` decimal digits as a number, consumed; nil (nothing consumed) otherwise.
        mutating func number(_ digits: Int) -> Int? {
            guard index + digits <= bytes.count else { return nil }
            var value = 0
            for offset in 0..<digits {
                let byte = bytes[index + offset]
                guard byte >= 0x30, byte <= 0x39 else { return nil }
                value = value * 10 + Int(byte - 0x30)
            }
            index += digits
            return value
        }

        /// Consumes `byte` when it is next.
        mutating func take(_ byte: UInt8) -> Bool {
            guard index < bytes.count, bytes[index] == byte else { return false }
            index += 1
            return true
        }
    }

    /// `Z`, `+HH:MM`, `+HHMM` or `+HH` (and `-`), as seconds east of UTC.
    public static func offset<Bytes: Collection<UInt8>>(_ bytes: Bytes) -> Int? {
        if let answer = bytes.withContiguousStorageIfAvailable({ offset(buffer: $0) }) { return answer }
        return Array(bytes).withUnsafeBufferPointer { offset(buffer: $0) }
    }

    private static func offset(buffer bytes: UnsafeBufferPointer<UInt8>) -> Int? {
        guard let sign = bytes.first else { return nil }
        if bytes.count == 1, sign == UInt8(ascii: "Z") || sign == UInt8(ascii: "z") { return 0 }
        guard sign == UInt8(ascii: "+") || sign == UInt8(ascii: "-") else { return nil }
        // ±HH, ±HHMM or ±HH:MM: the colon only between hours and minutes.
        var cursor = Cursor(bytes: bytes, index: 1)
        guard let hours = cursor.number(2) else { return nil }
        var minutes = 0
        if !cursor.atEnd {
            _ = cursor.take(0x3A)
            guard let value = cursor.number(2), cursor.atEnd else { return nil }
            minutes = value
        }
        guard hours <= 18, minutes <= 59 else { return nil }
        let seconds = hours * 3600 + minutes * 60
        return sign == UInt8(ascii: "-") ? -seconds : seconds
    }

    static func daysIn(month: Int, year: Int) -> Int {
        switch month {
        case 2: (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 29 : 28
        case 4, 6, 9, 11: 30
        default: 31
        }
    }
}
