import Core
import Cryptography
import Foundation

/// User tokens for tests: HS256 tokens minted here, and ES256/RS256 tokens signed by pyca/cryptography
/// (`Fixtures/jwt/make_tokens.py`) with their JWKS.
public enum TestTokens {
    /// The HS256 secret the tests configure as `METERLAKE_JWT_SECRET`.
    public static let secret = "test-supabase-jwt-secret-of-at-least-32-bytes"

    /// A token with `claims` (JSON object text), header `header`, signed with HS256 under `secret`.
    public static func hs256(_ claims: String, secret: String = TestTokens.secret, header: String = #"{"alg":"HS256","typ":"JWT"}"#) -> String {
        let signing = Base64.encodeURLSafe(Array(header.utf8)) + "." + Base64.encodeURLSafe(Array(claims.utf8))
        return signing + "." + Base64.encodeURLSafe(HMACSHA256.authenticationCode(for: Array(signing.utf8), key: Array(secret.utf8)))
    }

    /// A user of `organizations` whose token is valid for an hour after `now`.
    public static func user(_ subject: String = "user-1", organizations: [Int64], now: Int64 = Int64(Date().timeIntervalSince1970),
                            lifetime: Int64 = 3600, audience: String = "authenticated") -> String {
        hs256(#"{"sub":"\#(subject)","aud":"\#(audience)","exp":\#(now + lifetime),"role":"authenticated","app_metadata":{"organization_ids":[\#(organizations.map(String.init).joined(separator: ","))]}}"#)
    }

    /// `Fixtures/jwt/tokens.json`.
    public static func fixture(_ name: String) throws -> String {
        try Fixture.json("jwt/tokens.json")[name] as! String
    }

    /// The JWKS document (`jwks`) or the one that lists a secp256k1 key as P-256 (`jwks_wrong_curve`).
    public static func jwks(_ name: String = "jwks") throws -> String {
        let document = try Fixture.json("jwt/jwks.json")[name]!
        return String(decoding: try JSONSerialization.data(withJSONObject: document), as: UTF8.self)
    }
}
