import Cryptography
import FoundationEssentials

/// What a signed OAuth `state` carries.
public struct OAuthStatePayload: Codable, Equatable, Sendable {
    public var organizationID: Int64
    public var vendor: String
    /// 128 random bits, URL-safe Base64: the key of the server-side single-use row.
    public var nonce: String
    /// Unix seconds.
    public var issuedAt: Int64

    enum CodingKeys: String, CodingKey {
        case organizationID = "organization_id"
        case vendor, nonce
        case issuedAt = "issued_at"
    }
}

/// Why a `state` was refused. Every case is a hard failure: no fallback organisation.
public enum OAuthStateError: Error, Equatable, Sendable, CustomStringConvertible, ReportableError {
    case malformed(reason: String)
    /// No signature part: an unsigned or legacy state.
    case unsigned
    case badSignature
    case expired(ageSeconds: Int64)
    case fromTheFuture(seconds: Int64)
    case wrongVendor(expected: String, actual: String)

    public var description: String {
        switch self {
        case .malformed(let reason): "the OAuth state is malformed: \(reason)"
        case .unsigned: "the OAuth state is unsigned (legacy format); start the connection again"
        case .badSignature: "the OAuth state signature does not verify"
        case .expired(let age): "the OAuth state expired: issued \(age) s ago, the limit is \(OAuthStateSigner.maximumAge) s"
        case .fromTheFuture(let seconds): "the OAuth state is issued \(seconds) s in the future (allowed skew \(OAuthStateSigner.allowedSkew) s)"
        case .wrongVendor(let expected, let actual): "the OAuth state is for vendor \(actual), not \(expected)"
        }
    }

    public var errorType: String { "OAuthState.Invalid" }
}

/// Issues and verifies `state = base64url(payload JSON) "." base64url(HMAC-SHA256(key, label ‖ payload))`.
///
/// The MAC input starts with the label `oauth-state.v1.`, so a MAC made with the same key for
/// another purpose is never accepted as a state. The signature is checked, in constant time, over
/// the received payload bytes before any JSON is parsed.
public struct OAuthStateSigner: Sendable {
    public static let maximumAge: Int64 = 600
    public static let allowedSkew: Int64 = 60
    public static let maximumLength = 1024
    public static let vendors: Set<String> = ["solaredge", "enphase", "sma", "goodwe"]
    static let label = Array("oauth-state.v1.".utf8)

    private let secret: SecretBytes

    /// - Throws: when the secret is shorter than 32 bytes.
    public init(secret: [UInt8]) throws(ConfigurationError) {
        guard secret.count >= 32 else {
            throw .invalid(name: "METERLAKE_STATE_SECRET", reason: "must be at least 32 bytes, got \(secret.count)")
        }
        self.secret = SecretBytes(secret)
    }

    /// Reads `METERLAKE_STATE_SECRET` (its UTF-8 bytes are the key).
    public init(environment: Environment) throws(ConfigurationError) {
        try self.init(secret: Array(try environment.require("METERLAKE_STATE_SECRET").utf8))
    }

    /// A new state for `organizationID` connecting `vendor`, with a fresh 128-bit nonce.
    public func issue(organizationID: Int64, vendor: String, now: Int64, nonce: [UInt8]? = nil) throws(OAuthStateError) -> String {
        guard Self.vendors.contains(vendor) else {
            throw .malformed(reason: "unknown vendor \"\(vendor)\" (expected one of \(Self.vendors.sorted().joined(separator: ", ")))")
        }
        guard organizationID > 0 else { throw .malformed(reason: "organization_id must be positive") }
        var writer = JSONWriter()
        writer.beginObject()
        writer.key("organization_id")
        writer.number(organizationID)
        writer.key("vendor")
        writer.string(vendor)
        writer.key("nonce")
        writer.string(Base64.encodeURLSafe(nonce ?? SecureRandom.bytes(16)))
        writer.key("issued_at")
        writer.number(now)
        writer.endObject()
        let payload = writer.bytes
        return Base64.encodeURLSafe(payload) + "." + Base64.encodeURLSafe(mac(payload))
    }

    /// Verifies a state received on `vendor`'s callback at `now` (Unix seconds).
    public func verify(_ state: String, vendor: String, now: Int64) throws(OAuthStateError) -> OAuthStatePayload {
        let decoded = try verify(state, now: now)
        guard decoded.vendor == vendor else { throw .wrongVendor(expected: vendor, actual: decoded.vendor) }
        return decoded
    }

    /// Verifies a state's signature, form and age at `now` (Unix seconds); the caller then redeems
    /// the code only with the vendor the state names.
    public func verify(_ state: String, now: Int64) throws(OAuthStateError) -> OAuthStatePayload {
        guard state.utf8.count <= Self.maximumLength else {
            throw .malformed(reason: "longer than \(Self.maximumLength) bytes")
        }
        let parts = state.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 2, !parts[1].isEmpty else {
            throw parts.count == 1 || parts.last?.isEmpty == true ? .unsigned : .malformed(reason: "expected payload.signature")
        }
        guard let payload = Base64.decodeURLSafe(String(parts[0])), let signature = Base64.decodeURLSafe(String(parts[1])) else {
            throw .malformed(reason: "not URL-safe Base64")
        }
        guard constantTimeEquals(signature, mac(payload)) else { throw .badSignature }
        let decoded: OAuthStatePayload
        do {
            decoded = try JSONDecoder().decode(OAuthStatePayload.self, from: Data(payload))
        } catch {
            throw .malformed(reason: "the signed payload is not the expected JSON")
        }
        let age = now - decoded.issuedAt
        if age > Self.maximumAge { throw .expired(ageSeconds: age) }
        if -age > Self.allowedSkew { throw .fromTheFuture(seconds: -age) }
        guard Self.vendors.contains(decoded.vendor), decoded.organizationID > 0 else { throw .malformed(reason: "unknown vendor or organisation") }
        return decoded
    }

    func mac(_ payload: [UInt8]) -> [UInt8] {
        HMACSHA256.authenticationCode(for: Self.label + payload, key: secret.bytes)
    }
}
