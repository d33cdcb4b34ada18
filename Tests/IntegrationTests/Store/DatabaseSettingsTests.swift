import Core
import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Postgres
import Store
import Testing
import TestSupport

/// The database connection's secrets and trust: no error carries the password, a remote host
/// needs TLS that verifies the server, and no NUL byte is ever handed to libpq.
@Suite struct DatabaseSettingsTests {
    /// URLs libpq's parser refuses, each quoting the password or the whole URL in libpq's own message.
    static let unparsable = [
        "postgresql://meter:S3cr%t!pw@db.example.com:5432/meterlake",
        "postgresql://meter:S3cr%t!pw@[db.example.com/meterlake",
        "postgresql://meter:S3cr%t!pw@db.example.com:54x2/meterlake",
        "host=db.example.com password='S3cr%t!pw",
    ]

    @Test(arguments: unparsable)
    func anUnparsableURLIsRefusedWithoutAnyPartOfIt(url: String) throws {
        let postgres = #expect(throws: PostgresError.self) { try PostgresConnection(url: url) }
        #expect(postgres?.description.contains("S3cr") == false, "\(postgres!)")
        #expect(postgres?.description.contains("not a valid libpq URI") == true)
        let configuration = #expect(throws: ConfigurationError.self) { try DatabaseSettings(url: url) }
        #expect(configuration == .invalid(name: "DATABASE_URL", reason: "not a valid libpq connection URI or key=value string"))
    }

    @Test(arguments: ["sslmode=require", "sslmode=prefer", "sslmode=verify-ca", "sslmode=disable", ""])
    func aRemoteHostWithoutVerifiedTLSIsRefusedAtStart(mode: String) {
        let url = "postgresql://meter:pw@db.example.com:5432/meterlake" + (mode.isEmpty ? "" : "?" + mode)
        let error = #expect(throws: ConfigurationError.self) { try DatabaseSettings(url: url) }
        let text = error?.description ?? ""
        #expect(text.contains("DATABASE_URL") && text.contains("verify-full") && text.contains("db.example.com"), "\(text)")
        #expect(text.contains(mode.isEmpty ? "unset" : mode))
        #expect(!text.contains("pw"))
    }

    /// libpq fills what the URL leaves out from PG… variables and service files: the policy
    /// applies to what libpq will really use.
    @Test func hostsAndModesFromLibpqsVariablesOrHostaddrAreCheckedToo() {
        let loopback = "postgresql://meter@127.0.0.1/meterlake"
        #expect(throws: ConfigurationError.self) { try DatabaseSettings(url: "postgresql://meter@/meterlake", libpqVariables: ["PGHOST": "db.example.com"]) }
        #expect(throws: ConfigurationError.self) { try DatabaseSettings(url: loopback + "?hostaddr=203.0.113.5") }
        #expect(throws: ConfigurationError.self) {
            try DatabaseSettings(url: "postgresql://meter@db.example.com/m", libpqVariables: ["PGSSLMODE": "require"])
        }
        let service = #expect(throws: ConfigurationError.self) { try DatabaseSettings(url: "service=prod") }
        #expect(service?.description.contains("service") == true)
        #expect(throws: ConfigurationError.self) { try DatabaseSettings(url: loopback, libpqVariables: ["PGSERVICE": "prod"]) }
        // A remote address needs the server's name for verify-full to check.
        let nameless = #expect(throws: ConfigurationError.self) {
            try DatabaseSettings(url: "postgresql://meter@/m?hostaddr=203.0.113.5&sslmode=verify-full")
        }
        #expect(nameless?.description.contains("host must name the server") == true)
        #expect(throws: Never.self) {
            try DatabaseSettings(url: "postgresql://meter@db.example.com/m", defaultCAFile: "/etc/hostname", libpqVariables: ["PGSSLMODE": "verify-full"])
        }
    }

    @Test func onlyLiteralLoopbackAddressesAreLocal() {
        for host in ["127.attacker.example", "127.0.0.1.nip.io", "127.0.0", "127.0.0.1x", "1127.0.0.1", "localhost.example"] {
            #expect(throws: ConfigurationError.self, "\(host)") { try DatabaseSettings(url: "host=\(host) user=app password=pw sslmode=disable") }
        }
        #expect(throws: Never.self) { try DatabaseSettings(url: "host=127.1.2.3 user=app sslmode=disable") }
    }

    /// A password with an unescaped `@` or `/` is read by libpq partly as the host or port, which
    /// messages would then show: such a URL is refused with a fixed message.
    @Test(arguments: ["postgresql://app:s3cr@t-Passw0rd@db.example.invalid/m?sslmode=verify-full",
                      "postgresql://app:Se/cret@db.example.invalid/m?sslmode=verify-full",
                      "postgresql://app:pw@127.0.0.1:54x/m"])
    func aURLThatDoesNotParseCleanlyIsRefusedWithoutItsParts(url: String) {
        let error = #expect(throws: ConfigurationError.self) { try DatabaseSettings(url: url) }
        let text = error?.description ?? ""
        #expect(text.contains("percent-encode"), "\(text)")
        #expect(!text.contains("Passw0rd") && !text.contains("Se") && !text.contains("54x"), "\(text)")
    }

    @Test func loopbackAndSocketsKeepTheOperatorsChoice() throws {
        for url in ["postgresql://postgres@127.0.0.1:5432/postgres", "postgresql://postgres@localhost/postgres",
                    "postgresql://postgres@[::1]:5432/postgres?sslmode=disable", "host=/var/run/postgresql dbname=x",
                    "postgresql:///postgres"] {
            #expect(try DatabaseSettings(url: url).overrides == [:], "\(url)")
        }
        // One remote host among several is enough to need verification.
        #expect(throws: ConfigurationError.self) { try DatabaseSettings(url: "postgresql://u@127.0.0.1,db.example.com/x") }
    }

    @Test func rootCertificatesComeFromTheVariableAsTextOrPathElseTheBundle() throws {
        let url = "postgresql://meter@db.example.com/meterlake?sslmode=verify-full"
        let certificates = try TestCertificates(hostname: "db.example.com")
        let scratch = FileManager.default.temporaryDirectory.path
        let fromText = try DatabaseSettings(url: url, rootCertificates: certificates.authority, scratchDirectory: scratch)
        let written = try #require(fromText.overrides["sslrootcert"])
        #expect(try String(contentsOfFile: written, encoding: .utf8) == certificates.authority)
        #expect(try DatabaseSettings(url: url, rootCertificates: written).overrides == ["sslmode": "verify-full", "gssencmode": "disable", "sslrootcert": written])
        #expect(throws: ConfigurationError.invalid(name: "METERLAKE_DATABASE_CA", reason: "neither PEM text nor a readable file")) {
            try DatabaseSettings(url: url, rootCertificates: "/nonexistent/ca.pem")
        }
        #expect(try DatabaseSettings(url: url, defaultCAFile: written).overrides == ["sslmode": "verify-full", "gssencmode": "disable", "sslrootcert": written])
        // The URL's own sslrootcert is kept when the variable does not override it.
        #expect(try DatabaseSettings(url: url + "&sslrootcert=/etc/custom.pem", defaultCAFile: written).overrides == ["sslmode": "verify-full", "gssencmode": "disable"])
        // PEM text goes to a new owner-only file each time; a file planted at a guessed name is never used.
        let again = try #require(try DatabaseSettings(url: url, rootCertificates: certificates.authority, scratchDirectory: scratch)
            .overrides["sslrootcert"])
        #expect(again != written)
        var status = stat()
        #expect(stat(again, &status) == 0 && status.st_mode & 0o777 == 0o600)
    }

    /// A real server with TLS behind a name that is not loopback (`hostaddr` points libpq at
    /// 127.0.0.1 while it verifies the certificate against `host`).
    @Test func verifyFullConnectsOnlyToTheServerItsRootsVouchFor() throws {
        let hostname = "db.meterlake.test"
        let certificates = try TestCertificates(hostname: hostname)
        let cluster = try PostgresCluster(tls: (certificates.certificate, certificates.key))
        func url(_ host: String) -> String {
            "postgresql://postgres@\(host):\(cluster.port)/postgres?hostaddr=127.0.0.1&sslmode=verify-full&connect_timeout=10"
        }

        let trusted = try DatabaseSettings(url: url(hostname), rootCertificates: certificates.authority,
                                           scratchDirectory: FileManager.default.temporaryDirectory.path)
        let connection = try trusted.connect()
        #expect(try connection.query("SELECT ssl::text AS ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")[0, "ssl"] == "true")

        // The same server, but the client trusts only the public roots: its CA is unknown.
        let publicRoots = try DatabaseSettings(url: url(hostname))
        let unknown = #expect(throws: PostgresError.self) { try publicRoots.connect() }
        #expect(unknown?.kind == .connection)
        #expect(unknown?.description.contains("certificate") == true, "\(unknown!)")

        // Trusted roots, but the certificate names another host.
        let otherName = try DatabaseSettings(url: url("other.meterlake.test"), rootCertificates: certificates.authority,
                                             scratchDirectory: FileManager.default.temporaryDirectory.path)
        let mismatch = #expect(throws: PostgresError.self) { try otherName.connect() }
        #expect(mismatch?.description.contains("other.meterlake.test") == true, "\(mismatch!)")
    }

    /// libpq's messages can quote what equals the password (here the user name, refused by the
    /// server): no error carries it.
    @Test func theServersMessageNeverCarriesThePassword() throws {
        let base = try #require(ProcessInfo.processInfo.environment["DATABASE_URL"])
        let address = try #require(base.split(separator: "@").last)
        let error = #expect(throws: PostgresError.self) { try PostgresConnection(url: "postgresql://pwtoken7:pwtoken7@\(address)") }
        let text = error?.description ?? ""
        #expect(text.contains("[password]"), "\(text)")
        #expect(!text.contains("pwtoken7"), "\(text)")
    }

    @Test func noNULByteIsEverHandedToLibpq() throws {
        let database = try TestDatabase()
        let connection = try database.connect()
        try connection.query("CREATE TABLE t (k text)")
        let error = #expect(throws: PostgresError.self) { try connection.query("INSERT INTO t VALUES ($1)", ["raw/k\u{0}zzz.csv"]) }
        #expect(error?.description.contains("parameter $1 contains a NUL byte") == true)
        #expect(error?.description.contains("zzz") == false)
        #expect(throws: PostgresError.self) { try connection.query("SELECT 1\u{0}; DROP TABLE t") }
        #expect(try connection.query("SELECT count(*) AS n FROM t")[0, "n"] == "0")
        #expect(try connection.query("SELECT to_regclass('t')::text AS t")[0, "t"] == "t")
    }
}
