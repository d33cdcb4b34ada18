import Cryptography

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
