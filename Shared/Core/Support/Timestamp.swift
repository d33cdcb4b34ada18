#if canImport(Glibc)
import Glibc
#endif

/// The wall clock, in milliseconds since the Unix epoch. Pure code takes time as a parameter;
/// only entry points and the runtime read this.
public enum WallClock {
    @Sendable public static func milliseconds() -> Int64 {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return Int64(now.tv_sec) * 1000 + Int64(now.tv_nsec) / 1_000_000
    }

    /// Blocks the calling thread for `duration` (retry back-off; the runtime loop owns its thread, so
    /// nothing else waits on it).
    public static func sleep(for duration: Duration) {
        let (seconds, attoseconds) = duration.components
        var request = timespec(tv_sec: Int(seconds), tv_nsec: Int(attoseconds / 1_000_000_000))
        var remaining = timespec()
        while nanosleep(&request, &remaining) != 0 && errno == EINTR { request = remaining }
    }
}

/// Calendar arithmetic on the proleptic Gregorian calendar in UTC, with no Foundation and no
/// locale: fast and identical on every machine.
public enum Timestamp {
    /// Days since 1970-01-01 of a civil date (Howard Hinnant's `days_from_civil`).
    public static func days(year: Int, month: Int, day: Int) -> Int {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yearOfEra = y - era * 400
        let dayOfYear = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
    }

    /// Days since 1970-01-01 of the first day of the month after the one holding `days`.
    public static func firstDayOfNextMonth(after days: Int) -> Int {
        let (year, month, _) = civil(days: days)
        return month == 12 ? Self.days(year: year + 1, month: 1, day: 1) : Self.days(year: year, month: month + 1, day: 1)
    }

    /// The civil date of a day count since 1970-01-01 (`civil_from_days`).
    public static func civil(days: Int) -> (year: Int, month: Int, day: Int) {
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let mp = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        return (yearOfEra + era * 400 + (month <= 2 ? 1 : 0), month, day)
    }

    /// `2026-03-01T06:15:02.301Z` for a time in epoch milliseconds.
    public static func rfc3339(milliseconds: Int64) -> String {
        let (seconds, millis) = floorDivide(milliseconds, 1000)
        return dateTime(seconds: seconds) + "." + pad(Int(millis), 3) + "Z"
    }

    /// `2026-03-01T06:15:02Z`, with the fraction only when there is one (to the nanosecond);
    /// without the `Z` for a zone-less wall-clock time (`zoned` false).
    public static func rfc3339(seconds: Int64, nanoseconds: Int32, zoned: Bool) -> String {
        var text = dateTime(seconds: seconds)
        if nanoseconds != 0 {
            var fraction = pad(Int(nanoseconds), 9)
            while fraction.hasSuffix("0") { fraction.removeLast() }
            text += "." + fraction
        }
        return zoned ? text + "Z" : text
    }

    /// `2026-03-01T06:15:02` for a time in epoch seconds.
    private static func dateTime(seconds: Int64) -> String {
        let (days, secondOfDay) = floorDivide(seconds, 86_400)
        let date = civil(days: Int(days))
        var text = ""
        text.reserveCapacity(24)
        text += pad(date.year, 4) + "-" + pad(date.month, 2) + "-" + pad(date.day, 2)
        text += "T" + pad(Int(secondOfDay / 3600), 2) + ":" + pad(Int(secondOfDay / 60 % 60), 2)
        text += ":" + pad(Int(secondOfDay % 60), 2)
        return text
    }

    /// `2026-03-01` for a time in epoch seconds (the lake's date folders).
    public static func day(epochSeconds: Int64) -> String {
        let date = civil(days: Int(floorDivide(epochSeconds, 86_400).0))
        return pad(date.year, 4) + "-" + pad(date.month, 2) + "-" + pad(date.day, 2)
    }

    /// Quotient rounded toward negative infinity, and the remainder (0..<divisor).
    static func floorDivide(_ value: Int64, _ divisor: Int64) -> (Int64, Int64) {
        let quotient = value / divisor
        let remainder = value % divisor
        return remainder < 0 ? (quotient - 1, remainder + divisor) : (quotient, remainder)
    }

    private static func pad(_ value: Int, _ width: Int) -> String {
        let digits = String(value)
        return digits.count >= width ? digits : String(repeating: "0", count: width - digits.count) + digits
    }
}
