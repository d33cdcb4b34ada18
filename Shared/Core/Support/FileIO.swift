#if canImport(Glibc)
import Glibc
#endif

/// Whole-file reads for small inputs (events, operator input). Large data is streamed instead.
public enum FileIO {
    /// All bytes of `path`, or of standard input when `path` is `-`; `nil` when it cannot be read.
    public static func readAll(_ path: String) -> [UInt8]? {
        let descriptor = path == "-" ? 0 : open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { return nil }
        defer { if descriptor != 0 { close(descriptor) } }
        var result: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = read(descriptor, &buffer, buffer.count)
            if count == 0 { return result }
            if count < 0 { if errno == EINTR { continue } else { return nil } }
            result.append(contentsOf: buffer[0..<count])
        }
    }

    /// Writes `bytes` to `path` (created or truncated); false on failure. With `exclusive`, the
    /// file must not exist yet (no link or earlier file is followed or reused) and only its owner
    /// may read it.
    public static func write(_ bytes: [UInt8], to path: String, exclusive: Bool = false) -> Bool {
        let descriptor = exclusive
            ? open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
            : open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else { return false }
        defer { close(descriptor) }
        var offset = 0
        while offset < bytes.count {
            let written = bytes.withUnsafeBytes { Glibc.write(descriptor, $0.baseAddress! + offset, bytes.count - offset) }
            if written < 0 { if errno == EINTR { continue } else { return false } }
            offset += written
        }
        return true
    }
}
