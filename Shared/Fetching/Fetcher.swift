import Core
import HTTPClient
import Lake
import LambdaRuntime
import Logging
import Postgres
import Store
import Vendors

/// What a fetcher invocation was asked to do.
public enum FetchRequest: Equatable, Sendable {
    /// EventBridge's schedule: every active site of every active credential, from its cursor.
    case scheduled
    /// One site and window (UTC instants), whatever its cursor.
    case backfill(organizationID: Int64, externalSiteID: String, start: Int64, end: Int64)

    /// Reads an event: a scheduled event (`"detail-type": "Scheduled Event"`) or a backfill
    /// `{"organization_id", "external_site_id", "start", "end"}`.
    public init(event: [UInt8]) throws(InvalidEventError) {
        func invalid(_ reason: String) -> InvalidEventError { InvalidEventError(expected: "scheduled event or backfill", reason: reason) }
        guard let value = try? JSONParser.parse(event, maximumDepth: 16), case .object = value else { throw invalid("not a JSON object") }
        if value["detail-type"] != nil || value["source"] == .string("aws.events") {
            guard value["detail-type"] == .string("Scheduled Event") else { throw invalid("detail-type must be \"Scheduled Event\"") }
            self = .scheduled
            return
        }
        guard let organization = value["organization_id"], let organizationID = Int64(organization.text ?? ""), organizationID > 0 else {
            throw invalid("organization_id must be a positive integer")
        }
        guard case .string(let site)? = value["external_site_id"], !site.isEmpty, site.utf8.count <= 200 else {
            throw invalid("external_site_id must be a non-empty string")
        }
        guard case .string(let startText)? = value["start"], case .zoned(let start) = ISO8601.parse(startText),
            case .string(let endText)? = value["end"], case .zoned(let end) = ISO8601.parse(endText)
        else { throw invalid("start and end must be ISO-8601 instants with a zone (2026-03-01T00:00:00Z)") }
        guard start < end, end - start <= 366 * 86_400 else { throw invalid("start must be before end, at most 366 days apart") }
        self = .backfill(organizationID: organizationID, externalSiteID: site, start: start, end: end)
    }
}

/// One site's outcome, as the response lists it.
public struct SiteOutcome: Sendable {
    public var organizationID: Int64
    public var externalSiteID: String
    public var status: SyncStatus
    public var window: (start: Int64, end: Int64)?
    public var objects: [String] = []
    public var error: String?
    /// Readings slots the written windows hold.
    public var slots = 0
}

/// The fetch engine, shared by every vendor's function: credentials and sites from PostgreSQL,
/// windows from each site's cursor, vendor calls within quotas and the invocation's deadline,
/// the answers written verbatim to `raw/`, and the outcome recorded per site and credential.
///
/// Sites are fetched by up to ``FetcherConfiguration/concurrency`` workers at once (each with its
/// own HTTP client and object store, on its own thread); the coordinating thread alone talks to
/// PostgreSQL: it plans each site (lock, window, quota), hands the plan to a free worker, and
/// records what came back.
public final class Fetcher: LambdaByteHandler {
    public let driver: any VendorDriver
    public let configuration: FetcherConfiguration
    private let makeStore: @Sendable () throws -> any ObjectStore
    private let zones: ZoneDatabase
    private let clock: @Sendable () -> Int64
    private var database: PostgresConnection?
    private var http: HTTPClient?
    private var workers: [FetchWorker] = []
    /// OAuth vendors' tokens, shared by the workers; per-minute pacing, shared by every caller.
    let tokens: TokenKeeper?
    private let pacer: CallPacer?

    /// - Parameter stores: Makes an object store for a worker (each worker owns one).
    public init(
        driver: any VendorDriver, configuration: FetcherConfiguration, stores: @escaping @Sendable () throws -> any ObjectStore,
        clock: @escaping @Sendable () -> Int64 = WallClock.milliseconds
    ) {
        self.driver = driver
        self.configuration = configuration
        self.makeStore = stores
        self.zones = configuration.zones
        self.clock = clock
        tokens = driver.oauth.map {
            TokenKeeper(client: $0, database: configuration.database, keys: configuration.keys, caBundlePath: configuration.caBundlePath, clock: clock)
        }
        pacer = driver.callsPerMinute.map { CallPacer(callsPerMinute: $0) }
    }

    public func handle(_ event: [UInt8], context: LambdaContext) throws -> [UInt8] {
        let request = try FetchRequest(event: event)
        let started = clock()
        let connection: PostgresConnection
        do {
            // A warm connection may have died while the environment was frozen: check it first.
            if let warm = database, (try? warm.query("SELECT 1")) == nil { database = nil }
            connection = try database ?? configuration.database.connect()
        } catch {
            throw FetchFailure(reason: "cannot reach PostgreSQL: \(error)")
        }
        database = connection
        let client = try http ?? HTTPClient(configuration: .init(connectTimeout: .seconds(5), caBundlePath: configuration.caBundlePath))
        http = client
        let count = max(1, min(configuration.concurrency, driver.maximumConcurrency))
        while workers.count < count {
            workers.append(try FetchWorker(driver: driver, configuration: configuration, store: try makeStore(), pacer: pacer, clock: clock))
        }
        for worker in workers { worker.begin(context: context) }
        let caller = VendorCaller(http: client, policy: configuration.retry, timeLeft: { context.remainingTime })
        caller.pacer = pacer
        var run = Run(fetcher: self, integrations: Integrations(connection: connection), caller: caller, context: context, request: request,
                      workers: Array(workers.prefix(count)))
        do {
            try run.execute()
        } catch {
            database = nil  // (reconnect next time: the failure may have been the connection)
            throw FetchFailure(reason: "database failure during the run: \(error)")
        }
        emitMetrics(run, duration: clock() - started, context: context)
        return Self.response(run.outcomes.compactMap { $0 })
    }

    // MARK: - One invocation

    private struct Run {
        let fetcher: Fetcher
        let integrations: Integrations
        /// The coordinating thread's own calls (discovery).
        let caller: VendorCaller
        let context: LambdaContext
        let request: FetchRequest
        let workers: [FetchWorker]
        /// By the order sites were taken up (the response's order).
        var outcomes: [SiteOutcome?] = []
        var plaintexts: [Int64: [UInt8]] = [:]
        var sessions: [Int64: any VendorSession] = [:]
        /// Credentials paused during this run, with the reason.
        var paused: [Int64: String] = [:]
        /// Credentials refused during this run (every site of theirs fails the same way).
        var refused: [Int64: String] = [:]
        var discovered = 0
        var calls = 0
        var retries = 0
        let signals = FetchSignals()
        /// Calls left this run under a credential's monthly quota (planned across the month's days).
        var monthlyLeft: [Int64: Int] = [:]

        var driver: any VendorDriver { fetcher.driver }
        var now: Int64 { fetcher.clock() / 1000 }

        init(fetcher: Fetcher, integrations: Integrations, caller: VendorCaller, context: LambdaContext, request: FetchRequest, workers: [FetchWorker]) {
            self.fetcher = fetcher
            self.integrations = integrations
            self.caller = caller
            self.context = context
            self.request = request
            self.workers = workers
        }

        mutating func execute() throws {
            let vendor = driver.source
            var work: [(credential: StoredCredential, site: IntegrationSite, range: (start: Int64, end: Int64)?)] = []
            var credentials: [StoredCredential] = []
            switch request {
            case .scheduled:
                credentials = try integrations.activeCredentials(vendor: vendor)
                for credential in credentials {
                    if timeIsShort { break }
                    try prepare(credential)
                    for site in try integrations.activeSites(credentialID: credential.id) { work.append((credential, site, nil)) }
                }
                // The longest unsynced first, across credentials: a short deadline leaves the freshest.
                work.sort { ($0.site.cursor ?? Int64.min, $0.site.id) < ($1.site.cursor ?? Int64.min, $1.site.id) }
            case .backfill(let organizationID, let externalSiteID, let start, let end):
                guard let site = try integrations.site(organizationID: organizationID, vendor: vendor, externalSiteID: externalSiteID) else {
                    outcomes.append(SiteOutcome(organizationID: organizationID, externalSiteID: externalSiteID, status: .error, window: (start, end),
                                                error: "no \(vendor.rawValue) site \(externalSiteID) is registered for organisation \(organizationID)"))
                    return
                }
                guard site.isActive else {
                    outcomes.append(SiteOutcome(organizationID: organizationID, externalSiteID: externalSiteID, status: .error, window: (start, end),
                                                error: "the site is inactive" + (site.lastSyncError.map { ": " + $0 } ?? "")))
                    return
                }
                guard let credentialID = site.credentialID, let credential = try integrations.credential(id: credentialID),
                    try integrations.activeCredentials(organizationID: organizationID, vendor: vendor).contains(where: { $0.id == credentialID })
                else {
                    outcomes.append(SiteOutcome(organizationID: organizationID, externalSiteID: externalSiteID, status: .error, window: (start, end),
                                                error: "the site has no active credential"))
                    return
                }
                credentials = [credential]
                try open(credential)
                work = [(credential, site, (start, end))]
            }
            try fetch(work)
            for credential in credentials { try recordCredential(credential) }
        }

        /// Plans each site on this thread and hands it to a free worker; records each result.
        mutating func fetch(_ work: [(credential: StoredCredential, site: IntegrationSite, range: (start: Int64, end: Int64)?)]) throws {
            let results = FetchResults()
            var idle = Array(workers.indices)
            var inFlight: [Int: (index: Int, job: FetchJob)] = [:]
            var next = 0
            outcomes = Array(repeating: nil, count: work.count)
            while next < work.count || !inFlight.isEmpty {
                while next < work.count, !idle.isEmpty {
                    let (credential, site, range) = work[next]
                    switch try plan(site, credential: credential, range: range) {
                    case .settled(let outcome):
                        outcomes[next] = outcome
                    case .job(let job):
                        let worker = idle.removeLast()
                        inFlight[worker] = (next, job)
                        workers[worker].perform(job) { results.push(worker: worker, result: $0) }
                    }
                    next += 1
                }
                guard !inFlight.isEmpty else { continue }
                let (worker, result) = results.wait()
                let (index, job) = inFlight.removeValue(forKey: worker)!
                idle.append(worker)
                outcomes[index] = try finish(job, result)
            }
            for worker in workers {
                let (made, retried) = worker.counts()
                calls += made
                retries += retried
            }
            calls += caller.calls
            retries += caller.retries
        }

        var timeIsShort: Bool { context.remainingTime < fetcher.configuration.minimumTimeLeft }

        /// Opens the credential's session and discovers its new sites (within a daily budget of
        /// account calls, so a very large account never spends its quota on listing).
        mutating func prepare(_ credential: StoredCredential) throws {
            try open(credential)
            guard let session = sessions[credential.id], paused[credential.id] == nil, refused[credential.id] == nil else { return }
            let today = Timestamp.day(epochSeconds: now)
            guard try integrations.calls(credentialID: credential.id, scope: "account", day: today) < driver.discoveryCallsPerDay else {
                log(.info, "site discovery skipped: its daily budget of account calls is spent", credential: credential)
                return
            }
            let before = caller.calls
            do {
                if let listed = try session.discover() { try register(listed, of: credential) }
            } catch let error as VendorError {
                try handle(error, credentialID: credential.id)
                log(.warning, "site discovery failed", credential: credential, error: error.description)
            }
            try integrations.countCalls(credentialID: credential.id, scope: "account", day: Timestamp.day(epochSeconds: now),
                                        count: caller.calls - before)
        }

        mutating func open(_ credential: StoredCredential) throws {
            guard sessions[credential.id] == nil, refused[credential.id] == nil, paused[credential.id] == nil else { return }
            if let until = credential.rateLimitedUntil, until > now {
                paused[credential.id] = "rate limited by the vendor until \(Timestamp.rfc3339(milliseconds: until * 1000))"
                return
            }
            let plaintext: [UInt8]
            do {
                plaintext = try CredentialEnvelope.open(credential.envelope, keys: fetcher.configuration.keys)
            } catch {
                refused[credential.id] = "the stored credential does not open: \(error)"
                return
            }
            do {
                let clock = fetcher.clock
                sessions[credential.id] = try driver.session(SessionCredential(id: credential.id, plaintext: plaintext, tokens: fetcher.tokens),
                                                             caller: caller, now: { clock() })
                plaintexts[credential.id] = plaintext
            } catch {
                refused[credential.id] = error.description
            }
        }

        /// Stores sites the vendor listed that are new (``SiteRegistrar``), and logs each.
        mutating func register(_ listed: [DiscoveredSite], of credential: StoredCredential) throws {
            let registrar = SiteRegistrar(integrations: integrations, vendor: driver.source, zones: fetcher.zones)
            for site in try registrar.register(listed, credentialID: credential.id, organizationID: credential.organizationID) {
                guard let site else {
                    log(.warning, "a listed site id was refused (empty, over 200 bytes or with control characters)", credential: credential)
                    continue
                }
                guard site.isNew else { continue }
                discovered += 1
                log(.info, site.inactiveReason == nil ? "new site discovered" : "new site discovered, inactive", credential: credential,
                    site: site.externalSiteID, error: site.inactiveReason)
            }
        }

        /// Records what a vendor error means for the credential.
        mutating func handle(_ error: VendorError, credentialID: Int64) throws {
            switch error {
            case .rateLimited(let until, let reason):
                if paused[credentialID] == nil {
                    paused[credentialID] = reason
                    try integrations.pauseCredential(id: credentialID, until: until, reason: reason)
                }
            case .credentialRefused(let reason):
                refused[credentialID] = reason
            case .failed:
                break
            }
        }

        mutating func recordCredential(_ credential: StoredCredential) throws {
            guard sessions[credential.id] != nil || refused[credential.id] != nil else { return }  // (paused before the run)
            let siteErrors = outcomes.compactMap { $0 }.filter { $0.status == .error && $0.organizationID == credential.organizationID }
                .compactMap(\.error)
            try integrations.recordCredentialUse(id: credential.id, error: refused[credential.id] ?? paused[credential.id] ?? siteErrors.first)
        }

        // MARK: One site

        enum Plan {
            case settled(SiteOutcome)
            case job(FetchJob)
        }

        /// Decides what to fetch for a site (or why nothing), holding its lock when it is a job.
        mutating func plan(_ site: IntegrationSite, credential: StoredCredential, range: (start: Int64, end: Int64)?) throws -> Plan {
            var outcome = SiteOutcome(organizationID: site.organizationID, externalSiteID: site.externalSiteID, status: .skipped)
            if let stop = signals.stopped(credential.id) {
                // A worker learnt it before its result came back.
                try handle(stop, credentialID: credential.id)
            }
            if let reason = paused[credential.id] {
                outcome.status = .rateLimited
                outcome.error = reason
                try integrations.recordSync(siteID: site.id, status: .rateLimited, error: reason, cursor: nil)
                return .settled(outcome)
            }
            if let reason = refused[credential.id] {
                outcome.status = .error
                outcome.error = reason
                try integrations.recordSync(siteID: site.id, status: .error, error: reason, cursor: nil)
                return .settled(outcome)
            }
            guard !timeIsShort else {
                outcome.error = "the invocation's deadline was near; the next run continues"
                return .settled(outcome)  // (its cursor and status stay: nothing was tried)
            }
            guard let session = sessions[credential.id], let plaintext = plaintexts[credential.id] else { return .settled(outcome) }
            let zone: ZoneRules
            do {
                zone = try fetcher.zones.rules(site.timeZone)
            } catch {
                outcome.status = .error
                outcome.error = "the site's time zone: \(error)"
                try integrations.recordSync(siteID: site.id, status: .error, error: outcome.error, cursor: nil)
                return .settled(outcome)
            }

            // Take the site (a concurrent run skips it), and its cursor as it is now.
            let leaseSeconds = min(960, Int(context.remainingTime.components.seconds) + 60)
            guard let fresh = try integrations.lease(siteID: site.id, seconds: leaseSeconds) else {
                outcome.error = "another run is fetching this site"
                return .settled(outcome)
            }

            // The window: from the cursor (less the overlap) or local midnight of yesterday, to now.
            let slot = driver.slot
            let latest = now / slot * slot
            var start: Int64
            var end: Int64
            if let range {
                start = range.start / slot * slot
                end = min(latest, (range.end + slot - 1) / slot * slot)
            } else {
                start = fresh.map { $0 - fetcher.configuration.overlap } ?? zone.startOfLocalDay(containing: now - 86_400)
                start = max(start / slot * slot, latest - fetcher.configuration.maximumBacklog)
                end = latest
            }
            outcome.window = (start, max(start, end))
            guard start < end else {
                try integrations.release(siteID: site.id)
                outcome.status = .success
                try integrations.recordSync(siteID: site.id, status: .success, error: nil, cursor: nil)
                return .settled(outcome)
            }

            // The calls a quota leaves this run (hourly runs later today keep theirs).
            let callID = site.apiSiteID ?? site.externalSiteID
            let today = Timestamp.day(epochSeconds: now)
            var allowance = Int.max
            if let quota = driver.dailySiteQuota {
                let used = try integrations.calls(credentialID: credential.id, scope: "site:" + site.externalSiteID, day: today)
                let perRun = session.callsNeeded(site: callID, start: latest - 3600, end: latest, zone: zone)
                allowance = QuotaPlan.allowance(limit: quota, used: used, now: now, perRun: perRun)
            }
            let pieces = windows(from: start, to: end, maximum: driver.maximumWindow)
            if let monthly = driver.monthlyCredentialQuota {
                if monthlyLeft[credential.id] == nil {
                    let month = try integrations.monthCalls(credentialID: credential.id, day: today)
                    let todays = try integrations.dayCalls(credentialID: credential.id, day: today)
                    monthlyLeft[credential.id] = QuotaPlan.monthlyAllowance(limit: monthly, usedBeforeToday: month - todays, usedToday: todays, now: now)
                }
                let left = monthlyLeft[credential.id]!
                allowance = min(allowance, left)
                let planned = pieces.reduce(0) { $0 + session.callsNeeded(site: callID, start: $1.start, end: $1.end, zone: zone) }
                monthlyLeft[credential.id] = max(0, left - planned)
            }
            return .job(FetchJob(
                credentialID: credential.id, plaintext: plaintext, site: site, zone: zone,
                windows: pieces, allowance: allowance, movesCursor: range == nil,
                outcome: outcome, signals: signals, callID: callID, tokens: fetcher.tokens))
        }

        /// Records a worker's result: calls against the quota, the credential's state, the site's sync.
        mutating func finish(_ job: FetchJob, _ result: FetchResult) throws -> SiteOutcome {
            defer { try? integrations.release(siteID: job.site.id) }
            let scope = "site:" + job.site.externalSiteID
            try integrations.countCalls(credentialID: job.credentialID, scope: scope, day: Timestamp.day(epochSeconds: now), count: result.calls)
            if !result.learned.isEmpty, result.learned != job.site.attributes.filter({ result.learned[$0.key] != nil }) {
                try integrations.learn(siteID: job.site.id, attributes: result.learned)
            }
            if let moved = result.movedTo, moved != job.callID {
                try integrations.moveSite(siteID: job.site.id, toAPIID: moved)
                log(.info, "the vendor moved the site; later runs call its new id", organization: job.site.organizationID, credential: job.credentialID, site: job.site.externalSiteID,
                    extra: ["apiSiteId": .string(moved)])
            }
            if let error = result.error { try handle(error, credentialID: job.credentialID) }
            var outcome = job.outcome
            outcome.objects = result.objects
            outcome.slots = result.slots
            if let stopped = result.stopped {
                outcome.status = outcome.objects.isEmpty ? stopped.status : .partial
                outcome.error = stopped.reason
            } else {
                outcome.status = .success
            }
            try integrations.recordSync(siteID: job.site.id, status: outcome.status, error: outcome.error, cursor: result.cursor)
            let window = outcome.window.map { Timestamp.rfc3339(milliseconds: $0.start * 1000) + "/" + Timestamp.rfc3339(milliseconds: $0.end * 1000) }
            log(outcome.status == .success ? .info : .warning, "site \(outcome.status.rawValue)", organization: job.site.organizationID, credential: job.credentialID,
                site: job.site.externalSiteID,
                error: outcome.error, extra: ["objects": .stringConvertible(outcome.objects.count), "calls": .stringConvertible(result.calls),
                                              "window": .string(window ?? "")])
            return outcome
        }

        func log(_ level: Logger.Level, _ message: String, credential: StoredCredential, site: String? = nil, error: String? = nil,
                 extra: Logger.Metadata = [:]) {
            log(level, message, organization: credential.organizationID, credential: credential.id, site: site, error: error, extra: extra)
        }

        func log(_ level: Logger.Level, _ message: String, organization: Int64, credential: Int64, site: String? = nil, error: String? = nil,
                 extra: Logger.Metadata = [:]) {
            var metadata: Logger.Metadata = extra
            metadata["organization"] = .stringConvertible(organization)
            metadata["credential"] = .stringConvertible(credential)
            metadata["vendor"] = .string(driver.source.rawValue)
            if let site { metadata["site"] = .string(site) }
            if let error { metadata["error"] = .string(error) }
            context.logger.log(level: level, "\(message)", metadata: metadata)
        }
    }

    // MARK: - Output

    private func emitMetrics(_ run: Run, duration: Int64, context: LambdaContext) {
        var metrics = EmbeddedMetrics(dimensionSets: [["Vendor"]])
        metrics.dimension("Vendor", driver.source.rawValue)
        let outcomes = run.outcomes.compactMap { $0 }
        metrics.metric("Sites", outcomes.count)
        metrics.metric("SitesFetched", outcomes.filter { $0.status == .success || $0.status == .partial }.count)
        metrics.metric("SitesDiscovered", run.discovered)
        metrics.metric("Calls", run.calls)
        metrics.metric("Retries", run.retries)
        metrics.metric("Rows", outcomes.reduce(0) { $0 + $1.slots })
        metrics.metric("Objects", outcomes.reduce(0) { $0 + $1.objects.count })
        metrics.metric("RateLimited", outcomes.filter { $0.status == .rateLimited }.count)
        metrics.metric("Errors", outcomes.filter { $0.status == .error }.count)
        metrics.metric("Skipped", outcomes.filter { $0.status == .skipped }.count)
        metrics.metric("Duration", duration, unit: .milliseconds)
        metrics.property("requestId", context.requestID)
        metrics.emit(timestamp: clock(), to: context.logOutput)
    }

    static func response(_ outcomes: [SiteOutcome]) -> [UInt8] {
        var json = JSONWriter()
        json.beginObject()
        json.key("sites")
        json.beginArray()
        for outcome in outcomes {
            json.beginObject()
            json.key("organization_id"); json.number(outcome.organizationID)
            json.key("external_site_id"); json.string(outcome.externalSiteID)
            json.key("status"); json.string(outcome.status.rawValue)
            json.key("window")
            if let window = outcome.window {
                json.beginObject()
                json.key("start"); json.string(Timestamp.rfc3339(milliseconds: window.start * 1000))
                json.key("end"); json.string(Timestamp.rfc3339(milliseconds: window.end * 1000))
                json.endObject()
            } else {
                json.null()
            }
            json.key("objects")
            json.beginArray()
            for key in outcome.objects { json.string(key) }
            json.endArray()
            json.key("error")
            if let error = outcome.error { json.string(error) } else { json.null() }
            json.endObject()
        }
        json.endArray()
        json.endObject()
        return json.bytes
    }
}

/// A failure of the run itself (the database unreachable): the invocation fails and is retried.
public struct FetchFailure: ReportableError, CustomStringConvertible {
    public var reason: String
    public var errorType: String { "Fetcher.Transient" }
    public var description: String { reason }
}
