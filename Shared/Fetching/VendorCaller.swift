import Core
import HTTPClient
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Why a vendor call, a site or a credential failed. Messages never hold a key, password or token:
/// every text that came from outside passes through the caller's ``Redactor`` first.
public enum VendorError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The vendor said "too many requests": no more calls with this credential before `until` (Unix seconds).
    case rateLimited(until: Int64, reason: String)
    /// The credential itself was refused (bad key, wrong password, revoked): its other sites would fail too.
    case credentialRefused(String)
    /// This request failed (after its retries); other sites may still work.
    case failed(String)

    public var isRateLimit: Bool {
        if case .rateLimited = self { return true }
        return false
    }

    public var description: String {
        switch self {
        case .rateLimited(let until, let reason): "\(reason) (paused until \(Timestamp.rfc3339(milliseconds: until * 1000)))"
        case .credentialRefused(let reason): reason
        case .failed(let reason): reason
        }
    }
}

/// Removes secrets from text that may echo them (a vendor's error body, a URL): each secret as it
/// is, percent-encoded (upper- and lower-case hex, `+` for spaces) and JSON-escaped (with and
/// without `\/`).
public struct Redactor: Sendable {
    private let variants: [String]

    public init(secrets: [String]) {
        var variants = Set<String>()
        for secret in secrets where !secret.isEmpty {
            let encoded = SecretEncoding.percentEncoded(secret)
            let escaped = SecretEncoding.jsonEscaped(secret)
            variants.formUnion([secret, escaped, escaped.replacing("/", with: "\\/")])
            // Hex digits in either case, a space as %20 or +; letters of the secret keep their case.
            for percent in [encoded, SecretEncoding.percentEncoded(secret, lowercaseHex: true)] {
                variants.formUnion([percent, percent.replacing("%20", with: "+")])
            }
        }
        // Longest first, so a secret inside another is not left half-redacted.
        self.variants = variants.sorted { $0.count > $1.count }
    }

    public func callAsFunction(_ text: String) -> String {
        var text = text
        for variant in variants where text.contains(variant) { text = text.replacing(variant, with: "***") }
        return text
    }
}

enum SecretEncoding {
    static func percentEncoded(_ text: String, lowercaseHex: Bool = false) -> String {
        PercentEncoding.encode(text, lowercaseHex: lowercaseHex)
    }

    /// The text as it appears inside a JSON string.
    static func jsonEscaped(_ text: String) -> String {
        let quoted = JSONValue.string(text).serialized
        return String(quoted.dropFirst().dropLast())
    }
}

/// How transient failures are retried: at most `attempts` tries per request, with full-jitter
/// exponential backoff capped at `cap`.
public struct RetryPolicy: Sendable {
    public var attempts = 3
    public var base: Duration = .milliseconds(400)
    public var cap: Duration = .seconds(5)
    public var requestTimeout: Duration = .seconds(30)

    public init() {}

    /// The wait before retry `attempt` (1-based): uniform in [0, min(cap, base·2^(attempt-1))].
    func delay(attempt: Int) -> Duration {
        let ceiling = min(cap, base * (1 << min(attempt - 1, 16)))
        let (seconds, attoseconds) = ceiling.components
        let nanoseconds = UInt64(seconds) * 1_000_000_000 + UInt64(attoseconds / 1_000_000_000)
        return .nanoseconds(Int64(nanoseconds == 0 ? 0 : UInt64.random(in: 0...nanoseconds)))
    }
}

/// Spaces calls so that no more than a vendor's per-minute limit go out, across every caller of
/// a fetcher (its workers and its coordinating thread).
public final class CallPacer: Sendable {
    let interval: Duration
    private let next = Mutex<Int64>(0)

    /// Paces at one call fewer than the limit, so arrival jitter never puts one call too many in a minute.
    public init(callsPerMinute: Int) { interval = .milliseconds(60_000 / max(1, callsPerMinute > 1 ? callsPerMinute - 1 : 1)) }

    /// Reserves the next slot and returns how long to wait for it; nil (nothing reserved) when
    /// that wait would be `limit` or longer.
    func reserve(now: Int64, limit: Duration) -> Duration? {
        let step = interval.components.seconds * 1000 + interval.components.attoseconds / 1_000_000_000_000_000
        return next.withLock { slot -> Duration? in
            let at = max(slot, now)
            let wait = Duration.milliseconds(at - now)
            guard wait < limit else { return nil }
            slot = at + step
            return wait
        }
    }
}

/// Sends a vendor's requests: counts every attempt (quotas count attempts), retries transient
/// failures (5xx, dropped connections, timeouts), and turns everything else into a response for
/// the driver to read. Not `Sendable`: one per worker, like its ``HTTPClient``.
public final class VendorCaller {
    let http: HTTPClient
    let policy: RetryPolicy
    let sleep: (Duration) -> Void
    /// Seconds left before the invocation's deadline; no request or wait may outlast it.
    let timeLeft: () -> Duration
    /// Paces the calls under a per-minute limit, when the vendor has one.
    public var pacer: CallPacer?
    /// Asked before every attempt: an error here (another worker saw the vendor rate-limit or
    /// refuse this credential) ends the request before it is sent.
    public var stop: (() -> VendorError?)?
    /// Requests sent, attempts included.
    public private(set) var calls = 0
    public private(set) var retries = 0

    public init(http: HTTPClient, policy: RetryPolicy = RetryPolicy(), timeLeft: @escaping () -> Duration = { .seconds(900) },
                sleep: @escaping (Duration) -> Void = WallClock.sleep(for:)) {
        self.http = http
        self.policy = policy
        self.timeLeft = timeLeft
        self.sleep = sleep
    }

    /// Sends `request` (whose URL may hold a secret) and returns any complete response; throws
    /// ``VendorError/failed(_:)`` when every attempt failed in transit or with a 5xx.
    public func send(_ request: HTTPRequest, what: String, redact: Redactor) throws(VendorError) -> HTTPResponse {
        var request = request
        var attempt = 0
        while true {
            attempt += 1
            if let stopped = stop?() { throw stopped }
            if let pacer {
                guard let wait = pacer.reserve(now: WallClock.milliseconds(), limit: timeLeft() - .seconds(5)) else {
                    throw .failed("\(what): the vendor's per-minute limit leaves no call before the deadline")
                }
                if wait > .zero { sleep(wait) }
            }
            request.timeout = min(policy.requestTimeout, max(.seconds(1), timeLeft() - .seconds(2)))
            calls += 1
            let failure: String
            do {
                let response = try http.send(request, into: .memory(limit: 16 * 1024 * 1024))
                guard response.status >= 500 else { return response }
                failure = "\(what): HTTP \(response.status) \(describe(response.body, redact: redact))"
            } catch {
                guard error.isTransient else { throw .failed(redact("\(what): \(error)")) }
                failure = redact("\(what): \(error)")
            }
            let wait = policy.delay(attempt: attempt)
            guard attempt < policy.attempts, timeLeft() > wait + .seconds(3) else {
                throw .failed(failure + (attempt > 1 ? " (after \(attempt) attempts)" : ""))
            }
            retries += 1
            sleep(wait)
        }
    }

    /// A body for an error message: redacted whole (its first 64 KiB), then cut to 200 characters
    /// on one line, so no secret is cut in half before it could be recognised.
    func describe(_ body: [UInt8], redact: Redactor) -> String {
        let text = redact(String(decoding: body.prefix(64 * 1024), as: UTF8.self))
        return String(text.prefix(200).unicodeScalars.map { $0.value < 0x20 ? " " : Character($0) })
    }
}
