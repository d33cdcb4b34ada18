import Core
import Store
import Foundation
import Postgres

/// A schema of its own in the test cluster, so tests run in parallel without seeing each other.
///
/// Needs `DATABASE_URL` (Tests/run.sh starts a throwaway cluster and sets it). Without it the
/// test fails with that message: an integration test never skips silently.
public final class TestDatabase: @unchecked Sendable {
    public let schema: String
    /// `DATABASE_URL` with `search_path` set to this schema.
    public let url: String
    private let adminURL: String

    public init(migrated: Bool = true) throws {
        guard let base = ProcessInfo.processInfo.environment["DATABASE_URL"], !base.isEmpty else {
            throw TestDatabaseError.noDatabase
        }
        adminURL = base
        schema = "t_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").prefix(16).lowercased()
        url = base + (base.contains("?") ? "&" : "?") + "options=-csearch_path%3D\(schema)"
        let admin = try PostgresConnection(url: base)
        try admin.query("CREATE SCHEMA \(schema)")
        if migrated {
            let connection = try connect()
            try MigrationRunner.migrate(connection)
            try connection.query("INSERT INTO organization (id, name) VALUES (42, 'Test Solar GmbH'), (7, 'Other Org')")
        }
    }

    public func connect() throws -> PostgresConnection { try PostgresConnection(url: url) }

    /// Drops the schema and everything in it.
    public func drop() {
        if let admin = try? PostgresConnection(url: adminURL) { _ = try? admin.query("DROP SCHEMA \(schema) CASCADE") }
    }

    deinit { drop() }
}

public enum TestDatabaseError: Error, CustomStringConvertible {
    case noDatabase
    public var description: String {
        "DATABASE_URL is not set: the PostgreSQL tests need the cluster that Tests/run.sh starts (run the tests with Tests/run.sh)"
    }
}
