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
}
