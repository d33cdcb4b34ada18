import Cryptography

/// Why a user's token was refused. The texts name the claim or rule, never the token.
public enum JWTError: Error, Equatable, Sendable, CustomStringConvertible, ReportableError {
    case malformed(reason: String)
    /// `alg` is not one this deployment accepts (`none`, HS384, …), or has no key configured.
    case algorithmRefused(String)
    /// No configured key has this `kid` (or, without a `kid`, no single key of the algorithm).
    case unknownKey(String)
    case badSignature
    case expired(secondsAgo: Int64)
    case notYetValid(inSeconds: Int64)
    case wrongAudience
    case missingClaim(String)
    /// A token for another role (Supabase's `anon` or `service_role` keys) or issuer.
    case wrongClaim(String)

    public var description: String {
        switch self {
        case .malformed(let reason): "the token is malformed: \(reason)"
        case .algorithmRefused(let alg): "the token's algorithm \(alg) is not accepted"
        case .unknownKey(let kid): "the token's signing key \(kid) is not one of the configured keys"
        case .badSignature: "the token's signature does not verify"
        case .expired(let ago): "the token expired \(ago) s ago"
        case .notYetValid(let seconds): "the token is not valid for another \(seconds) s (nbf)"
        case .wrongAudience: "the token is not meant for this audience (aud)"
        case .missingClaim(let name): "the token lacks the claim \(name)"
        case .wrongClaim(let name): "the token's \(name) is not the one this deployment accepts"
        }
    }

    public var errorType: String { "Authentication.InvalidToken" }
}

/// A token that verified: who the user is and which organisations it grants.
public struct VerifiedToken: Sendable, Equatable {
    public var subject: String
    /// From `app_metadata.organization_id` and `app_metadata.organization_ids` (Supabase puts
    /// `app_metadata` under the project's control; `user_metadata` is the user's to edit and is
    /// never read).
    public var organizations: Set<Int64>
    public var expiresAt: Int64

    public init(subject: String, organizations: Set<Int64>, expiresAt: Int64) {
        self.subject = subject
        self.organizations = organizations
        self.expiresAt = expiresAt
    }

    public func grants(_ organizationID: Int64) -> Bool { organizations.contains(organizationID) }
}

/// A public key from a JWKS document, as a DER SubjectPublicKeyInfo.
public struct JWTPublicKey: Sendable, Equatable {
    public enum Algorithm: String, Sendable { case es256 = "ES256", rs256 = "RS256" }
    public var algorithm: Algorithm
    public var keyID: String?
    public var subjectPublicKeyInfo: [UInt8]
}

/// Verifies Supabase user tokens (JWS compact form): HS256 with the project's secret, ES256 and
/// RS256 with keys from a JWKS document, matched by `kid`.
///
/// The header's `alg` chooses the family, and each family has its own keys: an HS256 token is
/// checked only with the secret and an ES256/RS256 token only with a public key of that type, so
/// a public key can never serve as an HMAC secret (the HS/RS confusion), and `none` is refused.
public struct JWTVerifier: Sendable {
    public static let maximumLength = 8192
    /// Clock skew allowed on `exp` and `nbf`.
    public static let leeway: Int64 = 30

    private let secret: SecretBytes?
    public let keys: [JWTPublicKey]
    public let audience: String
    /// The `iss` every token must carry, when configured (`https://<project>.supabase.co/auth/v1`).
    public let issuer: String?

    public init(secret: [UInt8]?, keys: [JWTPublicKey], audience: String, issuer: String? = nil) {
        self.secret = secret.map(SecretBytes.init)
        self.keys = keys
        self.audience = audience
        self.issuer = issuer
    }

    /// Reads `METERLAKE_JWT_SECRET`, `METERLAKE_JWT_JWKS`, `METERLAKE_JWT_AUDIENCE` (default
    /// `authenticated`) and `METERLAKE_JWT_ISSUER` (optional); one of the first two must be set.
    public init(environment: Environment) throws(ConfigurationError) {
        let secret = environment["METERLAKE_JWT_SECRET"].map { Array($0.utf8) }
        if let secret, secret.count < 32 {
            throw .invalid(name: "METERLAKE_JWT_SECRET", reason: "must be at least 32 bytes, got \(secret.count)")
        }
        let keys = try environment["METERLAKE_JWT_JWKS"].map { jwks throws(ConfigurationError) in try Self.keys(jwks: Array(jwks.utf8)) } ?? []
        guard secret != nil || !keys.isEmpty else { throw .missing(name: "METERLAKE_JWT_SECRET or METERLAKE_JWT_JWKS") }
        self.init(secret: secret, keys: keys, audience: environment["METERLAKE_JWT_AUDIENCE"] ?? "authenticated",
                  issuer: environment["METERLAKE_JWT_ISSUER"])
    }

    /// Verifies `token` at `now` (Unix seconds): signature first, then `exp`, `nbf`, `aud`, `sub`.
    public func verify(_ token: String, now: Int64) throws(JWTError) -> VerifiedToken {
        guard token.utf8.count <= Self.maximumLength else { throw .malformed(reason: "longer than \(Self.maximumLength) bytes") }
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3 else { throw .malformed(reason: "expected header.payload.signature") }
        guard let headerBytes = Base64.decodeURLSafe(String(parts[0])), let payloadBytes = Base64.decodeURLSafe(String(parts[1])),
            let signature = Base64.decodeURLSafe(String(parts[2]))
        else { throw .malformed(reason: "a part is not URL-safe Base64") }
        guard let header = try? JSONParser.parse(headerBytes, maximumDepth: 4), case .object = header else {
            throw .malformed(reason: "the header is not a JSON object")
        }
        guard case .string(let alg)? = header["alg"] else { throw .malformed(reason: "the header has no alg") }
        if let crit = header["crit"], crit != .null { throw .malformed(reason: "critical header extensions are not supported") }
        let kid = header["kid"]?.text
        let signed = Array(parts[0].utf8) + [UInt8(ascii: ".")] + Array(parts[1].utf8)

        switch alg {
        case "HS256":
            guard let secret else { throw .algorithmRefused(alg) }
            guard HMACSHA256.isValid(signature, for: signed, key: secret.bytes) else { throw .badSignature }
        case "ES256", "RS256":
            let algorithm = JWTPublicKey.Algorithm(rawValue: alg)!
            let candidates = keys.filter { $0.algorithm == algorithm }
            guard !candidates.isEmpty else { throw .algorithmRefused(alg) }
            let key: JWTPublicKey
            if let kid {
                guard let found = candidates.first(where: { $0.keyID == kid }) else { throw .unknownKey(String(kid.prefix(64))) }
                key = found
            } else {
                guard candidates.count == 1 else { throw .unknownKey("(none given, and \(candidates.count) \(alg) keys are configured)") }
                key = candidates[0]
            }
            let der: [UInt8]
            if algorithm == .es256 {
                // JWS carries r ‖ s, 32 bytes each; OpenSSL wants DER.
                guard signature.count == 64 else { throw .badSignature }
                der = DER.sequence(DER.integer(Array(signature[0..<32])) + DER.integer(Array(signature[32..<64])))
            } else {
                der = signature
            }
            let valid = try? SignatureVerification.isValid(
                der, for: signed, publicKey: key.subjectPublicKeyInfo, algorithm: algorithm == .es256 ? .ecdsaP256SHA256 : .rsaPKCS1SHA256)
            guard valid == true else { throw .badSignature }
        default:
            throw .algorithmRefused(String(alg.prefix(16)))
        }

        guard let claims = try? JSONParser.parse(payloadBytes, maximumDepth: 8), case .object = claims else {
            throw .malformed(reason: "the payload is not a JSON object")
        }
        guard let exp = Self.seconds(claims["exp"]) else { throw .missingClaim("exp") }
        if now - exp > Self.leeway { throw .expired(secondsAgo: now - exp) }
        if let nbf = Self.seconds(claims["nbf"]), nbf - now > Self.leeway { throw .notYetValid(inSeconds: nbf - now) }
        switch claims["aud"] {
        case .string(let aud)? where aud == audience: break
        case .array(let auds)? where auds.contains(.string(audience)): break
        case nil: throw .missingClaim("aud")
        default: throw .wrongAudience
        }
        guard case .string(let subject)? = claims["sub"], !subject.isEmpty else { throw .missingClaim("sub") }
        // A user's token says role "authenticated"; the project's anon and service keys say otherwise.
        if let role = claims["role"], role != .string("authenticated") { throw .wrongClaim("role") }
        if let issuer, claims["iss"] != .string(issuer) { throw .wrongClaim("iss") }
        var organizations = Set<Int64>()
        let metadata = claims["app_metadata"]
        if let single = metadata?["organization_id"], let id = Self.organization(single) { organizations.insert(id) }
        if case .array(let many)? = metadata?["organization_ids"] {
            for element in many { if let id = Self.organization(element) { organizations.insert(id) } }
        }
        return VerifiedToken(subject: subject, organizations: organizations, expiresAt: exp)
    }

    /// A NumericDate claim as whole seconds.
    private static func seconds(_ value: JSONValue?) -> Int64? {
        guard case .number(let literal)? = value, let number = Double(literal), number.isFinite, abs(number) < 1e15 else { return nil }
        return Int64(number.rounded(.down))
    }

    /// A positive organisation id, as a number or a string of digits.
    private static func organization(_ value: JSONValue) -> Int64? {
        guard let text = value.text, text.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }), let id = Int64(text), id > 0 else { return nil }
        return id
    }

    /// The ES256 and RS256 keys of a JWKS document (`{"keys": [...]}`). Keys for other uses
    /// (`"use": "enc"`) or types (`oct`) are skipped; a private key is refused.
    public static func keys(jwks: [UInt8]) throws(ConfigurationError) -> [JWTPublicKey] {
        func invalid(_ reason: String) -> ConfigurationError { .invalid(name: "METERLAKE_JWT_JWKS", reason: reason) }
        guard let document = try? JSONParser.parse(jwks, maximumDepth: 8), case .array(let entries)? = document["keys"] else {
            throw invalid("expected a JWKS document, {\"keys\": [...]}")
        }
        var keys: [JWTPublicKey] = []
        for (index, entry) in entries.enumerated() {
            guard case .object = entry else { throw invalid("keys[\(index)] is not an object") }
            if entry["d"] != nil { throw invalid("keys[\(index)] is a private key (member d): configure public keys only") }
            if let use = entry["use"], use != .string("sig") { continue }
            let kid = entry["kid"]?.text
            let declared = entry["alg"]?.text
            switch entry["kty"]?.text {
            case "EC":
                guard entry["crv"] == .string("P-256"), declared == nil || declared == "ES256" else { continue }
                guard let x = entry["x"]?.text.flatMap(Base64.decodeURLSafe), let y = entry["y"]?.text.flatMap(Base64.decodeURLSafe),
                    x.count == 32, y.count == 32
                else { throw invalid("keys[\(index)]: x and y must be 32 bytes of URL-safe Base64") }
                keys.append(JWTPublicKey(algorithm: .es256, keyID: kid, subjectPublicKeyInfo: DER.p256PublicKey(x: x, y: y)))
            case "RSA":
                guard declared == nil || declared == "RS256" else { continue }
                guard let n = entry["n"]?.text.flatMap(Base64.decodeURLSafe), let e = entry["e"]?.text.flatMap(Base64.decodeURLSafe),
                    n.count >= 256, !e.isEmpty, e.count <= 8
                else { throw invalid("keys[\(index)]: n (at least 2048 bits) and e must be URL-safe Base64") }
                keys.append(JWTPublicKey(algorithm: .rs256, keyID: kid, subjectPublicKeyInfo: DER.rsaPublicKey(modulus: n, exponent: e)))
            default:
                continue
            }
        }
        return keys
    }
}

/// The few DER shapes public keys and ECDSA signatures need.
enum DER {
    static func length(_ count: Int) -> [UInt8] {
        if count < 0x80 { return [UInt8(count)] }
        var bytes: [UInt8] = []
        var rest = count
        while rest > 0 {
            bytes.insert(UInt8(rest & 0xFF), at: 0)
            rest >>= 8
        }
        return [0x80 | UInt8(bytes.count)] + bytes
    }

    static func tagged(_ tag: UInt8, _ content: [UInt8]) -> [UInt8] { [tag] + length(content.count) + content }
    static func sequence(_ content: [UInt8]) -> [UInt8] { tagged(0x30, content) }

    /// An unsigned big-endian integer: leading zeros dropped, a zero byte added when the high bit is set.
    static func integer(_ magnitude: [UInt8]) -> [UInt8] {
        var bytes = Array(magnitude.drop { $0 == 0 })
        if bytes.isEmpty { bytes = [0] }
        if bytes[0] & 0x80 != 0 { bytes.insert(0, at: 0) }
        return tagged(0x02, bytes)
    }

    static func bitString(_ content: [UInt8]) -> [UInt8] { tagged(0x03, [0] + content) }

    /// SubjectPublicKeyInfo of an uncompressed P-256 point (id-ecPublicKey, prime256v1).
    static func p256PublicKey(x: [UInt8], y: [UInt8]) -> [UInt8] {
        let algorithm = sequence([0x06, 0x07, 0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x02, 0x01] + [0x06, 0x08, 0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x03, 0x01, 0x07])
        return sequence(algorithm + bitString([0x04] + x + y))
    }

    /// SubjectPublicKeyInfo of an RSA key (rsaEncryption, NULL parameters).
    static func rsaPublicKey(modulus: [UInt8], exponent: [UInt8]) -> [UInt8] {
        let algorithm = sequence([0x06, 0x09, 0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x01, 0x01, 0x05, 0x00])
        return sequence(algorithm + bitString(sequence(integer(modulus) + integer(exponent))))
    }
}
