import Core
/// What a store says about an object.
public struct ObjectInfo: Sendable, Equatable {
    public var key: String
    public var size: Int64
    /// The entity tag without quotes.
    public var etag: String?

    public init(key: String, size: Int64, etag: String?) {
        self.key = key
        self.size = size
        self.etag = etag
    }
}

/// A body to store.
public enum ObjectBody: Sendable {
    case bytes([UInt8])
    /// A file streamed from disk.
    case file(path: String)
}

/// Why a store operation failed. Messages name the key, never credentials or signatures.
public enum ObjectStoreError: Error, Equatable, Sendable, CustomStringConvertible, ReportableError {
    case noSuchKey(key: String)
    case noSuchBucket(bucket: String)
    case accessDenied(key: String, message: String)
    case invalidAccessKeyID
    case signatureDoesNotMatch
    case slowDown(message: String)
    /// Any other S3 error document.
    case service(status: Int, code: String, message: String)
    /// The request never got an S3 answer (connection, timeout, TLS).
    case transport(HTTPFailure)
    /// A local-directory store failed (a file system error).
    case local(key: String, reason: String)
    case invalidKey(key: String, reason: String)

    /// Whether a retry later may succeed: throttling, 5xx, and connection trouble.
    public var isTransient: Bool {
        switch self {
        case .slowDown: true
        case .service(let status, let code, _): status >= 500 || code == "RequestTimeout" || code == "InternalError"
        case .transport(let failure): failure.isTransient
        default: false
        }
    }

    public var errorType: String { "ObjectStore.Error" }

    public var description: String {
        switch self {
        case .noSuchKey(let key): "no object at \(key)"
        case .noSuchBucket(let bucket): "no bucket \(bucket)"
        case .accessDenied(let key, let message): "access denied to \(key): \(message)"
        case .invalidAccessKeyID: "the access key id is not known to S3 (InvalidAccessKeyId)"
        case .signatureDoesNotMatch: "S3 refused the request signature (SignatureDoesNotMatch): wrong secret key or clock"
        case .slowDown(let message): "S3 asks to slow down: \(message)"
        case .service(let status, let code, let message): "S3 error \(code) (HTTP \(status)): \(message)"
        case .transport(let failure): failure.description
        case .local(let key, let reason): "lake directory error at \(key): \(reason)"
        case .invalidKey(let key, let reason): "invalid object key \"\(key)\": \(reason)"
        }
    }
}

/// An HTTP-level failure, kept as text and transience so this module's public API names no
/// adapter type.
public struct HTTPFailure: Error, Equatable, Sendable, CustomStringConvertible {
    public var description: String
    public var isTransient: Bool
}

/// The lake's storage: S3, or a local directory with the same semantics.
///
/// Owned by one thread at a time (the S3 store holds a libcurl handle).
public protocol ObjectStore: AnyObject {
    /// The bucket's name (or the directory), for logs and `ingestion_log`.
    var location: String { get }
    /// Streams the object (or `range` of it, inclusive byte offsets) into a new file at `path` (a
    /// file already there is replaced, never written into). The local store may link the object's
    /// own file there: read the file, never write into it, and remove it when done.
    func get(_ key: String, to path: String, range: ClosedRange<Int64>?) throws(ObjectStoreError) -> ObjectInfo
    /// The object's size and tag, or `nil` when there is none.
    func head(_ key: String) throws(ObjectStoreError) -> ObjectInfo?
    /// Stores the body; S3 verifies its SHA-256 (sent in the signature) before accepting it.
    @discardableResult
    func put(_ key: String, body: ObjectBody, contentType: String?) throws(ObjectStoreError) -> ObjectInfo
    func copy(from source: String, to destination: String) throws(ObjectStoreError)
    /// Removes the object; no error when it is already gone.
    func delete(_ key: String) throws(ObjectStoreError)
    /// Every object under `prefix`, across all pages, in key order.
    func list(prefix: String) throws(ObjectStoreError) -> [ObjectInfo]
    /// A URL that allows `method` (GET or PUT) on `key` for `expires` seconds without credentials.
    /// `headers` are signed too: the request must carry exactly those values (a PUT's
    /// `content-length` pins the upload's size).
    func presignedURL(method: String, key: String, expires: Int, now: Int64, headers: [(name: String, value: String)]) throws(ObjectStoreError) -> String
}

extension ObjectStore {
    public func presignedURL(method: String, key: String, expires: Int, now: Int64) throws(ObjectStoreError) -> String {
        try presignedURL(method: method, key: key, expires: expires, now: now, headers: [])
    }

    public func get(_ key: String, to path: String) throws(ObjectStoreError) -> ObjectInfo {
        try get(key, to: path, range: nil)
    }

    /// Copy, then delete: the source is deleted only after the copy succeeded, so an object is
    /// never lost between the two (at worst it exists twice, and a retry finishes the move).
    public func move(from source: String, to destination: String) throws(ObjectStoreError) {
        try copy(from: source, to: destination)
        try delete(source)
    }
}

/// Builds the store the configuration asks for: `METERLAKE_LAKE_DIR` (a local directory) wins
/// over S3 (`METERLAKE_BUCKET` and the AWS variables).
public enum ObjectStores {
    public static func make(environment: Environment) throws -> any ObjectStore {
        if let directory = environment["METERLAKE_LAKE_DIR"] {
            return try LocalObjectStore(directory: directory)
        }
        return try S3ObjectStore(configuration: S3Configuration(environment: environment))
    }
}
