/// Builds compact JSON as UTF-8 bytes, for log lines and metric lines on hot paths where
/// `JSONEncoder` would be slow and would not keep key order.
///
/// Commas are placed automatically between members and elements.
public struct JSONWriter: Sendable {
    public private(set) var bytes: [UInt8] = []
    /// One flag per open container: whether something has been written into it yet.
    private var needsComma: [Bool] = []

    public init() { bytes.reserveCapacity(256) }

    public mutating func beginObject() { separate(); bytes.append(UInt8(ascii: "{")); needsComma.append(false) }
    public mutating func endObject() { needsComma.removeLast(); bytes.append(UInt8(ascii: "}")) }
    public mutating func beginArray() { separate(); bytes.append(UInt8(ascii: "[")); needsComma.append(false) }
    public mutating func endArray() { needsComma.removeLast(); bytes.append(UInt8(ascii: "]")) }

    /// Writes an object member's key; the value follows with the next call.
    public mutating func key(_ name: String) {
        separate()
        writeString(name)
        bytes.append(UInt8(ascii: ":"))
        pendingValue = true
    }

    public mutating func string(_ text: String) { separate(); writeString(text) }
    public mutating func raw(_ literal: String) { separate(); bytes.append(contentsOf: literal.utf8) }
    /// Splices bytes that are already one JSON value (a vendor's answer, kept verbatim).
    public mutating func raw(bytes value: [UInt8]) { separate(); bytes.append(contentsOf: value) }
    public mutating func number(_ value: Int) { raw(String(value)) }
    public mutating func number(_ value: Int64) { raw(String(value)) }
    public mutating func number(_ value: Double) { raw(value.isFinite ? String(value) : "null") }
    public mutating func bool(_ value: Bool) { raw(value ? "true" : "false") }
    public mutating func null() { raw("null") }
    public mutating func newline() { bytes.append(UInt8(ascii: "\n")) }

    /// Set after a key so the value that follows takes no comma.
    private var pendingValue = false

    private mutating func separate() {
        if pendingValue { pendingValue = false; return }
        guard let last = needsComma.last else { return }
        if last { bytes.append(UInt8(ascii: ",")) }
        needsComma[needsComma.count - 1] = true
    }

    private mutating func writeString(_ text: String) {
        bytes.append(UInt8(ascii: "\""))
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "\""): bytes.append(contentsOf: [0x5C, 0x22])
            case UInt8(ascii: "\\"): bytes.append(contentsOf: [0x5C, 0x5C])
            case 0x0A: bytes.append(contentsOf: [0x5C, UInt8(ascii: "n")])
            case 0x0D: bytes.append(contentsOf: [0x5C, UInt8(ascii: "r")])
            case 0x09: bytes.append(contentsOf: [0x5C, UInt8(ascii: "t")])
            case 0..<0x20:
                let hex = Array("0123456789abcdef".utf8)
                bytes.append(contentsOf: [0x5C, UInt8(ascii: "u"), 0x30, 0x30, hex[Int(byte >> 4)], hex[Int(byte & 0xF)]])
            default: bytes.append(byte)
            }
        }
        bytes.append(UInt8(ascii: "\""))
    }
}
