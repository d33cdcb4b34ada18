/// What PostgreSQL's `jsonb` would refuse in one row's `other_metrics`, found before the load so
/// that only that row is rejected (a refusal inside COPY would fail the whole file): a NUL
/// character in a key or string, a number outside `numeric`'s range, and more values or bytes
/// than ``ValidationLimits`` allows one row.
enum OtherMetricsCheck {
    struct Problem: Equatable {
        /// The member (top-level name) where the problem is; `other_metrics` for the whole.
        var column: String
        var value: String
        var message: String
    }

    static func problem(in members: [JSONMember], limits: ValidationLimits) -> Problem? {
        var budget = Budget(values: limits.maximumOtherMetricsValues, bytes: limits.maximumOtherMetricsBytes)
        for member in members {
            if let message = check(member.key, member.value, budget: &budget) {
                return Problem(column: member.key, value: member.value.serialized, message: message)
            }
            if budget.exceeded {
                return Problem(
                    column: "other_metrics", value: "\(members.count) members",
                    message: "other_metrics may hold at most \(limits.maximumOtherMetricsValues) values and \(limits.maximumOtherMetricsBytes) bytes in one row")
            }
        }
        return nil
    }

    private struct Budget {
        var values: Int
        var bytes: Int
        var exceeded: Bool { values < 0 || bytes < 0 }

        mutating func spend(_ count: Int) {
            values -= 1
            bytes -= count
        }
    }

    private static func check(_ key: String, _ value: JSONValue, budget: inout Budget) -> String? {
        if key.containsUTF8Byte(where: { $0 == 0 }) { return "a NUL character (U+0000) in a name: PostgreSQL cannot store it" }
        budget.spend(key.utf8.count + 4)
        switch value {
        case .null, .bool:
            budget.spend(5)
        case .string(let text):
            if text.containsUTF8Byte(where: { $0 == 0 }) { return "a NUL character (U+0000): PostgreSQL cannot store it" }
            budget.spend(text.utf8.count)
        case .number(let literal):
            guard fitsNumeric(literal) else { return "a number outside PostgreSQL's numeric range" }
            budget.spend(literal.utf8.count)
        case .array(let elements):
            for element in elements {
                if let message = check("", element, budget: &budget) { return message }
                if budget.exceeded { return nil }
            }
        case .object(let members):
            for member in members {
                if let message = check(member.key, member.value, budget: &budget) { return message }
                if budget.exceeded { return nil }
            }
        }
        return nil
    }

    /// Whether PostgreSQL's `numeric` (and so `jsonb`) takes a JSON number literal: at most 16383
    /// digits after the decimal point, a leading digit no higher than 10^131071, an exponent
    /// below 2^30 either way (PostgreSQL 15's `numeric_in`).
    static func fitsNumeric(_ literal: String) -> Bool {
        var bytes = literal.utf8[...]
        if bytes.first == UInt8(ascii: "-") { bytes = bytes.dropFirst() }
        let isDigit: (UInt8) -> Bool = { $0 >= 0x30 && $0 <= 0x39 }
        let integer = bytes.prefix(while: isDigit)
        bytes = bytes.dropFirst(integer.count)
        var fraction = bytes.prefix(0)
        if bytes.first == UInt8(ascii: ".") {
            bytes = bytes.dropFirst()
            fraction = bytes.prefix(while: isDigit)
            bytes = bytes.dropFirst(fraction.count)
        }
        // A number has a digit ("inf", "nan" and "-" are no numbers PostgreSQL takes).
        guard !integer.isEmpty || !fraction.isEmpty else { return false }
        var exponent = 0
        if bytes.first == UInt8(ascii: "e") || bytes.first == UInt8(ascii: "E") {
            bytes = bytes.dropFirst()
            var negative = false
            if bytes.first == UInt8(ascii: "+") || bytes.first == UInt8(ascii: "-") {
                negative = bytes.first == UInt8(ascii: "-")
                bytes = bytes.dropFirst()
            }
            for digit in bytes.prefix(while: isDigit) {
                exponent = min(exponent * 10 + Int(digit - 0x30), 1 << 40)  // saturates: far past any limit
            }
            if negative { exponent = -exponent }
        }
        guard abs(exponent) < 1_073_741_823 else { return false }
        guard max(0, fraction.count - exponent) <= 16383 else { return false }
        // The power of ten of the leading non-zero digit; zero has none.
        if let first = integer.firstIndex(where: { $0 != 0x30 }) {
            return integer.distance(from: first, to: integer.endIndex) - 1 + exponent <= 131_071
        }
        if let first = fraction.firstIndex(where: { $0 != 0x30 }) {
            return -(fraction.distance(from: fraction.startIndex, to: first) + 1) + exponent <= 131_071
        }
        return true
    }
}
