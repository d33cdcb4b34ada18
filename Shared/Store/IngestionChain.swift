import Core
import Cryptography
import Postgres

/// The tamper-evident chain over `ingestion_log` (docs/trust.md): when a row settles (validated
/// or quarantined) it takes the next position, the previous position's hash, and the SHA-256 of
/// its canonical facts — so an edited, deleted, inserted or re-ordered row breaks the chain at a
/// place `meterlake audit verify` can name.
public enum IngestionChain {
    /// The hash before position 1.
    public static let genesis = String(repeating: "0", count: 64)
    /// One chain for every validator: appends are serialised by this advisory lock, held until
    /// the appending transaction ends (one chain, no gaps, no forks).
    static let lock = "7245617733"

    /// The facts a row's hash covers, in order, as text.
    public struct Facts: Sendable, Equatable {
        public var position: Int64
        public var previousHash: String
        public var bucket: String
        public var key: String
        public var size: Int64
        public var sha256: String
        public var status: String
        public var rowsProcessed: Int64
        public var rowsLoaded: Int64
        public var rowsRejected: Int64
        public var destination: String?
        /// `finished_at`, Unix microseconds.
        public var finishedAt: Int64

        public init(position: Int64, previousHash: String, bucket: String, key: String, size: Int64, sha256: String, status: String,
                    rowsProcessed: Int64, rowsLoaded: Int64, rowsRejected: Int64, destination: String?, finishedAt: Int64) {
            self.position = position
            self.previousHash = previousHash
            self.bucket = bucket
            self.key = key
            self.size = size
            self.sha256 = sha256
            self.status = status
            self.rowsProcessed = rowsProcessed
            self.rowsLoaded = rowsLoaded
            self.rowsRejected = rowsRejected
            self.destination = destination
            self.finishedAt = finishedAt
        }

        /// The canonical bytes: each field as a netstring (`<byte length>:<UTF-8 bytes>,`), in
        /// this order, after the format label.
        public var canonical: [UInt8] {
            let fields = ["meterlake.ingestion.v1", String(position), previousHash, bucket, key, String(size), sha256, status,
                          String(rowsProcessed), String(rowsLoaded), String(rowsRejected), destination ?? "", String(finishedAt)]
            var bytes: [UInt8] = []
            for field in fields {
                let utf8 = Array(field.utf8)
                bytes += Array(String(utf8.count).utf8) + [UInt8(ascii: ":")] + utf8 + [UInt8(ascii: ",")]
            }
            return bytes
        }

        public var hash: String { Hex.encode(SHA256.hash(canonical)) }
    }

    static let factColumns = """
        id, chain_position, previous_hash, row_hash, bucket, key, size, sha256, status, rows_processed, rows_loaded, rows_rejected,
        destination, (extract(epoch FROM finished_at) * 1000000)::bigint AS finished_micros
        """

    static func facts(_ rows: PostgresRows, _ row: Int, position: Int64, previousHash: String) -> Facts {
        Facts(position: position, previousHash: previousHash, bucket: rows[row, "bucket"]!, key: rows[row, "key"]!,
              size: Int64(rows[row, "size"]!) ?? 0, sha256: rows[row, "sha256"]!, status: rows[row, "status"]!,
              rowsProcessed: Int64(rows[row, "rows_processed"]!) ?? 0, rowsLoaded: Int64(rows[row, "rows_loaded"]!) ?? 0,
              rowsRejected: Int64(rows[row, "rows_rejected"]!) ?? 0, destination: rows[row, "destination"],
              finishedAt: rows[row, "finished_micros"].flatMap { Int64($0) } ?? 0)
    }

    /// Appends the settled row `id` to the chain, in the caller's transaction; nothing when it is
    /// chained already.
    static func append(id: Int64, connection: PostgresConnection) throws {
        try connection.query("SELECT pg_advisory_xact_lock(\(lock))")
        let row = try connection.query("SELECT \(factColumns) FROM ingestion_log WHERE id = $1", [String(id)])
        guard row.count == 1, row[0, "chain_position"] == nil, ["validated", "quarantined"].contains(row[0, "status"] ?? "") else { return }
        let last = try connection.query("SELECT chain_position, row_hash FROM ingestion_log WHERE chain_position IS NOT NULL ORDER BY chain_position DESC LIMIT 1")
        let position = (last.count == 1 ? Int64(last[0, "chain_position"]!)! : 0) + 1
        let previous = last.count == 1 ? last[0, "row_hash"]! : genesis
        let facts = facts(row, 0, position: position, previousHash: previous)
        try connection.query("UPDATE ingestion_log SET chain_position = $2, previous_hash = $3, row_hash = $4 WHERE id = $1",
                             [String(id), String(position), previous, facts.hash])
    }

    /// What `meterlake audit verify` found.
    public struct Verdict: Sendable, Equatable {
        public var checked: Int
        /// The first break, in words (which row, what is wrong); nil when the chain holds.
        public var problem: String?
        /// Settled rows outside the chain: a settled row always takes a position, so these were
        /// changed by hand (or settled before migration 9).
        public var unchained: [Int64]
        /// The last position and its hash: kept somewhere the database's users cannot write, they
        /// make a truncated or re-built chain detectable.
        public var head: (position: Int64, hash: String)?

        public static func == (a: Verdict, b: Verdict) -> Bool {
            a.checked == b.checked && a.problem == b.problem && a.unchained == b.unchained && a.head?.position == b.head?.position && a.head?.hash == b.head?.hash
        }
    }

    /// Walks the chain from position 1, 10,000 rows at a time, and names the first row that was
    /// edited, deleted, inserted or re-ordered. With `expectedHead` (a position and hash recorded
    /// earlier), a chain that no longer holds that row there is broken too.
    public static func verify(connection: PostgresConnection, expectedHead: (position: Int64, hash: String)? = nil) throws -> Verdict {
        var expectedPosition: Int64 = 1
        var previous = genesis
        var problem: String?
        var checked = 0
        walk: while true {
            let rows = try connection.query("""
                SELECT \(factColumns) FROM ingestion_log WHERE chain_position >= $1 ORDER BY chain_position LIMIT 10000
                """, [String(expectedPosition)])
            if rows.count == 0 { break }
            for row in 0..<rows.count {
                let id = rows[row, "id"]!, key = rows[row, "key"]!
                let position = Int64(rows[row, "chain_position"]!)!
                let name = "row \(id) (\(key))"
                if position != expectedPosition {
                    problem = "position \(expectedPosition)\(position - expectedPosition > 1 ? "…\(position - 1)" : "") is missing before \(name) at \(position): a row was deleted or its position changed"
                    break walk
                }
                let storedPrevious = rows[row, "previous_hash"] ?? ""
                guard storedPrevious == previous else {
                    problem = "\(name) at position \(position) does not follow position \(position - 1): its previous hash is \(storedPrevious.prefix(12))…, "
                        + "the chain says \(previous.prefix(12))… (a row was inserted out of order, re-ordered, or the row before it was re-hashed)"
                    break walk
                }
                let recomputed = facts(rows, row, position: position, previousHash: previous).hash
                guard rows[row, "row_hash"] == recomputed else {
                    problem = "\(name) at position \(position) was edited: its facts hash to \(recomputed.prefix(12))…, its row_hash is \((rows[row, "row_hash"] ?? "").prefix(12))…"
                    break walk
                }
                previous = recomputed
                expectedPosition += 1
                checked += 1
            }
        }
        let head = checked > 0 ? (position: expectedPosition - 1, hash: previous) : nil
        if problem == nil, let expectedHead {
            let at = try connection.query("SELECT row_hash FROM ingestion_log WHERE chain_position = $1", [String(expectedHead.position)])
            if at.count != 1 || at[0, "row_hash"] != expectedHead.hash {
                problem = "the recorded head, position \(expectedHead.position) with hash \(expectedHead.hash.prefix(12))…, is no longer in the chain: rows were deleted from its end or the chain was re-built"
            }
        }
        let unchained = try connection.query("""
            SELECT id FROM ingestion_log WHERE chain_position IS NULL AND status IN ('validated', 'quarantined') ORDER BY id
            """).rows.compactMap { $0[0].flatMap { Int64($0) } }
        if problem == nil, let first = unchained.first {
            problem = "row \(first) is settled but outside the chain (\(unchained.count) such rows): its position was removed or its status changed by hand"
        }
        return Verdict(checked: checked, problem: problem, unchained: unchained, head: head)
    }

    /// The chain position and hash of ingestion rows (for evidence to cite).
    public static func positions(ids: [Int64], connection: PostgresConnection) throws -> [(id: Int64, key: String, position: Int64?, hash: String?)] {
        guard !ids.isEmpty else { return [] }
        let rows = try connection.query("""
            SELECT id, key, chain_position, row_hash FROM ingestion_log WHERE id = ANY($1::bigint[]) ORDER BY id
            """, ["{" + ids.map(String.init).joined(separator: ",") + "}"])
        return (0..<rows.count).map { (Int64(rows[$0, "id"]!)!, rows[$0, "key"]!, rows[$0, "chain_position"].flatMap { Int64($0) }, rows[$0, "row_hash"]) }
    }
}
