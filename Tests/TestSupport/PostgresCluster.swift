import Foundation

/// A PostgreSQL cluster of one test's own, for tests that stop and restart the server (the
/// shared cluster of Tests/run.sh serves the other tests in parallel and must stay up).
/// `initdb` and `pg_ctl` run as the `postgres` user when the tests run as root.
public final class PostgresCluster: @unchecked Sendable {
    public let port: Int
    public let directory: String
    private let bin: String

    /// Server settings added to the command line (`-c name=value`), e.g. TLS.
    private var settings: [String: String] = [:]

    /// - Parameter tls: a certificate and key (PEM) the server presents; TLS is then on.
    public init(tls: (certificate: String, key: String)? = nil) throws {
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
        if let tls {
            // The server reads its key only when the postgres user owns it and nobody else can read it.
            try tls.certificate.write(toFile: directory + "/server.crt", atomically: true, encoding: .utf8)
            try tls.key.write(toFile: directory + "/server.key", atomically: true, encoding: .utf8)
            try run(["/bin/chown", "postgres:", directory + "/server.crt", directory + "/server.key"], asPostgres: false)
            try run(["/bin/chmod", "600", directory + "/server.key"], asPostgres: false)
            settings = ["ssl": "on", "ssl_cert_file": directory + "/server.crt", "ssl_key_file": directory + "/server.key"]
        }
        try start()
    }

    /// `postgresql://postgres@127.0.0.1:PORT/postgres`
    public var url: String { "postgresql://postgres@127.0.0.1:\(port)/postgres" }

    public func start() throws {
        try run([bin + "/pg_ctl", "-D", directory, "-w", "-t", "60", "-l", directory + "/server.log",
                 "-o", "-p \(port) -k \(directory) -c listen_addresses=127.0.0.1 -c fsync=off"
                    + settings.sorted { $0.key < $1.key }.map { " -c \($0.key)=\($0.value)" }.joined(), "start"])
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
