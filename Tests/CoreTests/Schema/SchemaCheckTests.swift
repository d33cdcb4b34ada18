import Core
import Testing

let header = "external_site_id,external_device_id,timestamp,reading_interval_seconds,energy_wh,power_w,irradiance_wm2,temperature_c,quality,utc_offset\n"

/// One CSV row (after the header, so on line 2) and the single violation it must produce.
struct BadRow: CustomTestStringConvertible, Sendable {
    var row: String
    var code: SchemaViolation.Code
    var column: String
    var value: String
    var testDescription: String { "\(code.rawValue): \(row)" }
}

@Suite struct SchemaCheckTests {
    static let cases: [BadRow] = [
        BadRow(row: ",d,2026-03-01T06:00:00Z,900,1,1,,,,", code: .missingValue, column: "external_site_id", value: ""),
        BadRow(row: "s, ,2026-03-01T06:00:00Z,900,1,1,,,,", code: .missingValue, column: "external_device_id", value: " "),
        BadRow(row: "s,d,,900,1,1,,,,", code: .missingValue, column: "timestamp", value: ""),
        BadRow(row: "s,d,2026-03-01T06:00:00Z,,1,1,,,,", code: .missingValue, column: "reading_interval_seconds", value: ""),
        BadRow(row: "s,d,2026-03-01T06:00:00Z,900,12kWh,1,,,,", code: .invalidNumber, column: "energy_wh", value: "12kWh"),
        BadRow(row: "s,d,2026-03-01T06:00:00Z,900,0x10,1,,,,", code: .invalidNumber, column: "energy_wh", value: "0x10"),
        BadRow(row: "s,d,2026-03-01T06:00:00Z,900,1,NaN,,,,", code: .notFinite, column: "power_w", value: "NaN"),
        BadRow(row: "s,d,2026-03-01T06:00:00Z,900,inf,1,,,,", code: .notFinite, column: "energy_wh", value: "inf"),
        BadRow(row: "s,d,2026-03-01T06:00:00Z,900,-1,1,,,,", code: .negativeValue, column: "energy_wh", value: "-1"),
        BadRow(row: "s,d,2026-03-01T06:00:00Z,900,1,-0.5,,,,", code: .negativeValue, column: "power_w", value: "-0.5"),
        BadRow(row: "s,d,2026-03-01T06:00:00Z,900,250000001,1,,,,", code: .implausibleValue, column: "energy_wh", value: "250000001"),
        BadRow(row: "s,d,2026-03-01T06:00:00Z,900,1,1000000001,,,,", code: .implausibleValue, column: "power_w", value: "1000000001"),
        BadRow(row: "s,d,2026-03-01T06:00:00Z,900,1,1,2000.5,,,", code: .outOfRange, column: "irradiance_wm2", value: "2000.5"),
        BadRow(row: "s,d,2026-03-01T06:00:00Z,900,1,1,,-61,,", code: .outOfRange, column: "temperature_c", value: "-61"),
        BadRow(row: "s,d,2026-03-01T06:00:00Z,600,1,1,,,,", code: .invalidInterval, column: "reading_interval_seconds", value: "600"),
        BadRow(row: "s,d,2026-03-01T06:00:00Z,900.0,1,1,,,,", code: .invalidInterval, column: "reading_interval_seconds", value: "900.0"),
        BadRow(row: "s,d,01.03.2026 06:00,900,1,1,,,,", code: .invalidTimestamp, column: "timestamp", value: "01.03.2026 06:00"),
        BadRow(row: "s,d,2026-03-01T06:00:00,900,1,1,,,,", code: .naiveTimestamp, column: "timestamp", value: "2026-03-01T06:00:00"),
        BadRow(row: "s,d,1999-12-31T23:45:00Z,900,1,1,,,,", code: .timestampTooEarly, column: "timestamp", value: "1999-12-31T23:45:00Z"),
        BadRow(row: "s,d,2026-03-03T00:00:00Z,900,1,1,,,,", code: .timestampInFuture, column: "timestamp", value: "2026-03-03T00:00:00Z"),
        BadRow(row: "s,d,2026-03-01T06:05:00Z,900,1,1,,,,", code: .misalignedTimestamp, column: "timestamp", value: "2026-03-01T06:05:00Z"),
        BadRow(row: "s,d,2026-03-01T06:00:00Z,900,1,1,,,great,", code: .invalidQuality, column: "quality", value: "great"),
        BadRow(row: "s,d,2026-03-01T06:00:00Z,900,1,,,,missing,", code: .invalidQuality, column: "quality", value: "missing"),
        BadRow(row: "s,d,2026-03-01T06:00:00,900,1,1,,,,CET", code: .invalidUTCOffset, column: "utc_offset", value: "CET"),
        BadRow(row: "s,\(String(repeating: "x", count: 201)),2026-03-01T06:00:00Z,900,1,1,,,,", code: .invalidIdentifier, column: "external_device_id", value: String(repeating: "x", count: 100) + "…"),
        BadRow(row: "s,d,2026-03-01T06:00:00Z,900,1,1,,,,,", code: .wrongColumnCount, column: "*", value: "s,d,2026-03-01T06:00:00Z,900,1,1,,,,,"),
    ]

    @Test(arguments: cases)
    func eachRuleRejectsItsRowWithLineColumnAndValue(_ bad: BadRow) throws {
        let file = header + "s,d,2026-03-01T05:45:00Z,900,1,1,,,,\n" + bad.row + "\n"
        let result = try read(Array(file.utf8), name: "f.csv")
        #expect(result.readings.count == 1, "the good row still loads")
        #expect(result.processed == 2 && result.rejected == 1)
        let violation = try #require(result.violations.first)
        #expect(result.violations.count == (bad.code == .invalidUTCOffset ? 2 : 1), "\(result.violations)")
        #expect(violation.code == bad.code)
        #expect(violation.line == 3)
        #expect(violation.row == 2)
        #expect(violation.column == bad.column)
        #expect(violation.value == bad.value)
        #expect(!violation.message.isEmpty)
    }

    /// `missing` means no energy figure: with power, irradiance or temperature it still loads.
    @Test func missingQualityRejectsAnEnergyValueOnly() throws {
        let file = header
            + "s,d,2026-03-01T06:00:00Z,900,,4000,512.5,21,missing,\n"
            + "s,d,2026-03-01T06:15:00Z,900,,,,,missing,\n"
            + "s,d,2026-03-01T06:30:00Z,900,0,4000,,,missing,\n"
        let result = try read(Array(file.utf8), name: "f.csv")
        #expect(result.readings.map(\.powerW) == [4000, nil])
        #expect(result.readings.map(\.quality) == [.missing, .missing])
        #expect(result.violations.map(\.line) == [4])
        #expect(result.violations.first?.message == "a reading of quality \"missing\" carries no energy")
    }

    @Test func everyViolationOfARowIsReported() throws {
        let file = header + "\"\",d,2026-03-01T06:05:00Z,900,-5,abc,3000,,sunny,\n"
        let result = try read(Array(file.utf8), name: "f.csv")
        #expect(result.violations.map(\.code) == [.missingValue, .invalidNumber, .invalidQuality, .misalignedTimestamp, .negativeValue, .outOfRange])
        #expect(result.violations.map(\.column) == ["external_site_id", "power_w", "quality", "timestamp", "energy_wh", "irradiance_wm2"])
        #expect(result.rejected == 1)
    }

    @Test func naiveTimesLoadWhenTheRowOrTheConfigurationDeclaresTheZone() throws {
        let file = header + "s,d,2026-03-01T07:00:00,900,1,1,,,,+01:00\ns,d,2026-03-01T06:15:00,900,1,1,,,,\n"
        var limits = ValidationLimits()
        limits.defaultUTCOffset = 0
        let result = try read(Array(file.utf8), name: "f.csv", limits: limits)
        #expect(result.violations == [])
        #expect(result.readings.map(\.timestamp) == [1_772_344_800, 1_772_345_700])
    }

    @Test func duplicatesInOneFileAreRejectedAcrossBatchesAndFormats() throws {
        let csv = header + "s,d,2026-03-01T06:00:00Z,900,1,1,,,,\ns,d2,2026-03-01T06:00:00Z,900,1,1,,,,\ns,d,2026-03-01T06:15:00Z,900,1,1,,,,\ns,d,2026-03-01T07:00:00+01:00,900,2,2,,,,\n"
        let result = try read(Array(csv.utf8), name: "f.csv", batch: 1)
        #expect(result.readings.count == 3)
        #expect(result.violations.map(\.code) == [.duplicateReading])
        #expect(result.violations.first?.line == 5)
        let ndjson = #"{"external_site_id":"s","external_device_id":"d","timestamp":"2026-03-01T06:00:00Z","reading_interval_seconds":3600}"# + "\n"
            + #"{"external_site_id":"s","external_device_id":"d","timestamp":"2026-03-01T06:00:00Z","reading_interval_seconds":900}"# + "\n"
        #expect(try read(Array(ndjson.utf8), name: "f.ndjson").violations.map(\.code) == [.duplicateReading])
    }

    @Test func duplicateTrackerIsExactAcrossPagesDevicesAndNegativeTimes() {
        var tracker = DuplicateTracker(slotSeconds: 300)
        let times: [Int64] = [0, 300, 4096 * 300, 4096 * 300 - 300, -300, 1_772_345_700, 946_684_800]
        for time in times {
            #expect(tracker.insert(site: "s", device: "d", timestamp: time) == .new, "first sighting of \(time)")
        }
        for time in times {
            #expect(tracker.insert(site: "s", device: "d", timestamp: time) == .duplicate, "second sighting of \(time)")
        }
        #expect(tracker.insert(site: "s", device: "e", timestamp: 0) == .new)
        #expect(tracker.insert(site: "t", device: "d", timestamp: 0) == .new)
        #expect(!tracker.isFull)
    }

    /// Past its budget the tracker makes no page: a reading in a page it holds is still answered
    /// exactly, one elsewhere is `unknown` (for the loader to check), every time.
    @Test func duplicateTrackerStopsGrowingAtItsBudgetAndSaysWhatItCannotKnow() {
        var tracker = DuplicateTracker(slotSeconds: 300, maximumBytes: 2 * DuplicateTracker.pageBytes)
        let window = Int64(4096 * 300)
        #expect(tracker.insert(site: "s", device: "a", timestamp: 0) == .new)
        #expect(tracker.insert(site: "s", device: "a", timestamp: window) == .new)
        #expect(tracker.insert(site: "s", device: "b", timestamp: 0) == .unknown)
        #expect(tracker.insert(site: "s", device: "a", timestamp: 2 * window) == .unknown)
        #expect(tracker.isFull)
        #expect(tracker.insert(site: "s", device: "a", timestamp: 300) == .new, "a page it holds still records")
        #expect(tracker.insert(site: "s", device: "a", timestamp: 300) == .duplicate)
        #expect(tracker.insert(site: "s", device: "a", timestamp: window) == .duplicate)
        #expect(tracker.insert(site: "s", device: "b", timestamp: 0) == .unknown, "and what it could not hold stays unknown")
    }

    @Test func readingsBeyondTheTrackersBudgetComeOutMarkedForTheLoader() throws {
        var limits = ValidationLimits()
        limits.maximumDuplicateTrackerBytes = DuplicateTracker.pageBytes
        var csv = "external_site_id,external_device_id,timestamp,reading_interval_seconds\n"
        for device in ["a", "b", "a", "b"] { csv += "s,\(device),2026-03-01T00:00:00Z,900\n" }
        let reader = try ReadingFileReader(
            source: MemoryByteSource(Array(csv.utf8)), name: "d.csv", sourceSystem: .manual, organizationID: 42, limits: limits,
            now: sampleNow, ingestedAt: sampleIngestedAt)
        let batch = try #require(try reader.nextBatch(maximumRows: 10))
        // Device a's repeat is caught at once; device b's rows pass with a note to check them.
        #expect(batch.violations.map(\.line) == [4])
        #expect(batch.readings.map(\.externalDeviceID) == ["a", "b", "b"])
        #expect(batch.pendingDuplicateChecks == [.init(index: 1, line: 3, row: 2), .init(index: 2, line: 5, row: 4)])
    }

    @Test func jsonTypesAreCheckedAndExtrasKeptExactly() throws {
        let ndjson = #"{"external_site_id":1234567890123456789,"external_device_id":"d","timestamp":"2026-03-01T06:00:00Z","reading_interval_seconds":"900","energy_wh":"12.5","power_w":true,"big":9007199254740993,"nested":{"a":[1,2]}}"# + "\n"
            + #"{"external_site_id":"s","external_device_id":["d"],"timestamp":"2026-03-01T06:00:00Z","reading_interval_seconds":900}"# + "\n"
            + #"{"external_site_id":"s","external_device_id":"d","timestamp":"2026-03-01T06:15:00Z","reading_interval_seconds":900,"energy_wh":1,"big":9007199254740993,"nested":{"a":[1,2]},"other_metrics":{"x":"y"}}"#
        let result = try read(Array(ndjson.utf8), name: "f.ndjson")
        #expect(result.violations.map(\.code) == [.invalidType, .invalidType])
        #expect(result.violations.map(\.column) == ["power_w", "external_device_id"])
        #expect(result.violations.map(\.line) == [1, 2])
        let reading = try #require(result.readings.first)
        // File order; the members of an other_metrics object take its place in that order.
        #expect(reading.otherMetricsJSON == #"{"big":9007199254740993,"nested":{"a":[1,2]},"x":"y"}"#)
    }
}

@Suite struct RoundTripPropertyTests {
    /// A deterministic generator, so a failure can be replayed from its seed.
    struct Generator: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return state
        }
    }

    static func text(_ generator: inout Generator) -> String {
        let pieces = ["a", "Z", "7", " ", ",", "\"", "\n", "é", "☀️", "'", ";", "x\r\ny", "\\", "\t"]
        return (0..<Int.random(in: 1...6, using: &generator)).map { _ in pieces.randomElement(using: &generator)! }.joined()
    }

    @Test(arguments: [1, 2, 3, 4, 5, 6, 7, 8])
    func randomReadingsSurviveCSVAndNDJSON(seed: UInt64) throws {
        var generator = Generator(state: seed)
        var readings: [MeterReading] = []
        for index in 0..<200 {
            let interval = [300, 900, 3600].randomElement(using: &generator)!
            var site = Self.text(&generator).trimmingSpacesForTest()
            if site.isEmpty || site.unicodeScalars.contains(where: { $0.value < 0x20 }) { site = "site\(index)" }
            let energy: Double? = Bool.random(using: &generator) ? Double(Int.random(in: 0...10_000_000, using: &generator)) / 100 : nil
            readings.append(MeterReading(
                sourceSystem: .manual, organizationID: 42, externalSiteID: site, externalDeviceID: "dev-\(index)",
                timestamp: 1_700_000_000 / Int64(interval) * Int64(interval) + Int64(index * interval), readingIntervalSeconds: interval,
                energyWh: energy, powerW: Bool.random(using: &generator) ? 12.25 : nil, quality: energy == nil ? .estimated : .measured,
                ingestedAt: sampleIngestedAt))
        }
        func csvField(_ text: String) -> String { "\"" + text.replacingOccurrences(of: "\"", with: "\"\"") + "\"" }
        func number(_ value: Double?) -> String { value.map { String($0) } ?? "" }
        var csv = header
        var ndjson = ""
        for reading in readings {
            let time = Timestamp.rfc3339(milliseconds: reading.timestamp * 1000)
            csv += [csvField(reading.externalSiteID), reading.externalDeviceID, time, String(reading.readingIntervalSeconds),
                    number(reading.energyWh), number(reading.powerW), "", "", reading.quality.rawValue, ""].joined(separator: ",") + (Bool.random(using: &generator) ? "\r\n" : "\n")
            var writer = JSONWriter()
            writer.beginObject()
            writer.key("external_site_id"); writer.string(reading.externalSiteID)
            writer.key("external_device_id"); writer.string(reading.externalDeviceID)
            writer.key("timestamp"); writer.string(time)
            writer.key("reading_interval_seconds"); writer.number(reading.readingIntervalSeconds)
            if let energy = reading.energyWh { writer.key("energy_wh"); writer.number(energy) }
            if let power = reading.powerW { writer.key("power_w"); writer.number(power) }
            writer.key("quality"); writer.string(reading.quality.rawValue)
            writer.endObject()
            ndjson += String(decoding: writer.bytes, as: UTF8.self) + "\n"
        }
        let chunk = Int.random(in: 1...300, using: &generator)
        let fromCSV = try read(Array(csv.utf8), name: "p.csv", chunk: chunk, batch: 17)
        #expect(fromCSV.violations == [])
        #expect(fromCSV.readings == readings)
        let fromNDJSON = try read(Array(ndjson.utf8), name: "p.ndjson", chunk: chunk, batch: 17)
        #expect(fromNDJSON.violations == [])
        #expect(fromNDJSON.readings == readings)
    }
}

extension String {
    func trimmingSpacesForTest() -> String {
        String(drop { $0 == " " || $0 == "\t" }.reversed().drop { $0 == " " || $0 == "\t" }.reversed())
    }
}
