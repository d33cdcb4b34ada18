import Core

/// Enphase API v4 (vendor-apis.md §2): requests, answers, and the transform of
/// `production_micro` telemetry into readings.
public enum Enphase {
    public static let format = "enphase.v4"
    /// Micro-inverter production comes in 5-minute intervals labelled by their end.
    public static let slot: Int64 = 300
    /// Telemetry calls cover at most 7 days; each call here covers one day (`granularity=day`).
    public static let maximumWindow: Int64 = 7 * 86_400
    public static let pageSize = 100

    /// `/systems` page `page` (1-based).
    public static func systemsPage(_ page: Int) -> String { "systems?page=\(page)&size=\(pageSize)" }

    /// The telemetry calls for `[start, end)`: per 24 h, `production_micro` (288 intervals), and
    /// `production_meter` (96) unless the system is known to have no meter.
    public static func calls(system: String, start: Int64, end: Int64, meter: Bool) -> [(call: String, path: String)] {
        windows(from: start, to: end, maximum: 86_400).flatMap { day -> [(call: String, path: String)] in
            let base = "systems/\(SolarEdge.encode(system))/telemetry/"
            let micro = (call: "production_micro", path: base + "production_micro?start_at=\(day.start)&granularity=day")
            return meter ? [micro, (call: "production_meter", path: base + "production_meter?start_at=\(day.start)&granularity=day")] : [micro]
        }
    }

    /// The production meter's 15-minute intervals, labelled by their end.
    public static let meterSlot: Int64 = 900

    /// An epoch-seconds value from an answer, when it is a whole number within 1970…2200.
    static func instant(_ value: JSONValue?) -> Int64? {
        guard let number = value?.number, number >= 0, number < 7_258_118_400, let whole = Int64(exactly: number.rounded(.down)) else { return nil }
        return whole
    }

    /// A device count from an answer, when it is a whole number in 0…10^9.
    static func count(_ value: Double) -> Int64? {
        guard value >= 0, value <= 1e9 else { return nil }
        return Int64(exactly: value.rounded(.down))
    }

    /// Systems of a `/systems` answer and the total count.
    public static func systems(in answer: JSONValue) -> (total: Int, sites: [DiscoveredSite])? {
        guard let list = answer["systems"]?.elements else { return nil }
        let total = answer["total"]?.number.flatMap { Int(exactly: $0.rounded(.down)) }.map { min(max($0, 0), 1_000_000) } ?? list.count
        let sites = list.prefix(pageSize).compactMap { system -> DiscoveredSite? in
            guard let id = system["system_id"]?.text else { return nil }
            return DiscoveredSite(externalSiteID: id, name: system["name"]?.text, timeZone: system["timezone"]?.text)
        }
        return (total, sites)
    }

    /// When a 429 answer lets calls resume (Unix seconds): its `period_end` for a minute, the next
    /// month for a monthly limit, else in a minute.
    public static func retryAfter(_ answer: JSONValue?, now: Int64) -> Int64 {
        if answer?["period"]?.text == "month" {
            return Int64(Timestamp.firstDayOfNextMonth(after: Int(floorDivide(now, 86_400)))) * 86_400
        }
        if let end = answer?["period_end"]?.number.flatMap({ Int64(exactly: $0.rounded(.down)) }), end > now, end < now + 3600 { return end }
        return now + 60
    }
}

/// Enphase telemetry → canonical readings. `production_micro`: every 5-minute slot of
/// `data_range` a row of device `site`, the slot starting 300 s before the interval's `end_at`;
/// `enwh` (Wh) and `powr` (W) `measured`; an absent interval `missing`; `devices_reporting` and
/// `total_devices` in `other_metrics`. `production_meter` (when the envelope has it): every
/// 15-minute slot a row of device `meter`, `wh_del` (Wh) at `end_at − 900`.
public struct EnphaseTransform: VendorEnvelopeTransform {
    public let zones: ZoneDatabase
    public var format: String { Enphase.format }
    public var source: SourceSystem { .enphase }

    public init(zones: ZoneDatabase) { self.zones = zones }

    public func records(_ envelope: VendorEnvelope) throws(FileFormatError) -> [RawRecord] {
        let (site, _, start, end) = try envelope.siteWindow(zones: zones)
        var intervals: [Int64: (energy: Double?, power: Double?, reporting: Double?, total: Double?)] = [:]
        var meter: [Int64: Double]?
        var line = 1
        for (answerLine, answer) in envelope.answers where answer["call"]?.text == "production_meter" {
            guard let list = answer["response"]?["intervals"]?.elements else {
                throw .notAnEnvelope(reason: "the production_meter answer at line \(answerLine) has no intervals")
            }
            var values = meter ?? [:]
            for interval in list {
                guard let endAt = Enphase.instant(interval["end_at"]), endAt % Enphase.meterSlot == 0, let wh = interval["wh_del"]?.number else { continue }
                values[endAt - Enphase.meterSlot] = wh
            }
            meter = values
        }
        for (answerLine, answer) in envelope.answers where answer["call"]?.text == "production_micro" {
            line = answerLine
            guard let response = answer["response"], let list = response["intervals"]?.elements else {
                throw .notAnEnvelope(reason: "the production_micro answer at line \(answerLine) has no intervals")
            }
            let total = response["total_devices"]?.number
            for interval in list {
                guard let endAt = Enphase.instant(interval["end_at"]) else { continue }
                let slot = endAt - Enphase.slot
                guard slot % Enphase.slot == 0 else { continue }
                intervals[slot] = (interval["enwh"]?.number, interval["powr"]?.number, interval["devices_reporting"]?.number, total)
            }
        }
        var records: [RawRecord] = []
        var slot = (start + Enphase.slot - 1) / Enphase.slot * Enphase.slot
        var row = 0
        while slot < end {
            row += 1
            let interval = intervals[slot]
            var extras: [JSONMember] = []
            if let reporting = interval?.reporting.flatMap(Enphase.count) { extras.append(JSONMember("devices_reporting", .number(String(reporting)))) }
            if let total = interval?.total.flatMap(Enphase.count) { extras.append(JSONMember("total_devices", .number(String(total)))) }
            let energy = interval?.energy
            records.append(.canonical(line: line, row: row, site: site, device: "site", start: slot, interval: Int(Enphase.slot),
                                      energy: energy, power: interval?.power, quality: energy == nil ? "missing" : "measured", extras: extras))
            slot += Enphase.slot
        }
        if let meter {
            slot = (start + Enphase.meterSlot - 1) / Enphase.meterSlot * Enphase.meterSlot
            while slot < end {
                row += 1
                let energy = meter[slot]
                records.append(.canonical(line: line, row: row, site: site, device: "meter", start: slot, interval: Int(Enphase.meterSlot),
                                          energy: energy, power: nil, quality: energy == nil ? "missing" : "measured", extras: []))
                slot += Enphase.meterSlot
            }
        }
        return records
    }
}
