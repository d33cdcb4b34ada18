extension Migration {
    /// The meter registry and the readings, partitioned by month of `timestamp`.
    static let m0002 = Migration(version: 2, name: "readings", sql: """
        CREATE TABLE meter (
            id bigserial PRIMARY KEY,
            organization_id bigint NOT NULL REFERENCES organization (id),
            data_source_id smallint NOT NULL REFERENCES data_source (id),
            external_site_id text NOT NULL,
            external_device_id text NOT NULL,
            project_id bigint,
            created_at timestamptz NOT NULL DEFAULT now(),
            UNIQUE (organization_id, data_source_id, external_site_id, external_device_id)
        );

        -- Raw readings are kept 90 days (whole monthly partitions are dropped); aggregates forever.
        -- The natural key (meter, interval start) makes every reload idempotent.
        CREATE TABLE meter_reading (
            meter_id bigint NOT NULL,
            organization_id bigint NOT NULL,
            "timestamp" timestamptz NOT NULL,
            reading_interval_seconds integer NOT NULL CHECK (reading_interval_seconds > 0),
            energy_wh double precision CHECK (energy_wh >= 0),
            power_w double precision CHECK (power_w >= 0),
            irradiance_wm2 double precision,
            temperature_c double precision,
            other_metrics jsonb NOT NULL DEFAULT '{}'::jsonb,
            quality text NOT NULL CHECK (quality IN ('measured', 'estimated', 'missing')),
            ingested_at timestamptz NOT NULL,
            ingestion_id bigint,
            PRIMARY KEY (meter_id, "timestamp")
        ) PARTITION BY RANGE ("timestamp");
        CREATE INDEX meter_reading_organization_time ON meter_reading (organization_id, "timestamp");
        """)
}
