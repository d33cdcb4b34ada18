#if canImport(Glibc)
import Glibc
#endif

/// Text helpers for hot paths.
public enum Text {
    /// A `String` from UTF-8 bytes, or `nil` if they are not valid UTF-8. ASCII, the common case,
    /// skips the general validator.
    @inlinable
    public static func string(_ bytes: ArraySlice<UInt8>) -> String? {
        let isASCII = bytes.withUnsafeBufferPointer { buffer in
            var combined: UInt8 = 0
            for byte in buffer { combined |= byte }
            return combined < 0x80
        }
        if isASCII { return String(decoding: bytes, as: UTF8.self) }
        return String(validating: bytes, as: UTF8.self)
    }

    @inlinable
    public static func string(_ bytes: [UInt8]) -> String? { string(bytes[...]) }

    private static let powersOfTen: [Double] = (0...22).map { exponent in
        var value = 1.0
        for _ in 0..<exponent { value *= 10 }
        return value
    }

    /// Parses a decimal number. Plain decimals of up to 15 significant digits (almost every
    /// reading) take Clinger's fast path, which is exact: the digits and the power of ten are both
    /// exactly representable, so one correctly rounded division gives the correctly rounded result.
    /// Everything else goes to the standard library.
    public static func double(_ text: String) -> Double? {
        let fast: Double? = text.utf8.withContiguousStorageIfAvailable { bytes -> Double? in
            var index = 0
            var negative = false
            if index < bytes.count, bytes[index] == UInt8(ascii: "-") {
                negative = true
                index += 1
            }
            var mantissa: UInt64 = 0
            var digits = 0
            var fractionDigits = 0
            var seenPoint = false
            var seenDigit = false
            while index < bytes.count {
                let byte = bytes[index]
                if byte >= 0x30 && byte <= 0x39 {
                    mantissa = mantissa &* 10 &+ UInt64(byte - 0x30)
                    if mantissa != 0 { digits += 1 }
                    if seenPoint { fractionDigits += 1 }
                    seenDigit = true
                } else if byte == UInt8(ascii: "."), !seenPoint {
                    seenPoint = true
                } else {
                    return nil
                }
                index += 1
            }
            guard seenDigit, digits <= 15, fractionDigits <= 22 else { return nil }
            let value = Double(mantissa) / powersOfTen[fractionDigits]
            return negative ? -value : value
        } ?? nil
        if let fast { return fast }
        // The standard library also reads "+1", hexadecimal and "nan"/"inf"; the format allows
        // only decimals (non-finite values are reported as such by the caller).
        if text.hasPrefix("+") || text.hasPrefix("0x") || text.hasPrefix("-0x") || text.hasPrefix("0X") || text.hasPrefix("-0X") {
            return nil
        }
        return Double(text)
    }
}

/// A string compared and hashed by its UTF-8 bytes, as PostgreSQL compares text. Swift's own
/// `String` equality treats canonically equivalent texts as equal (`é` as one scalar or as `e`
/// and a combining accent), which would merge two ids the database keeps apart.
/// Percent-encoding of a URL component: the unreserved characters (letters, digits, `-`, `_`,
/// `.`, `~`) and any in `keeping` stay as they are; every other byte becomes `%XX`.
public enum PercentEncoding {
    public static func encode(_ text: String, keeping: Set<UInt8> = [], lowercaseHex: Bool = false) -> String {
        let hex = Array((lowercaseHex ? "0123456789abcdef" : "0123456789ABCDEF").unicodeScalars)
        var out = ""
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."), UInt8(ascii: "~"):
                out.unicodeScalars.append(Unicode.Scalar(byte))
            case _ where keeping.contains(byte):
                out.unicodeScalars.append(Unicode.Scalar(byte))
            default:
                out += "%" + String(hex[Int(byte >> 4)]) + String(hex[Int(byte & 0xF)])
            }
        }
        return out
    }

    /// Decodes a form-encoded component (a query value, an S3 event key): `+` is a space, then
    /// `%XX` escapes are decoded, once. `nil` for a bad escape or bytes that are not UTF-8.
    public static func decodeForm(_ encoded: String) -> String? {
        func digit(_ byte: UInt8) -> UInt8? {
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
            default: nil
            }
        }
        var bytes: [UInt8] = []
        var rest = Array(encoded.utf8)[...]
        while let byte = rest.popFirst() {
            switch byte {
            case UInt8(ascii: "+"): bytes.append(0x20)
            case UInt8(ascii: "%"):
                guard rest.count >= 2, let high = digit(rest[rest.startIndex]), let low = digit(rest[rest.startIndex + 1]) else { return nil }
                bytes.append(high << 4 | low)
                rest = rest.dropFirst(2)
            default: bytes.append(byte)
            }
        }
        return String(validating: bytes, as: UTF8.self)
    }
}

public struct ByteString: Hashable, Sendable {
    public let text: String

    public init(_ text: String) { self.text = text }

    public static func == (a: ByteString, b: ByteString) -> Bool {
        var (x, y) = (a.text, b.text)
        return x.withUTF8 { p in
            y.withUTF8 { q in p.count == q.count && (p.isEmpty || memcmp(p.baseAddress!, q.baseAddress!, p.count) == 0) }
        }
    }

    public func hash(into hasher: inout Hasher) {
        var text = text
        text.withUTF8 { hasher.combine(bytes: UnsafeRawBufferPointer($0)) }
    }
}
