import Core
import Foundation
import HTTPClient
import Postgres
import Store
import Testing
import TestSupport

/// The BUILT oauth-callback function end to end: the user's token and `POST /oauth/state`, the
/// fake vendor's consent page (a real 302 with a code), `GET /oauth/callback`, the code exchange
/// against the fake's token endpoint (single-use codes bound to the redirect URI and the PKCE
/// challenge), the sealed credential and the discovered sites in PostgreSQL.
final class ConnectFlow {
    static let redirectURI = "https://connect.example.test/oauth/callback"
    static let otherRegisteredURI = "https://other.example.test/oauth/callback"
    let database: TestDatabase
    let vendors: FakeVendors
    let harness: WebHarness

    init() throws {
        database = try TestDatabase()
        vendors = try FakeVendors()
        for vendor in ["enphase", "sma"] {
            try vendors.control([vendor: ["redirect_uris": [Self.redirectURI, Self.otherRegisteredURI]]])
        }
        harness = try WebHarness(function: "oauth-callback", database: database,
                                 settings: vendors.environment.merging(["METERLAKE_OAUTH_REDIRECT_URI": Self.redirectURI]) { $1 })
    }

    /// `POST /oauth/state` as a user of `organizations`.
    func start(_ vendor: String, organization: Int64 = 42, token: String? = TestTokens.user(organizations: [42])) throws -> WebHarness.Answer {
        try harness.json("POST", "/oauth/state", ["vendor": vendor, "organization_id": organization], token: token)
    }

    /// The consent page at the fake: its redirect's query (what the browser brings to our callback).
    func consent(_ authorizationURL: String) throws -> String {
        let response = try HTTPClient().send(HTTPRequest(method: .get, url: authorizationURL))
        guard response.status == 302, let location = response.headers["Location"], let query = location.split(separator: "?", maxSplits: 1).last else {
            throw HarnessFailure("the consent page answered \(response.status): \(String(decoding: response.body, as: UTF8.self))")
        }
        return String(query)
    }

    func callback(_ query: String, path: String = "/oauth/callback") throws -> WebHarness.Answer {
        try harness.request("GET", path, query: query, headers: ["referer": "https://vendor.example.test/"])
    }

    /// Start, consent and callback; the callback's page.
    func authorize(_ vendor: String, token: String = TestTokens.user(organizations: [42])) throws -> WebHarness.Answer {
        let started = try start(vendor, token: token)
        guard started.status == 200, let url = started.json["authorization_url"] as? String else { throw HarnessFailure("state: \(started.body)") }
        return try callback(try consent(url))
    }

    /// `POST /oauth/complete` with the completion code the page posted to its opener.
    func complete(_ page: WebHarness.Answer, token: String = TestTokens.user(organizations: [42])) throws -> WebHarness.Answer {
        let completion = try #require(try Self.message(page.body)["completion"] as? String)
        return try harness.json("POST", "/oauth/complete", ["completion": completion], token: token)
    }

    /// The whole flow, as the web app runs it; the completion's answer.
    func connect(_ vendor: String, token: String = TestTokens.user(organizations: [42])) throws -> WebHarness.Answer {
        try complete(try authorize(vendor, token: token), token: token)
    }

    func credentials() throws -> PostgresRows {
        try database.connect().query("""
            SELECT id, organization_id, data_source_id, auth_type, encrypted_credentials, is_active, connected_by,
                   extract(epoch FROM token_expires_at)::bigint AS expires FROM integration_credential ORDER BY id
            """)
    }

    func plaintext(_ envelope: String) throws -> [String: Any] {
        try JSONSerialization.jsonObject(with: Data(CredentialEnvelope.open(envelope, keys: harness.keys))) as! [String: Any]
    }

    func exchanges() throws -> [[String: Any]] { try vendors.stats()["code_exchanges"] as? [[String: Any]] ?? [] }

    /// The message the page posts to its opener.
    static func message(_ page: String) throws -> [String: Any] {
        guard let start = page.range(of: "var message = "), let end = page.range(of: ";\n", range: start.upperBound..<page.endIndex) else {
            throw HarnessFailure("no message in the page: \(page)")
        }
        let json = String(page[start.upperBound..<end.lowerBound]).replacingOccurrences(of: "\\u003c", with: "<")
        return try JSONSerialization.jsonObject(with: Data(json.utf8)) as! [String: Any]
    }
}

@Suite(.serialized) struct OAuthCallbackTests {
    @Test(arguments: [("enphase", 2, "4123456", "Australia/Sydney"), ("sma", 3, "8731046", "Europe/Berlin")])
    func connectsAnAccountEndToEnd(vendor: String, sourceID: Int, site: String, zone: String) throws {
        let flow = try ConnectFlow()
        let started = try flow.start(vendor, token: TestTokens.user("user-anna", organizations: [42]))
        #expect(started.status == 200, "\(started.body)")
        let url = try #require(started.json["authorization_url"] as? String)
        let state = try #require(started.json["state"] as? String)
        #expect(url.contains("redirect_uri=https%3A%2F%2Fconnect.example.test%2Foauth%2Fcallback"))
        #expect(url.contains("code_challenge_method=S256") && url.contains("state=" + state))
        #expect(!url.contains("code_verifier"))
        let verifier = try #require(try flow.database.connect().query("SELECT code_verifier FROM oauth_pending")[0, "code_verifier"])
        #expect(verifier.utf8.count == 43 && !url.contains(verifier))

        let page = try flow.callback(try flow.consent(url))
        #expect(page.status == 200, "\(page.body)")
        #expect(page.headers["content-type"] == "text/html; charset=utf-8")
        #expect(page.headers["cache-control"] == "no-store")
        #expect(page.headers["referrer-policy"] == "no-referrer")
        let csp = try #require(page.headers["content-security-policy"])
        #expect(csp.contains("default-src 'none'") && csp.contains("script-src 'nonce-") && !csp.contains("unsafe-eval"))
        #expect(csp.contains("frame-ancestors 'none'") && page.headers["x-frame-options"] == "DENY" && page.headers["x-content-type-options"] == "nosniff")
        #expect(page.body.contains(#"window.opener.postMessage(message, "https://app.example.test")"#))
        let message = try ConnectFlow.message(page.body)
        #expect(message["status"] as? String == "authorized")
        #expect(message["vendor"] as? String == vendor && message["organization_id"] as? Int == 42)
        // Authorised, not connected: nothing is stored until the user who started completes it.
        #expect(try flow.credentials().count == 0)
        let held = try flow.database.connect().query("SELECT code_verifier, sealed_grant IS NOT NULL AS held FROM oauth_pending")
        #expect(held[0, "code_verifier"] == "" && held[0, "held"] == "t")

        let completed = try flow.complete(page, token: TestTokens.user("user-anna", organizations: [42]))
        #expect(completed.status == 200, "\(completed.body)")
        #expect(completed.json["vendor"] as? String == vendor && completed.json["reconnected"] as? Bool == false)
        #expect((completed.json["sites"] as? [[String: Any]])?.map { $0["external_site_id"] as? String } == [site])

        // The credential decrypts to exactly the tokens the fake issued for this code.
        let exchange = try #require(try flow.exchanges().last)
        #expect(exchange["outcome"] as? String == "issued" && exchange["verifier_sent"] as? Bool == true)
        #expect(exchange["redirect_uri"] as? String == ConnectFlow.redirectURI)
        let rows = try flow.credentials()
        #expect(rows.count == 1)
        #expect(rows[0, "organization_id"] == "42" && rows[0, "data_source_id"] == String(sourceID) && rows[0, "auth_type"] == "oauth2")
        #expect(rows[0, "is_active"] == "t" && rows[0, "connected_by"] == "user-anna")
        let stored = try flow.plaintext(rows[0, "encrypted_credentials"]!)
        #expect(stored["access_token"] as? String == exchange["access_token"] as? String)
        #expect(stored["refresh_token"] as? String == exchange["refresh_token"] as? String)
        let expires = try #require(Int64(rows[0, "expires"] ?? ""))
        #expect(stored["expires_at"] as? String == Timestamp.rfc3339(seconds: expires, nanoseconds: 0, zoned: true))

        // The vendor's sites are registered, active, with the vendor's zone.
        let sites = try flow.database.connect().query("SELECT external_site_id, time_zone, is_active, credential_id FROM integration_site")
        #expect(sites.count == 1 && sites[0, "external_site_id"] == site && sites[0, "time_zone"] == zone && sites[0, "is_active"] == "t")
        #expect(sites[0, "credential_id"] == rows[0, "id"])
        // Listing the sites counts against the account's budget, like a fetcher's discovery.
        let counted = try flow.database.connect().query("SELECT coalesce(sum(calls), 0) AS n FROM vendor_call_count WHERE scope = 'account'")
        #expect(Int(counted[0, "n"]!)! >= 1)
        #expect(completed.json["credential_id"] as? Int == Int(rows[0, "id"]!))

        // No code, token, verifier or client secret in the page or the function's logs.
        let pending = try flow.database.connect().query("SELECT used_at IS NOT NULL AS used, sealed_grant, completed_at IS NOT NULL AS done FROM oauth_pending")
        #expect(pending.count == 1 && pending[0, "used"] == "t" && pending[0, "sealed_grant"] == nil && pending[0, "done"] == "t")
        let completion = try #require(message["completion"] as? String)
        for secret in [exchange["access_token"] as? String, exchange["refresh_token"] as? String, "demo-\(vendor)-secret", "demo-enphase-key"].compactMap({ $0 }) {
            #expect(!page.body.contains(secret) && !completed.body.contains(secret) && !flow.harness.output.contains(secret), "a secret leaked")
        }
        #expect(!flow.harness.output.contains("\(vendor)-code-") && !flow.harness.output.contains(completion) && !flow.harness.output.contains(verifier))
    }

    @Test func aReconnectReplacesTheTokensAndReactivates() throws {
        let flow = try ConnectFlow()
        #expect(try flow.connect("enphase").status == 200)
        let first = try flow.credentials()
        try flow.database.connect().query("UPDATE integration_credential SET is_active = false, last_error = 'refresh refused'")
        // A vendor's absurd expires_in (1e19 s) is capped at 366 days, not a crash.
        try flow.vendors.control(["enphase": ["access_lifetime": 1e19]])
        let again = try flow.connect("enphase")
        #expect(again.status == 200)
        #expect(again.json["reconnected"] as? Bool == true)
        let second = try flow.credentials()
        #expect(second.count == 1 && second[0, "id"] == first[0, "id"] && second[0, "is_active"] == "t")
        #expect(try flow.database.connect().query("SELECT last_error FROM integration_credential")[0, "last_error"] == nil)
        let expires = try #require(Int64(second[0, "expires"] ?? ""))
        #expect(abs(expires - Int64(Date().timeIntervalSince1970) - 366 * 86_400) < 120)
        let tokens = try flow.plaintext(second[0, "encrypted_credentials"]!)
        #expect(tokens["refresh_token"] as? String == (try flow.exchanges().last?["refresh_token"] as? String))
        #expect(tokens["refresh_token"] as? String != (try flow.plaintext(first[0, "encrypted_credentials"]!)["refresh_token"] as? String))
    }

    @Test func onlyTheUserWhoStartedAFlowCompletesItOnce() throws {
        let flow = try ConnectFlow()
        let starter = TestTokens.user("user-anna", organizations: [42])
        let page = try flow.authorize("enphase", token: starter)
        #expect(page.status == 200)
        // Someone else, even of the same organisation, holding the page's completion code.
        let other = try flow.complete(page, token: TestTokens.user("user-mallory", organizations: [42]))
        #expect(other.status == 403 && other.errorCode == "forbidden")
        #expect(try flow.credentials().count == 0)
        // A code nobody issued.
        let unknown = try flow.harness.json("POST", "/oauth/complete", ["completion": "not-a-code"], token: starter)
        #expect(unknown.status == 410)
        // The starter, once; a second completion finds nothing.
        #expect(try flow.complete(page, token: starter).status == 200)
        #expect(try flow.complete(page, token: starter).status == 410)
        #expect(try flow.credentials().count == 1)
        // A starter whose token no longer grants the organisation.
        let revoked = try flow.authorize("sma", token: starter)
        #expect(try flow.complete(revoked, token: TestTokens.user("user-anna", organizations: [8])).status == 403)
        #expect(try flow.credentials().count == 1)
    }

    @Test func aReplayedStateIsRefusedAndTheCodeNotRedeemedTwice() throws {
        let flow = try ConnectFlow()
        let started = try flow.start("sma")
        let query = try flow.consent(try #require(started.json["authorization_url"] as? String))
        let first = try flow.callback(query)
        #expect(first.status == 200)
        let replay = try flow.callback(query)
        #expect(replay.status == 409)
        #expect(try ConnectFlow.message(replay.body)["error"].flatMap { ($0 as? [String: Any])?["code"] as? String } == "state_used")
        #expect(try ConnectFlow.message(replay.body)["completion"] == nil)
        #expect(replay.body.contains("already used"))
        #expect(try flow.exchanges().count == 1, "the replay must not reach the vendor")
        #expect(try flow.complete(first).status == 200)
        #expect(try flow.credentials().count == 1)
    }

    @Test func tamperedExpiredAndOtherVendorStatesAreRefusedBeforeTheVendor() throws {
        let flow = try ConnectFlow()
        let started = try flow.start("enphase")
        let query = try flow.consent(try #require(started.json["authorization_url"] as? String))
        let state = try #require(started.json["state"] as? String)
        let encodedState = PercentEncoding.encode(state)
        let code = String(query.split(separator: "&").first { $0.hasPrefix("code=") }!.dropFirst(5))

        // One character of the signed payload changed.
        var tampered = Array(state)
        tampered[3] = tampered[3] == "A" ? "B" : "A"
        let answer = try flow.callback("code=\(code)&state=\(PercentEncoding.encode(String(tampered)))")
        #expect(answer.status == 400 && answer.body.contains("signature does not verify"))

        // A state signed with the right key but issued 11 minutes ago.
        let signer = try OAuthStateSigner(secret: Array("a state secret of at least thirty-two bytes, for tests".utf8))
        let old = try signer.issue(organizationID: 42, vendor: "enphase", now: Int64(Date().timeIntervalSince1970) - 660)
        let expired = try flow.callback("code=\(code)&state=\(PercentEncoding.encode(old))")
        #expect(expired.status == 400 && expired.body.contains("longer than 10 minutes"))

        // An Enphase state brought to the SMA callback path (mix-up).
        let mixed = try flow.callback("code=\(code)&state=\(encodedState)", path: "/oauth/callback/sma")
        #expect(mixed.status == 400 && mixed.body.contains("issued for enphase, not sma"))

        // A signed state whose nonce was never issued (signed with the key, not in oauth_pending).
        let forged = try signer.issue(organizationID: 42, vendor: "enphase", now: Int64(Date().timeIntervalSince1970))
        #expect(try flow.callback("code=\(code)&state=\(PercentEncoding.encode(forged))").status == 409)

        // Nothing reached the vendor and nothing was stored; the real state still works once.
        #expect(try flow.exchanges().isEmpty)
        #expect(try flow.credentials().count == 0)
        #expect(try flow.callback(query, path: "/oauth/callback/enphase").status == 200)
        // HEAD is no GET: a link checker cannot spend a state.
        #expect(try flow.harness.request("HEAD", "/oauth/callback", query: query).status == 405)
    }

    @Test func onlyAGrantedOrganisationAndAValidTokenStartAFlow() throws {
        let flow = try ConnectFlow()
        let other = try flow.start("enphase", organization: 7, token: TestTokens.user(organizations: [42]))
        #expect(other.status == 403 && other.errorCode == "forbidden")
        let now = Int64(Date().timeIntervalSince1970)
        let refused: [(String?, String)] = [
            (nil, "no token"),
            (TestTokens.user(organizations: [42], now: now - 7200), "expired"),
            (TestTokens.hs256(#"{"sub":"u","aud":"authenticated","exp":\#(now + 600),"app_metadata":{"organization_id":42}}"#,
                              secret: "a forged secret that is long enough to look right"), "forged"),
            (try TestTokens.fixture("alg_none"), "alg none"),
            (TestTokens.user(organizations: [42], audience: "anon"), "wrong audience"),
            ("not-a-jwt", "garbage"),
        ]
        for (token, why) in refused {
            let answer = try flow.start("enphase", token: token)
            #expect(answer.status == 401 && answer.errorCode == "unauthorized", "\(why): \(answer.body)")
            #expect(answer.headers["www-authenticate"]?.hasPrefix("Bearer") == true)
        }
        // The organisation in user_metadata (the user's own to edit) grants nothing.
        let selfGranted = TestTokens.hs256(#"{"sub":"u","aud":"authenticated","exp":\#(now + 600),"user_metadata":{"organization_id":42}}"#)
        #expect(try flow.start("enphase", token: selfGranted).status == 403)
        #expect(try flow.start("solaredge").status == 422)
        #expect(try flow.start("enphase", organization: 99, token: TestTokens.user(organizations: [99])).status == 404)
        #expect(try flow.database.connect().query("SELECT count(*) AS n FROM oauth_pending")[0, "n"] == "0")
    }

    @Test func aDeniedConsentARefusedCodeAndAForeignRedirectURIStoreNothing() throws {
        let flow = try ConnectFlow()
        // Denied at the consent page.
        try flow.vendors.control(["sma": ["consent": ["grant": false]]])
        let denied = try flow.authorize("sma")
        #expect(denied.status == 403 && denied.body.contains("You declined access at SMA"))
        #expect(try ConnectFlow.message(denied.body)["status"] as? String == "error")
        try flow.vendors.control(["sma": ["consent": ["grant": true]]])

        // A code the vendor does not know.
        let started = try flow.start("sma")
        let query = try flow.consent(try #require(started.json["authorization_url"] as? String))
        let forgedCode = query.replacingOccurrences(of: "code=sma-code-", with: "code=sma-code-0")
        let refused = try flow.callback(forgedCode)
        #expect(refused.status == 400 && refused.body.contains("refused the authorization code"))
        // Its state is spent: the genuine code cannot follow with it.
        #expect(try flow.callback(query).status == 409)

        // A code issued for another registered redirect URI: the exchange repeats ours, the vendor refuses.
        let next = try flow.start("sma")
        let url = try #require(next.json["authorization_url"] as? String)
        let elsewhere = url.replacingOccurrences(of: PercentEncoding.encode(ConnectFlow.redirectURI), with: PercentEncoding.encode(ConnectFlow.otherRegisteredURI))
        let mismatch = try flow.callback(try flow.consent(elsewhere))
        #expect(mismatch.status == 400 && mismatch.body.contains("refused the authorization code"))
        #expect(try flow.exchanges().last?["outcome"] as? String == "redirect_uri mismatch")
        #expect(try flow.credentials().count == 0)
    }

    @Test func hostileInputIsEscapedBoundedAndRefused() throws {
        let flow = try ConnectFlow()
        let started = try flow.start("enphase")
        let query = try flow.consent(try #require(started.json["authorization_url"] as? String))
        // A vendor name from the path is echoed escaped: no markup in the text, none in the script.
        let hostile = try flow.callback(query, path: "/oauth/callback/<b>x<img src=y>")
        #expect(hostile.status == 400)
        #expect(hostile.body.contains("not &lt;b&gt;x&lt;img src=y&gt;") && !hostile.body.contains("<b>") && !hostile.body.contains("<img"))
        let script = String(hostile.body[hostile.body.range(of: "var message = ")!.upperBound...].prefix { $0 != "\n" })
        #expect(!script.contains("<") && script.contains("\\u003cb\\u003e"))
        // A code longer than any vendor's is refused before the vendor is asked.
        let long = try flow.callback("code=\(String(repeating: "c", count: 3000))&state=\(PercentEncoding.encode(try #require(started.json["state"] as? String)))")
        #expect(long.status == 400 && long.body.contains("too long"))
        #expect(try flow.exchanges().isEmpty)
        // Only the Bearer scheme carries a token; a repeated parameter is a bad query.
        let basic = try flow.harness.request("POST", "/oauth/state", headers: ["authorization": "Basic " + TestTokens.user(organizations: [42]),
                                                                             "content-type": "application/json"],
                                             body: Array(#"{"vendor":"enphase","organization_id":42}"#.utf8))
        #expect(basic.status == 401)
        #expect(try flow.callback("state=a&state=b").errorCode == "bad_query")
    }

    @Test func aPendingRowServesOnlyItsOrganisationAndOnlyForElevenMinutes() throws {
        let flow = try ConnectFlow()
        let signer = try OAuthStateSigner(secret: Array("a state secret of at least thirty-two bytes, for tests".utf8))
        let connection = try flow.database.connect()
        let now = Int64(Date().timeIntervalSince1970)
        // A nonce recorded 11 minutes ago, with a freshly signed state: the row has expired.
        let oldNonce = Array("nonce-from-11-min".utf8)
        try connection.query("""
            INSERT INTO oauth_pending (nonce, organization_id, data_source_id, user_id, code_verifier, created_at)
            VALUES ($1, 42, 2, 'user-1', 'v', now() - interval '11 minutes')
            """, [Base64.encodeURLSafe(oldNonce)])
        let stale = try signer.issue(organizationID: 42, vendor: "enphase", now: now, nonce: oldNonce)
        #expect(try flow.callback("code=x&state=\(PercentEncoding.encode(stale))").status == 409)
        // A nonce recorded for organisation 42, in a state signed for organisation 7.
        let nonce = Array("nonce-of-org-42!!".utf8)
        try connection.query("INSERT INTO oauth_pending (nonce, organization_id, data_source_id, user_id, code_verifier) VALUES ($1, 42, 2, 'user-1', 'v')",
                             [Base64.encodeURLSafe(nonce)])
        let otherOrganisation = try signer.issue(organizationID: 7, vendor: "enphase", now: now, nonce: nonce)
        #expect(try flow.callback("code=x&state=\(PercentEncoding.encode(otherOrganisation))").status == 409)
        #expect(try flow.exchanges().isEmpty)
        #expect(try connection.query("SELECT count(*) AS n FROM oauth_pending WHERE used_at IS NOT NULL")[0, "n"] == "0")
    }

    @Test func aGrantWithoutRefreshTokenIsNotKept() throws {
        let flow = try ConnectFlow()
        try flow.vendors.control(["sma": ["consent": ["grant": true, "issue_refresh": false]]])
        let page = try flow.authorize("sma")
        #expect(page.status == 502 && page.body.contains("issued no refresh token"))
        let message = try ConnectFlow.message(page.body)
        #expect(message["completion"] == nil && (message["error"] as? [String: Any])?["code"] as? String == "no_refresh_token")
        #expect(try flow.database.connect().query("SELECT count(*) AS n FROM oauth_pending WHERE sealed_grant IS NOT NULL")[0, "n"] == "0")
    }

    @Test func aWildcardFrontEndOriginIsRefusedAtStart() throws {
        let database = try TestDatabase()
        let vendors = try FakeVendors()
        let harness = try WebHarness(function: "oauth-callback", database: database, settings: vendors.environment.merging([
            "METERLAKE_OAUTH_REDIRECT_URI": ConnectFlow.redirectURI, "METERLAKE_FRONTEND_ORIGIN": "*",
        ]) { $1 })
        let failure = try #require(harness.api.waitForInitError(timeout: 30))
        #expect(String(decoding: failure.body, as: UTF8.self).contains("METERLAKE_FRONTEND_ORIGIN"))
    }

    @Test func corsAndErrorsSpeakJSON() throws {
        let flow = try ConnectFlow()
        let preflight = try flow.harness.request("OPTIONS", "/oauth/state", headers: ["origin": "https://app.example.test", "access-control-request-method": "POST"])
        #expect(preflight.status == 204 && preflight.headers["access-control-allow-origin"] == "https://app.example.test")
        #expect(preflight.headers["access-control-allow-headers"]?.contains("authorization") == true)
        let foreign = try flow.harness.request("OPTIONS", "/oauth/state", headers: ["origin": "https://evil.example.test"])
        #expect(foreign.status == 403 && foreign.headers["access-control-allow-origin"] == nil)
        let missing = try flow.harness.request("GET", "/nowhere")
        #expect(missing.status == 404 && missing.errorCode == "not_found" && (missing.json["error"] as? [String: Any])?["request_id"] != nil)
        let wrongMethod = try flow.harness.request("GET", "/oauth/state")
        #expect(wrongMethod.status == 405 && wrongMethod.headers["allow"] == "POST")
        let badJSON = try flow.harness.request("POST", "/oauth/state", headers: ["authorization": "Bearer " + TestTokens.user(organizations: [42]), "content-type": "application/json"], body: Array("{".utf8))
        #expect(badJSON.status == 400 && badJSON.errorCode == "bad_json")
        let twice = try flow.callback("state=a&state=b")
        #expect(twice.status == 400)
    }
}
