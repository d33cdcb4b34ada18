import Core
import Foundation
import Store
import Testing
import TestSupport

/// The Enphase and SMA fetchers end to end: OAuth tokens that rotate on every refresh, expire,
/// get revoked and are raced for; Enphase's plan limits; SMA's moved plants.
@Suite struct OAuthFetcherTests {
    static func tokens(_ access: String, _ refresh: String, expiresAt: String = "2100-01-01T00:00:00Z") -> String {
        #"{"access_token": "\#(access)", "refresh_token": "\#(refresh)", "expires_at": "\#(expiresAt)", "note": "kept as it is"}"#
    }

    /// The fake's Enphase: the demo tokens see `systems`, all in `zone`.
    static func enphaseAccount(_ systems: [String], zone: String) -> [String: Any] {
        var table: [String: Any] = [:]
        for id in systems { table[id] = ["name": id, "timezone": zone] }
        return ["enphase": [
            "systems": table, "refresh_tokens": ["demo-enphase-refresh": systems],
            "access_tokens": ["demo-enphase-access": ["systems": systems, "expires_at": 4_102_444_800]],
        ]]
    }

    /// A Sydney day of Enphase telemetry: 288 slots, each starting 300 s before the interval's
    /// `end_at`, the fake's value for that exact interval, nights missing.
    @Test func anEnphaseDayIsExactRows() throws {
        let harness = try FetcherHarness()
        let credential = try harness.addCredential(.enphase, Self.tokens("demo-enphase-access", "demo-enphase-refresh"))
        try harness.addSite(.enphase, "4123456", zone: "Australia/Sydney", credential: credential)
        let sites = try harness.backfill(.enphase, site: "4123456", "2026-06-14T14:00:00Z", "2026-06-15T14:00:00Z")
        #expect(sites.first?["status"] as? String == "success", "\(sites)")
        #expect(try harness.validate(sites.first?["objects"] as? [String] ?? []).map(\.status) == [.validated])
        let readings = try harness.readings(site: "4123456")
        #expect(Set(readings.keys) == Set(stride(from: Oracle.instant("2026-06-14T14:00:00Z"), to: Oracle.instant("2026-06-15T14:00:00Z"), by: 300)))
        for (t, reading) in readings {
            let day = (6...19).contains(Oracle.localHour(t, zone: "Australia/Sydney"))
            let energy = day ? Double(5 + ((t + 300) / 300) % 30) : nil
            #expect(reading.energy == energy && reading.power == energy.map { $0 * 12 }, "at \(t)")
            #expect(reading.quality == (day ? "measured" : "missing") && reading.interval == 300)
            if day { #expect(reading.other == #"{"total_devices": 10, "devices_reporting": 10}"#) }
        }
        // The system's production meter: 15-minute rows of their own, `wh_del` at `end_at − 900`.
        let meter = try harness.readings(site: "4123456", device: "meter")
        #expect(meter.count == 96)
        for (t, reading) in meter {
            let day = (6...19).contains(Oracle.localHour(t, zone: "Australia/Sydney"))
            #expect(reading.energy == (day ? 20.5 + Double(((t + 900) / 900) % 40) : nil) && reading.interval == 900, "meter at \(t)")
        }
        #expect(try harness.integrations.sites(credentialID: credential).first?.attributes == ["meter": "present"])
        try harness.expectNoSecret(["demo-enphase-access", "demo-enphase-refresh", "demo-enphase-key", "demo-enphase-secret"])
    }

    /// A system without a meter answers 422 once; the fetcher remembers it and does not ask again.
    @Test func aSystemWithoutAMeterIsAskedOnce() throws {
        let harness = try FetcherHarness(vendorConfig: ["enphase": ["systems": ["4123456": ["name": "A", "timezone": "Australia/Sydney"]]]])
        let credential = try harness.addCredential(.enphase, Self.tokens("demo-enphase-access", "demo-enphase-refresh"))
        try harness.addSite(.enphase, "4123456", zone: "Australia/Sydney", credential: credential)
        let first = try harness.backfill(.enphase, site: "4123456", "2026-06-14T14:00:00Z", "2026-06-15T14:00:00Z")
        #expect(first.first?["status"] as? String == "success")
        #expect(try harness.integrations.sites(credentialID: credential).first?.attributes == ["meter": "absent"])
        try harness.vendors.control(["reset_stats": true])
        _ = try harness.backfill(.enphase, site: "4123456", "2026-06-15T14:00:00Z", "2026-06-16T14:00:00Z")
        #expect(try harness.vendors.requests().filter { $0.hasSuffix("production_meter") }.isEmpty)
        #expect(try harness.validate((first.first?["objects"] as? [String]) ?? []).first?.rowsLoaded == 288)
    }

    /// The access token dies after two calls: each 401 refreshes once (Basic client auth), the
    /// rotated refresh token is sealed and stored before it is needed, and the run goes on.
    @Test func aTokenExpiringMidRunIsRefreshedAndTheRotationKept() throws {
        let harness = try FetcherHarness(vendorConfig: ["enphase": ["access_calls": 2]])
        let credential = try harness.addCredential(.enphase, Self.tokens("demo-enphase-access", "demo-enphase-refresh"))
        try harness.addSite(.enphase, "4123456", zone: "Australia/Sydney", credential: credential)
        let sites = try harness.backfill(.enphase, site: "4123456", "2026-06-10T14:00:00Z", "2026-06-15T14:00:00Z")
        #expect(sites.first?["status"] as? String == "success", "\(sites)")
        let stats = try harness.vendors.stats()
        #expect((stats["refreshes"] as? [String: Int])?["enphase"] == 4)  // ten calls (a micro and a meter call a day), two a token
        #expect((stats["dead_refresh_used"] as? [String: Int])?["enphase"] == 0)
        // What is stored is the one refresh token still alive at the vendor; other members kept.
        let live = (stats["live_refresh_tokens"] as? [String: [String]])?["enphase"] ?? []
        let stored = try harness.plaintext(credential: credential)
        #expect(live.count == 1 && stored["refresh_token"] as? String == live.first)
        #expect(stored["note"] as? String == "kept as it is")
        let expires = try harness.database.connect().query(
            "SELECT extract(epoch FROM token_expires_at)::bigint AS e FROM integration_credential")[0, "e"].flatMap { Int64($0) }
        #expect(expires.map { abs($0 - Int64(Date().timeIntervalSince1970) - 86_393) < 120 } == true)
        #expect(try harness.validate(sites.first?["objects"] as? [String] ?? []).first?.rowsLoaded == 5 * (288 + 96))
        try harness.expectNoSecret(["demo-enphase-refresh", stored["refresh_token"] as! String, stored["access_token"] as! String])
    }

    /// Three fetcher processes start at once on a credential whose token has expired, each
    /// backfilling a system of its own (so all three need a fresh token at the same moment), five
    /// times over: each time exactly one refresh happens, nobody spends a dead refresh token, and
    /// all three runs succeed with the fresh tokens.
    @Test func runsRacingForOneCredentialRefreshItOnce() throws {
        let systems = ["4123456", "4123457", "4123458"]
        let harness = try FetcherHarness(vendorConfig: Self.enphaseAccount(systems, zone: "Australia/Sydney"))
        let credential = try harness.addCredential(.enphase, Self.tokens("demo-enphase-access", "demo-enphase-refresh", expiresAt: "2020-01-01T00:00:00Z"))
        for id in systems { try harness.addSite(.enphase, id, zone: "Australia/Sydney", credential: credential) }
        let events = systems.map {
            #"{"organization_id": 42, "external_site_id": "\#($0)", "start": "2026-06-14T14:00:00Z", "end": "2026-06-14T16:00:00Z"}"#
        }
        for round in 1...5 {
            try harness.vendors.control(["reset_stats": true])
            let outcomes = try harness.race(.enphase, events: events)
            #expect(outcomes.map { $0.sites.first?["status"] as? String } == ["success", "success", "success"], "round \(round): \(outcomes)")
            let stats = try harness.vendors.stats()
            #expect((stats["refreshes"] as? [String: Int])?["enphase"] == 1, "round \(round)")
            #expect((stats["dead_refresh_used"] as? [String: Int])?["enphase"] == 0, "round \(round)")
            // Expire the (fresh) token again for the next round.
            var plaintext = try harness.plaintext(credential: credential)
            plaintext["expires_at"] = "2020-01-01T00:00:00Z"
            try harness.reseal(credential: credential, plaintext)
        }
        #expect(try harness.database.connect().query("SELECT is_active FROM integration_credential")[0, "is_active"] == "t")
    }

    /// A revoked consent (the refresh token refused with invalid_grant): that credential is
    /// deactivated with a message saying the owner must reconnect; the others go on.
    @Test func aRevokedConsentDeactivatesOnlyThatCredential() throws {
        let harness = try FetcherHarness(vendorConfig: ["enphase": [
            "systems": ["4123456": ["name": "A", "timezone": "Australia/Sydney"], "4123457": ["name": "B", "timezone": "US/Pacific"]],
            "refresh_tokens": ["other-refresh": ["4123457"]],
            "access_tokens": ["other-access": ["systems": ["4123457"], "expires_at": 4_102_444_800]],
        ]])
        let revoked = try harness.addCredential(.enphase, Self.tokens("gone-access", "gone-refresh", expiresAt: "2020-01-01T00:00:00Z"))
        let other = try harness.addCredential(.enphase, Self.tokens("other-access", "other-refresh"), organization: 7)
        try harness.addSite(.enphase, "4123456", zone: "Australia/Sydney", credential: revoked)
        let sites = try harness.scheduled(.enphase)
        let byID = Dictionary(uniqueKeysWithValues: sites.map { ($0["external_site_id"] as! String, $0) })
        #expect(byID["4123456"]?["status"] as? String == "error")
        #expect(byID["4123457"]?["status"] as? String == "success")
        let rows = try harness.database.connect().query("SELECT id, is_active, last_error FROM integration_credential ORDER BY id")
        #expect(rows[0, "is_active"] == "f" && rows[1, "is_active"] == "t")
        #expect(rows[0, "last_error"] == "Enphase refused the refresh token (invalid_grant): the owner must reconnect the account")
        // The other credential discovered its system, in a legacy zone name tzdata resolves.
        #expect(try harness.integrations.sites(credentialID: other).first?.timeZone == "US/Pacific")
        // Listing systems costs from the month's budget: once a day.
        _ = try harness.scheduled(.enphase)
        #expect((try harness.vendors.stats()["calls"] as? [String: Int])?["enphase:systems"] == 1)
        try harness.expectNoSecret(["gone-refresh", "other-refresh", "other-access", "demo-enphase-secret"])
    }

    /// A wrong client secret (the token endpoint's `unauthorized`) is the deployment's fault, not
    /// the owner's: the refresh fails, the credential stays active, and no token is spent.
    @Test func aWrongClientSecretDeactivatesNothing() throws {
        let harness = try FetcherHarness()
        harness.settings["ENPHASE_CLIENT_SECRET"] = "not-the-client-secret"
        let credential = try harness.addCredential(.enphase, Self.tokens("demo-enphase-access", "demo-enphase-refresh", expiresAt: "2020-01-01T00:00:00Z"))
        try harness.addSite(.enphase, "4123456", zone: "Australia/Sydney", credential: credential)
        let outcome = try harness.backfill(.enphase, site: "4123456", "2026-06-14T14:00:00Z", "2026-06-14T16:00:00Z")
        #expect(outcome.first?["status"] as? String == "error")
        #expect(outcome.first?["error"] as? String == "Enphase token refresh refused (unauthorized): check the application's client id and secret")
        #expect(try harness.database.connect().query("SELECT is_active FROM integration_credential")[0, "is_active"] == "t")
        #expect(((try harness.vendors.stats()["live_refresh_tokens"]) as? [String: [String]])?["enphase"] == ["demo-enphase-refresh"])
        try harness.expectNoSecret(["not-the-client-secret", "demo-enphase-refresh"])
    }

    /// Enphase's plan: a 429 pauses the credential until the period's end; the month's budget,
    /// spent, leaves the run to later days.
    @Test func enphasePlanLimitsPauseAndPlan() throws {
        let harness = try FetcherHarness()
        let credential = try harness.addCredential(.enphase, Self.tokens("demo-enphase-access", "demo-enphase-refresh"))
        try harness.addSite(.enphase, "4123456", zone: "Australia/Sydney", credential: credential)
        let end = Int64(Date().timeIntervalSince1970) + 40
        try harness.vendors.control(["faults": [["path": "production_micro", "status": 429, "times": 1,
                                                 "body": #"{"message":"Too Many Requests","details":"Usage limit exceeded for plan Watt","code":429,"period":"minute","period_start":\#(end - 60),"period_end":\#(end),"limit":10}"#]]])
        #expect(try harness.scheduled(.enphase).first?["status"] as? String == "rate_limited")
        #expect(try harness.integrations.credential(id: credential)?.rateLimitedUntil == end)

        let budget = try FetcherHarness()
        budget.settings["ENPHASE_MONTHLY_CALLS"] = "100"
        let spent = try budget.addCredential(.enphase, Self.tokens("demo-enphase-access", "demo-enphase-refresh"))
        try budget.addSite(.enphase, "4123456", zone: "Australia/Sydney", credential: spent)
        try budget.integrations.countCalls(credentialID: spent, scope: "site:4123456",
                                           day: Timestamp.day(epochSeconds: Int64(Date().timeIntervalSince1970)), count: 100)
        let planned = try budget.scheduled(.enphase).first
        #expect(planned?["status"] as? String == "rate_limited")
        #expect((planned?["error"] as? String)?.contains("quota plan") == true)
        #expect(try budget.vendors.requests().filter { $0.contains("production_micro") }.isEmpty)
    }

    /// The month's budget is shared by the sites of one run: what one site's calls take, the next
    /// does not get; and a token expiring within the margin is refreshed before the first call.
    @Test func theMonthlyBudgetIsSharedAcrossSitesAndTokensAreRefreshedAhead() throws {
        let systems = ["4123456", "4123457"]
        let harness = try FetcherHarness(vendorConfig: Self.enphaseAccount(systems, zone: "Australia/Sydney"))
        // Each run's share is limit / days left (today included), less what today used: the
        // discovery call leaves exactly one telemetry call for the run.
        let now = Int64(Date().timeIntervalSince1970)
        let components = Calendar(identifier: .gregorian).dateComponents(in: TimeZone(identifier: "UTC")!, from: Date())
        let daysInMonth = Calendar(identifier: .gregorian).range(of: .day, in: .month, for: Date())!.count
        harness.settings["ENPHASE_MONTHLY_CALLS"] = String(2 * (daysInMonth - components.day! + 1))
        let expiresSoon = Timestamp.rfc3339(milliseconds: (now + 100) * 1000)  // (inside the 120 s margin)
        let credential = try harness.addCredential(.enphase, Self.tokens("demo-enphase-access", "demo-enphase-refresh", expiresAt: expiresSoon))
        for id in systems {
            let site = try harness.addSite(.enphase, id, zone: "Australia/Sydney", credential: credential)
            try harness.integrations.learn(siteID: site, attributes: ["meter": "absent"])
            try harness.integrations.recordSync(siteID: site, status: .success, error: nil, cursor: now / 300 * 300 - 1800)
        }
        let outcome = try harness.scheduled(.enphase)
        #expect(outcome.map { $0["status"] as? String } == ["success", "rate_limited"], "\(outcome)")
        #expect(try harness.vendors.requests().filter { $0.hasSuffix("production_micro") }.count == 1)
        let stats = try harness.vendors.stats()
        #expect((stats["refreshes"] as? [String: Int])?["enphase"] == 1, "\(stats["refreshes"] ?? "-") \(stats["requests"] ?? "-")")
    }

    /// SMA's 429 pauses the credential for five minutes.
    @Test func anSMARateLimitPausesFiveMinutes() throws {
        let harness = try FetcherHarness()
        let credential = try harness.addCredential(.sma, Self.tokens("demo-sma-access", "demo-sma-refresh"))
        try harness.addSite(.sma, "8731046", zone: "Europe/Berlin", credential: credential)
        try harness.vendors.control(["faults": [["path": "/devices", "status": 429, "times": 1]]])
        let before = Int64(Date().timeIntervalSince1970)
        #expect(try harness.backfill(.sma, site: "8731046", "2026-06-14T22:00:00Z", "2026-06-15T22:00:00Z").first?["status"] as? String == "rate_limited")
        let paused = try #require(try harness.integrations.credential(id: credential)?.rateLimitedUntil)
        #expect(paused >= before + 300 && paused <= before + 330)
    }

    /// Systems are listed page by page (100 a page) until all are known.
    @Test func enphaseSystemsArePaged() throws {
        let systems = (0..<150).map { String(5_000_000 + $0) }
        let harness = try FetcherHarness(vendorConfig: Self.enphaseAccount(systems, zone: "Europe/Berlin"))
        harness.settings["METERLAKE_FETCH_MIN_TIME_LEFT_SECONDS"] = "115"  // (list them; leave the sites for later runs)
        let credential = try harness.addCredential(.enphase, Self.tokens("demo-enphase-access", "demo-enphase-refresh"))
        _ = try harness.scheduled(.enphase)
        #expect(try harness.integrations.sites(credentialID: credential).count == 150)
        let pages = ((try harness.vendors.stats()["requests"]) as? [[String: Any]] ?? []).filter { $0["path"] as? String == "/enphase/api/v4/systems" }
            .compactMap { ($0["query"] as? [String: String])?["page"] }
        #expect(pages == ["1", "2"])
    }

    /// Calls are paced under the per-minute limit, across the whole run.
    @Test func enphaseCallsArePaced() throws {
        let harness = try FetcherHarness()
        harness.settings["ENPHASE_CALLS_PER_MINUTE"] = "120"
        let credential = try harness.addCredential(.enphase, Self.tokens("demo-enphase-access", "demo-enphase-refresh"))
        try harness.addSite(.enphase, "4123456", zone: "Australia/Sydney", credential: credential)
        #expect(try harness.backfill(.enphase, site: "4123456", "2026-06-12T14:00:00Z", "2026-06-15T14:00:00Z").first?["status"] as? String == "success")
        let times = ((try harness.vendors.stats()["requests"]) as? [[String: Any]] ?? []).compactMap { $0["t"] as? Double }
        #expect(times.count == 6)  // three days, a micro and a meter call each
        for (earlier, later) in zip(times, times.dropFirst()) { #expect(later - earlier >= 0.45) }
    }

    /// An SMA day: per inverter, every 5-minute slot; `time` labels the interval's end, so each
    /// value lands 300 s before its label; nights (absent) are missing.
    @Test func anSMADayIsExactRows() throws {
        let harness = try FetcherHarness()
        let credential = try harness.addCredential(.sma, Self.tokens("demo-sma-access", "demo-sma-refresh"))
        try harness.addSite(.sma, "8731046", zone: "Europe/Berlin", credential: credential)
        let sites = try harness.backfill(.sma, site: "8731046", "2026-06-14T22:00:00Z", "2026-06-15T22:00:00Z")
        #expect(sites.first?["status"] as? String == "success", "\(sites)")
        #expect(try harness.validate(sites.first?["objects"] as? [String] ?? []).map(\.status) == [.validated])
        let readings = try harness.readings(site: "8731046", device: "8731051")
        #expect(readings.count == 288)
        for (t, reading) in readings {
            let day = (6...19).contains(Oracle.localHour(t, zone: "Europe/Berlin"))
            let energy = day ? Double(3 + (t / 300) % 20) : nil
            #expect(reading.energy == energy && reading.power == energy.map { $0 * 12 }, "at \(t)")
            #expect(reading.quality == (day ? "measured" : "missing"))
        }
    }

    /// A plant migrated to ennexOS: the old id answers 308; the fetcher follows it, keeps the new
    /// id for the site (its readings keep the old, external one), and calls the new id directly
    /// from then on. The expired token is refreshed first (form-body client auth).
    @Test func aMovedSMAPlantIsFollowedAndRemembered() throws {
        let harness = try FetcherHarness(vendorConfig: ["sma": [
            "plants": ["9900001": ["name": "Weingut (ennexOS)", "timezone": "Europe/Berlin", "devices": ["8731051"]]],
            "moved": ["8731046": "9900001"],
        ]])
        let credential = try harness.addCredential(.sma, Self.tokens("demo-sma-access", "demo-sma-refresh", expiresAt: "2020-01-01T00:00:00Z"))
        try harness.addSite(.sma, "8731046", zone: "Europe/Berlin", credential: credential)
        let first = try harness.backfill(.sma, site: "8731046", "2026-06-14T22:00:00Z", "2026-06-15T22:00:00Z")
        #expect(first.first?["status"] as? String == "success", "\(first)")
        #expect(try harness.integrations.site(organizationID: 42, vendor: .sma, externalSiteID: "8731046")?.apiSiteID == "9900001")
        #expect((try harness.vendors.stats()["refreshes"] as? [String: Int])?["sma"] == 1)
        try harness.vendors.control(["reset_stats": true])
        let second = try harness.backfill(.sma, site: "8731046", "2026-06-15T22:00:00Z", "2026-06-16T22:00:00Z")
        #expect(second.first?["status"] as? String == "success")
        let requests = try harness.vendors.requests()
        #expect(requests.contains("GET /sma/v1/plants/9900001/devices") && !requests.contains { $0.contains("8731046") })
        _ = try harness.validate((first.first?["objects"] as? [String] ?? []) + (second.first?["objects"] as? [String] ?? []))
        #expect(try harness.readings(site: "8731046", device: "8731051").count == 2 * 288)
        try harness.expectNoSecret(["demo-sma-refresh", "demo-sma-secret"])
    }
}
