import Core
import Foundation
import Testing
import TestSupport

/// The user-token verifier, on tokens signed by an independent implementation (pyca/cryptography,
/// `Fixtures/jwt/make_tokens.py`) and on HS256 tokens made here.
@Suite struct JWTTests {
    let now: Int64 = 1_780_000_000
    var verifier: JWTVerifier {
        get throws {
            try JWTVerifier(environment: Environment(["METERLAKE_JWT_SECRET": TestTokens.secret, "METERLAKE_JWT_JWKS": try TestTokens.jwks()]))
        }
    }

    @Test func es256AndRS256TokensFromAnotherImplementationVerify() throws {
        let es = try verifier.verify(try TestTokens.fixture("es256_valid"), now: now)
        #expect(es == VerifiedToken(subject: "user-7", organizations: [7, 8], expiresAt: 4_102_444_800))
        let rs = try verifier.verify(try TestTokens.fixture("rs256_valid"), now: now)
        #expect(rs.organizations == [7])
        #expect(rs.grants(7) && !rs.grants(8))
    }

    @Test func theJWKSKeepsOnlyPublicSignatureKeys() throws {
        let keys = try JWTVerifier.keys(jwks: Array(try TestTokens.jwks().utf8))
        #expect(keys.map(\.keyID) == ["es-1", "rs-1"])
        #expect(throws: ConfigurationError.self) {
            try JWTVerifier.keys(jwks: Array(#"{"keys":[{"kty":"EC","crv":"P-256","x":"AA","y":"AA","d":"AA"}]}"#.utf8))
        }
        #expect(throws: ConfigurationError.self) { try JWTVerifier.keys(jwks: Array(#"{"not":"jwks"}"#.utf8)) }
    }

    @Test(arguments: [
        ("es256_expired", JWTError.expired(secondsAgo: 80_000_000)),
        ("es256_wrong_audience", .wrongAudience),
        ("es256_unknown_kid", .unknownKey("es-2")),
        ("es256_other_key", .badSignature),
        ("rs256_signed_as_es_kid", .unknownKey("es-1")),
        ("es256_not_before_2100", .notYetValid(inSeconds: 4_102_444_790 - 1_780_000_000)),
        ("alg_none", .algorithmRefused("none")),
    ])
    func refusedFixtures(name: String, expected: JWTError) throws {
        #expect(throws: expected) { try verifier.verify(try TestTokens.fixture(name), now: now) }
    }

    @Test func aSecp256k1KeyLabelledP256NeverVerifies() throws {
        let verifier = JWTVerifier(secret: nil, keys: try JWTVerifier.keys(jwks: Array(try TestTokens.jwks("jwks_wrong_curve").utf8)), audience: "authenticated")
        #expect(throws: JWTError.badSignature) { try verifier.verify(try TestTokens.fixture("es256_secp256k1"), now: now) }
    }

    @Test func hs256ChecksEveryClaim() throws {
        let verifier = try verifier
        let good = TestTokens.user("u-1", organizations: [3], now: now)
        #expect(try verifier.verify(good, now: now).organizations == [3])
        // Leeway: 30 s past exp passes, 31 s does not.
        #expect(try verifier.verify(good, now: now + 3630).subject == "u-1")
        #expect(throws: JWTError.expired(secondsAgo: 31)) { try verifier.verify(good, now: now + 3631) }
        #expect(throws: JWTError.badSignature) { try verifier.verify(TestTokens.hs256(#"{"sub":"u","aud":"authenticated","exp":\#(now + 60)}"#, secret: "another secret that is long enough to pass"), now: now) }
        #expect(throws: JWTError.missingClaim("exp")) { try verifier.verify(TestTokens.hs256(#"{"sub":"u","aud":"authenticated"}"#), now: now) }
        #expect(throws: JWTError.missingClaim("aud")) { try verifier.verify(TestTokens.hs256(#"{"sub":"u","exp":\#(now + 60)}"#), now: now) }
        #expect(throws: JWTError.missingClaim("sub")) { try verifier.verify(TestTokens.hs256(#"{"aud":"authenticated","exp":\#(now + 60)}"#), now: now) }
        #expect(throws: JWTError.wrongAudience) { try verifier.verify(TestTokens.hs256(#"{"sub":"u","aud":["anon"],"exp":\#(now + 60)}"#), now: now) }
        #expect(try verifier.verify(TestTokens.hs256(#"{"sub":"u","aud":["x","authenticated"],"exp":\#(now + 60)}"#), now: now).subject == "u")
    }

    @Test func onlyUserTokensOfTheConfiguredIssuerPass() throws {
        // Supabase's anon and service_role keys are JWTs signed with the same secret.
        let service = TestTokens.hs256(#"{"sub":"u","aud":"authenticated","exp":\#(now + 60),"role":"service_role"}"#)
        #expect(throws: JWTError.wrongClaim("role")) { try verifier.verify(service, now: now) }
        let pinned = try JWTVerifier(environment: Environment(["METERLAKE_JWT_SECRET": TestTokens.secret, "METERLAKE_JWT_ISSUER": "https://p.supabase.co/auth/v1"]))
        let right = TestTokens.hs256(#"{"sub":"u","aud":"authenticated","exp":\#(now + 60),"iss":"https://p.supabase.co/auth/v1"}"#)
        #expect(try pinned.verify(right, now: now).subject == "u")
        let wrong = TestTokens.hs256(#"{"sub":"u","aud":"authenticated","exp":\#(now + 60),"iss":"https://q.supabase.co/auth/v1"}"#)
        #expect(throws: JWTError.wrongClaim("iss")) { try pinned.verify(wrong, now: now) }
        #expect(throws: JWTError.wrongClaim("iss")) { try pinned.verify(TestTokens.user(organizations: [1], now: now), now: now) }
    }

    @Test func organisationsComeFromAppMetadataOnly() throws {
        let token = TestTokens.hs256(#"{"sub":"u","aud":"authenticated","exp":\#(now + 60),"user_metadata":{"organization_id":5},"app_metadata":{"organization_id":"6","organization_ids":[7,"x",-1,"08",1e3]}}"#)
        #expect(try verifier.verify(token, now: now).organizations == [6, 7, 8])
    }

    @Test func algorithmConfusionIsRefused() throws {
        // An HS256 token "signed" with the RSA public key's bytes: HS256 is checked with the secret only.
        let jwks = try TestTokens.jwks()
        let confused = TestTokens.hs256(#"{"sub":"u","aud":"authenticated","exp":\#(now + 60)}"#, secret: jwks)
        #expect(throws: JWTError.badSignature) { try verifier.verify(confused, now: now) }
        // Without a configured secret, HS256 is not accepted at all.
        let publicOnly = try JWTVerifier(environment: Environment(["METERLAKE_JWT_JWKS": jwks]))
        #expect(throws: JWTError.algorithmRefused("HS256")) { try publicOnly.verify(confused, now: now) }
        // An ES256 header over an HMAC: no 64-byte signature, refused.
        let relabelled = TestTokens.hs256(#"{"sub":"u","aud":"authenticated","exp":\#(now + 60)}"#, header: #"{"alg":"ES256","kid":"es-1"}"#)
        #expect(throws: JWTError.badSignature) { try verifier.verify(relabelled, now: now) }
        #expect(throws: JWTError.algorithmRefused("HS512")) {
            try verifier.verify(TestTokens.hs256(#"{"sub":"u","aud":"authenticated","exp":\#(now + 60)}"#, header: #"{"alg":"HS512"}"#), now: now)
        }
    }

    @Test func malformedTokens() throws {
        let verifier = try verifier
        for token in ["", "a.b", "a.b.c.d", "!!.e30.e30", String(repeating: "a", count: 9000), "e30.e30.", "bnVsbA.e30."] {
            #expect(throws: JWTError.self) { try verifier.verify(token, now: now) }
        }
        #expect(throws: ConfigurationError.self) { try JWTVerifier(environment: Environment([:])) }
        #expect(throws: ConfigurationError.self) { try JWTVerifier(environment: Environment(["METERLAKE_JWT_SECRET": "short"])) }
    }
}
