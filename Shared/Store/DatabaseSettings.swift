import Core
import Cryptography
import Postgres

#if canImport(Glibc)
import Glibc
#endif

/// How to reach PostgreSQL, checked at start: `DATABASE_URL`, and for any host that is not this
/// machine, TLS that verifies the server (`sslmode=verify-full`) against known root certificates.
///
/// Weaker modes are refused because they do not protect the password or the data: `require`
/// encrypts but accepts any certificate (a machine in the middle presents its own), and without
/// `sslmode` libpq's default `prefer` falls back to plaintext. The roots come from
/// `METERLAKE_DATABASE_CA` (PEM text, or a path to a PEM file), else the URL's own `sslrootcert`,
/// else the bundle's CA file (`$LAMBDA_TASK_ROOT/ca-certificates.crt`), else the system's.
/// Supabase's database certificates chain to Supabase's own root CA, which is in no public
/// bundle: pass it through `METERLAKE_DATABASE_CA` (docs/database.md).
public struct DatabaseSettings: Sendable {
    /// The connection string as given. Never print it: it may hold the password.
    public let url: String
    /// libpq parameters that win over the URL's (`sslrootcert`).
    public let overrides: [String: String]

    /// Hosts that are this machine: TLS is the operator's choice there (tests, a local proxy).
    /// Only literal loopback addresses count (127.0.0.0/8, ::1), `localhost`, and sockets: a name
    /// such as `127.attacker.example` is a name like any other.
    static func isLocal(_ host: String) -> Bool {
        if host.isEmpty || host.hasPrefix("/") || host.hasPrefix("@") || host == "localhost" || host == "::1" || host == "[::1]" {
            return true
        }
        let octets = host.split(separator: ".", omittingEmptySubsequences: false)
        return octets.count == 4 && octets[0] == "127"
            && octets.allSatisfy { $0.count <= 3 && !$0.isEmpty && $0.allSatisfy(\.isASCII) && UInt8($0) != nil }
    }

    /// Whether the URL parsed as it was meant: a user name or password with an unescaped `@` or
    /// `/` makes libpq read part of it as the host or port, which would then appear in messages.
    static func parsedCleanly(_ options: PostgresConnectionOptions) -> Bool {
        let hosts = (options["host"] ?? "").split(separator: ",")
        let ports = (options["port"] ?? "").split(separator: ",")
        return !hosts.contains { $0.contains("@") } && ports.allSatisfy { !$0.isEmpty && $0.allSatisfy(\.isNumber) && $0.allSatisfy(\.isASCII) }
    }

    /// - Parameters:
    ///   - rootCertificates: `METERLAKE_DATABASE_CA`: PEM text, or a path to a PEM file.
    ///   - defaultCAFile: the bundle's CA file, used when neither the variable nor the URL names roots.
    ///   - scratchDirectory: where PEM text is written for libpq, which reads roots from a file.
    ///   - libpqVariables: the `PG…` variables of the environment, which libpq reads for what the
    ///     URL leaves out (`PGHOST`, `PGHOSTADDR`, `PGSSLMODE`, `PGSSLROOTCERT`, `PGSERVICE`): the
    ///     policy applies to what libpq will really use.
    public init(
        url: String, rootCertificates: String? = nil, defaultCAFile: String? = nil, scratchDirectory: String = "/tmp",
        libpqVariables: [String: String] = [:]
    ) throws(ConfigurationError) {
        let options: PostgresConnectionOptions
        do {
            options = try PostgresConnectionOptions(parsing: url)
        } catch {
            throw .invalid(name: "DATABASE_URL", reason: "not a valid libpq connection URI or key=value string")
        }
        guard Self.parsedCleanly(options) else {
            throw .invalid(name: "DATABASE_URL", reason: "it does not parse cleanly: percent-encode @, /, :, ? and # in the user name and password")
        }
        func value(_ keyword: String, _ variable: String) -> String? {
            options[keyword] ?? libpqVariables[variable].flatMap { $0.isEmpty ? nil : $0 }
        }
        func list(_ text: String?) -> [String] {
            (text ?? "").split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        }
        self.url = url
        guard value("service", "PGSERVICE") == nil else {
            throw .invalid(name: "DATABASE_URL", reason: "a connection service (service= or PGSERVICE) is not supported: give the host in DATABASE_URL")
        }
        // libpq connects to `hostaddr` when given, and verifies the certificate against `host`.
        let names = list(value("host", "PGHOST"))
        let addresses = list(value("hostaddr", "PGHOSTADDR"))
        let remote = (names + addresses).filter { !Self.isLocal($0) }
        guard let first = remote.first else {
            overrides = [:]
            return
        }
        let mode = value("sslmode", "PGSSLMODE")
        guard mode == "verify-full" else {
            throw .invalid(
                name: "DATABASE_URL",
                reason: "sslmode=\(mode ?? "(unset: libpq then tries TLS without checking it and falls back to plaintext)") is refused "
                    + "for host \(first): use sslmode=verify-full (and METERLAKE_DATABASE_CA for the server's root CA)")
        }
        guard names.allSatisfy({ !$0.isEmpty && !$0.hasPrefix("/") }) else {
            throw .invalid(name: "DATABASE_URL", reason: "host must name the server for sslmode=verify-full to check its certificate against")
        }
        // The mode is pinned too, so that nothing else can lower it, and GSS encryption (which
        // would replace TLS) is off.
        var pinned = ["sslmode": "verify-full", "gssencmode": "disable"]
        if let given = rootCertificates {
            pinned["sslrootcert"] = try Self.file(forRootCertificates: given, scratchDirectory: scratchDirectory)
        } else if value("sslrootcert", "PGSSLROOTCERT") != nil {
            // The operator's own choice of roots.
        } else if let file = Self.firstReadable((defaultCAFile.map { [$0] } ?? []) + Self.systemCAFiles) {
            pinned["sslrootcert"] = file
        } else {
            throw .invalid(name: "METERLAKE_DATABASE_CA", reason: "not set, and no CA file was found to verify the database's certificate")
        }
        overrides = pinned
    }

    /// `DATABASE_URL`, `METERLAKE_DATABASE_CA`, `METERLAKE_SCRATCH_DIR`, and the bundle's CA file
    /// under `LAMBDA_TASK_ROOT`.
    public init(environment: Environment) throws(ConfigurationError) {
        try self.init(
            url: try environment.require("DATABASE_URL"), rootCertificates: environment["METERLAKE_DATABASE_CA"],
            defaultCAFile: environment["LAMBDA_TASK_ROOT"].map { $0 + "/ca-certificates.crt" },
            scratchDirectory: environment["METERLAKE_SCRATCH_DIR"] ?? "/tmp",
            libpqVariables: environment.values.filter { $0.key.hasPrefix("PG") })
    }

    /// Debian's and Amazon Linux's CA bundles.
    static let systemCAFiles = ["/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt"]

    static func firstReadable(_ paths: [String]) -> String? {
        paths.first { path in access(path, R_OK) == 0 }
    }

    /// Opens a connection with these settings.
    public func connect() throws(PostgresError) -> PostgresConnection {
        try PostgresConnection(url: url, overrides: overrides)
    }

    /// The path libpq reads roots from: `value` itself when it is a path, else PEM text written
    /// to a new file of the scratch directory (a random name, created exclusively, owner-only:
    /// nothing planted there beforehand is followed or read).
    static func file(forRootCertificates value: String, scratchDirectory: String) throws(ConfigurationError) -> String {
        guard value.contains("-----BEGIN CERTIFICATE-----") else {
            guard access(value, R_OK) == 0 else {
                throw .invalid(name: "METERLAKE_DATABASE_CA", reason: "neither PEM text nor a readable file")
            }
            return value
        }
        let path = scratchDirectory + "/meterlake-database-ca-" + Hex.encode(SecureRandom.bytes(12)) + ".pem"
        guard FileIO.write(Array(value.utf8), to: path, exclusive: true) else {
            throw .invalid(name: "METERLAKE_DATABASE_CA", reason: "cannot write it to \(scratchDirectory) for libpq")
        }
        return path
    }
}
