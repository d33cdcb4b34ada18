import Cryptography

/// Why an envelope did not open. Deliberately coarse: the outside learns that it failed and
/// whether the text was even an envelope, never which byte or key was wrong.
public enum EnvelopeError: Error, Equatable, Sendable, CustomStringConvertible, ReportableError {
    /// Not strict Base64, or shorter than nonce + tag (28 bytes).
    case malformed(reason: String)
    /// No configured key opens it, or a byte was changed.
    case authenticationFailed

    public var description: String {
        switch self {
        case .malformed(let reason): "the credential envelope is malformed: \(reason)"
        case .authenticationFailed: "the credential envelope does not open with the configured keys (wrong key or altered data)"
        }
    }

    public var errorType: String { "Envelope.Error" }
}

/// Bytes that must never be printed (keys, secrets). `description` is `<redacted>`.
public struct SecretBytes: Sendable, Equatable, CustomStringConvertible, CustomDebugStringConvertible {
    public let bytes: [UInt8]
    public init(_ bytes: [UInt8]) { self.bytes = bytes }
    public var description: String { "<redacted>" }
    public var debugDescription: String { "<redacted \(bytes.count) bytes>" }
}

/// The AES-256 keys for credential envelopes: the current one seals and opens; a previous one,
/// during a rotation, still opens.
public struct EnvelopeKeys: Sendable {
    public let current: SecretBytes
    public let previous: SecretBytes?

    public init(current: [UInt8], previous: [UInt8]? = nil) throws(ConfigurationError) {
        guard current.count == AESGCM.keySize else {
            throw .invalid(name: "METERLAKE_ENCRYPTION_KEY", reason: "must decode to 32 bytes, got \(current.count)")
        }
        if let previous, previous.count != AESGCM.keySize {
            throw .invalid(name: "METERLAKE_ENCRYPTION_KEY_PREVIOUS", reason: "must decode to 32 bytes, got \(previous.count)")
        }
        self.current = SecretBytes(current)
        self.previous = previous.map(SecretBytes.init)
    }

    /// Reads `METERLAKE_ENCRYPTION_KEY` and the optional `METERLAKE_ENCRYPTION_KEY_PREVIOUS`
    /// (each strict Base64 of 32 bytes).
    public init(environment: Environment) throws(ConfigurationError) {
        func key(_ name: String) throws(ConfigurationError) -> [UInt8]? {
            guard let text = environment[name] else { return nil }
            guard let bytes = Base64.decode(text) else {
                throw .invalid(name: name, reason: "not strict Base64 (standard alphabet, padded, no whitespace)")
            }
            return bytes
        }
        guard let current = try key("METERLAKE_ENCRYPTION_KEY") else { throw .missing(name: "METERLAKE_ENCRYPTION_KEY") }
        try self.init(current: current, previous: try key("METERLAKE_ENCRYPTION_KEY_PREVIOUS"))
    }
}

/// The platform's credential envelope: `base64(nonce[12] ‖ ciphertext ‖ tag[16])`, AES-256-GCM,
/// no associated data, strict standard Base64. Byte-compatible with what the platform's
/// TypeScript callback and Python fetchers write.
public enum CredentialEnvelope {
    public static let overhead = AESGCM.nonceSize + AESGCM.tagSize

    /// Seals `plaintext` under the current key with a fresh random nonce.
    /// - Parameter nonce: Only for reproducing golden vectors; production code never passes one.
    public static func seal(_ plaintext: [UInt8], keys: EnvelopeKeys, nonce: [UInt8]? = nil) throws(CryptographyError) -> String {
        let nonce = nonce ?? SecureRandom.bytes(AESGCM.nonceSize)
        let sealed = try AESGCM.seal(plaintext, key: keys.current.bytes, nonce: nonce)
        return Base64.encode(nonce + sealed.ciphertext + sealed.tag)
    }

    /// Opens an envelope with the current key, then the previous one.
    public static func open(_ envelope: String, keys: EnvelopeKeys) throws(EnvelopeError) -> [UInt8] {
        try openNamingKey(envelope, keys: keys).plaintext
    }

    /// Opens an envelope and says whether it took the previous key (it is due for re-sealing).
    public static func openNamingKey(_ envelope: String, keys: EnvelopeKeys) throws(EnvelopeError) -> (plaintext: [UInt8], previousKey: Bool) {
        guard let bytes = Base64.decode(envelope) else {
            throw .malformed(reason: "not strict Base64 (standard alphabet, padded, no whitespace)")
        }
        guard bytes.count >= overhead else {
            throw .malformed(reason: "\(bytes.count) bytes is shorter than nonce and tag (\(overhead))")
        }
        let nonce = Array(bytes[0..<AESGCM.nonceSize])
        let ciphertext = Array(bytes[AESGCM.nonceSize..<(bytes.count - AESGCM.tagSize)])
        let tag = Array(bytes[(bytes.count - AESGCM.tagSize)...])
        if let plaintext = try? AESGCM.open(ciphertext, tag: tag, key: keys.current.bytes, nonce: nonce) { return (plaintext, false) }
        if let previous = keys.previous, let plaintext = try? AESGCM.open(ciphertext, tag: tag, key: previous.bytes, nonce: nonce) { return (plaintext, true) }
        throw .authenticationFailed
    }
}
