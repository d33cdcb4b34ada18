import Core
import Cryptography
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

    @Test func keySelectionAndHeaderRules() throws {
        let jwks = try JSONSerialization.jsonObject(with: Data(try TestTokens.jwks().utf8)) as! [String: Any]
        var keys = jwks["keys"] as! [[String: Any]]
        // Two ES256 keys and a token naming none: which key is meant is unknown.
        keys.append(keys[0].merging(["kid": "es-2"]) { $1 })
        let twoKeys = String(decoding: try JSONSerialization.data(withJSONObject: ["keys": keys]), as: UTF8.self)
        let verifier = try JWTVerifier(environment: Environment(["METERLAKE_JWT_JWKS": twoKeys]))
        let claims = Base64.encodeURLSafe(Array(#"{"sub":"u","aud":"authenticated","exp":\#(now + 60)}"#.utf8))
        let anonymous = Base64.encodeURLSafe(Array(#"{"alg":"ES256"}"#.utf8)) + "." + claims + "." + Base64.encodeURLSafe([UInt8](repeating: 7, count: 64))
        #expect(throws: JWTError.unknownKey("(none given, and 2 ES256 keys are configured)")) { try verifier.verify(anonymous, now: now) }
        // With one key, a token naming none is checked against it.
        #expect(throws: JWTError.badSignature) { try self.verifier.verify(anonymous, now: now) }
        // A critical header extension is refused even with a good signature.
        #expect(throws: JWTError.malformed(reason: "critical header extensions are not supported")) {
            try self.verifier.verify(try TestTokens.fixture("es256_crit"), now: now)
        }
        // nbf 45 s ahead is outside the 30 s leeway; an empty sub is no subject.
        #expect(throws: JWTError.notYetValid(inSeconds: 45)) {
            try self.verifier.verify(TestTokens.hs256(#"{"sub":"u","aud":"authenticated","exp":\#(now + 600),"nbf":\#(now + 45)}"#), now: now)
        }
        #expect(throws: JWTError.missingClaim("sub")) {
            try self.verifier.verify(TestTokens.hs256(#"{"sub":"","aud":"authenticated","exp":\#(now + 600)}"#), now: now)
        }
        // Keys for encryption are skipped; a private key is refused even when its public part is valid.
        let encryption = keys[0].merging(["use": "enc", "kid": "enc-1"]) { $1 }
        let skipped = try JWTVerifier.keys(jwks: Array(try JSONSerialization.data(withJSONObject: ["keys": [encryption, keys[1]]])))
        #expect(skipped.map(\.keyID) == ["rs-1"])
        let privateKey = keys[0].merging(["d": Base64.encodeURLSafe([UInt8](repeating: 1, count: 32))]) { $1 }
        #expect(throws: ConfigurationError.self) { try JWTVerifier.keys(jwks: Array(try JSONSerialization.data(withJSONObject: ["keys": [privateKey]]))) }
    }

    @Test func anHMACKeyedWithAPublicKeyNeverPasses() throws {
        // The classic confusion: HS256 "signed" with the server's own public key bytes (DER, PEM).
        let keys = try JWTVerifier.keys(jwks: Array(try TestTokens.jwks().utf8))
        for key in keys {
            let der = key.subjectPublicKeyInfo
            let pem = "-----BEGIN PUBLIC KEY-----\n" + Base64.encode(der) + "\n-----END PUBLIC KEY-----\n"
            let claims = #"{"sub":"u","aud":"authenticated","exp":\#(now + 60)}"#
            let signing = Base64.encodeURLSafe(Array(#"{"alg":"HS256"}"#.utf8)) + "." + Base64.encodeURLSafe(Array(claims.utf8))
            for secret in [der, Array(pem.utf8)] {
                let forged = signing + "." + Base64.encodeURLSafe(HMACSHA256.authenticationCode(for: Array(signing.utf8), key: secret))
                #expect(throws: JWTError.badSignature) { try verifier.verify(forged, now: now) }
            }
        }
    }

    @Test func signatureChecksRefuseWeakOrForeignKeys() throws {
        let document = try JSONSerialization.jsonObject(with: try Fixture.data("jwt/jwks.json")) as! [String: Any]
        let spki = (document["spki"] as! [String: String]).mapValues { Base64.decode($0)! }
        let signatures = (document["signatures"] as! [String: String]).mapValues { Base64.decodeURLSafe($0)! }
        let message = Array("meterlake".utf8)
        #expect(try SignatureVerification.isValid(signatures["rsa2048"]!, for: message, publicKey: spki["rsa2048"]!, algorithm: .rsaPKCS1SHA256))
        #expect(try !SignatureVerification.isValid(signatures["rsa2048"]!, for: Array("meterlakE".utf8), publicKey: spki["rsa2048"]!, algorithm: .rsaPKCS1SHA256))
        // A 1024-bit RSA key is refused even with a signature that verifies under it.
        #expect(throws: CryptographyError.self) {
            try SignatureVerification.isValid(signatures["rsa1024"]!, for: message, publicKey: spki["rsa1024"]!, algorithm: .rsaPKCS1SHA256)
        }
        // A key of the other type, or another curve, is refused; so is garbage.
        #expect(throws: CryptographyError.self) { try SignatureVerification.isValid([1], for: message, publicKey: spki["rsa2048"]!, algorithm: .ecdsaP256SHA256) }
        #expect(throws: CryptographyError.self) { try SignatureVerification.isValid([1], for: message, publicKey: spki["p256"]!, algorithm: .rsaPKCS1SHA256) }
        #expect(throws: CryptographyError.self) { try SignatureVerification.isValid([1], for: message, publicKey: spki["secp256k1"]!, algorithm: .ecdsaP256SHA256) }
        #expect(throws: CryptographyError.self) { try SignatureVerification.isValid([1], for: message, publicKey: [0x30, 0x03, 1, 2, 3], algorithm: .ecdsaP256SHA256) }
        // Degenerate signatures are false, not errors and not true.
        for signature in [[], [0], [UInt8](repeating: 0xFF, count: 256)] as [[UInt8]] {
            #expect(try !SignatureVerification.isValid(signature, for: message, publicKey: spki["rsa2048"]!, algorithm: .rsaPKCS1SHA256))
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
