import Core
import HTTPClient
import Vendors

/// One vendor, as the fetch engine sees it.
public protocol VendorDriver: Sendable {
    var source: SourceSystem { get }
    /// The envelope's `vendor_format`.
    var format: String { get }
    /// The series resolution: windows start and end on multiples of it.
    var slot: Int64 { get }
    /// The longest window one object holds (and the vendor accepts).
    var maximumWindow: Int64 { get }
    /// The daily call quota per site, if the vendor has one; planned so hourly runs stay inside it.
    var dailySiteQuota: Int? { get }
    /// The most calls in flight at once the vendor allows from one address.
    var maximumConcurrency: Int { get }
    /// Calls a credential may make in a UTC month (Enphase's plans), planned across the month's days.
    var monthlyCredentialQuota: Int? { get }
    /// Calls a minute the vendor allows (paced, not counted).
    var callsPerMinute: Int? { get }
    /// The token endpoint, for OAuth vendors: the engine keeps their tokens fresh.
    var oauth: OAuthClient? { get }
    /// Account calls (site lists) a credential may spend on discovery per UTC day.
    var discoveryCallsPerDay: Int { get }
    /// Opens a session for one credential (its plaintext, the JSON stored sealed).
    func session(_ credential: SessionCredential, caller: VendorCaller, now: @escaping () -> Int64) throws(VendorError) -> any VendorSession
}

extension VendorDriver {
    public var monthlyCredentialQuota: Int? { nil }
    public var callsPerMinute: Int? { nil }
    public var oauth: OAuthClient? { nil }
    public var discoveryCallsPerDay: Int { 100 }
}

/// What a session is opened with.
public struct SessionCredential: Sendable {
    public var id: Int64
    public var plaintext: [UInt8]
    /// The shared token keeper of an OAuth vendor.
    public var tokens: TokenKeeper?

    public init(id: Int64, plaintext: [UInt8], tokens: TokenKeeper?) {
        self.id = id
        self.plaintext = plaintext
        self.tokens = tokens
    }
}

/// A credential's conversation with its vendor during one invocation.
public protocol VendorSession: AnyObject {
    /// Secrets of this credential, for redaction.
    var redact: Redactor { get }
    /// The sites the credential sees, or `nil` when it cannot list them (a SolarEdge site key).
    func discover() throws(VendorError) -> [DiscoveredSite]?
    /// One site the credential can read, by id (a SolarEdge site key cannot list its site, but can
    /// read it); nil when the vendor has no such call.
    /// - Throws: ``VendorError/credentialRefused(_:)`` when the credential cannot read the site.
    func site(_ id: String) throws(VendorError) -> DiscoveredSite?
    /// Calls one window of a site will take.
    func callsNeeded(site: String, start: Int64, end: Int64, zone: ZoneRules) -> Int
    /// Fetches one window; the answers are kept verbatim. `site` is the id the vendor answers to.
    func fetch(site: String, start: Int64, end: Int64, zone: ZoneRules) throws(VendorError) -> [VendorAnswer]
    /// Sites the vendor said moved during this session (old id → new id: SMA's 308).
    var movedSites: [String: String] { get }
    /// Hands the session what earlier runs learnt of a site, before its windows are fetched.
    func recall(site: String, attributes: [String: String])
    /// What this session learnt of sites, to keep for later runs (site → attributes).
    var learned: [String: [String: String]] { get }
}

extension VendorSession {
    public func site(_ id: String) throws(VendorError) -> DiscoveredSite? { nil }
    public var movedSites: [String: String] { [:] }
    public func recall(site: String, attributes: [String: String]) {}
    public var learned: [String: [String: String]] { [:] }
}

/// A base URL joined with a relative path, keeping the base's own path (interfaces.md).
func join(_ base: String, _ path: String) -> String {
    (base.hasSuffix("/") ? base : base + "/") + (path.hasPrefix("/") ? String(path.dropFirst()) : path)
}

/// The start of the next UTC day after `now` (Unix seconds): SolarEdge's quota period.
func nextUTCMidnight(after now: Int64) -> Int64 { (now / 86_400 + 1) * 86_400 }

/// Reads a credential's plaintext JSON object, naming the members it lacks (never their values).
func credentialMembers(_ plaintext: [UInt8], vendor: String, required: [String]) throws(VendorError) -> [String: String] {
    guard let value = try? JSONParser.parse(plaintext), case .object(let members) = value else {
        throw .credentialRefused("the stored \(vendor) credential is not a JSON object")
    }
    var found: [String: String] = [:]
    for member in members {
        if case .string(let text) = member.value { found[member.key] = text }
    }
    let missing = required.filter { (found[$0] ?? "").isEmpty }
    guard missing.isEmpty else {
        throw .credentialRefused("the stored \(vendor) credential lacks \(missing.joined(separator: ", "))")
    }
    return found
}

// MARK: - SolarEdge

/// SolarEdge: `api_key` in the query of every call; 403 for a bad key or too long a window; 429
/// when a quota is spent (then nothing more with that key until the next UTC day).
public struct SolarEdgeDriver: VendorDriver {
    public let baseURL: String
    public var source: SourceSystem { .solarEdge }
    public var format: String { SolarEdge.format }
    public var slot: Int64 { SolarEdge.slot }
    public var maximumWindow: Int64 { SolarEdge.maximumWindow }
    public var dailySiteQuota: Int? { SolarEdge.dailyQuota }
    /// SolarEdge: three concurrent calls per source address.
    public var maximumConcurrency: Int { 3 }

    public init(baseURL: String) { self.baseURL = baseURL }

    public func session(_ credential: SessionCredential, caller: VendorCaller, now: @escaping () -> Int64) throws(VendorError) -> any VendorSession {
        let members = try credentialMembers(credential.plaintext, vendor: "SolarEdge", required: ["api_key"])
        return SolarEdgeSession(baseURL: baseURL, key: members["api_key"]!, caller: caller, now: now)
    }
}

final class SolarEdgeSession: VendorSession {
    let baseURL: String
    let key: String
    let caller: VendorCaller
    let now: () -> Int64
    let redact: Redactor

    init(baseURL: String, key: String, caller: VendorCaller, now: @escaping () -> Int64) {
        self.baseURL = baseURL
        self.key = key
        self.caller = caller
        self.now = now
        self.redact = Redactor(secrets: [key])
    }

    /// GETs `call` and returns its JSON body, verbatim and parsed. A 401/403 refuses the credential
    /// only for calls without a site (`/sites/list`); for a site it may mean "no access to this
    /// site" or "window too long", and fails that site alone.
    private func get(_ call: SolarEdge.Call) throws(VendorError) -> (body: [UInt8], value: JSONValue) {
        let separator = call.path.contains("?") ? "&" : "?"
        let url = join(baseURL, call.path) + separator + "api_key=" + SecretEncoding.percentEncoded(key)
        let what = "SolarEdge \(call.name)"
        let response = try caller.send(HTTPRequest(method: .get, url: url, headers: ["Accept": "application/json"]), what: what, redact: redact)
        switch response.status {
        case 200:
            guard let value = try? JSONParser.parse(response.body) else {
                throw .failed("\(what): the answer is not JSON (\(caller.describe(response.body, redact: redact)))")
            }
            return (response.body, value)
        case 429:
            throw .rateLimited(until: nextUTCMidnight(after: now() / 1000), reason: "SolarEdge quota spent (HTTP 429 on \(call.name))")
        case 401 where call.name == "sites", 403 where call.name == "sites":
            throw .credentialRefused("\(what): HTTP \(response.status): the key is invalid or not an account key")
        case 401, 403:
            throw .failed("\(what): HTTP \(response.status): the key is invalid, lacks access to the site, or the window is too long")
        default:
            throw .failed("\(what): HTTP \(response.status) \(caller.describe(response.body, redact: redact))")
        }
    }

    func discover() throws(VendorError) -> [DiscoveredSite]? {
        var sites: [DiscoveredSite] = []
        var start = 0
        while true {
            // Listing is best effort: it stops short of the deadline and of 10,000 sites.
            guard caller.timeLeft() > .seconds(30), sites.count < 10_000 else { return sites }
            let page: (body: [UInt8], value: JSONValue)
            do {
                page = try get(SolarEdge.sitesList(startIndex: start))
            } catch .credentialRefused {
                // A site key cannot list sites: its sites are registered by hand.
                return start == 0 ? nil : sites
            }
            guard let listed = SolarEdge.sites(in: page.value) else {
                throw .failed("SolarEdge sites: the answer has no sites.site list")
            }
            sites += listed.sites
            start += SolarEdge.pageSize
            if listed.sites.count < SolarEdge.pageSize || start >= listed.total || start >= 10_000 { return sites }
        }
    }

    func site(_ id: String) throws(VendorError) -> DiscoveredSite? {
        let answer: (body: [UInt8], value: JSONValue)
        do {
            answer = try get(SolarEdge.details(site: id))
        } catch .failed(let reason) where reason.contains("HTTP 401") || reason.contains("HTTP 403") {
            throw .credentialRefused("SolarEdge refused the key for site \(id.prefix(40)): an invalid key, or one without access to that site")
        }
        guard let site = SolarEdge.site(inDetails: answer.value) else { throw .failed("SolarEdge details: the answer has no details.id") }
        return site
    }

    func callsNeeded(site: String, start: Int64, end: Int64, zone: ZoneRules) -> Int {
        SolarEdge.calls(site: site, start: start, end: end, zone: zone).count
    }

    func fetch(site: String, start: Int64, end: Int64, zone: ZoneRules) throws(VendorError) -> [VendorAnswer] {
        var answers: [VendorAnswer] = []
        for call in SolarEdge.calls(site: site, start: start, end: end, zone: zone) {
            let body: [UInt8]
            do {
                body = try get(call).body
            } catch .failed(let reason) where call.name == "sensors" {
                // Sensors are extra: a site without them (or without access to them) keeps its energy and power.
                answers.append(VendorAnswer(call: "sensors-unavailable", request: "GET " + call.path,
                                            body: Array(#"{"reason":\#(JSONValue.string(reason).serialized)}"#.utf8)))
                continue
            }
            answers.append(VendorAnswer(call: call.name, request: "GET " + call.path, body: body))
        }
        return answers
    }
}

// MARK: - GoodWe

/// GoodWe SEMS: log in with account and password, then send the token object as the `Token`
/// header to the regional `api` URL the login named; log in again once on 100001/100002.
public struct GoodWeDriver: VendorDriver {
    public let baseURL: String
    public var source: SourceSystem { .goodWe }
    public var format: String { GoodWe.format }
    public var slot: Int64 { GoodWe.slot }
    public var maximumWindow: Int64 { GoodWe.maximumWindow }
    public var dailySiteQuota: Int? { nil }
    /// SEMS publishes no limit; two at a time stays polite.
    public var maximumConcurrency: Int { 2 }

    public init(baseURL: String) { self.baseURL = baseURL }

    /// Whether the login's `api` URL may receive the token: the base's scheme (https unless the base
    /// is plain http, a local fake) and the base's host or a sibling under the same parent domain
    /// (`eu.semsportal.com` for `www.semsportal.com`).
    public static func isTrustedDataURL(_ url: String, base: String) -> Bool {
        func parts(_ text: String) -> (scheme: String, host: String)? {
            let pieces = text.split(separator: "://", maxSplits: 1, omittingEmptySubsequences: false)
            guard pieces.count == 2 else { return nil }
            let scheme = pieces[0].lowercased()
            let rest = pieces[1]
            let authority = rest.prefix { $0 != "/" && $0 != "?" && $0 != "#" }
            guard !authority.contains("@") else { return nil }
            let host = authority.split(separator: ":", maxSplits: 1).first.map { String($0).lowercased() } ?? ""
            return host.isEmpty ? nil : (scheme, host)
        }
        guard let target = parts(url), let origin = parts(base) else { return false }
        guard target.scheme == "https" || (target.scheme == "http" && origin.scheme == "http") else { return false }
        if target.host == origin.host { return true }
        // An address (not a name) has no parent domain: only itself is trusted.
        let isAddress = origin.host.contains(":") || origin.host.allSatisfy { $0.isNumber || $0 == "." }
        let labels = origin.host.split(separator: ".")
        guard !isAddress, labels.count >= 3 else { return false }
        return target.host.hasSuffix("." + labels.dropFirst().joined(separator: "."))
    }

    public func session(_ credential: SessionCredential, caller: VendorCaller, now: @escaping () -> Int64) throws(VendorError) -> any VendorSession {
        let members = try credentialMembers(credential.plaintext, vendor: "GoodWe", required: ["account", "password"])
        return GoodWeSession(baseURL: baseURL, account: members["account"]!, password: members["password"]!, caller: caller, now: now)
    }
}

final class GoodWeSession: VendorSession {
    let baseURL: String
    let account: String
    let password: String
    let caller: VendorCaller
    let now: () -> Int64
    private(set) var redact: Redactor
    private var token: String?
    private var api: String?
    /// A refused login is not tried again in this invocation.
    private var refusal: VendorError?

    init(baseURL: String, account: String, password: String, caller: VendorCaller, now: @escaping () -> Int64) {
        self.baseURL = baseURL
        self.account = account
        self.password = password
        self.caller = caller
        self.now = now
        self.redact = Redactor(secrets: [password])
    }

    private func login() throws(VendorError) {
        if let refusal { throw refusal }
        do {
            try logIn()
        } catch .credentialRefused(let reason) {
            refusal = .credentialRefused(reason)
            throw .credentialRefused(reason)
        }
    }

    private func logIn() throws(VendorError) {
        let request = HTTPRequest(method: .post, url: join(baseURL, GoodWe.loginPath),
                                  headers: ["Content-Type": "application/json", "Token": GoodWe.anonymousToken],
                                  body: .bytes(GoodWe.loginBody(account: account, password: password)))
        let response = try caller.send(request, what: "GoodWe login", redact: redact)
        guard response.status == 200, let answer = try? JSONParser.parse(response.body) else {
            throw .failed("GoodWe login: HTTP \(response.status) \(caller.describe(response.body, redact: redact))")
        }
        if case .rateLimited(let message) = GoodWe.outcome(of: answer) {
            throw .rateLimited(until: now() / 1000 + 300, reason: "GoodWe rate limit on login: \(redact(message))")
        }
        guard let session = GoodWe.session(fromLogin: answer) else {
            let message: String = switch GoodWe.outcome(of: answer) {
            case .failed(let code, let message): "code \(code): \(message)"
            case .loginNeeded(let code): "code \(code)"
            default: "no token in the answer"
            }
            throw .credentialRefused("GoodWe login refused (\(redact(message)))")
        }
        let regional = session.api ?? baseURL
        guard GoodWeDriver.isTrustedDataURL(regional, base: baseURL) else {
            throw .failed("GoodWe login named a data URL outside the portal's domain (\(redact(String(regional.prefix(100)))))")
        }
        token = session.token
        api = regional
        redact = Redactor(secrets: [password, session.token] + (session.token.isEmpty ? [] : Self.tokenValue(session.token)))
    }

    /// The bare token inside the token object, redacted as well as the object.
    static func tokenValue(_ object: String) -> [String] {
        guard let value = try? JSONParser.parse(Array(object.utf8)), let token = value["token"], case .string(let text) = token else { return [] }
        return [text]
    }

    /// POSTs `body` to `path` under the regional URL; logs in first, and again once when told to.
    private func post(_ path: String, body: [UInt8], what: String) throws(VendorError) -> (body: [UInt8], data: JSONValue) {
        var relogged = false
        if token == nil { try login() }
        while true {
            let request = HTTPRequest(method: .post, url: join(api!, path),
                                      headers: ["Content-Type": "application/json", "Token": token!], body: .bytes(body))
            let response = try caller.send(request, what: what, redact: redact)
            guard response.status == 200, let answer = try? JSONParser.parse(response.body) else {
                throw .failed("\(what): HTTP \(response.status) \(caller.describe(response.body, redact: redact))")
            }
            switch GoodWe.outcome(of: answer) {
            case .success(let data):
                return (response.body, data)
            case .loginNeeded(let code):
                // Twice in a row: "no access" to this plant, not an expired login.
                guard !relogged else { throw .failed("\(what): code \(code) again right after a new login (no access to this plant?)") }
                relogged = true
                try login()
            case .rateLimited(let message):
                throw .rateLimited(until: now() / 1000 + 300, reason: "GoodWe rate limit: \(redact(message))")
            case .failed(let code, let message):
                throw .failed("\(what): code \(code): \(redact(message))")
            }
        }
    }

    func discover() throws(VendorError) -> [DiscoveredSite]? {
        var sites: [DiscoveredSite] = []
        for page in 1...200 {
            // Listing is best effort: it stops short of the deadline.
            guard caller.timeLeft() > .seconds(30) else { break }
            let (_, data) = try post(GoodWe.plantsPath, body: GoodWe.plantsBody(page: page), what: "GoodWe plant list")
            guard let listed = GoodWe.plants(in: data) else { throw .failed("GoodWe plant list: the answer has no data.list") }
            sites += listed
            if listed.count < GoodWe.plantsPageSize { break }
        }
        return sites
    }

    func callsNeeded(site: String, start: Int64, end: Int64, zone: ZoneRules) -> Int {
        GoodWe.dates(start: start, end: end, zone: zone).count
    }

    func fetch(site: String, start: Int64, end: Int64, zone: ZoneRules) throws(VendorError) -> [VendorAnswer] {
        var answers: [VendorAnswer] = []
        for date in GoodWe.dates(start: start, end: end, zone: zone) {
            let body = GoodWe.chartBody(plant: site, date: date)
            let (answer, _) = try post(GoodWe.chartPath, body: body, what: "GoodWe chart \(date)")
            answers.append(VendorAnswer(call: "chart", request: "POST " + GoodWe.chartPath + " " + String(decoding: body, as: UTF8.self),
                                        body: answer, context: [JSONMember("date", .string(date))]))
        }
        return answers
    }
}
