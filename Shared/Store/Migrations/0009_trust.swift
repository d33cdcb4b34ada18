extension Migration {
    /// Trust: every settled `ingestion_log` row takes the next position of one hash chain (its
    /// facts and the previous row's hash, SHA-256), and breach evidence keeps its archive's chunk
    /// hashes and the chain positions of the files it rests on (inside `default_event.evidence`).
    static let m0009 = Migration(version: 9, name: "trust", sql: """
        ALTER TABLE ingestion_log ADD COLUMN chain_position bigint UNIQUE;
        ALTER TABLE ingestion_log ADD COLUMN previous_hash text CHECK (previous_hash ~ '^[0-9a-f]{64}$');
        ALTER TABLE ingestion_log ADD COLUMN row_hash text CHECK (row_hash ~ '^[0-9a-f]{64}$');
        """)
}
