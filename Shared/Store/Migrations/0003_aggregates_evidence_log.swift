extension Migration {
    /// The financial source of truth (aggregates, kept forever), breach evidence, and the
    /// record of every file.
    static let m0003 = Migration(version: 3, name: "aggregates_evidence_log", sql: """
        CREATE TABLE meter_aggregate (
            meter_id bigint NOT NULL REFERENCES meter (id),
            period text NOT NULL CHECK (period IN ('hourly', 'daily', 'monthly')),
            period_start timestamptz NOT NULL,
            period_end timestamptz NOT NULL CHECK (period_end > period_start),
            energy_wh double precision,
            energy_kwh double precision GENERATED ALWAYS AS (energy_wh / 1000.0) STORED,
            hours_available double precision NOT NULL DEFAULT 0,
            hours_expected double precision NOT NULL,
            availability_pct double precision,
            reading_count integer NOT NULL DEFAULT 0,
            completeness_pct double precision,
            computed_at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (meter_id, period, period_start)
        );

        -- Evidence of a contract breach survives the readings it cites: no foreign keys to
        -- meter_reading, and the cited data is hashed.
        CREATE TABLE default_event (
            id bigserial PRIMARY KEY,
            organization_id bigint NOT NULL REFERENCES organization (id),
            breach_start timestamptz NOT NULL,
            breach_end timestamptz NOT NULL,
            meter_ids bigint[] NOT NULL,
            -- {breach_period, meters, expected, actual, sample_readings, data_hash, archive_path}
            evidence jsonb NOT NULL,
            data_hash text NOT NULL CHECK (data_hash ~ '^[0-9a-f]{64}$'),
            archive_path text,
            created_at timestamptz NOT NULL DEFAULT now()
        );
        CREATE INDEX default_event_organization ON default_event (organization_id, breach_start);

        CREATE TABLE ingestion_log (
            id bigserial PRIMARY KEY,
            bucket text NOT NULL,
            key text NOT NULL,
            size bigint NOT NULL,
            etag text,
            sha256 text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
            data_source_id smallint REFERENCES data_source (id),
            organization_id bigint,
            status text NOT NULL CHECK (status IN ('processing', 'validated', 'quarantined', 'duplicate', 'failed')),
            rows_processed bigint NOT NULL DEFAULT 0,
            rows_loaded bigint NOT NULL DEFAULT 0,
            rows_rejected bigint NOT NULL DEFAULT 0,
            errors jsonb NOT NULL DEFAULT '[]'::jsonb,
            destination text,
            started_at timestamptz NOT NULL DEFAULT now(),
            finished_at timestamptz,
            UNIQUE (sha256, key)
        );
        """)
}
