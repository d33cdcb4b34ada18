extension Migration {
    /// Incremental aggregates and retention: the (meter, hour) ranges loads changed, which the
    /// maintenance function recomputes and clears; the expected readings of each aggregate (so
    /// daily and monthly completeness add up from the hourly rows); the partitions dropped.
    static let m0008 = Migration(version: 8, name: "maintenance", sql: """
        -- Written by the loader in the load's own transaction: hours [first_hour, last_hour] of
        -- the meter may have changed. No unique key: loads never wait on each other here.
        CREATE TABLE aggregate_dirty (
            id bigserial PRIMARY KEY,
            meter_id bigint NOT NULL,
            first_hour timestamptz NOT NULL,
            last_hour timestamptz NOT NULL CHECK (last_hour >= first_hour),
            marked_at timestamptz NOT NULL DEFAULT now()
        );
        CREATE INDEX aggregate_dirty_hours ON aggregate_dirty (first_hour);
        ALTER TABLE meter_aggregate ADD COLUMN readings_expected integer NOT NULL DEFAULT 0;
        CREATE INDEX meter_aggregate_period ON meter_aggregate (period, period_start);
        -- Daily and monthly rows computed before their period ended: what finalising reads.
        CREATE INDEX meter_aggregate_unfinished ON meter_aggregate (period_end) WHERE computed_at < period_end AND period <> 'hourly';
        CREATE TABLE partition_drop (
            name text PRIMARY KEY,
            month_start timestamptz NOT NULL,
            dropped_at timestamptz NOT NULL DEFAULT now(),
            rows_dropped bigint NOT NULL
        );
        """)
}
