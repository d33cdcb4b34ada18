/// A PostgreSQL failure. `description` carries the SQLSTATE and the server's primary message,
/// never bind values or connection secrets.
public struct PostgresError: Error, Equatable, Sendable, CustomStringConvertible {
    public enum Kind: Equatable, Sendable {
        /// Could not connect (or reconnect).
        case connection
        /// The connection died during the call; the next call reconnects.
        case connectionLost
        /// The server refused a statement.
        case query
        /// A COPY failed (the server's error, or the data source's).
        case copy
    }

    public var kind: Kind
    /// The five-character SQLSTATE (`23505` unique violation, …), when the server sent one.
    public var sqlState: String?
    public var message: String

    public init(kind: Kind, sqlState: String? = nil, message: String) {
        self.kind = kind
        self.sqlState = sqlState
        self.message = message
    }

    public var isUniqueViolation: Bool { sqlState == "23505" }
    /// Retrying later may succeed: the connection failed or the server is shutting down,
    /// overloaded, or chose this transaction as a deadlock or serialization victim.
    public var isTransient: Bool {
        switch kind {
        case .connection, .connectionLost: return true
        case .query, .copy:
            guard let state = sqlState else { return false }
            return state.hasPrefix("08") || state.hasPrefix("57P") || state == "40001" || state == "40P01" || state == "53300"
        }
    }

    public var description: String {
        let code = sqlState.map { " [\($0)]" } ?? ""
        switch kind {
        case .connection: return "cannot connect to PostgreSQL: \(message)"
        case .connectionLost: return "the PostgreSQL connection was lost: \(message)"
        case .query: return "PostgreSQL refused the statement\(code): \(message)"
        case .copy: return "PostgreSQL COPY failed\(code): \(message)"
        }
    }
}
