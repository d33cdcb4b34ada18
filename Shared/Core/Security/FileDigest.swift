import Cryptography
import Dispatch
import Synchronization

/// SHA-256 of a whole stream, read chunk by chunk: the dedupe key of a landed file and the
/// `data_hash` of evidence.
public enum FileDigest {
    /// The lower-case hex SHA-256 of everything `source` yields, and the byte count.
    public static func sha256(of source: any ByteSource) throws(FileFormatError) -> (hex: String, bytes: Int64) {
        let hasher = SHA256()
        var total: Int64 = 0
        while true {
            let chunk = try source.read()
            if chunk.isEmpty { break }
            hasher.update(chunk)
            total += Int64(chunk.count)
        }
        return (Hex.encode(hasher.finalize()), total)
    }

    /// The lower-case hex SHA-256 of the file at `path`.
    public static func sha256(path: String) throws(FileFormatError) -> (hex: String, bytes: Int64) {
        try sha256(of: FileByteSource(path: path))
    }
}

/// The SHA-256 of a file, computed on another thread while the caller gets on with its work.
/// ``wait()`` returns it; call it before removing the file.
public final class BackgroundDigest: Sendable {
    private let result = Mutex<Result<String, FileFormatError>?>(nil)
    private let done = DispatchSemaphore(value: 0)

    public init(path: String) {
        DispatchQueue.global().async { [self] in
            let outcome = Result { () throws(FileFormatError) in try FileDigest.sha256(path: path).hex }
            result.withLock { $0 = outcome }
            done.signal()
        }
    }

    /// The lower-case hex SHA-256, once computed.
    public func wait() throws(FileFormatError) -> String {
        if let finished = result.withLock({ $0 }) { return try finished.get() }
        done.wait()
        done.signal()  // later calls (and deinit) return at once
        return try result.withLock { $0! }.get()
    }
}
