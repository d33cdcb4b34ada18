import Foundation

/// A PostgreSQL cluster of one test's own, for tests that stop and restart the server (the
/// shared cluster of Tests/run.sh serves the other tests in parallel and must stay up).
/// `initdb` and `pg_ctl` run as the `postgres` user when the tests run as root.
public final class PostgresCluster: @unchecked Sendable {
    public let port: Int
    public let directory: String
    private let bin: String

    public init() throws {
        let versions = (try? FileManager.default.contentsOfDirectory(atPath: "/usr/lib/postgresql")) ?? []
        guard let version = versions.sorted(by: { (Int($0) ?? 0) < (Int($1) ?? 0) }).last else {
            throw TestServerError.socket("PostgreSQL server binaries not found under /usr/lib/postgresql")
        }
        bin = "/usr/lib/postgresql/\(version)/bin"
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("meterlake-pg-\(UUID().uuidString.prefix(8))").path
        let probe = try TestHTTPServer { _ in .hangUp }
        port = probe.port
        probe.stop()
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try run(["/bin/chown", "postgres:", directory], asPostgres: false)
        try run([bin + "/initdb", "-D", directory, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync"])
        try start()
    }

    /// `postgresql://postgres@127.0.0.1:PORT/postgres`
    public var url: String { "postgresql://postgres@127.0.0.1:\(port)/postgres" }

    public func start() throws {
        try run([bin + "/pg_ctl", "-D", directory, "-w", "-t", "60", "-l", directory + "/server.log",
                 "-o", "-p \(port) -k \(directory) -c listen_addresses=127.0.0.1 -c fsync=off", "start"])
    }

    /// Stops the server at once (`-m immediate`): connections die as in a crash.
    public func stop() throws {
        try run([bin + "/pg_ctl", "-D", directory, "-m", "immediate", "stop"])
    }

    deinit {
        try? stop()
        try? FileManager.default.removeItem(atPath: directory)
    }

    private func run(_ command: [String], asPostgres: Bool = true) throws {
        let root = getuid() == 0
        let line = asPostgres && root ? ["/usr/sbin/runuser", "-u", "postgres", "--"] + command : command
        let process = try ChildProcess(line[0], arguments: Array(line.dropFirst()), environment: [:])
        guard try process.waitForExit(timeout: 120) == 0 else {
            throw TestServerError.socket("\(command.joined(separator: " ")) failed: \(process.standardError) \(process.standardOutput)")
        }
    }
}
