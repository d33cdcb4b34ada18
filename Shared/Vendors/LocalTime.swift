import Core

/// Vendor wall times (site-local, no offset) to instants, DST-correct.
///
/// A wall time in a spring-forward gap has no instant and is dropped (counted in ``dropped``). A
/// wall time that repeats on a fall-back day maps, on its first occurrence in a series, to the
/// earlier (daylight) instant and on its second to the later (standard) one — vendors list the
/// repeated hour twice, in order, or once (then the standard hour stays missing).
public struct WallTimeResolver {
    public let zone: ZoneRules
    private var occurrences: [Int64: Int] = [:]
    /// Labels that named no instant (in a gap, or a third occurrence).
    public private(set) var dropped: [Int64] = []

    public init(zone: ZoneRules) { self.zone = zone }

    public mutating func instant(forLocal local: Int64) -> Int64? {
        let candidates = zone.instants(atLocal: local)
        if candidates.count == 1 { return candidates[0] }
        let seen = occurrences[local, default: 0]
        guard seen < candidates.count else {
            dropped.append(local)
            return nil
        }
        occurrences[local] = seen + 1
        return candidates[seen]
    }
}

/// Local-time text of the forms vendors use.
public enum LocalTime {
    /// `YYYY-MM-DD hh:mm:ss` or `YYYY-MM-DDThh:mm:ss` (no offset) as local seconds.
    public static func parse(_ text: String) -> Int64? {
        guard case .naive(let local) = ISO8601.parse(text) else { return nil }
        return local
    }

    /// `YYYY-MM-DD` as local seconds of its midnight.
    public static func parseDate(_ text: String) -> Int64? {
        parse(text + "T00:00:00")
    }

    /// Local seconds as `YYYY-MM-DD`.
    public static func date(_ local: Int64) -> String {
        String(Timestamp.rfc3339(milliseconds: local * 1000).prefix(10))
    }

    /// The local dates (`YYYY-MM-DD`) that `[start, end)` touches in `zone`.
    public static func dates(start: Int64, end: Int64, zone: ZoneRules) -> [String] {
        var dates: [String] = []
        var day = floorDivide(zone.local(start), 86_400)
        let last = floorDivide(zone.local(end - 1), 86_400)
        while day <= last {
            dates.append(date(day * 86_400))
            day += 1
        }
        return dates
    }

    /// Local seconds as `YYYY-MM-DD hh:mm:ss`.
    public static func dateTime(_ local: Int64) -> String {
        let text = Timestamp.rfc3339(milliseconds: local * 1000)
        return String(text.prefix(10)) + " " + String(text.dropFirst(11).prefix(8))
    }
}

/// Splits `[start, end)` into consecutive windows of at most `maximum` seconds.
public func windows(from start: Int64, to end: Int64, maximum: Int64) -> [(start: Int64, end: Int64)] {
    var result: [(start: Int64, end: Int64)] = []
    var from = start
    while from < end {
        let to = min(end, from + maximum)
        result.append((from, to))
        from = to
    }
    return result
}

extension RawRecord {
    /// A canonical record as a transform builds it.
    static func canonical(
        line: Int, row: Int, site: String, device: String, start: Int64, interval: Int, energy: Double?, power: Double?,
        irradiance: Double? = nil, temperature: Double? = nil, quality: String, extras: [JSONMember]
    ) -> RawRecord {
        var record = RawRecord(line: line, row: row, extras: extras)
        record[.externalSiteID] = .text(site)
        record[.externalDeviceID] = .text(device)
        record[.timestamp] = .timestamp(seconds: start, nanoseconds: 0, zoned: true)
        record[.readingIntervalSeconds] = .integer(Int64(interval))
        record[.energyWh] = energy.map(RawField.number)
        record[.powerW] = power.map(RawField.number)
        record[.irradianceWm2] = irradiance.map(RawField.number)
        record[.temperatureC] = temperature.map(RawField.number)
        record[.quality] = .text(quality)
        return record
    }
}

extension JSONValue {
    /// A finite number, or a numeric string (vendors send both); never inf or NaN, which no
    /// column or `other_metrics` can hold.
    var number: Double? {
        let value: Double? = switch self {
        case .number(let literal): Double(literal)
        case .string(let text): Double(text)
        default: nil
        }
        return value.flatMap { $0.isFinite ? $0 : nil }
    }

    var elements: [JSONValue]? {
        if case .array(let elements) = self { return elements }
        return nil
    }
}

/// A site a vendor listed for a credential.
public struct DiscoveredSite: Sendable, Equatable {
    public var externalSiteID: String
    public var name: String?
    /// The IANA zone, when the vendor gives one.
    public var timeZone: String?

    public init(externalSiteID: String, name: String?, timeZone: String?) {
        self.externalSiteID = externalSiteID
        self.name = name
        self.timeZone = timeZone
    }
}

extension VendorEnvelope {
    /// What every transform starts from: the site, its zone's rules and the window `[start, end)`.
    func siteWindow(zones: ZoneDatabase) throws(FileFormatError) -> (site: String, zone: ZoneRules, start: Int64, end: Int64) {
        let site = try string("site_id")
        let zoneName = try string("time_zone")
        let zone: ZoneRules
        do { zone = try zones.rules(zoneName) } catch { throw .notAnEnvelope(reason: "time_zone: \(error)") }
        let (start, end) = try dataRange()
        return (site, zone, start, end)
    }
}
