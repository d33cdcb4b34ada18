import Core
import Dispatch
import HTTPClient
import Lake
import LambdaRuntime
import Store
import Synchronization
import Vendors

/// One site's planned work, handed from the coordinating thread to a worker.
struct FetchJob: Sendable {
    var credentialID: Int64
    /// The credential's opened plaintext (the worker opens its own session with it).
    var plaintext: [UInt8]
    var site: IntegrationSite
    var zone: ZoneRules
    var windows: [(start: Int64, end: Int64)]
    /// Calls this run may make for the site (the quota plan); `Int.max` without a quota.
    var allowance: Int
    /// A scheduled window moves the site's cursor; a backfill does not.
    var movesCursor: Bool
    /// The outcome so far (site, window).
    var outcome: SiteOutcome
    /// What workers learnt this invocation about credentials (a 429 stops the others at once).
    var signals: FetchSignals
    /// The id the vendor answers to (after a move), else the external id.
    var callID: String
    var tokens: TokenKeeper?
}

/// Credentials that must not be used any more in this invocation (rate-limited or refused), shared
/// by the workers: a 429 seen by one stops the others before their next window.
final class FetchSignals: Sendable {
    private let stops = Mutex<[Int64: VendorError]>([:])

    func stop(_ credentialID: Int64, because error: VendorError) {
        stops.withLock { if $0[credentialID] == nil { $0[credentialID] = error } }
    }

    func stopped(_ credentialID: Int64) -> VendorError? { stops.withLock { $0[credentialID] } }
}

/// What a worker did for a job.
struct FetchResult: Sendable {
    var objects: [String] = []
    var slots = 0
    var calls = 0
    /// Why it stopped before the last window, if it did.
    var stopped: (status: SyncStatus, reason: String)?
    /// The vendor error that stopped it, for the credential's state.
    var error: VendorError?
    /// The end of the last window written (when the job moves the cursor).
    var cursor: Int64?
    /// The id the vendor moved the site to, if it said so.
    var movedTo: String?
    /// What the session learnt of the site.
    var learned: [String: String] = [:]
}

/// Results as workers finish them; the coordinating thread waits on them.
final class FetchResults: Sendable {
    private let ready = DispatchSemaphore(value: 0)
    private let queue = Mutex<[(worker: Int, result: FetchResult)]>([])

    func push(worker: Int, result: FetchResult) {
        queue.withLock { $0.append((worker, result)) }
        ready.signal()
    }

    func wait() -> (worker: Int, result: FetchResult) {
        ready.wait()
        return queue.withLock { $0.removeFirst() }
    }
}

/// A fetching thread: its own HTTP client, object store and vendor sessions, used only on its own
/// serial queue (so its state needs no lock: hence `@unchecked Sendable`).
final class FetchWorker: @unchecked Sendable {
    private let queue: DispatchQueue
    private let driver: any VendorDriver
    private let configuration: FetcherConfiguration
    private let store: any ObjectStore
    private let http: HTTPClient
    private let clock: @Sendable () -> Int64
    private var caller: VendorCaller?
    private var context: LambdaContext?
    private var sessions: [Int64: any VendorSession] = [:]
    private var refusals: [Int64: VendorError] = [:]

    private let pacer: CallPacer?

    init(driver: any VendorDriver, configuration: FetcherConfiguration, store: any ObjectStore, pacer: CallPacer?,
         clock: @escaping @Sendable () -> Int64) throws {
        self.pacer = pacer
        queue = DispatchQueue(label: "meterlake.fetch.worker")
        self.driver = driver
        self.configuration = configuration
        self.store = store
        self.clock = clock
        http = try HTTPClient(configuration: .init(connectTimeout: .seconds(5), caBundlePath: configuration.caBundlePath))
    }

    /// Starts an invocation: new sessions (a session lives one invocation), calls counted from zero.
    func begin(context: LambdaContext) {
        queue.sync {
            self.context = context
            caller = VendorCaller(http: http, policy: configuration.retry, timeLeft: { context.remainingTime })
            caller?.pacer = pacer
            sessions = [:]
            refusals = [:]
        }
    }

    /// Calls and retries of this invocation so far.
    func counts() -> (calls: Int, retries: Int) {
        queue.sync { (caller?.calls ?? 0, caller?.retries ?? 0) }
    }

    func perform(_ job: FetchJob, then done: @escaping @Sendable (FetchResult) -> Void) {
        queue.async { [self] in done(run(job)) }
    }

    private func run(_ job: FetchJob) -> FetchResult {
        var result = FetchResult()
        guard let caller, let context else { return result }
        let session: any VendorSession
        if let refusal = refusals[job.credentialID] {
            result.stopped = (.error, refusal.description)
            result.error = refusal
            return result
        }
        if let open = sessions[job.credentialID] {
            session = open
        } else {
            do {
                let clock = clock
                session = try driver.session(SessionCredential(id: job.credentialID, plaintext: job.plaintext, tokens: job.tokens),
                                             caller: caller, now: { clock() })
                sessions[job.credentialID] = session
            } catch {
                refusals[job.credentialID] = error
                job.signals.stop(job.credentialID, because: error)
                result.stopped = (.error, error.description)
                result.error = error
                return result
            }
        }
        let site = job.site.externalSiteID
        let callID = job.callID
        // A 429 or a refusal another worker sees stops this job before its next call.
        let signals = job.signals
        let credentialID = job.credentialID
        caller.stop = { signals.stopped(credentialID) }
        defer { caller.stop = nil }
        session.recall(site: callID, attributes: job.site.attributes)
        for (index, window) in job.windows.enumerated() {
            if let stop = job.signals.stopped(job.credentialID) {
                // Another worker saw the vendor refuse or rate-limit this credential.
                result.stopped = (stop.isRateLimit ? .rateLimited : .error, stop.description)
                break
            }
            if index > 0, context.remainingTime < configuration.minimumTimeLeft {
                result.stopped = (.partial, "the invocation's deadline was near after \(index) of \(job.windows.count) windows; the next run continues")
                break
            }
            let needed = session.callsNeeded(site: callID, start: window.start, end: window.end, zone: job.zone)
            if result.calls + needed > job.allowance {
                result.stopped = (.rateLimited, "the day's \(driver.source.rawValue) quota plan leaves no calls for this window (\(job.allowance) allowed this run); the next run continues")
                break
            }
            let before = caller.calls
            let answers: [VendorAnswer]
            do {
                answers = try session.fetch(site: callID, start: window.start, end: window.end, zone: job.zone)
                result.calls += caller.calls - before
                result.movedTo = session.movedSites[callID] ?? result.movedTo
            } catch {
                result.calls += caller.calls - before
                result.movedTo = session.movedSites[callID] ?? result.movedTo
                if case .credentialRefused = error { refusals[job.credentialID] = error }
                if case .failed = error {} else { job.signals.stop(job.credentialID, because: error) }
                result.error = error
                if case .rateLimited = error { result.stopped = (.rateLimited, error.description) } else { result.stopped = (.error, error.description) }
                break
            }
            let bytes = answers.reduce(0) { $0 + $1.body.count }
            guard bytes <= ValidationLimits().maximumVendorAnswerBytes else {
                // The validator would refuse the file: better a clear error here than a quarantine there.
                result.stopped = (.error, "the vendor's answers for one window are \(bytes) bytes, over the \(ValidationLimits().maximumVendorAnswerBytes) a file may hold")
                break
            }
            do {
                let key = try write(FetchedWindow(
                    source: driver.source, format: driver.format, organizationID: job.site.organizationID, siteID: site,
                    timeZone: job.zone.name, fetchedAt: clock(), start: window.start, end: window.end, answers: answers), sequence: index + 1)
                result.objects.append(key)
                result.slots += Int((window.end - window.start) / driver.slot)
            } catch {
                result.stopped = (.error, "writing the window to the lake failed: \(error)")
                break
            }
            if job.movesCursor { result.cursor = window.end }
        }
        result.learned = session.learned[callID] ?? [:]
        return result
    }

    /// Writes one window under a key no earlier run used (at most a few tries: keys carry the second).
    private func write(_ window: FetchedWindow, sequence: Int) throws(ObjectStoreError) -> String {
        var sequence = sequence
        for _ in 0..<20 {
            let key = FetchedWindowKey.key(source: window.source, organizationID: window.organizationID, siteID: window.siteID,
                                           fetchedAt: window.fetchedAt, sequence: sequence)
            if try store.head(key) == nil {
                try store.put(key, body: .bytes(window.envelope()), contentType: "application/json")
                return key
            }
            sequence += 100
        }
        throw .invalidKey(key: window.siteID, reason: "no free key for the window after 20 tries")
    }
}
