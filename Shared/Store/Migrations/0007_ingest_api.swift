extension Migration {
    /// What the ingest API reads: a file's status by key, Snowflake unloads by content hash, and
    /// the freshness and failure share of the last day.
    static let m0007 = Migration(version: 7, name: "ingest_api", sql: """
        CREATE INDEX ingestion_log_key ON ingestion_log (key, finished_at DESC);
        CREATE INDEX ingestion_log_organization_sha256 ON ingestion_log (organization_id, sha256);
        CREATE INDEX ingestion_log_finished ON ingestion_log (finished_at);
        CREATE INDEX ingestion_log_started ON ingestion_log (started_at);
        """)
}
