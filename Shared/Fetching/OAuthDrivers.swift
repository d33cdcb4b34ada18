import Core
import HTTPClient
import Vendors

// MARK: - Enphase

/// Enphase API v4: the app's `key` on every call beside the owner's Bearer token, Basic client
/// authentication on `/oauth/token`, rotating refresh tokens (``TokenKeeper``), and a plan's
/// budget: calls a minute (paced) and a month (planned across the month's days).
public struct EnphaseDriver: VendorDriver {
    public let baseURL: String
    public let apiKey: String
    public let client: OAuthClient
    public let monthlyCalls: Int
    public let perMinute: Int
    public var source: SourceSystem { .enphase }
    public var format: String { Enphase.format }
    public var slot: Int64 { Enphase.slot }
    public var maximumWindow: Int64 { Enphase.maximumWindow }
    public var dailySiteQuota: Int? { nil }
    /// One call at a time: the plan's per-minute limit is the binding one.
    public var maximumConcurrency: Int { 1 }
    public var monthlyCredentialQuota: Int? { monthlyCalls }
    public var callsPerMinute: Int? { perMinute }
    public var oauth: OAuthClient? { client }
    /// Listing systems costs from the month's budget: once a day is enough.
    public var discoveryCallsPerDay: Int { 1 }

    /// - Parameters: the Watt plan's limits by default (10 a minute, 1,000 a month).
    public init(baseURL: String, authBaseURL: String, apiKey: String, clientID: String, clientSecret: String,
                monthlyCalls: Int = 1000, callsPerMinute: Int = 10) {
        self.baseURL = baseURL
        self.apiKey = apiKey
        self.client = OAuthClient(vendor: "Enphase", tokenURL: join(authBaseURL, "oauth/token"), authorizeURL: join(authBaseURL, "oauth/authorize"),
                                  clientID: clientID, clientSecret: clientSecret, style: .basicWithQuery)
        self.monthlyCalls = monthlyCalls
        self.perMinute = callsPerMinute
    }

    public func session(_ credential: SessionCredential, caller: VendorCaller, now: @escaping () -> Int64) throws(VendorError) -> any VendorSession {
        guard let tokens = credential.tokens else { throw .credentialRefused("Enphase needs its token keeper") }
        _ = try OAuthTokens(plaintext: credential.plaintext, vendor: "Enphase")
        return EnphaseSession(driver: self, credential: credential, tokens: tokens, caller: caller, now: now)
    }
}

/// What the OAuth sessions share: the credential, its token keeper, the caller, and the Bearer
/// exchange (a 401 refreshes the token once and the call is sent again).
class BearerSession {
    let credential: SessionCredential
    let tokens: TokenKeeper
    let caller: VendorCaller
    let now: () -> Int64
    /// Secrets of the application (an API key, the client secret), redacted beside the tokens.
    private let applicationSecrets: [String]
    private(set) var redact: Redactor

    init(credential: SessionCredential, tokens: TokenKeeper, caller: VendorCaller, now: @escaping () -> Int64, applicationSecrets: [String]) {
        self.credential = credential
        self.tokens = tokens
        self.caller = caller
        self.now = now
        self.applicationSecrets = applicationSecrets
        redact = Redactor(secrets: applicationSecrets)
    }

    /// Sends `request(token)` with a usable token; on a 401, refreshes once and sends again. Any
    /// other answer is returned; a second 401 means the owner must reconnect.
    func send(what: String, _ request: (_ token: String) -> HTTPRequest) throws(VendorError) -> HTTPResponse {
        var token = try tokens.accessToken(credentialID: credential.id, plaintext: credential.plaintext, timeLeft: caller.timeLeft())
        var refreshed = false
        while true {
            redact = Redactor(secrets: applicationSecrets + [token])
            let response = try caller.send(request(token), what: what, redact: redact)
            guard response.status == 401 else { return response }
            guard !refreshed else { throw .credentialRefused("\(what): HTTP 401 right after a token refresh: the owner must reconnect the account") }
            refreshed = true
            token = try tokens.refresh(credentialID: credential.id, stale: token, timeLeft: caller.timeLeft())
        }
    }
}

final class EnphaseSession: BearerSession, VendorSession {
    let driver: EnphaseDriver

    init(driver: EnphaseDriver, credential: SessionCredential, tokens: TokenKeeper, caller: VendorCaller, now: @escaping () -> Int64) {
        self.driver = driver
        super.init(credential: credential, tokens: tokens, caller: caller, now: now, applicationSecrets: [driver.apiKey, driver.client.clientSecret])
    }

    /// GETs `path` with the Bearer token and the app key.
    func get(_ path: String, what: String) throws(VendorError) -> (body: [UInt8], value: JSONValue) {
        let separator = path.contains("?") ? "&" : "?"
        let url = join(driver.baseURL, path) + separator + "key=" + SecretEncoding.percentEncoded(driver.apiKey)
        let response = try send(what: what) { token in
            HTTPRequest(method: .get, url: url, headers: ["Authorization": "Bearer " + token, "Accept": "application/json"])
        }
        let answer = try? JSONParser.parse(response.body)
        switch response.status {
        case 200:
            guard let answer else { throw .failed("\(what): the answer is not JSON") }
            return (response.body, answer)
        case 429:
            throw .rateLimited(until: Enphase.retryAfter(answer, now: now() / 1000),
                               reason: "Enphase plan limit (HTTP 429, per \(answer?["period"] == .string("month") ? "month" : "minute"))")
        default:
            throw .failed("\(what): HTTP \(response.status) \(caller.describe(response.body, redact: redact))")
        }
    }

    func discover() throws(VendorError) -> [DiscoveredSite]? {
        var sites: [DiscoveredSite] = []
        for page in 1...100 {
            guard caller.timeLeft() > .seconds(30) else { break }
            let (_, answer) = try get(Enphase.systemsPage(page), what: "Enphase systems")
            guard let listed = Enphase.systems(in: answer) else { throw .failed("Enphase systems: the answer has no systems list") }
            sites += listed.sites
            if listed.sites.count < Enphase.pageSize || sites.count >= listed.total { break }
        }
        return sites
    }

    /// Whether each system has a production meter: from earlier runs, or learnt from the first
    /// `production_meter` answer (422 or 404: it has none, and is not asked again).
    private var meters: [String: String] = [:]
    private(set) var learned: [String: [String: String]] = [:]

    func recall(site: String, attributes: [String: String]) {
        if let meter = attributes["meter"] { meters[site] = meter }
    }

    func callsNeeded(site: String, start: Int64, end: Int64, zone: ZoneRules) -> Int {
        Enphase.calls(system: site, start: start, end: end, meter: meters[site] != "absent").count
    }

    func fetch(site: String, start: Int64, end: Int64, zone: ZoneRules) throws(VendorError) -> [VendorAnswer] {
        var answers: [VendorAnswer] = []
        for (call, path) in Enphase.calls(system: site, start: start, end: end, meter: meters[site] != "absent") {
            if call == "production_meter", meters[site] == "absent" { continue }
            do {
                let (body, answer) = try get(path, what: "Enphase \(call)")
                answers.append(VendorAnswer(call: call, request: "GET " + path, body: body))
                if call == "production_meter", meters[site] == nil, !(answer["intervals"]?.isEmptyArray ?? true) {
                    meters[site] = "present"
                    learned[site, default: [:]]["meter"] = "present"
                }
            } catch .failed(let reason) where call == "production_meter" && (reason.contains("HTTP 422") || reason.contains("HTTP 404")) {
                meters[site] = "absent"
                learned[site, default: [:]]["meter"] = "absent"
            }
        }
        return answers
    }
}

extension JSONValue {
    var isEmptyArray: Bool {
        if case .array(let elements) = self { return elements.isEmpty }
        return false
    }
}

// MARK: - SMA

/// SMA Monitoring API: Bearer tokens that live 300 s (refreshed ahead by ``TokenKeeper``, and
/// once more on a 401), client credentials in the token request's form body, and 308 redirects
/// for plants migrated to ennexOS (followed, and the new id kept for later runs).
public struct SMADriver: VendorDriver {
    public let baseURL: String
    public let client: OAuthClient
    public var source: SourceSystem { .sma }
    public var format: String { SMA.format }
    public var slot: Int64 { SMA.slot }
    public var maximumWindow: Int64 { SMA.maximumWindow }
    public var dailySiteQuota: Int? { nil }
    /// The per-credential limit is unpublished: two at a time, and a 429 pauses the credential.
    public var maximumConcurrency: Int { 2 }
    public var oauth: OAuthClient? { client }

    public init(baseURL: String, authBaseURL: String, clientID: String, clientSecret: String) {
        self.baseURL = baseURL
        self.client = OAuthClient(vendor: "SMA", tokenURL: join(authBaseURL, "oauth2/token"), authorizeURL: join(authBaseURL, "oauth2/auth"),
                                  clientID: clientID, clientSecret: clientSecret, style: .formBody, scope: "offline_access")
    }

    /// A redirect target on the API's own scheme and host, or nil.
    public static func redirectTarget(_ location: String, from url: String) -> String? {
        func origin(_ text: String) -> String? {
            let parts = text.split(separator: "/", maxSplits: 3, omittingEmptySubsequences: false)
            guard parts.count >= 3, parts[0].hasSuffix(":"), parts[1].isEmpty else { return nil }
            return parts[0] + "//" + parts[2]
        }
        guard let base = origin(url) else { return nil }
        if location.hasPrefix("/") { return base + location }
        return origin(location) == base ? location : nil
    }

    public func session(_ credential: SessionCredential, caller: VendorCaller, now: @escaping () -> Int64) throws(VendorError) -> any VendorSession {
        guard let tokens = credential.tokens else { throw .credentialRefused("SMA needs its token keeper") }
        _ = try OAuthTokens(plaintext: credential.plaintext, vendor: "SMA")
        return SMASession(driver: self, credential: credential, tokens: tokens, caller: caller, now: now)
    }
}

final class SMASession: BearerSession, VendorSession {
    let driver: SMADriver
    private(set) var movedSites: [String: String] = [:]

    init(driver: SMADriver, credential: SessionCredential, tokens: TokenKeeper, caller: VendorCaller, now: @escaping () -> Int64) {
        self.driver = driver
        super.init(credential: credential, tokens: tokens, caller: caller, now: now, applicationSecrets: [driver.client.clientSecret])
    }

    /// GETs `path` with the Bearer token; a 308 is followed (once) when it stays on the API's
    /// host; a 429 pauses the credential for five minutes.
    func get(_ path: String, what: String) throws(VendorError) -> (body: [UInt8], value: JSONValue) {
        var url = join(driver.baseURL, path)
        var redirected = false
        var pendingMove: (old: String, new: String)?
        while true {
            let target = url
            let response = try send(what: what) { token in
                HTTPRequest(method: .get, url: target, headers: ["Authorization": "Bearer " + token, "Accept": "application/json"])
            }
            switch response.status {
            case 200:
                guard let answer = try? JSONParser.parse(response.body) else { throw .failed("\(what): the answer is not JSON") }
                // A move is kept only once its new address answered.
                if let (old, new) = pendingMove { movedSites[old] = new }
                return (response.body, answer)
            case 308 where !redirected:
                // A permanent move (a plant migrated to ennexOS): followed once, on the API's host only.
                redirected = true
                guard let location = response.headers["Location"], let next = SMADriver.redirectTarget(location, from: url) else {
                    throw .failed("\(what): HTTP 308 to a location off the API's host")
                }
                if let old = SMA.movedPlant(location: url), let new = SMA.movedPlant(location: location), old != new { pendingMove = (old, new) }
                url = next
            case 429:
                throw .rateLimited(until: now() / 1000 + 300, reason: "SMA rate limit (HTTP 429)")
            case 403:
                throw .failed("\(what): HTTP 403: no consent for this plant")
            default:
                throw .failed("\(what): HTTP \(response.status) \(caller.describe(response.body, redact: redact))")
            }
        }
    }

    func discover() throws(VendorError) -> [DiscoveredSite]? {
        let (_, answer) = try get(SMA.plantsPath, what: "SMA plants")
        guard let plants = SMA.plants(in: answer) else { throw .failed("SMA plants: the answer has no plants list") }
        return plants
    }

    func callsNeeded(site: String, start: Int64, end: Int64, zone: ZoneRules) -> Int {
        1 + 2 * LocalTime.dates(start: start, end: end, zone: zone).count
    }

    func fetch(site: String, start: Int64, end: Int64, zone: ZoneRules) throws(VendorError) -> [VendorAnswer] {
        let plant = movedSites[site] ?? site
        let devicesPath = SMA.devicesPath(plant: plant)
        let (listing, answer) = try get(devicesPath, what: "SMA devices")
        guard let inverters = SMA.inverters(in: answer) else { throw .failed("SMA devices: the answer has no devices list") }
        var answers = [VendorAnswer(call: "devices", request: "GET " + devicesPath, body: listing)]
        for date in LocalTime.dates(start: start, end: end, zone: zone) {
            for device in inverters {
                for energy in [true, false] {
                    let path = SMA.dayPath(device: device, date: date, energy: energy)
                    let (body, _) = try get(path, what: "SMA \(energy ? "energy" : "power") \(date)")
                    answers.append(VendorAnswer(call: energy ? "energy" : "power", request: "GET " + path, body: body,
                                                context: [JSONMember("device", .string(device)), JSONMember("date", .string(date))]))
                }
            }
        }
        return answers
    }
}
