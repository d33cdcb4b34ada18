import Core

/// One vendor answer as the lake keeps it: which call, the request without secrets, and the
/// answer's bytes exactly as they came.
public struct VendorAnswer: Sendable, Equatable {
    /// What was asked: `energy`, `power`, `sensors`, `chart` …
    public var call: String
    /// Method and path with query, never with a key, password or token.
    public var request: String
    /// The answer's body, verbatim (one JSON value).
    public var body: [UInt8]
    /// Extra facts the transform needs that the answer does not repeat (GoodWe: the chart's local date).
    public var context: [JSONMember]

    public init(call: String, request: String, body: [UInt8], context: [JSONMember] = []) {
        self.call = call
        self.request = request
        self.body = body
        self.context = context
    }
}

/// The fetcher envelope a fetcher writes to `raw/{vendor}/{org}/{date}/`.
public struct FetchedWindow: Sendable, Equatable {
    public var source: SourceSystem
    public var format: String
    public var organizationID: Int64
    public var siteID: String
    public var timeZone: String
    /// Unix milliseconds.
    public var fetchedAt: Int64
    /// `[start, end)`, Unix seconds.
    public var start: Int64
    public var end: Int64
    public var answers: [VendorAnswer]

    public init(
        source: SourceSystem, format: String, organizationID: Int64, siteID: String, timeZone: String, fetchedAt: Int64, start: Int64,
        end: Int64, answers: [VendorAnswer]
    ) {
        self.source = source
        self.format = format
        self.organizationID = organizationID
        self.siteID = siteID
        self.timeZone = timeZone
        self.fetchedAt = fetchedAt
        self.start = start
        self.end = end
        self.answers = answers
    }

    /// The envelope's bytes. Members that shape reading (`site_id`, `time_zone`, `vendor_format`)
    /// come before `readings`, as the validator's streaming reader requires.
    public func envelope() -> [UInt8] {
        var json = JSONWriter()
        json.beginObject()
        json.key("source"); json.string(source.rawValue)
        json.key("organization_id"); json.number(organizationID)
        json.key("site_id"); json.string(siteID)
        json.key("time_zone"); json.string(timeZone)
        json.key("vendor_format"); json.string(format)
        json.key("fetched_at"); json.string(Timestamp.rfc3339(milliseconds: fetchedAt))
        json.key("data_range")
        json.beginObject()
        json.key("start"); json.string(Timestamp.rfc3339(milliseconds: start * 1000))
        json.key("end"); json.string(Timestamp.rfc3339(milliseconds: end * 1000))
        json.endObject()
        json.key("readings")
        json.beginArray()
        for answer in answers {
            json.newline()
            json.beginObject()
            json.key("call"); json.string(answer.call)
            json.key("request"); json.string(answer.request)
            for member in answer.context {
                json.key(member.key); json.value(member.value)
            }
            json.key("response"); json.raw(bytes: answer.body)
            json.endObject()
        }
        json.endArray()
        json.endObject()
        json.newline()
        return json.bytes
    }
}

/// The lake key of a fetched window: `raw/{vendor}/{org}/{UTC day of fetch}/site_{id}_{HHMMSS}[_{n}].json`.
public enum FetchedWindowKey {
    public static func key(source: SourceSystem, organizationID: Int64, siteID: String, fetchedAt: Int64, sequence: Int) -> String {
        let seconds = fetchedAt / 1000
        let time = Timestamp.rfc3339(milliseconds: seconds * 1000)  // YYYY-MM-DDTHH:MM:SS…
        let day = String(time.prefix(10))
        let clock = time.dropFirst(11).prefix(8).filter { $0 != ":" }
        let suffix = sequence > 1 ? "_\(sequence)" : ""
        return "raw/\(source.rawValue)/\(organizationID)/\(day)/site_\(safe(siteID))_\(clock)\(suffix).json"
    }

    /// A site id as a key segment: letters, digits, `-`, `_`, `.`; anything else becomes `_`.
    static func safe(_ id: String) -> String {
        let cleaned = String(id.unicodeScalars.prefix(100).map { scalar -> Character in
            scalar.isASCII && (scalar.properties.isAlphabetic || ("0"..."9").contains(scalar) || "-_.".unicodeScalars.contains(scalar))
                ? Character(scalar) : "_"
        })
        return cleaned.hasPrefix(".") ? "_" + cleaned.dropFirst() : cleaned
    }
}
