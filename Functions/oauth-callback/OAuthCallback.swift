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
        guard Self.isSecure(redirectURI) else {
            throw .invalid(name: "METERLAKE_OAUTH_REDIRECT_URI", reason: "must be an https:// URL (http:// only on localhost or 127.0.0.1)")
        }
        frontendOrigin = try environment.require("METERLAKE_FRONTEND_ORIGIN")
        guard Self.isOrigin(frontendOrigin), Self.isSecure(frontendOrigin) else {
            throw .invalid(name: "METERLAKE_FRONTEND_ORIGIN", reason: "must be an https origin: https://host[:port], no path, not * (http only on localhost)")
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

    /// https, or http on the loopback host exactly (`http://localhost.evil.example` is not local).
    static func isSecure(_ url: String) -> Bool {
        if url.hasPrefix("https://") { return true }
        guard url.hasPrefix("http://") else { return false }
        let authority = url.dropFirst(7).prefix { $0 != "/" && $0 != "?" && $0 != "#" }
        let host = authority.split(separator: ":", maxSplits: 1).first.map(String.init) ?? ""
        return host == "localhost" || host == "127.0.0.1"
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
            Route("POST", "/oauth/complete", complete),
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
        } catch IntegrationsError.tooManyFlows(let limit) {
            throw APIError(status: 429, code: "too_many_flows", message: "more than \(limit) connections were started in ten minutes; wait a little")
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
            outcome = try authorize(query: query, routeVendor: context.parameters["vendor"], context: context)
        } catch let failure as Failure {
            outcome.failure = failure
            outcome.vendor = failure.vendor
            outcome.organizationID = failure.organizationID
        }
        var metadata: Logger.Metadata = ["outcome": .string(outcome.failure?.code ?? "authorized")]
        if let vendor = outcome.vendor { metadata["vendor"] = .string(vendor.rawValue) }
        if let organizationID = outcome.organizationID { metadata["organizationId"] = .stringConvertible(organizationID) }
        if let failure = outcome.failure { metadata["reason"] = .string(failure.detail ?? failure.message) }
        if outcome.failure == nil || outcome.failure?.status == 403 {
            context.lambda.logger.info("oauth callback", metadata: metadata)
        } else {
            context.lambda.logger.warning("oauth callback refused", metadata: metadata)
        }
        return CallbackPage(outcome: outcome, frontendOrigin: frontendOrigin).response
    }

    /// Why a callback did not connect: an HTTP status, a stable code and a plain sentence (and,
    /// for the log only, what exactly failed).
    struct Failure: Error {
        var status: Int
        var code: String
        var message: String
        var vendor: SourceSystem?
        var organizationID: Int64?
        var detail: String?
    }

    struct Outcome {
        var vendor: SourceSystem?
        var organizationID: Int64?
        /// The one-time code the page hands its opener; the web app completes the flow with it.
        var completion: String?
        var failure: Failure?
    }

    /// Checks the state, spends its nonce, redeems the code and holds the sealed tokens for the
    /// completion step.
    private func authorize(query: [String: String], routeVendor: String?, context: RouteContext) throws -> Outcome {
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
        let failure = { (status: Int, code: String, message: String, detail: String?) in
            Failure(status: status, code: code, message: message, vendor: vendor, organizationID: payload.organizationID, detail: detail)
        }
        let deniedCode = query["error"].map { String($0.prefix(40).filter { $0.isLetter || $0 == "_" }) }
        guard deniedCode != nil || !(query["code"] ?? "").isEmpty else {
            throw failure(400, "missing_code", "The vendor sent no authorization code. Start the connection again from the app.", nil)
        }
        guard (query["code"] ?? "").utf8.count <= 2048 else { throw failure(400, "invalid_code", "The authorization code is too long.", nil) }

        // The nonce is spent first, in its own committed statement, whatever happens next (a
        // refused, denied or failed code too): one state, one attempt, and no lock held while the
        // vendor is called.
        let pending = OAuthPending(connection: try database.connect())
        guard let codeVerifier = try pending.consume(nonce: payload.nonce, organizationID: payload.organizationID, vendor: vendor) else {
            throw failure(409, "state_used", "This connection link was already used (or has expired). Start the connection again from the app.", nil)
        }
        if let deniedCode {
            throw deniedCode == "access_denied"
                ? failure(403, "access_denied", "You declined access at \(client.vendor). Nothing was connected.", nil)
                : failure(502, "vendor_error", "\(client.vendor) reported an error (\(deniedCode)). Nothing was connected.", nil)
        }
        let grant: OAuthGrant
        do {
            grant = try client.exchange(code: query["code"]!, redirectURI: redirectURI, codeVerifier: codeVerifier, caBundlePath: caBundlePath,
                                        now: clock() / 1000)
        } catch .failed(let reason) where reason.contains("issued no refresh token") {
            throw failure(502, "no_refresh_token", "\(client.vendor) issued no refresh token, so the connection could not be kept: nothing was connected. The application must ask for offline access.", reason)
        } catch .credentialRefused(let reason) {
            throw failure(400, "code_refused", "\(client.vendor) refused the authorization code: it was used already, expired, or issued for another request. Start the connection again from the app.", reason)
        } catch {
            throw failure(502, "vendor_unavailable", "\(client.vendor) could not be reached to finish the connection. Start it again in a few minutes.", error.description)
        }
        // The tokens wait, sealed, for the user who started the flow to complete it from the app
        // (POST /oauth/complete with the code below): a flow finished in someone else's browser
        // connects nothing.
        let completion = Base64.encodeURLSafe(SecureRandom.bytes(32))
        try pending.hold(nonce: payload.nonce, envelope: try CredentialEnvelope.seal(grant.plaintext, keys: keys), tokenExpiresAt: grant.expiresAt,
                         completionHash: Hex.encode(SHA256.hash(Array(completion.utf8))))
        return Outcome(vendor: vendor, organizationID: payload.organizationID, completion: completion)
    }

    // MARK: POST /oauth/complete

    /// The web app completes a flow with the code its popup posted: the same user who started it,
    /// an organisation the token still grants, within ten minutes of the callback. Stores the
    /// credential (replacing and reactivating an earlier one) and lists its sites.
    func complete(_ context: RouteContext) throws -> WebResponse {
        let user = try context.user()
        let body = try context.request.jsonBody()
        guard case .string(let completion)? = body["completion"], !completion.isEmpty, completion.utf8.count <= 128 else {
            throw APIError.badRequest("completion is required: the code the connect popup posted")
        }
        let connection = try database.connect()
        let (grant, stored): (OAuthPending.Grant, (id: Int64, replaced: Bool)) = try connection.transaction {
            let found: OAuthPending.Grant?
            do {
                found = try OAuthPending(connection: connection).complete(completionHash: Hex.encode(SHA256.hash(Array(completion.utf8))), userID: user.subject)
            } catch IntegrationsError.otherUser {
                throw APIError.forbidden("this connection was started by another user")
            }
            guard let grant = found else {
                throw APIError(status: 410, code: "completion_expired", message: "this connection was completed already or waited more than 10 minutes; start it again")
            }
            _ = try context.organization(grant.organizationID, of: user)
            let stored = try Integrations(connection: connection).connect(
                organizationID: grant.organizationID, vendor: grant.vendor, authType: "oauth2", envelope: grant.envelope,
                tokenExpiresAt: grant.tokenExpiresAt, connectedBy: user.subject)
            return (grant, stored)
        }
        var sites: [RegisteredSite]?
        var discoveryError: String?
        if let driver = drivers[grant.vendor] {
            // Sites are listed after the commit: the credential is kept even when listing fails (the
            // fetcher's next run lists them again).
            let connector = Connector(driver: driver, database: database, keys: keys, zones: zones, caBundlePath: caBundlePath)
            do {
                (sites, discoveryError) = try connector.discover(
                    credentialID: stored.id, organizationID: grant.organizationID, plaintext: try CredentialEnvelope.open(grant.envelope, keys: keys),
                    timeLeft: { context.lambda.remainingTime - .seconds(2) })
            } catch {
                discoveryError = "the sites could not be listed now; the next fetcher run lists them"
                context.lambda.logger.warning("site discovery after connect failed", metadata: ["error": .string(String(describing: error))])
            }
        }
        context.lambda.logger.info("oauth flow completed", metadata: [
            "organizationId": .stringConvertible(grant.organizationID), "vendor": .string(grant.vendor.rawValue),
            "credentialId": .stringConvertible(stored.id), "reconnected": .stringConvertible(stored.replaced),
            "sites": .stringConvertible(sites?.count ?? 0),
        ])
        var members = [
            JSONMember("credential_id", .number(String(stored.id))), JSONMember("vendor", .string(grant.vendor.rawValue)),
            JSONMember("organization_id", .number(String(grant.organizationID))), JSONMember("reconnected", .bool(stored.replaced)),
            JSONMember("sites", .array((sites ?? []).map { site in
                .object([JSONMember("external_site_id", .string(site.externalSiteID)), JSONMember("name", site.name.map(JSONValue.string) ?? .null),
                         JSONMember("active", .bool(site.inactiveReason == nil)),
                         JSONMember("inactive_reason", site.inactiveReason.map(JSONValue.string) ?? .null)])
            })),
        ]
        if let discoveryError { members.append(JSONMember("discovery_error", .string(discoveryError))) }
        return .json(.object(members))
    }
}

/// The popup's last page: a sentence for the person, and a message for the window that opened it,
/// posted to the front end's origin only; then the popup closes itself.
struct CallbackPage {
    let outcome: OAuthCallback.Outcome
    let frontendOrigin: String

    var message: JSONValue {
        var members = [JSONMember("type", .string("meterlake:oauth")),
                       JSONMember("status", .string(outcome.failure == nil ? "authorized" : "error"))]
        if let vendor = outcome.vendor { members.append(JSONMember("vendor", .string(vendor.rawValue))) }
        if let organizationID = outcome.organizationID { members.append(JSONMember("organization_id", .number(String(organizationID)))) }
        if let completion = outcome.completion { members.append(JSONMember("completion", .string(completion))) }
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
            title = "\(vendorName) authorised"
            text = "The meterlake window you started from finishes connecting your \(vendorName) account. This window closes by itself."
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
