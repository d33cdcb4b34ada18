import Core

/// GoodWe SEMS portal (the app API, vendor-apis.md §4): login, the `Token` header, answers that
/// are HTTP 200 even on failure, and the transform of plant power charts into readings.
public enum GoodWe {
    public static let format = "goodwe.sems.v2"
    /// The power curve's resolution: ~5-minute points, each read as the start of a 5-minute slot.
    public static let slot: Int64 = 300
    public static let loginPath = "v2/Common/CrossLogin"
    public static let chartPath = "v2/Charts/GetPlantPowerChart"
    public static let plantsPath = "PowerStationMonitor/QueryPowerStationMonitor"
    public static let plantsPageSize = 50
    /// The `Token` header before login.
    public static let anonymousToken = #"{"version":"v2.1.0","client":"ios","language":"en"}"#
    /// A window is at most a week of daily charts.
    public static let maximumWindow: Int64 = 7 * 86_400

    /// What an answer's envelope (`hasError`, `code`, `msg`, `data`) says.
    public enum Outcome: Equatable, Sendable {
        case success(JSONValue)
        /// `100001` (not logged in) or `100002` (authorisation expired): log in again, once.
        case loginNeeded(code: String)
        /// `GY0429` or a "too many requests" message: stop for at least five minutes.
        case rateLimited(message: String)
        case failed(code: String, message: String)
    }

    public static func outcome(of answer: JSONValue) -> Outcome {
        let code = answer["code"]?.text ?? ""
        let message = String((answer["msg"]?.text ?? "").prefix(200))
        let hasError: Bool = if case .bool(true)? = answer["hasError"] { true } else { false }
        if code == "GY0429" || message.lowercased().contains("too many requests") { return .rateLimited(message: message) }
        if code == "100001" || code == "100002" { return .loginNeeded(code: code) }
        if hasError || !(code == "0" || code == "00000" || code.isEmpty) { return .failed(code: code, message: message) }
        return .success(answer["data"] ?? .null)
    }

    /// The login answer's token object (sent as the `Token` header) and its regional `api` URL.
    public static func session(fromLogin answer: JSONValue) -> (token: String, api: String?)? {
        guard case .success(let data) = outcome(of: answer), case .object = data, data["token"]?.text != nil else { return nil }
        let api = answer["api"]?.text ?? answer["components"]?["api_url"]?.text
        return (data.serialized, api.flatMap { $0.isEmpty ? nil : $0 })
    }

    public static func loginBody(account: String, password: String) -> [UInt8] {
        var json = JSONWriter()
        json.beginObject()
        json.key("account"); json.string(account)
        json.key("pwd"); json.string(password)
        json.endObject()
        return json.bytes
    }

    public static func chartBody(plant: String, date: String) -> [UInt8] {
        var json = JSONWriter()
        json.beginObject()
        json.key("id"); json.string(plant)
        json.key("date"); json.string(date)
        json.key("full_script"); json.bool(false)
        json.endObject()
        return json.bytes
    }

    public static func plantsBody(page: Int) -> [UInt8] {
        Array(#"{"powerstation_id":"","key":"","orderby":"","powerstation_type":"","powerstation_status":"","page_index":\#(page),"page_size":\#(plantsPageSize),"adcode":"","org_id":"","condition":""}"#.utf8)
    }

    /// Plants of a plant-list `data` (`list[].powerstation_id`, `stationname`); GoodWe gives no zone.
    public static func plants(in data: JSONValue) -> [DiscoveredSite]? {
        guard let list = data["list"]?.elements else { return nil }
        return list.prefix(plantsPageSize).compactMap { plant in
            guard let id = plant["powerstation_id"]?.text, !id.isEmpty else { return nil }
            return DiscoveredSite(externalSiteID: id, name: plant["stationname"]?.text, timeZone: nil)
        }
    }

    /// The local dates whose charts cover `[start, end)` in `zone`.
    public static func dates(start: Int64, end: Int64, zone: ZoneRules) -> [String] { LocalTime.dates(start: start, end: end, zone: zone) }
}

/// GoodWe plant power charts → canonical readings.
///
/// Every 5-minute slot of `data_range` is a row of device `site`: power (W) from the
/// `PCurve_Power_PV` line, energy estimated as power × 300 s (quality `estimated`); a point that is
/// `null` or absent is `missing`. `other_metrics` carries the line and the local day's measured
/// total (`generateData` Generation, kWh) as `day_generation_kwh`.
public struct GoodWeTransform: VendorEnvelopeTransform {
    public let zones: ZoneDatabase
    public var format: String { GoodWe.format }
    public var source: SourceSystem { .goodWe }

    public init(zones: ZoneDatabase) { self.zones = zones }

    public func records(_ envelope: VendorEnvelope) throws(FileFormatError) -> [RawRecord] {
        let (site, zone, start, end) = try envelope.siteWindow(zones: zones)

        var power: [Int64: Double] = [:]
        var totals: [String: Double] = [:]
        var line = 1
        for (answerLine, answer) in envelope.answers {
            guard answer["call"]?.text == "chart" else { continue }
            line = answerLine
            guard let date = answer["date"]?.text, let midnight = LocalTime.parseDate(date), let response = answer["response"] else {
                throw .notAnEnvelope(reason: "the chart answer at line \(answerLine) has no date or response")
            }
            guard case .success(let data) = GoodWe.outcome(of: response) else {
                throw .notAnEnvelope(reason: "the chart answer at line \(answerLine) is an error answer")
            }
            for entry in data["generateData"]?.elements ?? [] where entry["key"]?.text == "Generation" {
                if let kwh = entry["value"]?.number { totals[date] = kwh }
            }
            let lines = data["lines"]?.elements ?? []
            guard let pv = lines.first(where: { ($0["key"] ?? $0["name"])?.text == "PCurve_Power_PV" }) else { continue }
            var resolver = WallTimeResolver(zone: zone)
            for point in pv["xy"]?.elements ?? [] {
                // A point whose x is not HH:mm names no slot: its slot stays missing.
                guard let x = point["x"]?.text, let minutes = Self.minutes(x), let instant = resolver.instant(forLocal: midnight + minutes * 60) else {
                    continue
                }
                let slot = instant - ((instant % GoodWe.slot) + GoodWe.slot) % GoodWe.slot
                if power[slot] == nil, let watts = point["y"]?.number { power[slot] = watts }
            }
        }

        var records: [RawRecord] = []
        var slot = (start + GoodWe.slot - 1) / GoodWe.slot * GoodWe.slot
        var row = 0
        while slot < end {
            row += 1
            let date = LocalTime.date(zone.local(slot))
            var extras = [JSONMember("line", .string("PCurve_Power_PV"))]
            if let total = totals[date] {
                extras.append(JSONMember("day_generation_kwh", .number(String(total))))
                extras.append(JSONMember("local_date", .string(date)))
            }
            let watts = power[slot]
            records.append(.canonical(line: line, row: row, site: site, device: "site", start: slot, interval: Int(GoodWe.slot),
                                      energy: watts.map { $0 * Double(GoodWe.slot) / 3600 }, power: watts,
                                      quality: watts == nil ? "missing" : "estimated", extras: extras))
            slot += GoodWe.slot
        }
        return records
    }

    /// `HH:mm` as minutes after midnight.
    static func minutes(_ text: String) -> Int64? {
        let parts = text.split(separator: ":")
        guard parts.count == 2, let hours = Int64(parts[0]), let minutes = Int64(parts[1]), (0...23).contains(hours), (0...59).contains(minutes) else {
            return nil
        }
        return hours * 60 + minutes
    }
}

/// Every vendor transform this build knows.
public enum VendorCatalog {
    public static func transforms(zones: ZoneDatabase) -> VendorTransforms {
        VendorTransforms([SolarEdgeTransform(zones: zones), GoodWeTransform(zones: zones), EnphaseTransform(zones: zones), SMATransform(zones: zones)])
    }
}
