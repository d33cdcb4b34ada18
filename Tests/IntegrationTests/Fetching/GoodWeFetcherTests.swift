import Core
import Fetching
import Foundation
import Store
import Testing
import TestSupport

/// The GoodWe fetcher end to end: SEMS login, the regional API, token expiry, rate limits.
@Suite struct GoodWeFetcherTests {
    static let plant = "6a1e8c2f-0000-4000-8000-00000000000a"
    static let credential = #"{"account": "owner@example.org", "password": "pw-Secr3t-goodwe"}"#
    /// The fake's GoodWe: one account with `plants` in `zone`, and any `extra` settings.
    static func config(zone: String = "Europe/Berlin", plants: [String] = [plant], extra: [String: Any] = [:]) -> [String: Any] {
        var table: [String: Any] = [:]
        for plant in plants { table[plant] = ["name": "Plant", "timeZone": zone] }
        let goodwe: [String: Any] = ["accounts": ["owner@example.org": ["password": "pw-Secr3t-goodwe", "plants": plants]], "plants": table]
        return ["goodwe": goodwe.merging(extra) { $1 }]
    }

    /// A local day's power chart: every 5-minute slot a row, energy estimated from power, the
    /// null point missing, the measured day total beside each row; DST days with 276 and 300 slots.
    @Test(arguments: [
        ("2026-06-14T22:00:00Z", "2026-06-15T22:00:00Z", "2026-06-15", 288),
        ("2026-03-28T23:00:00Z", "2026-03-29T22:00:00Z", "2026-03-29", 276),
        ("2026-10-24T22:00:00Z", "2026-10-25T23:00:00Z", "2026-10-25", 300),
    ])
    func aLocalDayIsExactRows(start: String, end: String, date: String, slots: Int) throws {
        let harness = try FetcherHarness(vendorConfig: Self.config())
        let credential = try harness.addCredential(.goodWe, Self.credential)
        try harness.addSite(.goodWe, Self.plant, zone: "Europe/Berlin", credential: credential)
        let sites = try harness.backfill(.goodWe, site: Self.plant, start, end)
        #expect(sites.first?["status"] as? String == "success", "\(sites)")
        let files = try harness.validate(sites.first?["objects"] as? [String] ?? [])
        #expect(files.map(\.status) == [.validated])
        let readings = try harness.readings(site: Self.plant)
        #expect(readings.count == slots)
        #expect(Set(readings.keys) == Set(stride(from: Oracle.instant(start), to: Oracle.instant(end), by: 300)))
        var integrated = 0.0
        for (t, reading) in readings {
            let power = Oracle.goodWePower(t, zone: "Europe/Berlin")
            #expect(reading.power == power, "power at \(t)")
            #expect(reading.energy == power.map { $0 * 300 / 3600 })
            #expect(reading.quality == (power == nil ? "missing" : "estimated"))
            #expect(reading.other.contains(#""line": "PCurve_Power_PV""#) && reading.other.contains(#""local_date": "\#(date)""#))
            integrated += reading.energy ?? 0
        }
        let total = (integrated * 1.01 / 1000 * 100).rounded() / 100
        #expect(readings.values.allSatisfy { $0.other.contains(#""day_generation_kwh": \#(total)"#) })
        #expect(readings.values.filter { $0.quality == "missing" }.count == 1)
        try harness.expectNoSecret(["pw-Secr3t-goodwe"])
    }

    /// The token expires after two data calls: the fetcher logs in again once each time and goes
    /// on; data calls go to the regional URL the login named (the login host answers 100001).
    @Test func anExpiredTokenIsRenewed() throws {
        let harness = try FetcherHarness(vendorConfig: Self.config(extra: ["token_calls": 2]))
        let credential = try harness.addCredential(.goodWe, Self.credential)
        try harness.addSite(.goodWe, Self.plant, zone: "Europe/Berlin", credential: credential)
        let sites = try harness.backfill(.goodWe, site: Self.plant, "2026-06-10T22:00:00Z", "2026-06-15T22:00:00Z")
        #expect(sites.first?["status"] as? String == "success", "\(sites)")
        let stats = try harness.vendors.stats()
        #expect(stats["logins"] as? Int == 3)
        let requests = try harness.vendors.requests()
        #expect(requests.filter { $0.hasSuffix("GetPlantPowerChart") }.allSatisfy { $0.hasPrefix("POST /goodwe-eu/api/") })
        #expect(requests.filter { $0.hasSuffix("GetPlantPowerChart") }.count == 7)  // 5 days, 2 retried after a new login
        let files = try harness.validate(sites.first?["objects"] as? [String] ?? [])
        #expect(files.first?.rowsLoaded == 5 * 288)
        try harness.expectNoSecret(["pw-Secr3t-goodwe"])
    }

    /// A GoodWe error that echoes the session token: the token (and its object) never reach the
    /// site's error, the logs or the lake.
    @Test func anEchoedTokenIsRedacted() throws {
        let harness = try FetcherHarness(vendorConfig: Self.config())
        let credential = try harness.addCredential(.goodWe, Self.credential)
        try harness.addSite(.goodWe, Self.plant, zone: "Europe/Berlin", credential: credential)
        try harness.vendors.control(["faults": [["path": "GetPlantPowerChart", "status": 200, "times": 9,
                                                 "body": #"{"hasError":true,"code":100009,"msg":"token {token} is not valid here","data":null}"#]]])
        let outcome = try harness.scheduled(.goodWe)
        #expect(outcome.first?["status"] as? String == "error")
        #expect((outcome.first?["error"] as? String)?.contains("code 100009: token *** is not valid here") == true)
        let tokens = try #require(try harness.vendors.stats()["tokens"] as? [String])
        #expect(!tokens.isEmpty)
        try harness.expectNoSecret(tokens + ["pw-Secr3t-goodwe"])
    }

    /// GY0429: the credential pauses for five minutes; the site is `rate_limited`.
    @Test func aRateLimitPausesTheCredential() throws {
        let harness = try FetcherHarness(vendorConfig: Self.config(extra: ["rate_limit_after": 1]))
        let credential = try harness.addCredential(.goodWe, Self.credential)
        try harness.addSite(.goodWe, Self.plant, zone: "Europe/Berlin", credential: credential)
        let before = Int64(Date().timeIntervalSince1970)
        let sites = try harness.scheduled(.goodWe)
        #expect(sites.first?["status"] as? String == "rate_limited")
        let paused = try #require(try harness.integrations.credential(id: credential)?.rateLimitedUntil)
        #expect(paused >= before + 300 && paused <= before + 330)
    }

    /// A wrong password: a clear error for the site and the credential, no password anywhere.
    @Test func aWrongPasswordIsRefusedWithoutLeakingIt() throws {
        let harness = try FetcherHarness(vendorConfig: Self.config())
        let credential = try harness.addCredential(.goodWe, #"{"account": "owner@example.org", "password": "not-the-Password-42"}"#)
        try harness.addSite(.goodWe, Self.plant, zone: "Europe/Berlin", credential: credential)
        let sites = try harness.scheduled(.goodWe)
        #expect(sites.first?["status"] as? String == "error")
        #expect(sites.first?["error"] as? String == "GoodWe login refused (code 100005: Email or password error.)")
        #expect(try harness.vendors.stats()["logins"] as? Int == 0)
        let stored = try harness.database.connect().query("SELECT last_error FROM integration_credential")
        #expect(stored[0, "last_error"] == "GoodWe login refused (code 100005: Email or password error.)")
        try harness.expectNoSecret(["not-the-Password-42"])
    }

    /// Discovery: a new plant gets the zone the credential's other sites share; with no zone to
    /// go by it is stored inactive, saying how to set one.
    @Test func newPlantsTakeTheCredentialsZoneOrWaitForOne() throws {
        let second = "6a1e8c2f-0000-4000-8000-00000000000b"
        let harness = try FetcherHarness(vendorConfig: Self.config(plants: [Self.plant, second]))
        let credential = try harness.addCredential(.goodWe, Self.credential)
        try harness.addSite(.goodWe, Self.plant, zone: "Europe/Vienna", credential: credential)
        _ = try harness.scheduled(.goodWe)
        let sites = try harness.integrations.sites(credentialID: credential)
        #expect(sites.first { $0.externalSiteID == second }?.timeZone == "Europe/Vienna")
        #expect(sites.first { $0.externalSiteID == second }?.isActive == true)

        // Siblings in two zones say nothing about a new plant's: it waits for one.
        let third = "6a1e8c2f-0000-4000-8000-00000000000c"
        let mixed = try FetcherHarness(vendorConfig: Self.config(plants: [Self.plant, second, third]))
        let mixedCredential = try mixed.addCredential(.goodWe, Self.credential)
        try mixed.addSite(.goodWe, Self.plant, zone: "Europe/Vienna", credential: mixedCredential)
        try mixed.addSite(.goodWe, second, zone: "Europe/Lisbon", credential: mixedCredential)
        _ = try mixed.scheduled(.goodWe)
        #expect(try mixed.integrations.sites(credentialID: mixedCredential).first { $0.externalSiteID == third }?.isActive == false)

        let lonely = try FetcherHarness(vendorConfig: Self.config(plants: [Self.plant]))
        let other = try lonely.addCredential(.goodWe, Self.credential)
        _ = try lonely.scheduled(.goodWe)
        let found = try lonely.integrations.sites(credentialID: other)
        #expect(found.count == 1 && found[0].isActive == false)
        let error = try lonely.database.connect().query("SELECT last_sync_error FROM integration_site")[0, "last_sync_error"]
        #expect(error?.contains("gives no time zone: set one with `meterlake site add --org 42 --vendor goodwe --site \(Self.plant) --time-zone Area/City`") == true)
        // Nor does a backfill fetch it on a zone nobody chose.
        let backfill = try lonely.backfill(.goodWe, site: Self.plant, "2026-06-14T22:00:00Z", "2026-06-15T22:00:00Z")
        #expect(backfill.first?["status"] as? String == "error")
        #expect((backfill.first?["error"] as? String)?.hasPrefix("the site is inactive: goodwe gives no time zone") == true)
    }

    /// The token only goes where the portal is: the base's host or a sibling under its parent
    /// domain, over https (plain http only when the base is plain http, a local fake).
    @Test(arguments: [
        ("https://eu.semsportal.com/api/", "https://www.semsportal.com/api/", true),
        ("https://au.semsportal.com:443/api/", "https://www.semsportal.com/api/", true),
        ("http://eu.semsportal.com/api/", "https://www.semsportal.com/api/", false),
        ("https://semsportal.com.evil.example/api/", "https://www.semsportal.com/api/", false),
        ("https://evil.example/?x=.semsportal.com", "https://www.semsportal.com/api/", false),
        ("https://user@eu.semsportal.com/api/", "https://www.semsportal.com/api/", false),
        ("https://eusemsportal.com/api/", "https://www.semsportal.com/api/", false),
        ("http://127.0.0.1:9/goodwe-eu/api/", "http://127.0.0.1:9/goodwe/api/", true),
        ("http://127.0.0.2:9/api/", "http://127.0.0.1:9/goodwe/api/", false),
        ("http://10.0.0.1:9/api/", "http://127.0.0.1:9/goodwe/api/", false),  // (an address has no parent domain)
        ("file:///etc/passwd", "https://www.semsportal.com/api/", false),
    ])
    func theRegionalURLMustBeThePortals(url: String, base: String, trusted: Bool) {
        #expect(GoodWeDriver.isTrustedDataURL(url, base: base) == trusted)
    }

    /// Secrets are redacted however a vendor echoes them: raw, percent-encoded either case,
    /// JSON-escaped; and a body is redacted before it is cut, so no half secret survives.
    @Test func theRedactorReplacesTheLongestSecretFirst() {
        #expect(Redactor(secrets: ["abc", "xabcx"])("a xabcx b") == "a *** b")
        #expect(Redactor(secrets: ["", "k"])("key k") == "***ey ***")
    }

    @Test func theRedactorFindsEchoedSecrets() {
        let redact = Redactor(secrets: [#"pa"ss/w0rd é"#, "K3Y"])
        #expect(redact(#"bad password pa"ss/w0rd é"#) == "bad password ***")
        #expect(redact(#"{"pwd":"pa\"ss\/w0rd é"}"#) == #"{"pwd":"***"}"#)
        #expect(redact(#"{"pwd":"pa\"ss/w0rd é"}"#) == #"{"pwd":"***"}"#)
        #expect(redact("?pwd=pa%22ss%2Fw0rd%20%C3%A9&x") == "?pwd=***&x")
        #expect(redact("?pwd=pa%22ss%2fw0rd+%c3%a9") == "?pwd=***")
        #expect(redact("key K3Y!") == "key ***!")
    }

    /// An SMA redirect is followed only on the API's own scheme and host (the Bearer token goes with it).
    @Test(arguments: [
        ("/sma/v1/plants/2/devices", "https://api.example/sma/v1/plants/1/devices", "https://api.example/sma/v1/plants/2/devices"),
        ("https://api.example/v1/plants/2", "https://api.example/v1/plants/1", "https://api.example/v1/plants/2"),
        ("https://evil.example/v1/plants/2", "https://api.example/v1/plants/1", nil),
        ("http://api.example/v1/plants/2", "https://api.example/v1/plants/1", nil),
        ("//evil.example/v1/plants/2", "https://api.example/v1/plants/1", "https://api.example//evil.example/v1/plants/2"),
        ("https://api.example:444/v1/plants/2", "https://api.example/v1/plants/1", nil),
    ])
    func smaRedirectsStayOnTheAPIHost(location: String, from: String, target: String?) {
        #expect(SMADriver.redirectTarget(location, from: from) == target)
    }
}
