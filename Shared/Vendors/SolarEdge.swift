import Core

/// SolarEdge Monitoring API v1: the requests a fetcher makes, how its answers read, and the
/// transform of a fetched window into canonical readings (vendor-apis.md §1).
public enum SolarEdge {
    public static let format = "solaredge.monitoring.v1"
    /// Quarter-hour series: one slot is 900 s, labelled by its start in site-local time.
    public static let slot: Int64 = 900
    /// `/energy` and `/power` at quarter-hour resolution take at most one calendar month; 27 days
    /// keeps the local date span (28 dates) inside the shortest month.
    public static let maximumWindow: Int64 = 27 * 86_400
    /// `/site/{id}/sensors` takes at most one week.
    public static let maximumSensorWindow: Int64 = 7 * 86_400
    /// The daily quota per site and per account key.
    public static let dailyQuota = 300
    /// `/sites/list` pages hold at most 100 sites.
    public static let pageSize = 100

    /// One call of a window's plan.
    public struct Call: Sendable, Equatable {
        public var name: String
        /// Path and query relative to the base URL, without `api_key`.
        public var path: String
    }

    /// `/sites/list` from `startIndex`.
    public static func sitesList(startIndex: Int) -> Call {
        Call(name: "sites", path: "sites/list?size=\(pageSize)&startIndex=\(startIndex)")
    }

    /// `/site/{id}/details`: one site's name and zone (a site key can read it; it cannot list).
    public static func details(site: String) -> Call {
        Call(name: "details", path: "site/\(encode(site))/details")
    }

    /// The site of a `/site/{id}/details` answer.
    public static func site(inDetails answer: JSONValue) -> DiscoveredSite? {
        guard let details = answer["details"], let id = details["id"]?.text else { return nil }
        return DiscoveredSite(externalSiteID: id, name: details["name"]?.text, timeZone: details["location"]?["timeZone"]?.text)
    }

    /// The calls that fetch `[start, end)` (at most ``maximumWindow``) of a site in `zone`:
    /// quarter-hour energy (local dates), power (local date-times), and sensor data by weeks.
    public static func calls(site: String, start: Int64, end: Int64, zone: ZoneRules) -> [Call] {
        let id = encode(site)
        let firstLocal = zone.local(start)
        let lastLocal = zone.local(end - 1)
        var calls = [
            Call(name: "energy", path: "site/\(id)/energy?timeUnit=QUARTER_OF_AN_HOUR&startDate=\(LocalTime.date(firstLocal))&endDate=\(LocalTime.date(lastLocal))"),
            Call(name: "power", path: "site/\(id)/power?startTime=\(encode(LocalTime.dateTime(firstLocal)))&endTime=\(encode(LocalTime.dateTime(lastLocal)))"),
        ]
        for week in windows(from: start, to: end, maximum: maximumSensorWindow) {
            calls.append(Call(name: "sensors", path: "site/\(id)/sensors?startDate=\(encode(LocalTime.dateTime(zone.local(week.start))))&endDate=\(encode(LocalTime.dateTime(zone.local(week.end - 1))))"))
        }
        return calls
    }

    /// Sites of a `/sites/list` answer (`sites.site`, or the PDF's `Sites.list`) and the total count.
    public static func sites(in answer: JSONValue) -> (total: Int, sites: [DiscoveredSite])? {
        guard let container = answer["sites"] ?? answer["Sites"], let list = (container["site"] ?? container["list"])?.elements else {
            return nil
        }
        let total = container["count"]?.number.flatMap { Int(exactly: $0.rounded(.down)) }.map { min(max($0, 0), 1_000_000) } ?? list.count
        let sites = list.prefix(pageSize).compactMap { site -> DiscoveredSite? in
            guard let id = site["id"]?.text else { return nil }
            return DiscoveredSite(externalSiteID: id, name: site["name"]?.text, timeZone: site["location"]?["timeZone"]?.text)
        }
        return (total, sites)
    }

    /// Percent-encodes a path or query component (space → `%20`; `:` kept, as in `00:00:00`).
    static func encode(_ text: String) -> String { PercentEncoding.encode(text, keeping: [UInt8(ascii: ":")]) }
}

/// SolarEdge answers → canonical readings.
///
/// Site series (`external_device_id` = `site`): every quarter hour of `data_range` is a row;
/// energy (Wh) and power (W) joined on the slot; a slot with no energy is `missing` (power kept
/// when given). `measuredBy` goes to `other_metrics`. Sensor telemetry becomes rows of its own,
/// one device per gateway (`sensors:<gateway>`): irradiance and ambient temperature averaged per
/// quarter hour, module temperature and wind speed in `other_metrics`.
public struct SolarEdgeTransform: VendorEnvelopeTransform {
    public let zones: ZoneDatabase
    public var format: String { SolarEdge.format }
    public var source: SourceSystem { .solarEdge }

    public init(zones: ZoneDatabase) { self.zones = zones }

    public func records(_ envelope: VendorEnvelope) throws(FileFormatError) -> [RawRecord] {
        let (site, zone, start, end) = try envelope.siteWindow(zones: zones)

        var energy: [Int64: Double] = [:]
        var power: [Int64: Double] = [:]
        var measuredBy: String?
        var sensors: [String: [Int64: SensorSlot]] = [:]
        var line = 1
        for (answerLine, answer) in envelope.answers {
            guard let call = answer["call"]?.text, let response = answer["response"] else {
                throw .notAnEnvelope(reason: "the answer at line \(answerLine) has no call or response")
            }
            line = answerLine
            switch call {
            case "energy", "power":
                guard let series = response[call], let values = series["values"]?.elements else {
                    throw .notAnEnvelope(reason: "the \(call) answer at line \(answerLine) has no \(call).values")
                }
                if call == "energy", let by = series["measuredBy"]?.text { measuredBy = by }
                var resolver = WallTimeResolver(zone: zone)
                for value in values {
                    // A value without a readable date names no slot: its slot stays missing.
                    guard let date = value["date"]?.text, let local = LocalTime.parse(date),
                        let instant = resolver.instant(forLocal: local), let number = value["value"]?.number
                    else { continue }
                    if call == "energy" { energy[instant] = number } else { power[instant] = number }
                }
            case "sensors":
                guard let groups = response["siteSensors"]?["data"]?.elements else {
                    throw .notAnEnvelope(reason: "the sensors answer at line \(answerLine) has no siteSensors.data")
                }
                for group in groups {
                    let gateway = group["connectedTo"]?.text ?? "gateway"
                    var resolver = WallTimeResolver(zone: zone)
                    for sample in group["telemetries"]?.elements ?? [] {
                        guard let date = sample["date"]?.text, let local = LocalTime.parse(date), let instant = resolver.instant(forLocal: local) else {
                            continue
                        }
                        let slot = instant - ((instant % SolarEdge.slot) + SolarEdge.slot) % SolarEdge.slot
                        sensors[gateway, default: [:]][slot, default: SensorSlot()].add(sample)
                    }
                }
            default:
                continue  // Answers the transform does not use (details, inventory) are kept in the lake only.
            }
        }

        var records: [RawRecord] = []
        var row = 0
        let first = (start + SolarEdge.slot - 1) / SolarEdge.slot * SolarEdge.slot
        let extras = measuredBy.map { [JSONMember("measured_by", .string($0))] } ?? []
        var slot = first
        while slot < end {
            row += 1
            let wh = energy[slot]
            records.append(.canonical(line: line, row: row, site: site, device: "site", start: slot, interval: Int(SolarEdge.slot),
                                      energy: wh, power: power[slot], quality: wh == nil ? "missing" : "measured", extras: extras))
            slot += SolarEdge.slot
        }
        for gateway in sensors.keys.sorted() {
            for (slot, sample) in sensors[gateway]!.sorted(by: { $0.key < $1.key }) where slot >= first && slot < end {
                row += 1
                records.append(.canonical(line: line, row: row, site: site, device: "sensors:" + gateway, start: slot, interval: Int(SolarEdge.slot),
                                          energy: nil, power: nil, irradiance: sample.mean(\.irradiance), temperature: sample.mean(\.ambient),
                                          quality: "measured", extras: sample.extras()))
            }
        }
        return records
    }
}

/// Sensor samples that fall in one quarter hour.
struct SensorSlot {
    var irradiance: [Double] = []
    var ambient: [Double] = []
    var module: [Double] = []
    var wind: [Double] = []

    mutating func add(_ sample: JSONValue) {
        if let value = sample["globalHorizontalIrradiance"]?.number { irradiance.append(value) }
        if let value = sample["ambientTemperature"]?.number { ambient.append(value) }
        if let value = sample["moduleTemperature"]?.number { module.append(value) }
        if let value = sample["windSpeed"]?.number { wind.append(value) }
    }

    func mean(_ series: KeyPath<SensorSlot, [Double]>) -> Double? {
        let values = self[keyPath: series]
        return values.isEmpty ? nil : values.reduce(0, +) / Double(values.count)
    }

    func extras() -> [JSONMember] {
        var members: [JSONMember] = []
        if let value = mean(\.module) { members.append(JSONMember("module_temperature_c", .number(String(value)))) }
        if let value = mean(\.wind) { members.append(JSONMember("wind_speed_ms", .number(String(value)))) }
        return members
    }
}
