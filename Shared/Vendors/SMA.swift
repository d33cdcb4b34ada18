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

    /// The plant id a 308's `Location` names (`…/plants/{id}…`), if it is an id: 1 to 64 letters,
    /// digits, `-` or `_` (no dots, no encoding: it is stored and put into later paths).
    public static func movedPlant(location: String) -> String? {
        let path = location.split(separator: "?", maxSplits: 1).first.map(String.init) ?? location
        let parts = path.split(separator: "/")
        guard let index = parts.firstIndex(of: "plants"), index + 1 < parts.count else { return nil }
        let id = parts[index + 1]
        guard (1...64).contains(id.utf8.count), id.utf8.allSatisfy({ byte in
            (0x30...0x39).contains(byte) || (0x41...0x5A).contains(byte) || (0x61...0x7A).contains(byte) || byte == 0x2D || byte == 0x5F
        }) else { return nil }
        return String(id)
    }

    /// The most rows one envelope may make (devices × slots): a week of 5-minute slots for 500 inverters.
    public static let maximumRows = 1_000_000

    /// The seconds of a set's `resolution`.
    static func seconds(_ resolution: String?) -> Int64? {
        switch resolution {
        case "OneMinute"?: 60  // (resampled to 300 by the transform: 60 s is no allowed interval)
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
        // Intervals start on the plant's local grid (an hour in Adelaide starts at :30 UTC).
        let offset = Int64(zone.offset(at: start))
        var devices: [String: (interval: Int64, resolution: Int64, energy: [Int64: (sum: Double, count: Int)], power: [Int64: (sum: Double, count: Int)])] = [:]
        var order: [String] = []
        func add(_ device: String, interval: Int64, resolution: Int64) {
            guard devices[device] == nil else { return }
            devices[device] = (interval, resolution, [:], [:])
            order.append(device)
        }
        var line = 1
        for (answerLine, answer) in envelope.answers {
            guard let call = answer["call"]?.text else { continue }
            if call == "devices", let listed = answer["response"].flatMap(SMA.inverters(in:)) {
                // Every inverter of the plant has every slot, with data or without.
                for device in listed { add(device, interval: SMA.slot, resolution: SMA.slot) }
                continue
            }
            guard call == "energy" || call == "power" else { continue }
            line = answerLine
            guard let device = answer["device"]?.text, let response = answer["response"], let set = response["set"]?.elements else {
                throw .notAnEnvelope(reason: "the \(call) answer at line \(answerLine) has no device or set")
            }
            guard let resolution = SMA.seconds(response["resolution"]?.text) else {
                throw .notAnEnvelope(reason: "the \(call) answer at line \(answerLine) has an unknown resolution")
            }
            // One-minute sets are summed (energy) or averaged (power) into 5-minute slots.
            let interval = max(resolution, SMA.slot)
            guard (offset % interval + interval) % interval == 0 else {
                // (Every zone's offset is a multiple of 15 minutes: only an hour set of a half-hour zone gets here.)
                throw .notAnEnvelope(reason: "the \(call) answer at line \(answerLine) has \(interval)-second intervals that start off the UTC grid in \(zone.name); readings need aligned intervals")
            }
            add(device, interval: interval, resolution: resolution)
            devices[device]!.interval = interval
            devices[device]!.resolution = resolution
            var resolver = WallTimeResolver(zone: zone)
            for entry in set {
                guard let time = entry["time"]?.text, let local = LocalTime.parse(time), let labelled = resolver.instant(forLocal: local),
                    let value = entry["pvGeneration"]?.number
                else { continue }
                let begins = labelled - resolution
                let slot = begins - (((begins + offset) % interval) + interval) % interval
                var series = call == "energy" ? devices[device]!.energy : devices[device]!.power
                let current = series[slot] ?? (0, 0)
                series[slot] = (current.sum + value, current.count + 1)
                if call == "energy" { devices[device]!.energy = series } else { devices[device]!.power = series }
            }
        }
        let slots = order.reduce(0) { $0 + Int(max(0, end - start) / devices[$1]!.interval) }
        guard slots <= SMA.maximumRows else {
            throw .notAnEnvelope(reason: "\(order.count) devices over this window make \(slots) rows, more than \(SMA.maximumRows): fetch shorter windows")
        }
        var records: [RawRecord] = []
        var row = 0
        for device in order {
            let series = devices[device]!
            let samplesPerSlot = Int(series.interval / series.resolution)
            var slot = start - (((start + offset) % series.interval) + series.interval) % series.interval
            if slot < start { slot += series.interval }
            while slot < end {
                row += 1
                let energy = series.energy[slot]
                let power = series.power[slot]
                // A resampled slot missing some of its minutes is an estimate.
                let complete = (energy?.count ?? 0) >= samplesPerSlot
                records.append(.canonical(line: line, row: row, site: site, device: device, start: slot, interval: Int(series.interval),
                                          energy: energy?.sum, power: power.map { $0.sum / Double($0.count) },
                                          quality: energy == nil ? "missing" : (complete ? "measured" : "estimated"), extras: []))
                slot += series.interval
            }
        }
        return records
    }
}
