import Core

/// A landed file's key, checked: `raw/{source}/{org_id}/{YYYY-MM-DD}/{name}`.
public struct LakeKey: Sendable, Equatable {
    public var key: String
    public var source: SourceSystem
    public var organizationID: Int64
    public var date: String
    /// The key without its leading `raw/`: the lossless tail of `validated/` and `quarantine/` keys.
    public var rest: String

    /// Why a key under `raw/` cannot be trusted.
    public enum Problem: Error, Equatable, Sendable, CustomStringConvertible {
        case shape
        case unknownSource(String)
        case organization(String)
        case date(String)
        case dotSegment
        case tooLong
        /// A C0 control character or DEL (a NUL would cut the key short in C and in PostgreSQL).
        case controlCharacter(scalar: UInt32, offset: Int)

        public var description: String {
            switch self {
            case .shape: "the key is not raw/{source}/{org_id}/{YYYY-MM-DD}/{name}"
            case .unknownSource(let source): "unknown source \"\(source)\" (expected \(SourceSystem.allCases.map(\.rawValue).joined(separator: ", ")))"
            case .organization(let text): "the organisation id \"\(text)\" is not a positive integer without leading zeros"
            case .date(let text): "\"\(text)\" is not a YYYY-MM-DD date"
            case .dotSegment: "the key has an empty, . or .. segment"
            case .tooLong: "the key is longer than \(LakeKey.maximumBytes) bytes (its quarantine/{day}/ report key must fit S3's 1024)"
            case .controlCharacter(let scalar, let offset):
                "the key contains the control character U+\(String(scalar, radix: 16, uppercase: true).leftPadded(to: 4)) at byte \(offset)"
            }
        }
    }

    /// The longest raw key whose destinations fit S3's 1024 bytes: `raw/` becomes
    /// `quarantine/YYYY-MM-DD/` (18 bytes more) and the report adds `.report.json` (12).
    public static let maximumBytes = 1024 - 18 - 12

    /// Parses a key known to start with `raw/`.
    public init(_ key: String) throws(Problem) {
        guard key.utf8.count <= Self.maximumBytes else { throw .tooLong }
        if let problem = Self.controlCharacter(in: key) { throw problem }
        let parts = key.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        guard parts.count >= 5, parts[0] == "raw" else { throw .shape }
        guard !parts.contains(where: { $0.isEmpty || $0 == "." || $0 == ".." }) else { throw .dotSegment }
        guard let source = SourceSystem(rawValue: parts[1]) else { throw .unknownSource(parts[1]) }
        let org = parts[2]
        guard org.utf8.count <= 18, org.first != "0", org.allSatisfy({ $0.isASCII && $0.isNumber }), let id = Int64(org), id > 0 else {
            throw .organization(org)
        }
        let date = parts[3]
        let digits = Array(date.utf8)
        guard digits.count == 10, digits[4] == 0x2D, digits[7] == 0x2D,
            case .naive = ISO8601.parse(date + "T00:00")
        else { throw .date(date) }
        self.key = key
        self.source = source
        self.organizationID = id
        self.date = date
        self.rest = String(key.dropFirst(4))
    }

    /// The first control character of `key` (C0 or DEL), if any.
    public static func controlCharacter(in key: String) -> Problem? {
        guard let offset = key.utf8.firstIndex(where: { $0 < 0x20 || $0 == 0x7F }) else { return nil }
        let byte = key.utf8[offset]
        return .controlCharacter(scalar: UInt32(byte), offset: key.utf8.distance(from: key.utf8.startIndex, to: offset))
    }

    /// `validated/{day}/{rest}` or `quarantine/{day}/{rest}` for a raw key (checked or not).
    public static func destination(_ area: LakeArea, day: String, rawKey: String) -> String {
        "\(area.rawValue)/\(day)/\(rawKey.dropFirst(4))"
    }
}

extension String {
    fileprivate func leftPadded(to width: Int) -> String { String(repeating: "0", count: max(0, width - count)) + self }
}

/// Where a landed file ends up, by the UTC day it was processed.
public enum LakeArea: String, Sendable, CaseIterable {
    case validated
    case quarantine
}
