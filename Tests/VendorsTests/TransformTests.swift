import Core
import Lake
import Testing
import TestSupport
import Vendors

/// The vendor transforms on envelopes written here (the fake vendors' answers are checked end to
/// end in IntegrationTests/Fetching): fall-back and spring-forward labels, nulls, windows,
/// broken answers.
@Suite struct TransformTests {
    let zones = ZoneDatabase(directory: "/usr/share/zoneinfo")

    func instant(_ text: String) -> Int64 {
        guard case .zoned(let seconds) = ISO8601.parse(text) else { fatalError(text) }
        return seconds
    }

    /// Reads an envelope the way the validator does: through the JSON reader and its transforms.
    func read(_ window: FetchedWindow, source: SourceSystem? = nil) throws -> ReadingBatch {
        let reader = try ReadingFileReader(
            source: MemoryByteSource(window.envelope()), name: "site.json", sourceSystem: source ?? window.source, organizationID: 42,
            transforms: VendorCatalog.transforms(zones: zones), now: instant("2026-12-01T00:00:00Z"), ingestedAt: 0)
        var all = ReadingBatch()
        while let batch = try reader.nextBatch() {
            all.readings += batch.readings
            all.violations += batch.violations
            all.rowsProcessed += batch.rowsProcessed
        }
        return all
    }

    func solarEdge(_ start: String, _ end: String, energy: String, power: String = #"{"power":{"values":[]}}"#) -> FetchedWindow {
        FetchedWindow(source: .solarEdge, format: SolarEdge.format, organizationID: 42, siteID: "77", timeZone: "Europe/Berlin",
                      fetchedAt: 0, start: instant(start), end: instant(end),
                      answers: [VendorAnswer(call: "energy", request: "GET e", body: Array(energy.utf8)),
                                VendorAnswer(call: "power", request: "GET p", body: Array(power.utf8))])
    }

    @Test func fallBackLabelsMapToBothInstantsInOrder() throws {
        // 02:00 and 02:15 appear twice: first daylight (00:xx UTC), then standard (01:xx UTC).
        let energy = #"{"energy":{"measuredBy":"INVERTER","values":[{"date":"2026-10-25 02:00:00","value":1},{"date":"2026-10-25 02:15:00","value":2},{"date":"2026-10-25 02:00:00","value":3},{"date":"2026-10-25 02:15:00","value":4}]}}"#
        let batch = try read(solarEdge("2026-10-25T00:00:00Z", "2026-10-25T01:30:00Z", energy: energy))
        #expect(batch.violations.isEmpty)
        #expect(batch.readings.map(\.timestamp) == stride(from: instant("2026-10-25T00:00:00Z"), to: instant("2026-10-25T01:30:00Z"), by: 900).map { $0 })
        #expect(batch.readings.map(\.energyWh) == [1, 2, nil, nil, 3, 4])
        #expect(batch.readings.map(\.quality) == [.measured, .measured, .missing, .missing, .measured, .measured])
    }

    @Test func springForwardLabelsInTheGapAreDroppedAndNullsAreMissing() throws {
        // 02:00 does not exist on 2026-03-29 in Berlin; 03:00 local is 01:00 UTC.
        let energy = #"{"energy":{"values":[{"date":"2026-03-29 01:45:00","value":5},{"date":"2026-03-29 02:00:00","value":99},{"date":"2026-03-29 03:00:00","value":null},{"date":"2026-03-29 03:15:00","value":7.5}]}}"#
        let power = #"{"power":{"values":[{"date":"2026-03-29 03:00:00","value":12.0}]}}"#
        let batch = try read(solarEdge("2026-03-29T00:45:00Z", "2026-03-29T01:30:00Z", energy: energy, power: power))
        #expect(batch.readings.map(\.energyWh) == [5, nil, 7.5])
        #expect(batch.readings.map(\.powerW) == [nil, 12, nil])
        #expect(batch.readings.map(\.quality) == [.measured, .missing, .measured])
        #expect(!batch.readings.contains { $0.energyWh == 99 })
    }

    @Test func valuesOutsideTheWindowAreNotRows() throws {
        let energy = #"{"energy":{"values":[{"date":"2026-06-15 11:45:00","value":1},{"date":"2026-06-15 12:00:00","value":2},{"date":"2026-06-15 12:15:00","value":3}]}}"#
        let batch = try read(solarEdge("2026-06-15T10:00:00Z", "2026-06-15T10:15:00Z", energy: energy))
        #expect(batch.readings.map(\.energyWh) == [2])
        #expect(batch.readings.first?.externalSiteID == "77" && batch.readings.first?.externalDeviceID == "site")
    }

    @Test func aBrokenAnswerFailsTheFileSayingWhere() throws {
        #expect(throws: FileFormatError.notAnEnvelope(reason: "the energy answer at line 2 has no energy.values")) {
            try read(solarEdge("2026-06-15T10:00:00Z", "2026-06-15T10:15:00Z", energy: #"{"energy":{}}"#))
        }
        var unknownZone = solarEdge("2026-06-15T10:00:00Z", "2026-06-15T10:15:00Z", energy: #"{"energy":{"values":[]}}"#)
        unknownZone.timeZone = "../../etc/passwd"
        #expect(throws: FileFormatError.self) { try read(unknownZone) }
    }

    /// A vendor envelope's answers are kept whole until the envelope is read, within a budget
    /// counted in document bytes however the window moves.
    @Test func vendorAnswersPastTheirBudgetAreRefused() throws {
        var limits = ValidationLimits()
        limits.maximumVendorAnswerBytes = 1024 * 1024
        let answer = #"{"call":"energy","request":"GET e","response":{"pad":""# + String(repeating: "A", count: 40_000) + #""}}"#
        let envelope = #"{"source":"solaredge","organization_id":42,"site_id":"77","time_zone":"Europe/Berlin","vendor_format":"solaredge.monitoring.v1","readings":["#
            + Array(repeating: answer, count: 60).joined(separator: ",") + "]}"
        #expect(throws: FileFormatError.notAnEnvelope(reason: "the vendor answers exceed 1048576 bytes; fetch shorter windows")) {
            let reader = try ReadingFileReader(
                source: MemoryByteSource(Array(envelope.utf8), chunkSize: 256 * 1024), name: "site.json", sourceSystem: .solarEdge,
                organizationID: 42, limits: limits, transforms: VendorCatalog.transforms(zones: zones),
                now: 0, ingestedAt: 0)
            while try reader.nextBatch() != nil {}
        }
    }

    @Test func anEnvelopeMustMatchItsLocationAndNameAKnownFormat() throws {
        let window = solarEdge("2026-06-15T10:00:00Z", "2026-06-15T10:15:00Z", energy: #"{"energy":{"values":[]}}"#)
        #expect(throws: FileFormatError.self) { try read(window, source: .goodWe) }
        var unknown = window
        unknown.format = "solaredge.monitoring.v9"
        #expect(throws: FileFormatError.notAnEnvelope(reason: #"vendor_format "solaredge.monitoring.v9" is not one this validator reads (enphase.v4, goodwe.sems.v2, sma.monitoring.v1, solaredge.monitoring.v1)"#)) {
            try read(unknown)
        }
        // vendor_format after readings would come too late to read them.
        let late = #"{"source":"solaredge","organization_id":42,"readings":[],"vendor_format":"solaredge.monitoring.v1"}"#
        #expect(throws: FileFormatError.notAnEnvelope(reason: "vendor_format must come before readings (it says how they are read)")) {
            _ = try ReadingFileReader(source: MemoryByteSource(Array(late.utf8)), name: "x.json", sourceSystem: .solarEdge, organizationID: 42,
                                      transforms: VendorCatalog.transforms(zones: zones), now: 0, ingestedAt: 0).nextBatch()
        }
    }

    /// Values no column can hold (inf, NaN) and values without a readable date leave their slot
    /// missing instead of failing the file.
    @Test func unusableValuesLeaveTheirSlotMissing() throws {
        let energy = #"{"energy":{"values":[{"date":"2026-06-15 12:00:00","value":"NaN"},{"date":"2026-06-15 12:15:00","value":1e400},{"date":"15.06.2026 12:30","value":3},{"date":"2026-06-15 12:45:00","value":"4.5"}]}}"#
        let batch = try read(solarEdge("2026-06-15T10:00:00Z", "2026-06-15T11:00:00Z", energy: energy))
        #expect(batch.violations.isEmpty)
        #expect(batch.readings.map(\.energyWh) == [nil, nil, nil, 4.5])
    }

    @Test func anEmptyWindowIsMissingRowsNotAnError() throws {
        let batch = try read(solarEdge("2026-06-15T00:00:00Z", "2026-06-15T01:00:00Z", energy: #"{"energy":{"values":[]}}"#))
        #expect(batch.readings.count == 4 && batch.readings.allSatisfy { $0.quality == .missing })
        #expect(batch.violations.isEmpty)
    }

    @Test func goodWeChartsBecomeEstimatedEnergyWithTheDayTotal() throws {
        let chart = #"{"hasError":false,"code":0,"msg":"Successful","data":{"generateData":[{"key":"Generation","value":43.48}],"lines":[{"key":"PCurve_Power_Battery","xy":[{"x":"12:00","y":999}]},{"name":"PCurve_Power_PV","xy":[{"x":"12:00","y":1200},{"x":"12:05","y":null},{"x":"12:15","y":600.5}]}]}}"#
        let window = FetchedWindow(source: .goodWe, format: GoodWe.format, organizationID: 42, siteID: "plant-1", timeZone: "Europe/Berlin",
                                   fetchedAt: 0, start: instant("2026-06-15T10:00:00Z"), end: instant("2026-06-15T10:20:00Z"),
                                   answers: [VendorAnswer(call: "chart", request: "POST c", body: Array(chart.utf8),
                                                          context: [JSONMember("date", .string("2026-06-15"))])])
        let batch = try read(window)
        #expect(batch.readings.map(\.powerW) == [1200, nil, nil, 600.5])
        #expect(batch.readings.map(\.energyWh) == [100, nil, nil, 600.5 * 300 / 3600])
        #expect(batch.readings.map(\.quality) == [.estimated, .missing, .missing, .estimated])
        #expect(batch.readings.allSatisfy { $0.readingIntervalSeconds == 300 })
        #expect(batch.readings.first?.otherMetricsJSON == #"{"line":"PCurve_Power_PV","day_generation_kwh":43.48,"local_date":"2026-06-15"}"#)
    }

    /// Two points in one 5-minute slot (10:00 and 10:02): the first is the slot's.
    @Test func theFirstPointOfASlotIsKept() throws {
        let chart = #"{"hasError":false,"code":0,"data":{"lines":[{"key":"PCurve_Power_PV","xy":[{"x":"12:00","y":500},{"x":"12:02","y":900}]}]}}"#
        let window = FetchedWindow(source: .goodWe, format: GoodWe.format, organizationID: 42, siteID: "p", timeZone: "Europe/Berlin",
                                   fetchedAt: 0, start: instant("2026-06-15T10:00:00Z"), end: instant("2026-06-15T10:05:00Z"),
                                   answers: [VendorAnswer(call: "chart", request: "POST c", body: Array(chart.utf8),
                                                          context: [JSONMember("date", .string("2026-06-15"))])])
        #expect(try read(window).readings.map(\.powerW) == [500])
    }

    @Test func aGoodWeErrorAnswerInTheLakeFailsTheFile() throws {
        let answer = #"{"hasError":true,"code":100002,"msg":"The authorization has expired","data":null}"#
        let window = FetchedWindow(source: .goodWe, format: GoodWe.format, organizationID: 42, siteID: "p", timeZone: "Europe/Berlin",
                                   fetchedAt: 0, start: instant("2026-06-15T10:00:00Z"), end: instant("2026-06-15T10:20:00Z"),
                                   answers: [VendorAnswer(call: "chart", request: "POST c", body: Array(answer.utf8),
                                                          context: [JSONMember("date", .string("2026-06-15"))])])
        #expect(throws: FileFormatError.notAnEnvelope(reason: "the chart answer at line 2 is an error answer")) { try read(window) }
    }
}

/// Hostile or unusual Enphase and SMA answers: no crash, no silent drop.
@Suite struct OAuthVendorTransformTests {
    let zones = ZoneDatabase(directory: "/usr/share/zoneinfo")

    func read(_ source: SourceSystem, format: String, zone: String, start: Int64, end: Int64, answers: [VendorAnswer]) throws -> [MeterReading] {
        let window = FetchedWindow(source: source, format: format, organizationID: 42, siteID: "s", timeZone: zone, fetchedAt: 0,
                                   start: start, end: end, answers: answers)
        let reader = try ReadingFileReader(source: MemoryByteSource(window.envelope()), name: "s.json", sourceSystem: source, organizationID: 42,
                                           transforms: VendorCatalog.transforms(zones: zones), now: 1_900_000_000, ingestedAt: 0)
        var readings: [MeterReading] = []
        while let batch = try reader.nextBatch() {
            readings += batch.readings
            #expect(batch.violations.isEmpty, "\(batch.violations.prefix(3))")
        }
        return readings
    }

    @Test func hostileEnphaseNumbersAreSkippedNotFatal() throws {
        let body = #"{"total_devices":1e19,"intervals":[{"end_at":-9223372036854775808,"enwh":1},{"end_at":1e300,"enwh":2},{"end_at":1781474700,"enwh":3,"devices_reporting":1e19},{"end_at":"x","enwh":4}]}"#
        let readings = try read(.enphase, format: Enphase.format, zone: "UTC", start: 1_781_474_400, end: 1_781_475_000,
                                answers: [VendorAnswer(call: "production_micro", request: "GET x", body: Array(body.utf8))])
        #expect(readings.map(\.energyWh) == [3, nil])
        #expect(readings.first?.otherMetrics.isEmpty == true)
    }

    /// An hour-resolution set lands on its hours; in a half-hour zone (Adelaide, +9:30) its hours
    /// start off the UTC grid readings need, and the file says so instead of dropping them.
    @Test func smaHoursOnAndOffTheGrid() throws {
        let body = #"{"resolution":"OneHour","set":[{"time":"2026-06-15T11:00:00","pvGeneration":500},{"time":"2026-06-15T12:00:00","pvGeneration":700}]}"#
        let answer = VendorAnswer(call: "energy", request: "GET x", body: Array(body.utf8),
                                  context: [JSONMember("device", .string("d1")), JSONMember("date", .string("2026-06-15"))])
        let start = Int64(1_781_517_600)  // 10:00 UTC
        let readings = try read(.sma, format: SMA.format, zone: "UTC", start: start, end: start + 3 * 3600, answers: [answer])
        #expect(readings.map(\.energyWh) == [500, 700, nil])
        #expect(readings.allSatisfy { $0.readingIntervalSeconds == 3600 })
        #expect(throws: FileFormatError.self) {
            try read(.sma, format: SMA.format, zone: "Australia/Adelaide", start: 1_781_483_400, end: 1_781_483_400 + 3 * 3600, answers: [answer])
        }
    }

    /// One-minute sets are summed into 5-minute slots (60 s is no allowed interval); a slot
    /// missing minutes is an estimate.
    @Test func smaMinutesAreResampledToFiveMinutes() throws {
        let minutes = (1...9).map { #"{"time":"2026-06-15T12:0\#($0):00","pvGeneration":10}"# }.joined(separator: ",")
        let body = #"{"resolution":"OneMinute","set":[\#(minutes)]}"#
        let start = Int64(1_781_524_800)  // 12:00 UTC
        let readings = try read(.sma, format: SMA.format, zone: "UTC", start: start, end: start + 600,
                                answers: [VendorAnswer(call: "energy", request: "GET x", body: Array(body.utf8),
                                                       context: [JSONMember("device", .string("d1")), JSONMember("date", .string("2026-06-15"))])])
        #expect(readings.map(\.energyWh) == [50, 40])
        #expect(readings.map(\.quality) == [.measured, .estimated])
        #expect(readings.allSatisfy { $0.readingIntervalSeconds == 300 })
    }

    @Test func smaEnvelopesAreCappedInRows() throws {
        let devices = (0..<600).map { #"{"deviceId":"d\#($0)","type":"Solar Inverters","isActive":true}"# }.joined(separator: ",")
        let answer = VendorAnswer(call: "devices", request: "GET x", body: Array(#"{"devices":[\#(devices)]}"#.utf8))
        #expect(throws: FileFormatError.self) {
            try read(.sma, format: SMA.format, zone: "UTC", start: 1_781_517_600, end: 1_781_517_600 + 7 * 86_400, answers: [answer])
        }
    }

    @Test func smaQuarterHourSetsAreQuarterHours() throws {
        let body = #"{"resolution":"FifteenMinutes","set":[{"time":"2026-06-15T12:15:00","pvGeneration":40}]}"#
        let start = Int64(1_781_524_800)  // 12:00 UTC
        let readings = try read(.sma, format: SMA.format, zone: "UTC", start: start, end: start + 1800,
                                answers: [VendorAnswer(call: "energy", request: "GET x", body: Array(body.utf8),
                                                       context: [JSONMember("device", .string("d1")), JSONMember("date", .string("2026-06-15"))])])
        #expect(readings.map(\.energyWh) == [40, nil])
        #expect(readings.allSatisfy { $0.readingIntervalSeconds == 900 })
    }

    @Test func smaFetchesActiveInvertersOnly() throws {
        let answer = try JSONParser.parse(Array(#"{"devices":[{"deviceId":"1","type":"Solar Inverters","isActive":true},{"deviceId":"2","type":"Solar Inverters","isActive":false},{"deviceId":"3","type":"Meteo Station"},{"deviceId":"4"}]}"#.utf8))
        #expect(SMA.inverters(in: answer) == ["1", "4"])
    }

    @Test(arguments: [
        ("/sma/v1/plants/9900001/devices", "9900001"), ("https://h/v1/plants/ab-C_9?x=1", "ab-C_9"), ("/v1/plants/../devices", nil),
        ("/v1/plants/%2e%2e/devices", nil), ("/v1/plants/", nil), ("/v1/devices/1", nil),
        ("/v1/plants/" + String(repeating: "9", count: 65), nil),
    ])
    func movedPlantIDsAreIDsOnly(location: String, id: String?) {
        #expect(SMA.movedPlant(location: location) == id)
    }
}

@Suite struct VendorRequestTests {
    let zones = ZoneDatabase(directory: "/usr/share/zoneinfo")

    @Test func solarEdgeCallsUseSiteLocalDatesAndWeeksForSensors() throws {
        let berlin = try zones.rules("Europe/Berlin")
        // 2026-06-14T22:30Z is 00:30 local on the 15th; the window ends 2026-06-16T21:59:59 local.
        let calls = SolarEdge.calls(site: "3017452", start: 1_781_476_200, end: 1_781_647_200, zone: berlin)
        #expect(calls.map(\.path) == [
            "site/3017452/energy?timeUnit=QUARTER_OF_AN_HOUR&startDate=2026-06-15&endDate=2026-06-16",
            "site/3017452/power?startTime=2026-06-15%2000:30:00&endTime=2026-06-16%2023:59:59",
            "site/3017452/sensors?startDate=2026-06-15%2000:30:00&endDate=2026-06-16%2023:59:59",
        ])
        let month = SolarEdge.calls(site: "1", start: 0, end: SolarEdge.maximumWindow, zone: .utc)
        #expect(month.filter { $0.name == "sensors" }.count == 4)
        #expect(SolarEdge.calls(site: "a b/c", start: 0, end: 900, zone: .utc)[0].path.hasPrefix("site/a%20b%2Fc/energy"))
    }

    @Test func solarEdgeSiteListsInBothShapes() throws {
        let live = try JSONParser.parse(Array(#"{"sites":{"count":2,"site":[{"id":1,"name":"A","location":{"timeZone":"Europe/Berlin"}},{"id":2}]}}"#.utf8))
        #expect(SolarEdge.sites(in: live)?.total == 2)
        #expect(SolarEdge.sites(in: live)?.sites == [DiscoveredSite(externalSiteID: "1", name: "A", timeZone: "Europe/Berlin"),
                                                     DiscoveredSite(externalSiteID: "2", name: nil, timeZone: nil)])
        let pdf = try JSONParser.parse(Array(#"{"Sites":{"count":1,"list":[{"id":9}]}}"#.utf8))
        #expect(SolarEdge.sites(in: pdf)?.sites.map(\.externalSiteID) == ["9"])
        #expect(SolarEdge.sites(in: .object([])) == nil)
    }

    @Test func goodWeOutcomes() throws {
        func outcome(_ text: String) throws -> GoodWe.Outcome { GoodWe.outcome(of: try JSONParser.parse(Array(text.utf8))) }
        #expect(try outcome(#"{"hasError":false,"code":0,"data":{"a":1}}"#) == .success(.object([JSONMember("a", .number("1"))])))
        #expect(try outcome(#"{"hasError":false,"code":"0","data":null}"#) == .success(.null))
        #expect(try outcome(#"{"hasError":true,"code":100001,"msg":"No access"}"#) == .loginNeeded(code: "100001"))
        #expect(try outcome(#"{"hasError":true,"code":"100002"}"#) == .loginNeeded(code: "100002"))
        #expect(try outcome(#"{"code":"GY0429","msg":"Too many requests"}"#) == .rateLimited(message: "Too many requests"))
        #expect(try outcome(#"{"hasError":true,"code":100005,"msg":"Email or password error."}"#) == .failed(code: "100005", message: "Email or password error."))
        let login = try JSONParser.parse(Array(#"{"hasError":false,"code":0,"data":{"uid":"u","token":"t"},"api":"https://eu.semsportal.com/api/"}"#.utf8))
        #expect(GoodWe.session(fromLogin: login)?.api == "https://eu.semsportal.com/api/")
        #expect(GoodWe.session(fromLogin: login)?.token == #"{"uid":"u","token":"t"}"#)
        let noRegion = try JSONParser.parse(Array(#"{"hasError":false,"code":0,"data":{"token":"t"},"api":""}"#.utf8))
        #expect(GoodWe.session(fromLogin: noRegion)?.api == nil)
    }

    @Test func goodWeDatesCoverTheWindowInLocalDays() throws {
        let sydney = try zones.rules("Australia/Sydney")
        // 2024-06-14T14:00Z is midnight of the 15th in Sydney.
        #expect(GoodWe.dates(start: 1_718_373_600, end: 1_718_373_600 + 86_400, zone: sydney) == ["2024-06-15"])
        #expect(GoodWe.dates(start: 1_718_373_600 - 300, end: 1_718_373_600 + 300, zone: sydney) == ["2024-06-14", "2024-06-15"])
    }

    /// A month's budget shared by its days left (today included), less what today used.
    @Test(arguments: [
        ("2026-06-01T10:00:00Z", 1000, 0, 0, 33), ("2026-06-30T10:00:00Z", 1000, 900, 0, 100), ("2026-06-30T10:00:00Z", 1000, 900, 40, 60),
        ("2026-12-31T23:59:00Z", 310, 0, 5, 305), ("2026-06-16T00:00:00Z", 1000, 500, 0, 33), ("2026-06-16T00:00:00Z", 100, 200, 0, 0),
    ])
    func monthlyAllowance(now: String, limit: Int, usedBeforeToday: Int, usedToday: Int, allowance: Int) {
        guard case .zoned(let seconds) = ISO8601.parse(now) else { return }
        #expect(QuotaPlan.monthlyAllowance(limit: limit, usedBeforeToday: usedBeforeToday, usedToday: usedToday, now: seconds) == allowance)
    }

    /// When Enphase's 429 lets calls resume: the period's end (within the hour), the next month, or a minute.
    @Test func enphaseRetryAfter() throws {
        let now = Int64(1_781_524_800)  // 2026-06-15T12:00Z
        func answer(_ text: String) throws -> JSONValue { try JSONParser.parse(Array(text.utf8)) }
        #expect(Enphase.retryAfter(try answer(#"{"period":"minute","period_end":\#(now + 40)}"#), now: now) == now + 40)
        #expect(Enphase.retryAfter(try answer(#"{"period":"minute","period_end":\#(now + 7200)}"#), now: now) == now + 60)
        #expect(Enphase.retryAfter(try answer(#"{"period":"month"}"#), now: now) == 1_782_864_000)  // 2026-07-01T00:00Z
        #expect(Enphase.retryAfter(nil, now: now) == now + 60)
    }

    /// The quota a run may use keeps three calls for each full hour left in the UTC day.
    @Test(arguments: [
        ("2026-06-15T00:00:00Z", 0, 290 - 23 * 3), ("2026-06-15T23:10:00Z", 0, 290), ("2026-06-15T12:30:00Z", 100, 290 - 100 - 11 * 3),
        ("2026-06-15T12:30:00Z", 280, 0),
    ])
    func quotaPlan(now: String, used: Int, allowance: Int) {
        guard case .zoned(let seconds) = ISO8601.parse(now) else { return }
        #expect(QuotaPlan.allowance(limit: 300, used: used, now: seconds, perRun: 3) == allowance)
    }

    @Test func windowKeysAreSafeAndTrusted() throws {
        let fetched = Int64(1_781_526_896_789)  // 2026-06-15T12:34:56.789Z
        #expect(FetchedWindowKey.key(source: .solarEdge, organizationID: 42, siteID: "3017452", fetchedAt: fetched, sequence: 1)
            == "raw/solaredge/42/2026-06-15/site_3017452_123456.json")
        #expect(FetchedWindowKey.key(source: .goodWe, organizationID: 7, siteID: "../x y", fetchedAt: fetched, sequence: 2)
            == "raw/goodwe/7/2026-06-15/site__._x_y_123456_2.json")  // (no leading dot)
        for id in ["../../etc", "a/b", "\u{0}", "é", String(repeating: "9", count: 300)] {
            let key = FetchedWindowKey.key(source: .goodWe, organizationID: 7, siteID: id, fetchedAt: fetched, sequence: 1)
            #expect(throws: Never.self) { try LakeKey(key) }
        }
    }

    @Test func windowsSplitAtTheMaximum() {
        #expect(windows(from: 0, to: 10, maximum: 4).map { [$0.start, $0.end] } == [[0, 4], [4, 8], [8, 10]])
        #expect(windows(from: 5, to: 5, maximum: 4).isEmpty)
    }
}

/// Envelopes kept from real fetcher runs (Tests/Fixtures/vendors): what the lake holds today must
/// read the same way tomorrow (a transform change that breaks replay fails here).
@Suite struct KeptEnvelopeTests {
    let zones = ZoneDatabase(directory: "/usr/share/zoneinfo")

    func read(_ name: String, source: SourceSystem) throws -> [MeterReading] {
        let reader = try ReadingFileReader(
            path: Fixture.path("vendors/" + name), name: name, sourceSystem: source, organizationID: 42,
            transforms: VendorCatalog.transforms(zones: zones), now: 1_900_000_000, ingestedAt: 0)
        var readings: [MeterReading] = []
        while let batch = try reader.nextBatch() {
            #expect(batch.violations.isEmpty)
            readings += batch.readings
        }
        return readings
    }

    @Test func solarEdgeFallBackMorning() throws {
        let readings = try read("solaredge-fall-back.json", source: .solarEdge)
        // 00:00–02:00 UTC is local 02:00–02:45 (daylight) then 02:00–02:45 (standard) again.
        #expect(readings.map(\.timestamp) == Array(stride(from: Int64(1_792_886_400), to: 1_792_893_600, by: 900)))
        #expect(readings.allSatisfy { $0.externalSiteID == "3017452" && $0.readingIntervalSeconds == 900 })
        // Night in Berlin: the fake reports nothing, so every slot is there and missing.
        #expect(readings.allSatisfy { $0.quality == .missing && $0.energyWh == nil })
    }

    @Test func goodWeFallBackMorning() throws {
        let readings = try read("goodwe-fall-back.json", source: .goodWe)
        #expect(readings.map(\.timestamp) == Array(stride(from: Int64(1_792_886_400), to: 1_792_893_600, by: 300)))
        // Night: the curve says 0 W, measured as an estimate of 0 Wh.
        #expect(readings.allSatisfy { $0.quality == .estimated && $0.powerW == 0 && $0.energyWh == 0 })
        #expect(readings.first?.otherMetricsJSON.contains(#""local_date":"2026-10-25""#) == true)
    }

    @Test func enphaseMorning() throws {
        let readings = try read("enphase-morning.json", source: .enphase)
        let site = readings.filter { $0.externalDeviceID == "site" }
        let meter = readings.filter { $0.externalDeviceID == "meter" }
        // 2026-06-14T22:00Z–06-15T00:00Z: 24 five-minute slots and 8 meter quarter hours, all daytime in Sydney.
        #expect(site.map(\.timestamp) == Array(stride(from: Int64(1_781_474_400), to: 1_781_481_600, by: 300)))
        #expect(site.allSatisfy { $0.energyWh == Double(5 + (($0.timestamp + 300) / 300) % 30) && $0.quality == .measured })
        #expect(meter.map(\.timestamp) == Array(stride(from: Int64(1_781_474_400), to: 1_781_481_600, by: 900)))
        #expect(meter.allSatisfy { $0.energyWh == 20.5 + Double((($0.timestamp + 900) / 900) % 40) })
    }

    @Test func smaFallBackMorning() throws {
        let readings = try read("sma-fall-back.json", source: .sma)
        // 06:00–08:00 UTC is 07:00–09:00 CET: every slot measured, each value one interval before its label.
        #expect(readings.map(\.timestamp) == Array(stride(from: Int64(1_792_908_000), to: 1_792_915_200, by: 300)))
        #expect(readings.allSatisfy { $0.externalDeviceID == "8731051" && $0.energyWh == Double(3 + ($0.timestamp / 300) % 20) })
        #expect(readings.allSatisfy { $0.powerW == $0.energyWh.map { $0 * 12 } })
    }
}
