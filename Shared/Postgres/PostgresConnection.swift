internal import CLibPQ

#if canImport(Glibc)
import Glibc
#endif

/// Rows of a result in text format.
public struct PostgresRows: Sendable {
    public var columns: [String]
    public var rows: [[String?]]

    /// The value of `column` in row `row`.
    public subscript(row: Int, column: String) -> String? {
        guard let index = columns.firstIndex(of: column) else { return nil }
        return rows[row][index]
    }

    public var count: Int { rows.count }
}

/// A connection string's parameters as libpq reads them (`host`, `sslmode`, …), without connecting.
public struct PostgresConnectionOptions: Sendable {
    private let values: [String: String]

    /// Parses a libpq URI or key/value string with libpq's own parser. Refused with a fixed
    /// message: libpq's quotes the offending part, which may be the password.
    public init(parsing conninfo: String) throws(PostgresError) {
        var error: UnsafeMutablePointer<CChar>?
        guard let options = PQconninfoParse(conninfo, &error) else {
            if let error { PQfreemem(error) }
            throw PostgresError(
                kind: .connection,
                message: "the connection string is not a valid libpq URI or key=value string (libpq's message is withheld: it may quote the password)")
        }
        defer { PQconninfoFree(options) }
        var values: [String: String] = [:]
        var option = options
        while let keyword = option.pointee.keyword {
            if let value = option.pointee.val { values[String(cString: keyword)] = String(cString: value) }
            option += 1
        }
        self.values = values
    }

    /// A parameter's value; `nil` when the string does not set it.
    public subscript(keyword: String) -> String? { values[keyword] }
}

/// One connection to PostgreSQL over libpq.
///
/// - Works through a pooler in transaction mode (Supabase's): statements use the unnamed
///   prepared statement of `PQexecParams`, which never outlives its exchange.
/// - Kept across warm invocations: when a call finds the connection dead it throws
///   ``PostgresError/Kind/connectionLost``, and the next call reconnects.
/// - Owned by one thread at a time (libpq forbids concurrent use of a `PGconn`), so the type is
///   deliberately not `Sendable`.
public final class PostgresConnection {
    private var connection: OpaquePointer?
    /// libpq keywords and values: `dbname` holds the URL (expanded by libpq), then the overrides.
    private let parameters: [(keyword: String, value: String)]
    /// The password, so that no message of libpq's can carry it out (removed from every error).
    private let password: String?

    /// Connects with a libpq URI or key/value string (`DATABASE_URL`); `sslmode` and every other
    /// libpq parameter are honoured, and `overrides` win over the string's own (`sslrootcert`).
    ///
    /// A string libpq cannot parse is refused with a fixed message: libpq's own quotes the bad
    /// part, which may be the password.
    public init(url: String, overrides: [String: String] = [:]) throws(PostgresError) {
        let options = try PostgresConnectionOptions(parsing: url)
        password = options["password"]
        parameters = [("dbname", url)] + overrides.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
        try connect()
    }

    deinit { PQfinish(connection) }

    private func connect() throws(PostgresError) {
        PQfinish(connection)
        connection = Self.open(parameters)
        guard let connection, PQstatus(connection) == CONNECTION_OK else {
            let message = connection.map { Self.text(PQerrorMessage($0)) } ?? "out of memory"
            PQfinish(connection)
            self.connection = nil
            throw PostgresError(kind: .connection, message: redacted(message))
        }
        clibpq_silence_notices(connection)
        // UTF-8 in and out, and no statement waits for ever.
        for setting in ["SET client_encoding TO 'UTF8'", "SET TIME ZONE 'UTC'"] {
            let result = PQexec(connection, setting)
            defer { PQclear(result) }
            guard PQresultStatus(result) == PGRES_COMMAND_OK else {
                throw PostgresError(kind: .connection, message: redacted(Self.text(PQerrorMessage(connection))))
            }
        }
    }

    private static func open(_ parameters: [(keyword: String, value: String)]) -> OpaquePointer? {
        let keywords = parameters.map { strdup($0.keyword) } + [nil]
        let values = parameters.map { strdup($0.value) } + [nil]
        defer {
            keywords.forEach { free($0) }
            values.forEach { free($0) }
        }
        return keywords.map { UnsafePointer($0) }.withUnsafeBufferPointer { keywordPointers in
            values.map { UnsafePointer($0) }.withUnsafeBufferPointer { valuePointers in
                PQconnectdbParams(keywordPointers.baseAddress, valuePointers.baseAddress, 1)
            }
        }
    }

    /// `message` without the password, should libpq ever quote it.
    private func redacted(_ message: String) -> String {
        guard let password, !password.isEmpty else { return message }
        return message.replacing(password, with: "[password]")
    }

    /// A live connection: reconnects when the last call found it dead (frozen Lambda, killed backend).
    private func live() throws(PostgresError) -> OpaquePointer {
        if let connection, PQstatus(connection) == CONNECTION_OK { return connection }
        try connect()
        return connection!
    }

    /// Whether a transaction is open on this connection.
    public var inTransaction: Bool {
        guard let connection else { return false }
        let status = PQtransactionStatus(connection)
        return status == PQTRANS_INTRANS || status == PQTRANS_INERROR
    }

    /// Runs one statement with `$1…$n` parameters sent apart from the SQL text (never spliced in).
    /// - Parameter parameters: Text values; `nil` is SQL NULL.
    @discardableResult
    /// - Throws: ``PostgresError/Kind/query`` without sending anything when the SQL or a parameter
    ///   holds a NUL byte: libpq takes C strings and would silently cut the text there.
    public func query(_ sql: String, _ parameters: [String?] = []) throws(PostgresError) -> PostgresRows {
        if sql.utf8.contains(0) { throw PostgresError(kind: .query, message: "the statement contains a NUL byte; nothing was sent") }
        if let index = parameters.firstIndex(where: { $0?.utf8.contains(0) == true }) {
            throw PostgresError(kind: .query, message: "parameter $\(index + 1) contains a NUL byte, which PostgreSQL text cannot hold; nothing was sent")
        }
        let connection = try live()
        let result = withCStrings(parameters) { values in
            PQexecParams(connection, sql, Int32(parameters.count), nil, values, nil, nil, 0)
        }
        defer { PQclear(result) }
        switch PQresultStatus(result) {
        case PGRES_COMMAND_OK, PGRES_EMPTY_QUERY:
            return PostgresRows(columns: [], rows: [])
        case PGRES_TUPLES_OK:
            return Self.rows(result)
        default:
            throw failure(result, kind: .query)
        }
    }

    /// Runs a script of several statements with no parameters, for SQL this program carries
    /// (migrations). Never pass text that came from outside: use ``query(_:_:)`` with parameters.
    public func runScript(_ sql: String) throws(PostgresError) {
        let connection = try live()
        let result = PQexec(connection, sql)
        defer { PQclear(result) }
        let status = PQresultStatus(result)
        guard status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK || status == PGRES_EMPTY_QUERY else {
            throw failure(result, kind: .query)
        }
    }

    /// Runs `body` in a transaction: COMMIT when it returns, ROLLBACK when it throws.
    public func transaction<T>(_ body: () throws -> T) throws -> T {
        try query("BEGIN")
        do {
            let value = try body()
            try query("COMMIT")
            return value
        } catch {
            if let connection, PQstatus(connection) == CONNECTION_OK { _ = try? query("ROLLBACK") }
            throw error
        }
    }

    /// `COPY … FROM STDIN` in text format: `produce` writes the data through the writer; its
    /// error (or any server error) ends the COPY, and nothing of it remains.
    public func copy(_ sql: String, _ produce: (inout CopyWriter) throws -> Void) throws {
        try copy(sql, writer: CopyWriter(), produce)
    }

    /// `COPY … FROM STDIN WITH (FORMAT binary)`: as ``copy(_:_:)``, with values in PostgreSQL's
    /// binary forms, which the server stores without parsing text (numbers, timestamps).
    public func copyBinary(_ sql: String, _ produce: (inout BinaryCopyWriter) throws -> Void) throws {
        try copy(sql, writer: BinaryCopyWriter(), produce)
    }

    private func copy<Writer: CopyStream>(_ sql: String, writer: Writer, _ produce: (inout Writer) throws -> Void) throws {
        let connection = try live()
        let start = PQexec(connection, sql)
        let status = PQresultStatus(start)
        guard status == PGRES_COPY_IN else {
            defer { PQclear(start) }
            throw failure(start, kind: .copy)
        }
        PQclear(start)
        var writer = writer
        var producerError: (any Error)?
        do {
            try produce(&writer)
            writer.finish()
            if !writer.buffer.isEmpty { try send(writer.buffer, on: connection) }
        } catch {
            producerError = error
        }
        let ended: Int32 = producerError == nil ? PQputCopyEnd(connection, nil) : PQputCopyEnd(connection, "aborted by the client")
        guard ended == 1 else { throw lost(connection) }
        // Drain the results: the COPY's own, then the end of the exchange.
        var serverError: PostgresError?
        while let result = PQgetResult(connection) {
            if PQresultStatus(result) != PGRES_COMMAND_OK, serverError == nil, producerError == nil {
                serverError = failure(result, kind: .copy)
            }
            PQclear(result)
        }
        if let producerError { throw producerError }
        if let serverError { throw serverError }
    }

    /// Sends a full writer buffer mid-COPY (called by ``CopyWriter`` users through ``flush(_:)``).
    func send(_ bytes: [UInt8], on connection: OpaquePointer) throws(PostgresError) {
        let sent = bytes.withUnsafeBufferPointer { buffer in
            buffer.withMemoryRebound(to: CChar.self) { PQputCopyData(connection, $0.baseAddress, Int32(buffer.count)) }
        }
        guard sent == 1 else { throw lost(connection) }
    }

    /// Streams the writer's buffer to the server once it is large; keeps memory bounded in a COPY.
    public func flush(_ writer: inout CopyWriter) throws(PostgresError) { try flushStream(&writer) }

    /// Streams the writer's buffer to the server once it is large; keeps memory bounded in a COPY.
    public func flush(_ writer: inout BinaryCopyWriter) throws(PostgresError) { try flushStream(&writer) }

    private func flushStream<Writer: CopyStream>(_ writer: inout Writer) throws(PostgresError) {
        guard let connection, writer.buffer.count >= copyFlushSize else { return }
        try send(writer.buffer, on: connection)
        writer.buffer.removeAll(keepingCapacity: true)
    }

    // MARK: - Results and errors

    private static func rows(_ result: OpaquePointer?) -> PostgresRows {
        let columnCount = Int(PQnfields(result))
        let rowCount = Int(PQntuples(result))
        let columns = (0..<columnCount).map { text(PQfname(result, Int32($0))) }
        var rows: [[String?]] = []
        rows.reserveCapacity(rowCount)
        for row in 0..<rowCount {
            rows.append((0..<columnCount).map { column in
                PQgetisnull(result, Int32(row), Int32(column)) == 1 ? nil : text(PQgetvalue(result, Int32(row), Int32(column)))
            })
        }
        return PostgresRows(columns: columns, rows: rows)
    }

    /// The one place a failed `PGresult` becomes a ``PostgresError``.
    private func failure(_ result: OpaquePointer?, kind: PostgresError.Kind) -> PostgresError {
        if let connection, PQstatus(connection) != CONNECTION_OK { return lost(connection) }
        let state = PQresultErrorField(result, clibpq_diag_sqlstate).map { String(cString: $0) }
        let primary = PQresultErrorField(result, clibpq_diag_message_primary).map { String(cString: $0) }
        let message = primary ?? connection.map { Self.text(PQerrorMessage($0)) } ?? "unknown error"
        return PostgresError(kind: kind, sqlState: state, message: message)
    }

    private func lost(_ connection: OpaquePointer) -> PostgresError {
        PostgresError(kind: .connectionLost, sqlState: nil, message: Self.text(PQerrorMessage(connection)))
    }

    private static func text(_ pointer: UnsafePointer<CChar>?) -> String {
        guard let pointer else { return "" }
        var text = String(cString: pointer)
        while text.last?.isNewline == true { text.removeLast() }
        return text
    }
}

@available(*, unavailable)
extension PostgresConnection: Sendable {}

/// Marshals Swift strings into the `const char * const *` libpq wants, for the call's duration.
private func withCStrings<R>(_ values: [String?], _ body: ([UnsafePointer<CChar>?]) -> R) -> R {
    let pointers: [UnsafeMutablePointer<CChar>?] = values.map { $0.map { strdup($0) } ?? nil }
    defer { pointers.forEach { free($0) } }
    return body(pointers.map { $0.map { UnsafePointer($0) } })
}

/// Builds `COPY … FROM STDIN` text-format data: fields separated by tabs, rows by newlines,
/// `\N` for NULL, and backslash, tab, newline and carriage return escaped so that no value can
/// shift a column or start a row.
/// The buffer a COPY writer fills and ``PostgresConnection`` sends.
protocol CopyStream {
    var buffer: [UInt8] { get set }
    /// Appends what the format needs after the last row.
    mutating func finish()
}

/// Bytes buffered before a COPY writer's data goes to the server.
let copyFlushSize = 256 * 1024

public struct CopyWriter: CopyStream {
    public internal(set) var buffer: [UInt8] = []
    private var fieldsInRow = 0

    public init() { buffer.reserveCapacity(copyFlushSize + 4096) }

    mutating func finish() {}

    public mutating func null() { separate(); buffer += [0x5C, 0x4E] }

    public mutating func text(_ value: String) {
        var value = value
        value.withUTF8 { text(utf8: $0) }
    }

    /// UTF-8 text, escaped. (Concrete buffer types: a generic sequence here would not be
    /// specialised across the module boundary and would cost a witness call per byte.)
    public mutating func text(utf8 bytes: [UInt8]) {
        bytes.withUnsafeBufferPointer { text(utf8: $0) }
    }

    public mutating func text(utf8 bytes: UnsafeBufferPointer<UInt8>) {
        separate()
        var start = 0
        for index in 0..<bytes.count {
            let escape: UInt8
            switch bytes[index] {
            case 0x5C: escape = 0x5C
            case 0x09: escape = 0x74
            case 0x0A: escape = 0x6E
            case 0x0D: escape = 0x72
            default: continue
            }
            buffer.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[start..<index]))
            buffer += [0x5C, escape]
            start = index + 1
        }
        buffer.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[start..<bytes.count]))
    }

    public mutating func text(_ value: String?) { if let value { text(value) } else { null() } }

    /// A value whose text needs no escaping (numbers, timestamps, enum names).
    public mutating func plain(_ value: String) {
        separate()
        buffer.append(contentsOf: value.utf8)
    }

    /// Bytes that need no escaping, written as they are.
    public mutating func plain(bytes: [UInt8]) {
        separate()
        buffer.append(contentsOf: bytes)
    }

    /// An integer, written digit by digit (no string made).
    public mutating func integer(_ value: Int64) {
        separate()
        if value < 0 { buffer.append(UInt8(ascii: "-")) }
        var magnitude = value.magnitude
        var digits: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8,
                     UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) =
            (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        var count = 0
        withUnsafeMutableBytes(of: &digits) { raw in
            repeat {
                raw[count] = UInt8(ascii: "0") + UInt8(magnitude % 10)
                magnitude /= 10
                count += 1
            } while magnitude > 0
            for index in stride(from: count - 1, through: 0, by: -1) { buffer.append(raw[index]) }
        }
    }


    public mutating func endRow() {
        buffer.append(0x0A)
        fieldsInRow = 0
    }

    private mutating func separate() {
        if fieldsInRow > 0 { buffer.append(0x09) }
        fieldsInRow += 1
    }
}

/// Rows in PostgreSQL's binary COPY format: a signature, then per row a field count and per field
/// a length and the value's binary form (network byte order), then a trailer. Each method writes
/// one field of the stated SQL type; a row must write as many fields as ``beginRow(fields:)`` said.
public struct BinaryCopyWriter: CopyStream {
    public internal(set) var buffer: [UInt8] = []
    /// 2000-01-01T00:00:00Z, PostgreSQL's timestamp epoch, in Unix microseconds.
    private static let postgresEpochMicroseconds: Int64 = 946_684_800_000_000

    public init() {
        buffer.reserveCapacity(copyFlushSize + 4096)
        buffer += Array("PGCOPY\n".utf8) + [0xFF, 0x0D, 0x0A, 0x00]  // signature
        append(UInt32(0))  // flags
        append(UInt32(0))  // header extension length
    }

    mutating func finish() { append(UInt16(0xFFFF)) }  // trailer: field count -1

    public mutating func beginRow(fields: Int) { append(UInt16(fields)) }

    public mutating func null() { append(UInt32(0xFFFF_FFFF)) }

    /// `bigint`.
    public mutating func int64(_ value: Int64) {
        append(UInt32(8))
        append(UInt64(bitPattern: value))
    }

    /// `integer`.
    public mutating func int32(_ value: Int32) {
        append(UInt32(4))
        append(UInt32(bitPattern: value))
    }

    /// `double precision`, or NULL.
    public mutating func float64(_ value: Double?) {
        guard let value else { return null() }
        append(UInt32(8))
        append(value.bitPattern)
    }

    /// `timestamptz` (or `timestamp`) from Unix microseconds.
    public mutating func timestamp(unixMicroseconds: Int64) {
        append(UInt32(8))
        append(UInt64(bitPattern: unixMicroseconds - Self.postgresEpochMicroseconds))
    }

    /// `text` (or `varchar`): UTF-8 bytes as they are, no escaping.
    public mutating func text(utf8 bytes: [UInt8]) {
        append(UInt32(bytes.count))
        buffer += bytes
    }

    public mutating func text(_ value: String) {
        append(UInt32(value.utf8.count))
        buffer.append(contentsOf: value.utf8)
    }

    /// `jsonb` from its JSON text (format version 1).
    public mutating func jsonb(utf8 bytes: [UInt8]) {
        append(UInt32(bytes.count + 1))
        buffer.append(1)
        buffer += bytes
    }

    private mutating func append<T: FixedWidthInteger>(_ value: T) {
        withUnsafeBytes(of: value.bigEndian) { buffer.append(contentsOf: $0) }
    }
}
