import Core
import Cryptography
import Postgres

/// One step of the schema: a version, a name and its SQL, run in one transaction.
///
/// The SQL lives in `Migrations/NNNN_name.swift`, compiled into every binary, so a Lambda bundle
/// carries its schema with nothing to find on disk. A migration once released is never edited:
/// the runner records each one's SHA-256 and refuses a database whose applied history differs.
public struct Migration: Sendable {
    public let version: Int
    public let name: String
    public let sql: String

    /// Every migration, in order.
    public static let all: [Migration] = [.m0001, .m0002, .m0003, .m0004, .m0005, .m0006, .m0007, .m0008, .m0009]

    public init(version: Int, name: String, sql: String) {
        self.version = version
        self.name = name
        self.sql = sql
    }

    public var checksum: String { Hex.encode(SHA256.hash(Array(sql.utf8))) }
}

public enum MigrationError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The database records a migration whose SQL differs from this build's.
    case modified(version: Int, name: String)
    /// The database has a migration this build does not know (a newer build ran).
    case unknown(version: Int)

    public var description: String {
        switch self {
        case .modified(let version, let name):
            "migration \(version) (\(name)) was changed after it was applied; add a new migration instead"
        case .unknown(let version):
            "the database has migration \(version), which this build does not know; deploy the newer build"
        }
    }
}

/// Applies migrations to a database, safely re-runnable and safe against a concurrent runner.
public enum MigrationRunner {
    /// Applies what is missing; returns the versions applied now (empty when up to date).
    @discardableResult
    public static func migrate(_ connection: PostgresConnection, migrations: [Migration] = Migration.all) throws -> [Int] {
        try connection.query("""
            CREATE TABLE IF NOT EXISTS schema_migrations (
                version integer PRIMARY KEY,
                name text NOT NULL,
                checksum text NOT NULL,
                applied_at timestamptz NOT NULL DEFAULT now()
            )
            """)
        var applied: [Int] = []
        for migration in migrations {
            let done = try connection.transaction { () throws -> Bool in
                // One runner at a time (two cold starts, or an operator and a deploy).
                try connection.query("SELECT pg_advisory_xact_lock(7245617731)")
                let recorded = try connection.query("SELECT checksum FROM schema_migrations WHERE version = $1", [String(migration.version)])
                if recorded.count > 0 {
                    guard recorded[0, "checksum"] == migration.checksum else {
                        throw MigrationError.modified(version: migration.version, name: migration.name)
                    }
                    return false
                }
                try connection.runScript(migration.sql)
                try connection.query(
                    "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                    [String(migration.version), migration.name, migration.checksum])
                return true
            }
            if done { applied.append(migration.version) }
        }
        let known = Set(migrations.map(\.version))
        for row in try connection.query("SELECT version FROM schema_migrations ORDER BY version").rows {
            if let text = row[0], let version = Int(text), !known.contains(version) { throw MigrationError.unknown(version: version) }
        }
        return applied
    }
}
