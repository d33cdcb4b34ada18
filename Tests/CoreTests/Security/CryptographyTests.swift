import Core
import Cryptography
import Foundation
import Testing
import TestSupport

/// One record of a NIST CAVP `.rsp` file.
struct CAVPRecord {
    var fields: [String: String] = [:]
    var fails = false
    subscript(name: String) -> [UInt8] { hex(fields[name] ?? "") }
}

func cavpRecords(_ file: String) throws -> [CAVPRecord] {
    var records: [CAVPRecord] = []
    var current: CAVPRecord?
    for line in try Fixture.text("vectors/\(file)").split(separator: "\n", omittingEmptySubsequences: false) {
        let text = line.trimmingCharacters(in: .whitespaces)
        if text.hasPrefix("Count = ") {
            if let current { records.append(current) }
            current = CAVPRecord()
        } else if text == "FAIL" {
            current?.fails = true
        } else if let equals = text.firstIndex(of: "="), current != nil, !text.hasPrefix("[") {
            let name = text[..<equals].trimmingCharacters(in: .whitespaces)
            current?.fields[name] = text[text.index(after: equals)...].trimmingCharacters(in: .whitespaces)
        }
    }
    if let current { records.append(current) }
    return records
}

@Suite struct AESGCMTests {
    @Test func reproducesEveryNISTEncryptVector() throws {
        let records = try cavpRecords("gcmEncryptExtIV256-iv96-tag128.rsp")
        #expect(records.count == 125)
        for record in records {
            let sealed = try AESGCM.seal(record["PT"], key: record["Key"], nonce: record["IV"], authenticating: record["AAD"])
            #expect(sealed.ciphertext == record["CT"])
            #expect(sealed.tag == record["Tag"])
        }
    }

    @Test func opensEveryValidNISTDecryptVectorAndRejectsEveryFailCase() throws {
        let records = try cavpRecords("gcmDecrypt256-iv96-tag128.rsp")
        #expect(records.count == 125)
        #expect(records.filter(\.fails).count == 63)
        for record in records {
            let open = { try AESGCM.open(record["CT"], tag: record["Tag"], key: record["Key"], nonce: record["IV"], authenticating: record["AAD"]) }
            if record.fails {
                #expect(throws: CryptographyError.authenticationFailure) { try open() }
            } else {
                #expect(try open() == record["PT"])
            }
        }
    }

    @Test func refusesWrongSizes() {
        #expect(throws: CryptographyError.invalidSize(what: "key", expected: 32, actual: 16)) {
            try AESGCM.seal([1], key: [UInt8](repeating: 0, count: 16), nonce: [UInt8](repeating: 0, count: 12))
        }
        #expect(throws: CryptographyError.invalidSize(what: "nonce", expected: 12, actual: 16)) {
            try AESGCM.seal([1], key: [UInt8](repeating: 0, count: 32), nonce: [UInt8](repeating: 0, count: 16))
        }
    }
}

@Suite struct HashTests {
    @Test func hmacMatchesRFC4231() throws {
        let cases = try Fixture.json("vectors/hmac-sha256.json")["cases"] as! [[String: Any]]
        #expect(cases.count == 7)
        for test in cases {
            let code = HMACSHA256.authenticationCode(for: hex(test["data_hex"] as! String), key: hex(test["key_hex"] as! String))
            let expected = hex(test["expected_hex"] as! String)
            #expect(Array(code.prefix(expected.count)) == expected, "RFC 4231 case \(test["test_case"]!)")
            #expect(HMACSHA256.isValid(code, for: hex(test["data_hex"] as! String), key: hex(test["key_hex"] as! String)))
        }
    }

    @Test func sha256OverPiecesEqualsOneShotAndKnownValues() {
        #expect(Hex.encode(SHA256.hash([])) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(Hex.encode(SHA256.hash(Array("abc".utf8))) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        let data = (0..<100_000).map { UInt8(truncatingIfNeeded: $0 &* 7) }
        let hasher = SHA256()
        var offset = 0
        for size in [1, 63, 64, 65, 4096, 30_000] where offset < data.count {
            hasher.update(Array(data[offset..<min(data.count, offset + size)]))
            offset += size
        }
        hasher.update(Array(data[offset...]))
        #expect(hasher.finalize() == SHA256.hash(data))
    }

    @Test func constantTimeEqualityIsExact() {
        #expect(constantTimeEquals([1, 2, 3], [1, 2, 3]))
        #expect(!constantTimeEquals([1, 2, 3], [1, 2, 4]))
        #expect(!constantTimeEquals([1, 2, 3], [1, 2]))
        #expect(constantTimeEquals([], []))
    }
}

@Suite struct Base64Tests {
    @Test func roundTripsEveryLengthInBothAlphabets() {
        for length in 0..<70 {
            let bytes = (0..<length).map { UInt8(truncatingIfNeeded: $0 * 37 + length) }
            #expect(Base64.decode(Base64.encode(bytes)) == bytes)
            #expect(Base64.decodeURLSafe(Base64.encodeURLSafe(bytes)) == bytes)
            #expect(!Base64.encodeURLSafe(bytes).contains("="))
        }
        #expect(Base64.encode(Array("foobar".utf8)) == "Zm9vYmFy")
        #expect(Base64.encode(Array("fo".utf8)) == "Zm8=")
    }

    @Test(arguments: ["Zm8", "Zm8=\n", " Zm8=", "Zm9v\nYmFy", "Zm-v", "Zm8==", "Z===", "Zm9=", "Zg=a", "Zg"])
    func rejectsAnythingButCanonicalPaddedStandardBase64(_ text: String) {
        #expect(Base64.decode(text) == nil)
    }
}

@Suite struct CredentialEnvelopeTests {
    func keys(_ hexKey: Any?) throws -> EnvelopeKeys { try EnvelopeKeys(current: hex(hexKey as! String)) }

    @Test func matchesEveryValidProjectVectorBothWays() throws {
        let valid = try Fixture.json("vectors/envelope.json")["valid"] as! [[String: Any]]
        #expect(valid.count == 20)
        for vector in valid {
            let keys = try keys(vector["key_hex"])
            let plaintext = Array((vector["plaintext"] as! String).utf8)
            let envelope = vector["envelope_b64"] as! String
            #expect(try CredentialEnvelope.open(envelope, keys: keys) == plaintext, "\(vector["name"]!)")
            #expect(try CredentialEnvelope.seal(plaintext, keys: keys, nonce: hex(vector["iv_hex"] as! String)) == envelope)
        }
    }

    @Test func rejectsEveryMustFailAndLooseBase64Vector() throws {
        let file = try Fixture.json("vectors/envelope.json")
        let cases = (file["must_fail"] as! [[String: Any]]) + (file["strict_decoding_must_fail"] as! [[String: Any]])
        #expect(cases.count == 20)
        for vector in cases {
            #expect(throws: EnvelopeError.self, "\(vector["name"]!) must not open") {
                try CredentialEnvelope.open(vector["envelope_b64"] as! String, keys: try keys(vector["key_hex"]))
            }
        }
    }

    @Test func roundTripsWithFreshNoncesAndRotatesKeys() throws {
        let old = SecureRandom.bytes(32)
        let new = SecureRandom.bytes(32)
        let before = try EnvelopeKeys(current: old)
        let during = try EnvelopeKeys(current: new, previous: old)
        for length in [0, 1, 15, 16, 17, 1000] {
            let secret = SecureRandom.bytes(length)
            let first = try CredentialEnvelope.seal(secret, keys: before)
            let second = try CredentialEnvelope.seal(secret, keys: before)
            #expect(first != second, "every seal uses a fresh nonce")
            #expect(try CredentialEnvelope.open(first, keys: before) == secret)
            // During a rotation an old envelope still opens, and new ones use the new key.
            #expect(try CredentialEnvelope.open(first, keys: during) == secret)
            let resealed = try CredentialEnvelope.seal(secret, keys: during)
            #expect(throws: EnvelopeError.authenticationFailed) { try CredentialEnvelope.open(resealed, keys: before) }
        }
    }

    @Test func anyFlippedBitFailsToOpen() throws {
        let keys = try EnvelopeKeys(current: SecureRandom.bytes(32))
        let envelope = try CredentialEnvelope.seal(Array(#"{"api_key":"L4QLVQ1LOKCQX2193VSEICXW61NP6B1O"}"#.utf8), keys: keys)
        let bytes = Base64.decode(envelope)!
        for index in bytes.indices {
            for bit in 0..<8 {
                var tampered = bytes
                tampered[index] ^= 1 << UInt8(bit)
                #expect(throws: EnvelopeError.authenticationFailed) {
                    try CredentialEnvelope.open(Base64.encode(tampered), keys: keys)
                }
            }
        }
        #expect(throws: EnvelopeError.self) { try CredentialEnvelope.open(Base64.encode(Array(bytes.dropLast())), keys: keys) }
        #expect(throws: EnvelopeError.malformed(reason: "27 bytes is shorter than nonce and tag (28)")) {
            try CredentialEnvelope.open(Base64.encode(Array(bytes.prefix(27))), keys: keys)
        }
    }

    @Test func keysComeFromTheEnvironmentAndNeverPrint() throws {
        let key = SecureRandom.bytes(32)
        let keys = try EnvelopeKeys(environment: Environment(["METERLAKE_ENCRYPTION_KEY": Base64.encode(key)]))
        #expect(keys.current.bytes == key)
        #expect("\(keys.current)" == "<redacted>")
        #expect(!String(reflecting: keys).contains(Base64.encode(key)))
        #expect(throws: ConfigurationError.missing(name: "METERLAKE_ENCRYPTION_KEY")) { try EnvelopeKeys(environment: Environment([:])) }
        #expect(throws: ConfigurationError.invalid(name: "METERLAKE_ENCRYPTION_KEY", reason: "must decode to 32 bytes, got 16")) {
            try EnvelopeKeys(environment: Environment(["METERLAKE_ENCRYPTION_KEY": Base64.encode(SecureRandom.bytes(16))]))
        }
        #expect(throws: ConfigurationError.self) {
            try EnvelopeKeys(environment: Environment(["METERLAKE_ENCRYPTION_KEY": Base64.encode(key), "METERLAKE_ENCRYPTION_KEY_PREVIOUS": "not base64!"]))
        }
    }
}

@Suite struct OAuthStateTests {
    let signer = try! OAuthStateSigner(secret: Array("a state secret of at least thirty-two bytes".utf8))
    let now: Int64 = 1_772_345_702

    @Test func issuesAndVerifiesARoundTrip() throws {
        let state = try signer.issue(organizationID: 42, vendor: "enphase", now: now)
        let payload = try signer.verify(state, vendor: "enphase", now: now + 599)
        #expect(payload.organizationID == 42)
        #expect(payload.vendor == "enphase")
        #expect(payload.issuedAt == now)
        #expect(Base64.decodeURLSafe(payload.nonce)?.count == 16)
        #expect(try signer.issue(organizationID: 42, vendor: "enphase", now: now) != state, "fresh nonce each time")
        #expect(state.allSatisfy { $0.isLetter || $0.isNumber || "-_.".contains($0) }, "URL-safe as it is")
    }

    @Test func rejectsExpiredFutureWrongVendorTamperedUnsignedAndForeign() throws {
        let state = try signer.issue(organizationID: 7, vendor: "sma", now: now)
        #expect(throws: OAuthStateError.expired(ageSeconds: 601)) { try signer.verify(state, vendor: "sma", now: now + 601) }
        #expect(throws: OAuthStateError.fromTheFuture(seconds: 61)) { try signer.verify(state, vendor: "sma", now: now - 61) }
        #expect(try signer.verify(state, vendor: "sma", now: now - 60).organizationID == 7)
        #expect(throws: OAuthStateError.wrongVendor(expected: "goodwe", actual: "sma")) { try signer.verify(state, vendor: "goodwe", now: now) }

        let parts = state.split(separator: ".").map(String.init)
        #expect(throws: OAuthStateError.unsigned) { try signer.verify(parts[0], vendor: "sma", now: now) }
        #expect(throws: OAuthStateError.unsigned) { try signer.verify(parts[0] + ".", vendor: "sma", now: now) }
        // A payload changed to another organisation keeps the old signature: refused before parsing.
        var payload = Base64.decodeURLSafe(parts[0])!
        payload = Array(String(decoding: payload, as: UTF8.self).replacingOccurrences(of: "\"organization_id\":7", with: "\"organization_id\":8").utf8)
        #expect(throws: OAuthStateError.badSignature) { try signer.verify(Base64.encodeURLSafe(payload) + "." + parts[1], vendor: "sma", now: now) }
        let other = try OAuthStateSigner(secret: Array("another secret, also at least thirty-two bytes".utf8))
        #expect(throws: OAuthStateError.badSignature) { try other.verify(state, vendor: "sma", now: now) }
        #expect(throws: OAuthStateError.self) { try signer.verify(String(repeating: "a", count: 2000) + ".b", vendor: "sma", now: now) }
        #expect(throws: OAuthStateError.self) { try signer.verify("a.b.c", vendor: "sma", now: now) }
        // A MAC over the bare payload (no label), as a naive signer would make, is refused.
        let bare = HMACSHA256.authenticationCode(for: Base64.decodeURLSafe(parts[0])!, key: Array("a state secret of at least thirty-two bytes".utf8))
        #expect(throws: OAuthStateError.badSignature) { try signer.verify(parts[0] + "." + Base64.encodeURLSafe(bare), vendor: "sma", now: now) }
        // Every flipped bit of the signature fails.
        let signature = Base64.decodeURLSafe(parts[1])!
        for index in signature.indices {
            var flipped = signature
            flipped[index] ^= 0x80
            #expect(throws: OAuthStateError.badSignature) { try signer.verify(parts[0] + "." + Base64.encodeURLSafe(flipped), vendor: "sma", now: now) }
        }
    }

    @Test func refusesUnknownVendorsShortSecretsAndBadOrganisations() {
        #expect(throws: OAuthStateError.self) { try signer.issue(organizationID: 1, vendor: "tesla", now: now) }
        #expect(throws: OAuthStateError.self) { try signer.issue(organizationID: 0, vendor: "sma", now: now) }
        #expect(throws: ConfigurationError.self) { try OAuthStateSigner(secret: Array("short".utf8)) }
        #expect(throws: ConfigurationError.missing(name: "METERLAKE_STATE_SECRET")) { try OAuthStateSigner(environment: Environment([:])) }
    }
}

@Suite struct FileDigestTests {
    @Test func hashesStreamsAndFilesExactly() throws {
        let data = (0..<1_000_003).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }
        for chunk in [1, 4093, 1 << 20] {
            let digest = try FileDigest.sha256(of: MemoryByteSource(Array(data.prefix(chunk == 1 ? 5000 : data.count)), chunkSize: chunk))
            let expected = Hex.encode(SHA256.hash(Array(data.prefix(chunk == 1 ? 5000 : data.count))))
            #expect(digest.hex == expected)
        }
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("digest-\(UUID().uuidString)").path
        try Data(Array("abc".utf8)).write(to: URL(fileURLWithPath: path))
        #expect(try FileDigest.sha256(path: path) == ("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", 3))
        #expect(throws: FileFormatError.self) { try FileDigest.sha256(path: path + ".missing") }
    }
}
