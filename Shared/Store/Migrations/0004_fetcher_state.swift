extension Migration {
    /// What the fetchers keep between runs: each site's cursor, each credential's rate-limit
    /// pause, and the calls made against each vendor quota.
    static let m0004 = Migration(version: 4, name: "fetcher_state", sql: """
        -- The end of the site's last fully fetched window (UTC). A failed or partial window leaves
        -- it where it was, so the next run fetches the gap again.
        ALTER TABLE integration_site ADD COLUMN sync_cursor timestamptz;
        -- How the site's zone was learnt: the vendor said it, an operator set it, it was inferred
        -- from the credential's other sites, or it is unknown (the site waits inactive for one).
        ALTER TABLE integration_site ADD COLUMN time_zone_source text NOT NULL DEFAULT 'configured'
            CHECK (time_zone_source IN ('vendor', 'configured', 'inferred', 'unknown'));
        ALTER TABLE integration_site ADD COLUMN discovered_at timestamptz;
        -- A run fetching the site holds it until then (a lease, not a session lock: it works
        -- through a transaction-mode pooler, and a crashed run's lease simply expires).
        ALTER TABLE integration_site ADD COLUMN lease_until timestamptz;
        -- A vendor answered "too many requests": no calls with this credential before then.
        ALTER TABLE integration_credential ADD COLUMN rate_limited_until timestamptz;

        -- Calls counted against a vendor quota: per credential, per scope ('account' or
        -- 'site:<id>') and per quota day (UTC), so hourly runs can plan inside a daily quota.
        CREATE TABLE vendor_call_count (
            credential_id bigint NOT NULL REFERENCES integration_credential (id) ON DELETE CASCADE,
            scope text NOT NULL,
            day date NOT NULL,
            calls integer NOT NULL DEFAULT 0 CHECK (calls >= 0),
            PRIMARY KEY (credential_id, scope, day)
        );
        """)
}
