internal import COpenSSL

/// A failure inside OpenSSL, or an input the primitives refuse.
public enum CryptographyError: Error, Equatable, Sendable, CustomStringConvertible {
    /// A key, nonce or tag of the wrong size.
    case invalidSize(what: String, expected: Int, actual: Int)
    /// The authentication tag did not verify: wrong key, or the data was changed.
    case authenticationFailure
    /// OpenSSL reported an internal failure (the name of the call that failed).
    case library(String)

    public var description: String {
        switch self {
        case .invalidSize(let what, let expected, let actual): "\(what) must be \(expected) bytes, got \(actual)"
        case .authenticationFailure: "authentication failed"
        case .library(let call): "OpenSSL call \(call) failed"
        }
    }
}

/// AES-256 in Galois/Counter Mode with a 96-bit nonce and a 128-bit tag, through OpenSSL EVP.
public enum AESGCM {
    public static let keySize = 32
    public static let nonceSize = 12
    public static let tagSize = 16

    /// Encrypts `plaintext`; returns the ciphertext (same length) and the tag.
    /// - Parameter nonce: 12 bytes, never reused under the same key.
    public static func seal(
        _ plaintext: [UInt8], key: [UInt8], nonce: [UInt8], authenticating aad: [UInt8] = []
    ) throws(CryptographyError) -> (ciphertext: [UInt8], tag: [UInt8]) {
        try check(key: key, nonce: nonce)
        guard let context = EVP_CIPHER_CTX_new() else { throw .library("EVP_CIPHER_CTX_new") }
        defer { EVP_CIPHER_CTX_free(context) }
        guard EVP_EncryptInit_ex(context, EVP_aes_256_gcm(), nil, nil, nil) == 1,
            EVP_CIPHER_CTX_ctrl(context, EVP_CTRL_GCM_SET_IVLEN, Int32(nonceSize), nil) == 1,
            EVP_EncryptInit_ex(context, nil, nil, key, nonce) == 1
        else { throw .library("EVP_EncryptInit_ex") }
        var length: Int32 = 0
        if !aad.isEmpty {
            guard EVP_EncryptUpdate(context, nil, &length, aad, Int32(aad.count)) == 1 else {
                throw .library("EVP_EncryptUpdate(aad)")
            }
        }
        var ciphertext = [UInt8](repeating: 0, count: plaintext.count + 16)
        var written = 0
        if !plaintext.isEmpty {
            guard EVP_EncryptUpdate(context, &ciphertext, &length, plaintext, Int32(plaintext.count)) == 1 else {
                throw .library("EVP_EncryptUpdate")
            }
            written = Int(length)
        }
        let finished = ciphertext.withUnsafeMutableBufferPointer {
            EVP_EncryptFinal_ex(context, $0.baseAddress! + written, &length)
        }
        guard finished == 1 else { throw .library("EVP_EncryptFinal_ex") }
        written += Int(length)
        var tag = [UInt8](repeating: 0, count: tagSize)
        guard EVP_CIPHER_CTX_ctrl(context, EVP_CTRL_GCM_GET_TAG, Int32(tagSize), &tag) == 1 else {
            throw .library("EVP_CTRL_GCM_GET_TAG")
        }
        return (Array(ciphertext[0..<written]), tag)
    }

    /// Decrypts and verifies; no plaintext is returned unless the tag verifies.
    /// - Throws: ``CryptographyError/authenticationFailure`` for a wrong key or any changed byte.
    public static func open(
        _ ciphertext: [UInt8], tag: [UInt8], key: [UInt8], nonce: [UInt8], authenticating aad: [UInt8] = []
    ) throws(CryptographyError) -> [UInt8] {
        try check(key: key, nonce: nonce)
        guard tag.count == tagSize else { throw .invalidSize(what: "tag", expected: tagSize, actual: tag.count) }
        guard let context = EVP_CIPHER_CTX_new() else { throw .library("EVP_CIPHER_CTX_new") }
        defer { EVP_CIPHER_CTX_free(context) }
        guard EVP_DecryptInit_ex(context, EVP_aes_256_gcm(), nil, nil, nil) == 1,
            EVP_CIPHER_CTX_ctrl(context, EVP_CTRL_GCM_SET_IVLEN, Int32(nonceSize), nil) == 1,
            EVP_DecryptInit_ex(context, nil, nil, key, nonce) == 1
        else { throw .library("EVP_DecryptInit_ex") }
        var length: Int32 = 0
        if !aad.isEmpty {
            guard EVP_DecryptUpdate(context, nil, &length, aad, Int32(aad.count)) == 1 else {
                throw .library("EVP_DecryptUpdate(aad)")
            }
        }
        var plaintext = [UInt8](repeating: 0, count: ciphertext.count + 16)
        var written = 0
        if !ciphertext.isEmpty {
            guard EVP_DecryptUpdate(context, &plaintext, &length, ciphertext, Int32(ciphertext.count)) == 1 else {
                throw .library("EVP_DecryptUpdate")
            }
            written = Int(length)
        }
        var expected = tag
        guard EVP_CIPHER_CTX_ctrl(context, EVP_CTRL_GCM_SET_TAG, Int32(tagSize), &expected) == 1 else {
            throw .library("EVP_CTRL_GCM_SET_TAG")
        }
        let verified = plaintext.withUnsafeMutableBufferPointer {
            EVP_DecryptFinal_ex(context, $0.baseAddress! + written, &length)
        }
        guard verified == 1 else {
            // Wipe what was decrypted before the tag failed; none of it may leave.
            for index in plaintext.indices { plaintext[index] = 0 }
            throw .authenticationFailure
        }
        return Array(plaintext[0..<(written + Int(length))])
    }

    private static func check(key: [UInt8], nonce: [UInt8]) throws(CryptographyError) {
        guard key.count == keySize else { throw .invalidSize(what: "key", expected: keySize, actual: key.count) }
        guard nonce.count == nonceSize else { throw .invalidSize(what: "nonce", expected: nonceSize, actual: nonce.count) }
    }
}

/// SHA-256 over data that arrives in pieces (files, streams).
///
/// Owns an OpenSSL digest context; use it from one thread at a time.
public final class SHA256 {
    private let context: OpaquePointer

    public init() {
        guard let context = EVP_MD_CTX_new(), EVP_DigestInit_ex(context, EVP_sha256(), nil) == 1 else {
            fatalError("OpenSSL cannot create a SHA-256 context (out of memory)")
        }
        self.context = context
    }

    deinit { EVP_MD_CTX_free(context) }

    public func update(_ bytes: UnsafeRawBufferPointer) {
        guard bytes.count > 0 else { return }
        EVP_DigestUpdate(context, bytes.baseAddress, bytes.count)
    }

    public func update(_ bytes: [UInt8]) { bytes.withUnsafeBytes { update($0) } }

    /// The digest of everything passed so far; the hasher then starts over.
    public func finalize() -> [UInt8] {
        var digest = [UInt8](repeating: 0, count: 32)
        var length: UInt32 = 0
        EVP_DigestFinal_ex(context, &digest, &length)
        EVP_DigestInit_ex(context, EVP_sha256(), nil)
        return digest
    }

    /// The SHA-256 of `bytes` in one call.
    public static func hash(_ bytes: [UInt8]) -> [UInt8] {
        let hasher = SHA256()
        hasher.update(bytes)
        return hasher.finalize()
    }
}

@available(*, unavailable)
extension SHA256: Sendable {}

/// HMAC-SHA256.
public enum HMACSHA256 {
    public static func authenticationCode(for message: [UInt8], key: [UInt8]) -> [UInt8] {
        var code = [UInt8](repeating: 0, count: 32)
        var length: UInt32 = 0
        _ = key.withUnsafeBytes { keyBytes in
            HMAC(EVP_sha256(), keyBytes.baseAddress, Int32(key.count), message, message.count, &code, &length)
        }
        return code
    }

    /// Whether `code` is the MAC of `message`, compared in constant time.
    public static func isValid(_ code: [UInt8], for message: [UInt8], key: [UInt8]) -> Bool {
        constantTimeEquals(code, authenticationCode(for: message, key: key))
    }
}

/// Compares two byte strings without an early exit on the first difference (lengths are public).
public func constantTimeEquals(_ lhs: [UInt8], _ rhs: [UInt8]) -> Bool {
    guard lhs.count == rhs.count else { return false }
    guard !lhs.isEmpty else { return true }
    return CRYPTO_memcmp(lhs, rhs, lhs.count) == 0
}

/// Bytes from OpenSSL's CSPRNG.
public enum SecureRandom {
    public static func bytes(_ count: Int) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        guard count == 0 || RAND_bytes(&bytes, Int32(count)) == 1 else {
            fatalError("the OpenSSL CSPRNG failed; refusing to continue without randomness")
        }
        return bytes
    }
}

/// Public-key signature checks (JWT's ES256 and RS256), through OpenSSL's EVP digest-verify.
public enum SignatureVerification {
    public enum Algorithm: Sendable {
        /// ECDSA on P-256 with SHA-256; the signature is DER (`SEQUENCE { r, s }`).
        case ecdsaP256SHA256
        /// RSASSA-PKCS1-v1_5 with SHA-256.
        case rsaPKCS1SHA256
    }

    /// Whether `signature` signs `message` under the key, given as a DER SubjectPublicKeyInfo.
    /// - Throws: when the key does not parse or is not of the algorithm's type (a P-256 key for
    ///   ECDSA, an RSA key of at least 2048 bits for RSA).
    public static func isValid(
        _ signature: [UInt8], for message: [UInt8], publicKey der: [UInt8], algorithm: Algorithm
    ) throws(CryptographyError) -> Bool {
        let parsed: OpaquePointer? = der.withUnsafeBufferPointer { buffer in
            var cursor: UnsafePointer<UInt8>? = buffer.baseAddress
            return d2i_PUBKEY(nil, &cursor, buffer.count)
        }
        guard let key = parsed else { throw .library("d2i_PUBKEY") }
        defer { EVP_PKEY_free(key) }
        switch algorithm {
        case .ecdsaP256SHA256:
            var name = [CChar](repeating: 0, count: 64)
            var length = 0
            guard EVP_PKEY_get_base_id(key) == EVP_PKEY_EC, EVP_PKEY_get_group_name(key, &name, name.count, &length) == 1,
                String(decoding: name[0..<length].map { UInt8(bitPattern: $0) }, as: UTF8.self) == "prime256v1"
            else { throw .library("the key is not a P-256 (prime256v1) key") }
        case .rsaPKCS1SHA256:
            guard EVP_PKEY_get_base_id(key) == EVP_PKEY_RSA, EVP_PKEY_get_bits(key) >= 2048 else {
                throw .invalidSize(what: "RSA public key bits (at least)", expected: 2048, actual: Int(EVP_PKEY_get_bits(key)))
            }
        }
        guard let context = EVP_MD_CTX_new() else { throw .library("EVP_MD_CTX_new") }
        defer { EVP_MD_CTX_free(context) }
        guard EVP_DigestVerifyInit(context, nil, EVP_sha256(), nil, key) == 1 else { throw .library("EVP_DigestVerifyInit") }
        let result = EVP_DigestVerify(context, signature, signature.count, message, message.count)
        ERR_clear_error()
        return result == 1
    }
}
