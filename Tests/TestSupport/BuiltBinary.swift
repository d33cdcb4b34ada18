import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Runs an executable this package built (a function or a tool), as Lambda or an operator would.
public enum BuiltBinary {
    /// The directory holding the built products: `METERLAKE_BIN_DIR` if set, else the directory of
    /// the running test bundle (SwiftPM puts executables beside it).
    public static var directory: URL {
        if let override = ProcessInfo.processInfo.environment["METERLAKE_BIN_DIR"], !override.isEmpty {
            return URL(fileURLWithPath: override)
        }
        let executable = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        return executable.deletingLastPathComponent()
    }

    /// The path of product `name`; fails loudly when it was not built.
    public static func path(_ name: String) throws -> String {
        let url = directory.appendingPathComponent(name)
        guard FileManager.default.isExecutableFile(atPath: url.path) else {
            throw BuiltBinaryError.missing(name: name, directory: directory.path)
        }
        return url.path
    }
}

public enum BuiltBinaryError: Error, CustomStringConvertible {
    case missing(name: String, directory: String)
    case timedOut(name: String, seconds: TimeInterval)
    case spawn(name: String, reason: String)

    public var description: String {
        switch self {
        case .missing(let name, let directory):
            "built binary \(name) not found in \(directory): run `swift build --build-tests` first (Tests/run.sh does)"
        case .timedOut(let name, let seconds): "\(name) did not exit within \(seconds) s"
        case .spawn(let name, let reason): "could not start \(name): \(reason)"
        }
    }
}

/// A child process with its output captured to files (pipes would block on large output).
///
/// Spawned with `posix_spawn`, a cleared signal mask and default signal dispositions: test
/// threads (libdispatch workers) block most signals, and a child that inherited that mask would
/// neither die on SIGTERM nor behave like a process Lambda starts.
public final class ChildProcess: @unchecked Sendable {
    public let name: String
    private let pid: pid_t
    private let outputPath: String
    private let errorPath: String
    private let lock = NSLock()
    private var exitStatus: Int32?

    /// Starts `binary` with exactly `environment` (plus PATH) and `arguments`; `input` is its stdin.
    public init(_ binary: String, arguments: [String] = [], environment: [String: String], input: [UInt8]? = nil) throws {
        name = URL(fileURLWithPath: binary).lastPathComponent
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("meterlake-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
        outputPath = scratch.appendingPathComponent("stdout").path
        errorPath = scratch.appendingPathComponent("stderr").path
        let inputPath = scratch.appendingPathComponent("stdin").path
        try Data(input ?? []).write(to: URL(fileURLWithPath: inputPath))

        var env = environment
        env["PATH"] = env["PATH"] ?? "/usr/bin:/bin"
        let argv = ([binary] + arguments).map { strdup($0) } + [nil]
        let envp = env.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { (argv + envp).forEach { free($0) } }

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, inputPath, O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, outputPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        posix_spawn_file_actions_addopen(&actions, 2, errorPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var empty = sigset_t()
        sigemptyset(&empty)
        var all = sigset_t()
        sigfillset(&all)
        posix_spawnattr_setsigmask(&attributes, &empty)
        posix_spawnattr_setsigdefault(&attributes, &all)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))

        var child = pid_t()
        let result = posix_spawn(&child, binary, &actions, &attributes, argv, envp)
        guard result == 0 else { throw BuiltBinaryError.spawn(name: name, reason: String(cString: strerror(result))) }
        pid = child
    }

    /// Waits for the exit and returns its status; kills the process and throws after `timeout`.
    @discardableResult
    public func waitForExit(timeout: TimeInterval = 30) throws -> Int32 {
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            if let status = poll() { return status }
            if Date() > deadline {
                terminate()
                throw BuiltBinaryError.timedOut(name: name, seconds: timeout)
            }
            Thread.sleep(forTimeInterval: 0.01)
        }
    }

    public var isRunning: Bool { poll() == nil }

    /// Kills the process (SIGKILL) if it still runs and reaps it.
    public func terminate() {
        guard poll() == nil else { return }
        kill(pid, SIGKILL)
        while poll() == nil { Thread.sleep(forTimeInterval: 0.005) }
    }

    /// The exit status (128 + signal for a killed process), or nil while running.
    private func poll() -> Int32? {
        lock.withLock {
            if let exitStatus { return exitStatus }
            var status: Int32 = 0
            guard waitpid(pid, &status, WNOHANG) == pid else { return nil }
            let signal = status & 0x7f
            exitStatus = signal == 0 ? (status >> 8) & 0xff : 128 + signal
            return exitStatus
        }
    }

    public var standardOutput: String { (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? "" }
    public var standardError: String { (try? String(contentsOfFile: errorPath, encoding: .utf8)) ?? "" }

    /// Standard output parsed as JSON lines (lines that are not JSON objects are skipped).
    public var logLines: [[String: Any]] {
        standardOutput.split(separator: "\n").compactMap {
            (try? JSONSerialization.jsonObject(with: Data($0.utf8))) as? [String: Any]
        }
    }

    deinit { terminate() }
}
