import Core
import Cryptography
import Lake
import Fetching
import Logging
import Postgres
import Store
import WebAPI

/// "Connect Enphase / SMA": `POST /oauth/state` starts a flow for a signed-in user,
/// `GET /oauth/callback` finishes it in the consent popup.
///
/// Defences, in the order a callback meets them: a signed state (HMAC, 10 minutes, vendor
/// inside) checked before the database is touched; its nonce spent once, in the transaction that
/// stores the credential; the PKCE verifier kept server-side; the code redeemed once, only at the
/// token endpoint of the vendor the state names, with the exact registered redirect URI; the
/// outcome posted to the front end's origin only, from a page that loads nothing and leaks no
/// referrer.
struct OAuthCallback {
    let signer: OAuthStateSigner
    let verifier: JWTVerifier
    let database: DatabaseSettings
    let keys: EnvelopeKeys
    let zones: ZoneDatabase
    let caBundlePath: String?
    let redirectURI: String
    let frontendOrigin: String
    /// The OAuth vendors this deployment has an application for.
    let drivers: [SourceSystem: any VendorDriver]
    let clock: @Sendable () -> Int64

    init(environment: Environment) throws(ConfigurationError) {
        signer = try OAuthStateSigner(environment: environment)
        verifier = try JWTVerifier(environment: environment)
        database = try DatabaseSettings(environment: environment)
        keys = try EnvelopeKeys(environment: environment)
        zones = ZoneDatabase.standard(environment: environment)
        try zones.verify()
        caBundlePath = S3Configuration.caBundle(environment: environment)
        redirectURI = try environment.require("METERLAKE_OAUTH_REDIRECT_URI")
        guard redirectURI.hasPrefix("https://") || redirectURI.hasPrefix("http://127.0.0.1") || redirectURI.hasPrefix("http://localhost") else {
            throw .invalid(name: "METERLAKE_OAUTH_REDIRECT_URI", reason: "must be an https:// URL (http:// only on localhost)")
        }
        frontendOrigin = try environment.require("METERLAKE_FRONTEND_ORIGIN")
        guard Self.isOrigin(frontendOrigin) else {
            throw .invalid(name: "METERLAKE_FRONTEND_ORIGIN", reason: "must be an origin: scheme://host[:port], no path, not *")
        }
        var drivers: [SourceSystem: any VendorDriver] = [:]
        if let clientID = environment["ENPHASE_CLIENT_ID"] {
            drivers[.enphase] = EnphaseDriver(
                baseURL: try environment.url("ENPHASE_API_BASE_URL", default: "https://api.enphaseenergy.com/api/v4/"),
                authBaseURL: try environment.url("ENPHASE_AUTH_BASE_URL", default: "https://api.enphaseenergy.com/"),
                apiKey: try environment.require("ENPHASE_API_KEY"), clientID: clientID, clientSecret: try environment.require("ENPHASE_CLIENT_SECRET"))
        }
        if let clientID = environment["SMA_CLIENT_ID"] {
            drivers[.sma] = SMADriver(
                baseURL: try environment.url("SMA_API_BASE_URL", default: "https://monitoring.smaapis.de/v1/"),
                authBaseURL: try environment.url("SMA_AUTH_BASE_URL", default: "https://auth.smaapis.de/"),
                clientID: clientID, clientSecret: try environment.require("SMA_CLIENT_SECRET"))
        }
        guard !drivers.isEmpty else { throw .missing(name: "ENPHASE_CLIENT_ID or SMA_CLIENT_ID (no OAuth vendor is configured)") }
        self.drivers = drivers
        clock = WallClock.milliseconds
    }

    static func isOrigin(_ text: String) -> Bool {
        let host: Substring
        if text.hasPrefix("https://") {
            host = text.dropFirst(8)
        } else if text.hasPrefix("http://") {
            host = text.dropFirst(7)
        } else {
            return false
        }
        let forbidden: Set<Unicode.Scalar> = ["/", "*", "\"", "'", "<", ">", "\\", "?", "#", "@"]
        return !host.isEmpty && !host.unicodeScalars.contains { scalar in scalar.value <= 0x20 || scalar.value >= 0x7F || forbidden.contains(scalar) }
    }

    var function: WebFunction {
        WebFunction(name: "oauth-callback", routes: [
            Route("POST", "/oauth/state", issueState),
            Route("GET", "/oauth/callback", callback),
            Route("GET", "/oauth/callback/{vendor}", callback),
        ], allowedOrigin: frontendOrigin, verifier: verifier, maximumBodyBytes: 4096, clock: clock)
    }

    // MARK: POST /oauth/state

    func issueState(_ context: RouteContext) throws -> WebResponse {
        let user = try context.user()
        let body = try context.request.jsonBody()
        guard case .string(let vendorName)? = body["vendor"] else { throw APIError.badRequest("vendor is required: \"enphase\" or \"sma\"") }
        guard let vendor = SourceSystem(rawValue: vendorName), let driver = drivers[vendor], let client = driver.oauth else {
            let offered = drivers.keys.map(\.rawValue).sorted().joined(separator: ", ")
            throw APIError(status: 422, code: "unknown_vendor", message: "vendor \(vendorName.prefix(40)) cannot be connected here (offered: \(offered))")
        }
        guard let organizationText = body["organization_id"]?.text, let organizationID = Int64(organizationText), organizationID > 0 else {
            throw APIError.badRequest("organization_id is required: a positive integer")
        }
        _ = try context.organization(organizationID, of: user)
        let nonce = SecureRandom.bytes(16)
        let state = try signer.issue(organizationID: organizationID, vendor: vendor.rawValue, now: context.now, nonce: nonce)
        let codeVerifier = PKCE.verifier()
        do {
            try OAuthPending(connection: try database.connect()).record(
                nonce: Base64.encodeURLSafe(nonce), organizationID: organizationID, vendor: vendor, userID: user.subject, codeVerifier: codeVerifier)
        } catch IntegrationsError.noOrganization(let id) {
            throw APIError.notFound("organisation \(id) does not exist")
        }
        context.lambda.logger.info("oauth flow started", metadata: [
            "organizationId": .stringConvertible(organizationID), "vendor": .string(vendor.rawValue), "user": .string(String(user.subject.prefix(64))),
        ])
        return .json(.object([
            JSONMember("state", .string(state)),
            JSONMember("authorization_url", .string(client.authorizationURL(redirectURI: redirectURI, state: state, codeChallenge: PKCE.challenge(for: codeVerifier)))),
            JSONMember("expires_at", .string(Timestamp.rfc3339(seconds: context.now + OAuthStateSigner.maximumAge, nanoseconds: 0, zoned: true))),
        ]))
    }

    // MARK: GET /oauth/callback

    func callback(_ context: RouteContext) throws -> WebResponse {
        let query = context.request.query
        var outcome = Outcome(vendor: nil, organizationID: nil)
        do {
            outcome = try connect(query: query, routeVendor: context.parameters["vendor"], context: context)
        } catch let failure as Failure {
            outcome.failure = failure
            outcome.vendor = failure.vendor
            outcome.organizationID = failure.organizationID
        }
        var metadata: Logger.Metadata = ["outcome": .string(outcome.failure?.code ?? "connected")]
        if let vendor = outcome.vendor { metadata["vendor"] = .string(vendor.rawValue) }
        if let organizationID = outcome.organizationID { metadata["organizationId"] = .stringConvertible(organizationID) }
        if let id = outcome.credentialID { metadata["credentialId"] = .stringConvertible(id) }
        if let failure = outcome.failure { metadata["reason"] = .string(failure.message) }
        if let sites = outcome.sites { metadata["sites"] = .stringConvertible(sites.count) }
        if let error = outcome.discoveryError { metadata["discoveryError"] = .string(error) }
        if outcome.failure == nil || outcome.failure?.status == 403 {
            context.lambda.logger.info("oauth callback", metadata: metadata)
        } else {
            context.lambda.logger.warning("oauth callback refused", metadata: metadata)
        }
        return CallbackPage(outcome: outcome, frontendOrigin: frontendOrigin).response
    }

    /// Why a callback did not connect: an HTTP status, a stable code and a plain sentence.
    struct Failure: Error {
        var status: Int
        var code: String
        var message: String
        var vendor: SourceSystem?
        var organizationID: Int64?
    }

    struct Outcome {
        var vendor: SourceSystem?
        var organizationID: Int64?
        var credentialID: Int64?
        var replaced = false
        var sites: [RegisteredSite]?
        var discoveryError: String?
        var failure: Failure?
    }

    private func connect(query: [String: String], routeVendor: String?, context: RouteContext) throws -> Outcome {
        guard let state = query["state"], !state.isEmpty else {
            throw Failure(status: 400, code: "missing_state", message: "The link has no state. Start the connection again from the app.")
        }
        // The signature and age first: garbage never reaches the database.
        let payload: OAuthStatePayload
        do {
            payload = try signer.verify(state, now: context.now)
        } catch .expired {
            throw Failure(status: 400, code: "expired_state", message: "The connection took longer than 10 minutes. Start it again from the app.")
        } catch {
            throw Failure(status: 400, code: "invalid_state", message: "The link's state is not valid (\(error.description)). Start the connection again from the app.")
        }
        guard let vendor = SourceSystem(rawValue: payload.vendor), let driver = drivers[vendor], let client = driver.oauth else {
            throw Failure(status: 400, code: "invalid_state", message: "The state names a vendor that cannot be connected here.")
        }
        // Mix-up defence: a per-vendor callback path must match the state's vendor.
        if let routeVendor, routeVendor != vendor.rawValue {
            throw Failure(status: 400, code: "invalid_state", message: "The state was issued for \(vendor.rawValue), not \(routeVendor.prefix(20)).",
                          vendor: vendor, organizationID: payload.organizationID)
        }
        let failure = { (status: Int, code: String, message: String) in
            Failure(status: status, code: code, message: message, vendor: vendor, organizationID: payload.organizationID)
        }
        let deniedCode = query["error"].map { String($0.prefix(40).filter { $0.isLetter || $0 == "_" }) }
        guard deniedCode != nil || !(query["code"] ?? "").isEmpty else {
            throw failure(400, "missing_code", "The vendor sent no authorization code. Start the connection again from the app.")
        }
        guard (query["code"] ?? "").utf8.count <= 2048 else { throw failure(400, "invalid_code", "The authorization code is too long.") }

        var outcome = Outcome(vendor: vendor, organizationID: payload.organizationID)
        var plaintext: [UInt8]?
        let connector = Connector(driver: driver, database: database, keys: keys, zones: zones, caBundlePath: caBundlePath)
        let connection = try database.connect()
        // The nonce is spent and the credential stored in one transaction. The nonce is spent on
        // every outcome (a refused or denied code too): one state, one attempt.
        let result: Result<Void, Failure> = try connection.transaction {
            guard let pending = try OAuthPending(connection: connection).consume(nonce: payload.nonce, organizationID: payload.organizationID, vendor: vendor) else {
                return .failure(failure(409, "state_used", "This connection link was already used (or has expired). Start the connection again from the app."))
            }
            if let deniedCode {
                return deniedCode == "access_denied"
                    ? .failure(failure(403, "access_denied", "You declined access at \(client.vendor). Nothing was connected."))
                    : .failure(failure(502, "vendor_error", "\(client.vendor) reported an error (\(deniedCode)). Nothing was connected."))
            }
            let grant: OAuthGrant
            do {
                grant = try client.exchange(code: query["code"]!, redirectURI: redirectURI, codeVerifier: pending.codeVerifier,
                                            caBundlePath: caBundlePath, now: clock() / 1000)
            } catch VendorError.credentialRefused(let reason) {
                return .failure(failure(400, "code_refused", reason))
            } catch {
                return .failure(failure(502, "vendor_unavailable", "\(error)"))
            }
            plaintext = grant.plaintext
            let stored = try connector.store(plaintext: grant.plaintext, organizationID: payload.organizationID, authType: "oauth2",
                                             expiresAt: grant.expiresAt, connectedBy: pending.userID, on: connection)
            outcome.credentialID = stored.id
            outcome.replaced = stored.replaced
            return .success(())
        }
        if case .failure(let failure) = result { throw failure }
        // Sites are listed after the commit: the credential is kept even when listing fails (the
        // fetcher's next run lists them again).
        if let id = outcome.credentialID, let plaintext {
            let remaining = { context.lambda.remainingTime - .seconds(2) }
            (outcome.sites, outcome.discoveryError) = try connector.discover(
                credentialID: id, organizationID: payload.organizationID, plaintext: plaintext, timeLeft: remaining)
        }
        return outcome
    }
}

/// The popup's last page: a sentence for the person, and a message for the window that opened it,
/// posted to the front end's origin only; then the popup closes itself.
struct CallbackPage {
    let outcome: OAuthCallback.Outcome
    let frontendOrigin: String

    var message: JSONValue {
        var members = [JSONMember("type", .string("meterlake:oauth")),
                       JSONMember("status", .string(outcome.failure == nil ? "connected" : "error"))]
        if let vendor = outcome.vendor { members.append(JSONMember("vendor", .string(vendor.rawValue))) }
        if let organizationID = outcome.organizationID { members.append(JSONMember("organization_id", .number(String(organizationID)))) }
        if let id = outcome.credentialID { members.append(JSONMember("credential_id", .number(String(id)))) }
        if outcome.failure == nil {
            members.append(JSONMember("reconnected", .bool(outcome.replaced)))
            members.append(JSONMember("sites", .array((outcome.sites ?? []).map { site in
                .object([JSONMember("external_site_id", .string(site.externalSiteID)), JSONMember("name", site.name.map(JSONValue.string) ?? .null),
                         JSONMember("active", .bool(site.inactiveReason == nil))])
            })))
            if let error = outcome.discoveryError { members.append(JSONMember("discovery_error", .string(error))) }
        }
        if let failure = outcome.failure {
            members.append(JSONMember("error", .object([JSONMember("code", .string(failure.code)), JSONMember("message", .string(failure.message))])))
        }
        return .object(members)
    }

    var response: WebResponse {
        let nonce = Base64.encodeURLSafe(SecureRandom.bytes(16))
        let vendorName = outcome.vendor.map { $0 == .sma ? "SMA" : $0 == .enphase ? "Enphase" : $0.rawValue } ?? "the vendor"
        let title: String
        let text: String
        if let failure = outcome.failure {
            title = "Not connected"
            text = failure.message
        } else {
            let count = outcome.sites?.count
            title = "\(vendorName) connected"
            text = "Your \(vendorName) account is connected" + (count.map { " with \($0) site\($0 == 1 ? "" : "s")" } ?? "")
                + ". You can close this window."
        }
        let page = """
            <!doctype html>
            <html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
            <title>\(Self.escapeHTML(title))</title>
            <style>body{font:16px/1.5 system-ui,sans-serif;margin:3em auto;max-width:32em;padding:0 1em}</style></head>
            <body><h1>\(Self.escapeHTML(title))</h1><p>\(Self.escapeHTML(text))</p>
            <script nonce="\(nonce)">
            (function () {
              var message = \(Self.scriptJSON(message));
              if (window.opener) { window.opener.postMessage(message, \(Self.scriptJSON(.string(frontendOrigin)))); }
              setTimeout(function () { window.close(); }, 1500);
            })();
            </script></body></html>
            """
        return .html(page, status: outcome.failure?.status ?? 200, scriptNonce: nonce)
    }

    static func escapeHTML(_ text: String) -> String {
        var out = ""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out
    }

    /// JSON that is safe inside a `<script>` element: `<`, `>`, `&` and the JS line separators escaped.
    static func scriptJSON(_ value: JSONValue) -> String {
        var out = ""
        for scalar in value.serialized.unicodeScalars {
            switch scalar {
            case "<": out += "\\u003c"
            case ">": out += "\\u003e"
            case "&": out += "\\u0026"
            case "\u{2028}": out += "\\u2028"
            case "\u{2029}": out += "\\u2029"
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out
    }
}
