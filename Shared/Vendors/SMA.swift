import Core

/// SMA Monitoring API (vendor-apis.md §3): requests, answers, and the transform of device
/// `EnergyAndPowerPv` day sets into readings.
public enum SMA {
    public static let format = "sma.monitoring.v1"
    public static let slot: Int64 = 300
    /// Day by day, a week at most per window.
    public static let maximumWindow: Int64 = 7 * 86_400
    public static let plantsPath = "plants"

    public static func devicesPath(plant: String) -> String { "plants/\(SolarEdge.encode(plant))/devices" }

    /// A device's `EnergyAndPowerPv` set for a local day: Wh per interval (`energy`) or W (`power`).
    public static func dayPath(device: String, date: String, energy: Bool) -> String {
        "devices/\(SolarEdge.encode(device))/measurements/sets/EnergyAndPowerPv/Day?Date=\(date)" + (energy ? "&ReturnEnergyValues=true" : "")
    }

    /// Plants of a `/plants` answer (with their IANA zone).
    public static func plants(in answer: JSONValue) -> [DiscoveredSite]? {
        guard let list = answer["plants"]?.elements else { return nil }
        return list.prefix(10_000).compactMap { plant in
            guard let id = plant["plantId"]?.text else { return nil }
            return DiscoveredSite(externalSiteID: id, name: plant["name"]?.text, timeZone: plant["timezone"]?.text)
        }
    }

    /// The inverters of a `/plants/{id}/devices` answer that produce (active solar inverters).
    public static func inverters(in answer: JSONValue) -> [String]? {
        guard let list = answer["devices"]?.elements else { return nil }
        return list.prefix(1000).compactMap { device in
            guard let id = device["deviceId"]?.text else { return nil }
            if case .bool(false)? = device["isActive"] { return nil }
            if let type = device["type"]?.text, !type.lowercased().contains("inverter") { return nil }
            return id
        }
    }

    /// The plant id a 308's `Location` names (`…/plants/{id}…`), if any.
    public static func movedPlant(location: String) -> String? {
        let path = location.split(separator: "?", maxSplits: 1).first.map(String.init) ?? location
        let parts = path.split(separator: "/")
        guard let index = parts.firstIndex(of: "plants"), index + 1 < parts.count else { return nil }
        let id = String(parts[index + 1])
        return id.isEmpty || id.utf8.count > 200 ? nil : id
    }

    /// The seconds of a set's `resolution`.
    static func seconds(_ resolution: String?) -> Int64? {
        switch resolution {
        case "OneMinute"?: 60
        case "FiveMinutes"?, nil: 300
        case "FifteenMinutes"?: 900
        case "OneHour"?: 3600
        default: nil
        }
    }
}

/// SMA device day sets → canonical readings: per inverter (`external_device_id` = `deviceId`),
/// every slot of `data_range` at the set's resolution; `time` is plant-local and labels the
/// interval's **end**, so the slot starts one interval earlier; `pvGeneration` from the
/// `ReturnEnergyValues=true` set is Wh, from the plain set W; an absent interval (a night) is
/// `missing`.
public struct SMATransform: VendorEnvelopeTransform {
    public let zones: ZoneDatabase
    public var format: String { SMA.format }
    public var source: SourceSystem { .sma }

    public init(zones: ZoneDatabase) { self.zones = zones }

    public func records(_ envelope: VendorEnvelope) throws(FileFormatError) -> [RawRecord] {
        let (site, zone, start, end) = try envelope.siteWindow(zones: zones)
        var devices: [String: (interval: Int64, energy: [Int64: Double], power: [Int64: Double])] = [:]
        var order: [String] = []
        var line = 1
        for (answerLine, answer) in envelope.answers {
            guard let call = answer["call"]?.text, call == "energy" || call == "power" else { continue }
            line = answerLine
            guard let device = answer["device"]?.text, let response = answer["response"], let set = response["set"]?.elements else {
                throw .notAnEnvelope(reason: "the \(call) answer at line \(answerLine) has no device or set")
            }
            guard let interval = SMA.seconds(response["resolution"]?.text) else {
                throw .notAnEnvelope(reason: "the \(call) answer at line \(answerLine) has an unknown resolution")
            }
            if devices[device] == nil {
                devices[device] = (interval, [:], [:])
                order.append(device)
            }
            var resolver = WallTimeResolver(zone: zone)
            for entry in set {
                guard let time = entry["time"]?.text, let local = LocalTime.parse(time), let labelled = resolver.instant(forLocal: local),
                    let value = entry["pvGeneration"]?.number
                else { continue }
                let slot = labelled - interval
                guard slot % interval == 0 else { continue }
                if call == "energy" { devices[device]!.energy[slot] = value } else { devices[device]!.power[slot] = value }
            }
        }
        var records: [RawRecord] = []
        var row = 0
        for device in order {
            let series = devices[device]!
            var slot = (start + series.interval - 1) / series.interval * series.interval
            while slot < end {
                row += 1
                let energy = series.energy[slot]
                records.append(.canonical(line: line, row: row, site: site, device: device, start: slot, interval: Int(series.interval),
                                          energy: energy, power: series.power[slot], quality: energy == nil ? "missing" : "measured", extras: []))
                slot += series.interval
            }
        }
        return records
    }
}
