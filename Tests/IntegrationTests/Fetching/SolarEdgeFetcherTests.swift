import Core
import Foundation
import Store
import Testing
import TestSupport

/// The SolarEdge fetcher end to end: built binary → fake SolarEdge → moto → validator → rows.
@Suite struct SolarEdgeFetcherTests {
    static let account = #"{"api_key": "se-account-key-0123456789"}"#
    static var sites: [String: Any] { [
        "3017452": ["name": "Scheune", "timeZone": "Europe/Berlin", "sensors": true],
        "3017453": ["name": "Weingut", "timeZone": "Europe/Berlin", "sensors": false],
    ] }
    static var config: [String: Any] { [
        "solaredge": ["keys": ["se-account-key-0123456789": ["kind": "account", "sites": ["3017452", "3017453"]]], "sites": sites],
    ] }

    /// A Berlin local day as one backfill: every quarter hour is a row, each value the fake's for
    /// that exact UTC instant (an hour off anywhere would change it), DST days included.
    @Test(arguments: [
        ("2026-06-14T22:00:00Z", "2026-06-15T22:00:00Z", 96),  // a normal summer day
        ("2026-03-28T23:00:00Z", "2026-03-29T22:00:00Z", 92),  // spring forward: 02:00–02:45 do not exist
        ("2026-10-24T22:00:00Z", "2026-10-25T23:00:00Z", 100),  // fall back: 02:00–02:45 twice
    ])
    func aLocalDayIsExactRows(start: String, end: String, slots: Int) throws {
        let harness = try FetcherHarness(vendorConfig: Self.config)
        let credential = try harness.addCredential(.solarEdge, Self.account)
        try harness.addSite(.solarEdge, "3017452", zone: "Europe/Berlin", credential: credential)

        let sites = try harness.backfill(.solarEdge, site: "3017452", start, end)
        try #require(sites.count == 1)
        #expect(sites[0]["status"] as? String == "success")
        let objects = try #require(sites[0]["objects"] as? [String])
        #expect(objects.count == 1)
        #expect(objects[0].hasPrefix("raw/solaredge/42/\(Timestamp.day(epochSeconds: Int64(Date().timeIntervalSince1970)))/site_3017452_"))

        let files = try harness.validate(objects)
        #expect(files.map(\.status) == [.validated], "\(files.map { $0.reason ?? "" })")
        let readings = try harness.readings(site: "3017452")
        let (from, to) = (Oracle.instant(start), Oracle.instant(end))
        #expect(readings.count == slots)
        #expect(Set(readings.keys) == Set(stride(from: from, to: to, by: 900)))
        var measured = 0
        for (t, reading) in readings {
            let expected = Oracle.solarEdgeEnergy(t, zone: "Europe/Berlin")
            #expect(reading.energy == expected, "energy at \(t)")
            #expect(reading.power == expected.map { $0 * 4 }, "power at \(t)")
            #expect(reading.quality == (expected == nil ? "missing" : "measured"))
            #expect(reading.interval == 900)
            if expected != nil {
                measured += 1
                #expect(reading.other == #"{"measured_by": "INVERTER"}"#)
            }
        }
        #expect(measured > 50)
        // The gateway's sensors: rows of their own, irradiance and temperature in their columns.
        let sensors = try harness.readings(site: "3017452", device: "sensors:Gateway 1")
        #expect(sensors.count == measured)
        for (t, reading) in sensors {
            #expect(reading.irradiance == Double(100 + (t / 900) % 7) && reading.temperature == 20.5)
            #expect(reading.other.contains(#""module_temperature_c": 31"#) && reading.other.contains(#""wind_speed_ms": 2.5"#))
        }
        // The lake keeps exactly what the vendor said, with the request (no key) beside it.
        let raw = try harness.store.list(prefix: "validated/").map(\.key)
        #expect(raw.count == 1)
        try harness.expectNoSecret(["se-account-key-0123456789"])
    }

    /// A scheduled run discovers the account's sites with their zones; a site that failed keeps
    /// its cursor and the next run closes its gap; late data within the overlap replaces missing rows.
    @Test func discoveryThenAGapClosedByTheNextRun() throws {
        let zone = Oracle.daytimeZone()
        var config = Self.config
        config["solaredge"] = ["keys": ["se-account-key-0123456789": ["kind": "account", "sites": ["3017452", "3017453"]]],
                               "sites": ["3017452": ["name": "A", "timeZone": zone, "sensors": false],
                                         "3017453": ["name": "B", "timeZone": zone, "sensors": false]]]
        let harness = try FetcherHarness(vendorConfig: config)
        harness.settings["METERLAKE_FETCH_RETRIES"] = "2"
        let credential = try harness.addCredential(.solarEdge, Self.account)

        // Site B's energy fails on every try of the first run; one recent slot of A is late.
        let now = Int64(Date().timeIntervalSince1970)
        let late = now / 900 * 900 - 1800
        try harness.vendors.control(["faults": [["path": "/site/3017453/energy", "status": 503, "times": 2]],
                                     "solaredge": ["gaps": [late]]])
        let first = try harness.scheduled(.solarEdge)
        let byID = Dictionary(uniqueKeysWithValues: first.map { ($0["external_site_id"] as! String, $0) })
        #expect(byID["3017452"]?["status"] as? String == "success")
        #expect(byID["3017453"]?["status"] as? String == "error")
        #expect((byID["3017453"]?["error"] as? String)?.contains("HTTP 503") == true)
        let discovered = try harness.integrations.sites(credentialID: credential)
        #expect(discovered.map(\.externalSiteID).sorted() == ["3017452", "3017453"])
        #expect(discovered.allSatisfy { $0.timeZone == zone && $0.isActive })
        let b = try #require(discovered.first { $0.externalSiteID == "3017453" })
        #expect(b.cursor == nil)
        _ = try harness.validate(try harness.rawKeys())
        #expect(try harness.readings(site: "3017452")[late]?.quality == "missing")
        #expect(try harness.readings(site: "3017453").isEmpty)

        // The next run: B from local midnight of yesterday (its cursor never moved), A's late slot filled.
        try harness.vendors.control(["solaredge": ["gaps": []]])
        let second = try harness.scheduled(.solarEdge)
        #expect(second.map { $0["status"] as? String } == ["success", "success"])
        // B, never synced, comes first (oldest cursor first).
        #expect(second.first?["external_site_id"] as? String == "3017453")
        _ = try harness.validate(try harness.rawKeys())
        let a = try harness.readings(site: "3017452")
        #expect(a[late]?.quality == "measured" && a[late]?.energy == Oracle.solarEdgeEnergy(late, zone: zone))
        let readingsB = try harness.readings(site: "3017453")
        let window = try #require(second.first?["window"] as? [String: String])
        let expected = Set(stride(from: Oracle.instant(window["start"]!), to: Oracle.instant(window["end"]!), by: 900))
        #expect(Set(readingsB.keys) == expected)
        #expect(readingsB.values.filter { $0.quality == "measured" }.count > 4)
        let cursor = try #require(try harness.integrations.sites(credentialID: credential).first { $0.externalSiteID == "3017453" }?.cursor)
        #expect(cursor == Oracle.instant(window["end"]!))
        try harness.expectNoSecret(["se-account-key-0123456789"])
    }

    /// A backfill longer than SolarEdge's one-month limit is split into windows the fake accepts
    /// (it answers 403 to a longer one), one object each, every quarter hour present.
    @Test func aLongBackfillIsSplitIntoWindowsTheVendorAccepts() throws {
        let harness = try FetcherHarness(vendorConfig: Self.config)
        let credential = try harness.addCredential(.solarEdge, Self.account)
        try harness.addSite(.solarEdge, "3017453", zone: "Europe/Berlin", credential: credential)
        let sites = try harness.backfill(.solarEdge, site: "3017453", "2026-01-31T23:00:00Z", "2026-03-12T23:00:00Z")
        #expect(sites.first?["status"] as? String == "success", "\(sites)")
        let objects = sites.first?["objects"] as? [String] ?? []
        #expect(objects.count == 2)
        #expect(objects.last?.hasSuffix("_2.json") == true)
        let energyCalls = try harness.vendors.requests().filter { $0.hasSuffix("/energy") }
        #expect(energyCalls.count == 2)
        #expect(try harness.validate(objects).map(\.status) == [.validated, .validated])
        let readings = try harness.readings(site: "3017453")
        #expect(readings.count == 40 * 96)
        #expect(readings.allSatisfy { $0.value.energy == Oracle.solarEdgeEnergy($0.key, zone: "Europe/Berlin") })
        // A backfill leaves the cursor alone.
        #expect(try harness.integrations.sites(credentialID: credential).first?.cursor == nil)
    }

    /// A re-fetched window where the vendor now says nothing keeps what it said before: a
    /// `missing` row replaces only a `missing` row.
    @Test func aMissingSlotNeverErasesData() throws {
        let harness = try FetcherHarness(vendorConfig: Self.config)
        let credential = try harness.addCredential(.solarEdge, Self.account)
        try harness.addSite(.solarEdge, "3017453", zone: "Europe/Berlin", credential: credential)
        let noon = Oracle.instant("2026-06-15T10:00:00Z")
        let first = try harness.backfill(.solarEdge, site: "3017453", "2026-06-15T09:00:00Z", "2026-06-15T11:00:00Z")
        _ = try harness.validate(first.first?["objects"] as? [String] ?? [])
        try harness.vendors.control(["solaredge": ["gaps": [noon, noon + 900]]])
        let second = try harness.backfill(.solarEdge, site: "3017453", "2026-06-15T09:00:00Z", "2026-06-15T11:00:00Z")
        #expect(try harness.validate(second.first?["objects"] as? [String] ?? []).map(\.status) == [.validated])
        let readings = try harness.readings(site: "3017453")
        #expect(readings.count == 8)
        #expect(readings[noon]?.quality == "measured" && readings[noon]?.energy == Oracle.solarEdgeEnergy(noon, zone: "Europe/Berlin"))
        #expect(readings[noon + 900]?.quality == "measured")
    }

    /// A 429 mid-run: the key is paused until the next UTC day, the rest of its sites are
    /// `rate_limited` without a call, and the next run makes no call at all. (One site at a time
    /// here, so which calls happen is exact; with several workers, one in flight may finish.)
    @Test func aQuotaHitMidRunPausesTheKey() throws {
        let harness = try FetcherHarness(vendorConfig: Self.config)
        harness.settings["METERLAKE_FETCH_CONCURRENCY"] = "1"
        let credential = try harness.addCredential(.solarEdge, Self.account)
        try harness.addSite(.solarEdge, "3017452", zone: "Europe/Berlin", credential: credential)
        try harness.addSite(.solarEdge, "3017453", zone: "Europe/Berlin", credential: credential)
        try harness.vendors.control(["faults": [["path": "/site/3017452/power", "status": 429, "times": 1]]])
        let first = try harness.scheduled(.solarEdge)
        #expect(Set(first.map { $0["status"] as! String }) == ["rate_limited"])
        #expect(first.allSatisfy { $0["objects"] as? [String] == [] })
        let calls = try harness.vendors.requests().filter { $0.contains("/site/") }
        #expect(calls == ["GET /solaredge/site/3017452/energy", "GET /solaredge/site/3017452/power"])
        let stored = try #require(try harness.integrations.credential(id: credential))
        let midnight = (Int64(Date().timeIntervalSince1970) / 86_400 + 1) * 86_400
        #expect(stored.rateLimitedUntil == midnight)

        try harness.vendors.control(["reset_stats": true])
        let second = try harness.scheduled(.solarEdge)
        #expect(second.map { $0["status"] as? String } == ["rate_limited", "rate_limited"])
        #expect(try harness.vendors.requests().isEmpty)
        #expect(try harness.rawKeys().isEmpty)
    }

    /// The day's quota is planned: a site that used most of it is left for later hourly runs.
    @Test func theDailyQuotaIsPlanned() throws {
        let harness = try FetcherHarness(vendorConfig: Self.config)
        let credential = try harness.addCredential(.solarEdge, Self.account)
        try harness.addSite(.solarEdge, "3017452", zone: "Europe/Berlin", credential: credential)
        try harness.addSite(.solarEdge, "3017453", zone: "Europe/Berlin", credential: credential)
        let today = Timestamp.day(epochSeconds: Int64(Date().timeIntervalSince1970))
        try harness.integrations.countCalls(credentialID: credential, scope: "site:3017453", day: today, count: 289)
        let sites = try harness.scheduled(.solarEdge)
        let byID = Dictionary(uniqueKeysWithValues: sites.map { ($0["external_site_id"] as! String, $0) })
        #expect(byID["3017452"]?["status"] as? String == "success")
        #expect(byID["3017453"]?["status"] as? String == "rate_limited")
        #expect((byID["3017453"]?["error"] as? String)?.contains("quota plan") == true)
        #expect(try harness.vendors.requests().filter { $0.contains("3017453") }.isEmpty)
        #expect(try harness.integrations.calls(credentialID: credential, scope: "site:3017452", day: today) == 3)
    }

    /// 5xx answers and a dropped connection are retried with backoff; every attempt counts
    /// against the quota.
    @Test func aFlakyVendorIsRetried() throws {
        let harness = try FetcherHarness(vendorConfig: Self.config)
        let credential = try harness.addCredential(.solarEdge, Self.account)
        try harness.addSite(.solarEdge, "3017453", zone: "Europe/Berlin", credential: credential)
        try harness.vendors.control(["faults": [
            ["path": "/site/3017453/energy", "status": 500, "times": 1],
            ["path": "/site/3017453/energy", "status": 502, "times": 1],
            ["path": "/site/3017453/power", "drop": true, "times": 1],
        ]])
        let sites = try harness.backfill(.solarEdge, site: "3017453", "2026-06-14T22:00:00Z", "2026-06-15T22:00:00Z")
        #expect(sites.first?["status"] as? String == "success")
        let today = Timestamp.day(epochSeconds: Int64(Date().timeIntervalSince1970))
        #expect(try harness.integrations.calls(credentialID: credential, scope: "site:3017453", day: today) == 6)
        #expect(harness.output.contains(#""Retries":3"#))
        let files = try harness.validate(sites.first?["objects"] as? [String] ?? [])
        #expect(files.first?.rowsLoaded == 96)
    }

    /// A short deadline: work stops being started, the sites left are `skipped` with their
    /// cursors untouched, and the longest unsynced went first. Three sites are fetched at once,
    /// never more (SolarEdge allows three concurrent calls).
    @Test func aRunMeetsItsDeadline() throws {
        var sites: [String: Any] = [:]
        let ids = (1...9).map { "50000\($0)" }
        for id in ids { sites[id] = ["name": id, "timeZone": "Europe/Berlin", "sensors": false] }
        let harness = try FetcherHarness(vendorConfig: [
            "solaredge": ["keys": ["se-site-key-ABCDEFGHIJ": ["kind": "site", "sites": ids]], "sites": sites], "latency_ms": 1500,
        ])
        harness.settings["METERLAKE_FETCH_MIN_TIME_LEFT_SECONDS"] = "5"
        let credential = try harness.addCredential(.solarEdge, #"{"api_key": "se-site-key-ABCDEFGHIJ"}"#)
        let now = Int64(Date().timeIntervalSince1970) / 900 * 900
        for (index, id) in ids.enumerated() {
            let site = try harness.addSite(.solarEdge, id, zone: "Europe/Berlin", credential: credential)
            // Older cursors for the first sites: they must be fetched first.
            try harness.integrations.recordSync(siteID: site, status: .success, error: nil, cursor: now - Int64(9 - index) * 3600)
        }
        let outcome = try harness.scheduled(.solarEdge, secondsLeft: 9)
        let statuses = outcome.map { $0["status"] as! String }
        #expect(statuses.contains("success") && statuses.contains("skipped"), "\(statuses)")
        #expect(statuses.firstIndex(of: "skipped")! > statuses.lastIndex(of: "success")!)
        #expect(outcome.map { $0["external_site_id"] as! String } == ids)
        for site in try harness.integrations.sites(credentialID: credential) {
            let index = ids.firstIndex(of: site.externalSiteID)!
            if statuses[index] == "skipped" { #expect(site.cursor == now - Int64(9 - index) * 3600) }
        }
        #expect(outcome.first { $0["status"] as? String == "skipped" }?["error"] as? String
            == "the invocation's deadline was near; the next run continues")
        // A site key cannot list sites: that is no error.
        #expect(!statuses.contains("error"))
        #expect(try harness.vendors.stats()["max_concurrency"] as? Int == 3)
    }

    /// A 403 for one site (no access to it) fails that site only; a site whose sensors are
    /// refused keeps its energy and power.
    @Test func oneSiteWithoutAccessDoesNotStopTheOthers() throws {
        let harness = try FetcherHarness(vendorConfig: Self.config)
        let credential = try harness.addCredential(.solarEdge, Self.account)
        try harness.addSite(.solarEdge, "3017452", zone: "Europe/Berlin", credential: credential)
        try harness.addSite(.solarEdge, "3017453", zone: "Europe/Berlin", credential: credential)
        try harness.vendors.control(["faults": [["path": "/site/3017452/energy", "status": 403, "times": 1],
                                                ["path": "/site/3017453/sensors", "status": 403, "times": 1]]])
        let sites = try harness.scheduled(.solarEdge)
        let byID = Dictionary(uniqueKeysWithValues: sites.map { ($0["external_site_id"] as! String, $0) })
        #expect(byID["3017452"]?["status"] as? String == "error")
        #expect((byID["3017452"]?["error"] as? String)?.hasPrefix("SolarEdge energy: HTTP 403") == true)
        #expect(byID["3017453"]?["status"] as? String == "success")
        let files = try harness.validate(byID["3017453"]?["objects"] as? [String] ?? [])
        #expect(files.map(\.status) == [.validated])
        #expect(try harness.readings(site: "3017453").values.contains { $0.quality == "measured" })
        #expect(try harness.integrations.credential(id: credential)?.rateLimitedUntil == nil)
    }

    /// The cursor moves only when a scheduled window lands: a never-synced site starts at local
    /// midnight of yesterday, a backfill leaves the cursor alone, a failed run keeps it, and the
    /// next run starts an overlap before it.
    @Test func theCursorMovesOnlyWhenAScheduledWindowLands() throws {
        let harness = try FetcherHarness(vendorConfig: Self.config)
        harness.settings["METERLAKE_FETCH_RETRIES"] = "1"
        let credential = try harness.addCredential(.solarEdge, Self.account)
        try harness.addSite(.solarEdge, "3017453", zone: "Europe/Berlin", credential: credential)
        func cursor() throws -> Int64? { try harness.integrations.sites(credentialID: credential).first?.cursor }

        let first = try harness.scheduled(.solarEdge)
        let window = try #require(first.first?["window"] as? [String: String])
        #expect(Oracle.instant(window["start"]!) == Oracle.startOfLocalDay(Int64(Date().timeIntervalSince1970) - 86_400, zone: "Europe/Berlin"))
        let landed = try #require(try cursor())
        #expect(landed == Oracle.instant(window["end"]!))

        _ = try harness.backfill(.solarEdge, site: "3017453", "2026-06-14T22:00:00Z", "2026-06-15T22:00:00Z")
        #expect(try cursor() == landed)

        try harness.vendors.control(["faults": [["path": "/site/3017453/energy", "status": 503, "times": 1]]])
        #expect(try harness.scheduled(.solarEdge).first?["status"] as? String == "error")
        #expect(try cursor() == landed)

        let next = try harness.scheduled(.solarEdge)
        #expect(next.first?["status"] as? String == "success")
        #expect((next.first?["window"] as? [String: String]).map { Oracle.instant($0["start"]!) } == landed - 3600)
    }

    /// With three workers, a 429 seen by one stops the others before their next call.
    @Test func aRateLimitStopsTheOtherWorkersBeforeTheirNextCall() throws {
        let ids = ["3017452", "3017453", "3017454"]
        var sites: [String: Any] = [:]
        for id in ids { sites[id] = ["name": id, "timeZone": "Europe/Berlin", "sensors": true] }
        let harness = try FetcherHarness(vendorConfig: [
            "solaredge": ["keys": ["se-account-key-0123456789": ["kind": "account", "sites": ids]], "sites": sites], "latency_ms": 500,
        ])
        let credential = try harness.addCredential(.solarEdge, Self.account)
        for id in ids { try harness.addSite(.solarEdge, id, zone: "Europe/Berlin", credential: credential) }
        try harness.vendors.control(["faults": [["path": "/site/3017452/energy", "status": 429, "times": 1]]])
        let outcome = try harness.scheduled(.solarEdge)
        #expect(outcome.map { $0["status"] as? String } == ["rate_limited", "rate_limited", "rate_limited"])
        let calls = try harness.vendors.requests().filter { $0.contains("/site/") }
        #expect(!calls.contains { $0.hasSuffix("/power") || $0.hasSuffix("/sensors") }, "\(calls)")
        #expect(try harness.rawKeys().isEmpty)
    }

    /// A site another run holds (its lease has not expired) is skipped without a call.
    @Test func aLeasedSiteIsLeftToTheRunHoldingIt() throws {
        let harness = try FetcherHarness(vendorConfig: Self.config)
        let credential = try harness.addCredential(.solarEdge, Self.account)
        let site = try harness.addSite(.solarEdge, "3017453", zone: "Europe/Berlin", credential: credential)
        try harness.database.connect().query("UPDATE integration_site SET lease_until = now() + interval '10 minutes' WHERE id = $1", [String(site)])
        let outcome = try harness.scheduled(.solarEdge).first { $0["external_site_id"] as? String == "3017453" }
        #expect(outcome?["status"] as? String == "skipped")
        #expect(outcome?["error"] as? String == "another run is fetching this site")
        let calls = try harness.vendors.requests().filter { $0.contains("/site/3017453/") }
        #expect(calls.isEmpty, "\(calls)")
        // An expired lease is no obstacle.
        try harness.database.connect().query("UPDATE integration_site SET lease_until = now() - interval '1 second' WHERE id = $1", [String(site)])
        #expect(try harness.scheduled(.solarEdge).allSatisfy { $0["status"] as? String == "success" })
        #expect(try harness.database.connect().query("SELECT lease_until FROM integration_site WHERE id = $1", [String(site)])[0, "lease_until"] == nil)
    }

    /// The quota plan at its edge: exactly a window's calls left (after the reserve for the day's
    /// later hourly runs) is fetched; one fewer is left for later.
    @Test func theQuotaPlanIsExactAtItsEdge() throws {
        let harness = try FetcherHarness(vendorConfig: Self.config)
        let credential = try harness.addCredential(.solarEdge, Self.account)
        try harness.addSite(.solarEdge, "3017452", zone: "Europe/Berlin", credential: credential)
        try harness.addSite(.solarEdge, "3017453", zone: "Europe/Berlin", credential: credential)
        let now = Int64(Date().timeIntervalSince1970)
        let laterRuns = Int((86_400 - now % 86_400 - 1) / 3600)
        let today = Timestamp.day(epochSeconds: now)
        try harness.integrations.countCalls(credentialID: credential, scope: "site:3017452", day: today, count: 290 - laterRuns * 3 - 3)
        try harness.integrations.countCalls(credentialID: credential, scope: "site:3017453", day: today, count: 290 - laterRuns * 3 - 2)
        let outcome = try harness.scheduled(.solarEdge)
        let byID = Dictionary(uniqueKeysWithValues: outcome.map { ($0["external_site_id"] as! String, $0["status"] as! String) })
        #expect(byID == ["3017452": "success", "3017453": "rate_limited"])
        #expect(try harness.vendors.requests().filter { $0.contains("3017453") }.isEmpty)
    }

    /// A backfill whose second window fails is `partial`: the first window's object stays.
    @Test func aSecondWindowFailingLeavesAPartialSync() throws {
        let harness = try FetcherHarness(vendorConfig: Self.config)
        harness.settings["METERLAKE_FETCH_RETRIES"] = "1"
        let credential = try harness.addCredential(.solarEdge, Self.account)
        try harness.addSite(.solarEdge, "3017453", zone: "Europe/Berlin", credential: credential)
        try harness.vendors.control(["faults": [["path": "/site/3017453/energy", "status": 503, "times": 1, "after": 1]]])
        let outcome = try harness.backfill(.solarEdge, site: "3017453", "2026-01-31T23:00:00Z", "2026-03-12T23:00:00Z")
        #expect(outcome.first?["status"] as? String == "partial")
        #expect((outcome.first?["objects"] as? [String])?.count == 1)
        #expect((outcome.first?["error"] as? String)?.contains("HTTP 503") == true)
    }

    /// A vendor error body that echoes the key is redacted whole before it is cut: no part of the
    /// key survives, even where the cut would have split it.
    @Test func anEchoedKeyIsRedactedBeforeTheBodyIsCut() throws {
        let harness = try FetcherHarness(vendorConfig: Self.config)
        harness.settings["METERLAKE_FETCH_RETRIES"] = "1"
        let credential = try harness.addCredential(.solarEdge, Self.account)
        try harness.addSite(.solarEdge, "3017453", zone: "Europe/Berlin", credential: credential)
        let body = String(repeating: "x", count: 190) + "{api_key}" + String(repeating: "y", count: 30)
        try harness.vendors.control(["faults": [["path": "/site/3017453/energy", "status": 500, "times": 1, "body": body]]])
        let outcome = try harness.scheduled(.solarEdge)
        let error = try #require(outcome.first?["error"] as? String)
        #expect(error.contains("xxx***") && !error.contains("se-acc"))
        try harness.expectNoSecret(["se-account-key-0123456789", "se-account"])
    }

    /// Discovery keeps to its daily budget of account calls and stays clear of the deadline; the
    /// registered sites are fetched either way.
    @Test func discoveryKeepsItsBudgetAndItsMargin() throws {
        let harness = try FetcherHarness(vendorConfig: Self.config)
        let credential = try harness.addCredential(.solarEdge, Self.account)
        try harness.addSite(.solarEdge, "3017453", zone: "Europe/Berlin", credential: credential)
        let today = Timestamp.day(epochSeconds: Int64(Date().timeIntervalSince1970))
        try harness.integrations.countCalls(credentialID: credential, scope: "account", day: today, count: 100)
        #expect(try harness.scheduled(.solarEdge).first?["status"] as? String == "success")
        #expect(try harness.vendors.requests().filter { $0.contains("sites/list") }.isEmpty)

        let fresh = try FetcherHarness(vendorConfig: Self.config)
        fresh.settings["METERLAKE_FETCH_MIN_TIME_LEFT_SECONDS"] = "1"
        let other = try fresh.addCredential(.solarEdge, Self.account)
        try fresh.addSite(.solarEdge, "3017453", zone: "Europe/Berlin", credential: other)
        #expect(try fresh.scheduled(.solarEdge, secondsLeft: 25).first?["status"] as? String == "success")
        #expect(try fresh.vendors.requests().filter { $0.contains("sites/list") }.isEmpty)
    }

    /// A wrong key is refused: every site of it fails with a clear message and no secret.
    @Test func aWrongKeyIsAClearErrorWithoutTheKey() throws {
        let harness = try FetcherHarness(vendorConfig: Self.config)
        let credential = try harness.addCredential(.solarEdge, #"{"api_key": "wrong-key-XYZ123456"}"#)
        try harness.addSite(.solarEdge, "3017452", zone: "Europe/Berlin", credential: credential)
        let sites = try harness.scheduled(.solarEdge)
        #expect(sites.first?["status"] as? String == "error")
        #expect((sites.first?["error"] as? String)?.contains("HTTP 403") == true)
        #expect(try harness.integrations.credential(id: credential).map { _ in true } == true)
        try harness.expectNoSecret(["wrong-key-XYZ123456"])
    }

    /// A bad event is reported to the runtime and the function keeps serving.
    @Test func aBadEventIsReportedAndTheNextIsServed() throws {
        let harness = try FetcherHarness(vendorConfig: Self.config)
        let outcomes = try harness.fetch(.solarEdge, [#"{"organization_id": 42}"#, FetcherHarness.scheduledEvent])
        guard case .error(let type, let message) = outcomes[0] else {
            Issue.record("the bad event was answered")
            return
        }
        #expect(type == "Runtime.InvalidEvent")
        #expect(message.contains("external_site_id"))
        #expect(outcomes[1].sites.isEmpty)
        if case .error = outcomes[1] { Issue.record("the scheduled event after it failed") }
    }
}
