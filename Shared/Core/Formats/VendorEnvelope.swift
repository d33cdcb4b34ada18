/// A fetcher envelope whose `readings` are a vendor's answers, kept verbatim: the lake holds
/// exactly what the vendor said, and a transform (a ``VendorEnvelopeTransform``) turns them into
/// canonical records when the file is validated. A fixed transform can then be replayed.
///
/// The envelope names its transform in `vendor_format`, before `readings`:
/// `{"source", "organization_id", "site_id", "time_zone", "vendor_format", "fetched_at",
/// "data_range": {"start", "end"}, "readings": [{"call", "request", "response"}, …]}`.
public struct VendorEnvelope: Sendable {
    public var format: String
    /// Every member but `readings`.
    public var members: [JSONMember]
    /// The `readings` elements, each with the document line it starts on.
    public var answers: [(line: Int, value: JSONValue)]

    public init(format: String, members: [JSONMember], answers: [(line: Int, value: JSONValue)]) {
        self.format = format
        self.members = members
        self.answers = answers
    }

    public subscript(member member: String) -> JSONValue? { members.first { $0.key == member }?.value }

    /// A member that must be a string.
    public func string(_ member: String) throws(FileFormatError) -> String {
        switch self[member: member] {
        case .string(let text)?: return text
        case .number(let literal)? where member == "site_id": return literal
        default: throw .notAnEnvelope(reason: "\(format) envelope needs \"\(member)\" as a string")
        }
    }

    /// `data_range` as Unix seconds: the window the fetcher asked for, `[start, end)`.
    public func dataRange() throws(FileFormatError) -> (start: Int64, end: Int64) {
        guard case .string(let start)? = self[member: "data_range"]?["start"], case .string(let end)? = self[member: "data_range"]?["end"],
            case .zoned(let from) = ISO8601.parse(start), case .zoned(let to) = ISO8601.parse(end)
        else { throw .notAnEnvelope(reason: "data_range needs start and end as ISO-8601 instants with a zone") }
        guard from <= to, to - from <= Int64(400 * 86_400) else {
            throw .notAnEnvelope(reason: "data_range \(start) … \(end) is reversed or longer than 400 days")
        }
        return (from, to)
    }
}

/// Turns one vendor's answers into canonical records (interval start in UTC, every slot of the
/// window present, vendor extras in `other_metrics`). Pure: the same envelope always gives the
/// same records.
public protocol VendorEnvelopeTransform: Sendable {
    /// The `vendor_format` it reads, e.g. `solaredge.monitoring.v1`.
    var format: String { get }
    /// The lake source its envelopes come from.
    var source: SourceSystem { get }
    func records(_ envelope: VendorEnvelope) throws(FileFormatError) -> [RawRecord]
}

/// The transforms a reader knows, by `vendor_format`.
public struct VendorTransforms: Sendable {
    public let byFormat: [String: any VendorEnvelopeTransform]

    public init(_ transforms: [any VendorEnvelopeTransform] = []) {
        byFormat = Dictionary(transforms.map { ($0.format, $0) }, uniquingKeysWith: { first, _ in first })
    }
}
