#if canImport(Glibc)
import Glibc
#endif

/// Where the running executable is (a Lambda bundle keeps its data files beside `bootstrap`).
public enum ExecutablePath {
    /// The directory of `/proc/self/exe`, or `.` when it cannot be read.
    public static func directory() -> String {
        var buffer = [CChar](repeating: 0, count: 4096)
        let length = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        guard length > 0 else { return "." }
        let path = String(decoding: buffer[0..<length].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return String(path[..<(path.lastIndex(of: "/") ?? path.endIndex)])
    }
}
