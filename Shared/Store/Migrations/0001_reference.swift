extension Migration {
    /// Sources, organisations and vendor integrations.
    static let m0001 = Migration(version: 1, name: "reference", sql: """
        CREATE TABLE data_source (
            id smallint PRIMARY KEY,
            name text NOT NULL UNIQUE,
            kind text NOT NULL CHECK (kind IN ('vendor', 'upload'))
        );
        INSERT INTO data_source (id, name, kind) VALUES
            (1, 'solaredge', 'vendor'), (2, 'enphase', 'vendor'), (3, 'sma', 'vendor'),
            (4, 'goodwe', 'vendor'), (5, 'snowflake', 'upload'), (6, 'manual', 'upload');

        CREATE TABLE organization (
            id bigint PRIMARY KEY,
            name text NOT NULL,
            created_at timestamptz NOT NULL DEFAULT now()
        );

        CREATE TABLE integration_credential (
            id bigserial PRIMARY KEY,
            organization_id bigint NOT NULL REFERENCES organization (id),
            data_source_id smallint NOT NULL REFERENCES data_source (id),
            auth_type text NOT NULL CHECK (auth_type IN ('api_key', 'oauth2')),
            -- base64(nonce || ciphertext || tag), AES-256-GCM; never plaintext
            encrypted_credentials text NOT NULL,
            token_expires_at timestamptz,
            is_active boolean NOT NULL DEFAULT true,
            last_used_at timestamptz,
            last_error text,
            created_at timestamptz NOT NULL DEFAULT now(),
            updated_at timestamptz NOT NULL DEFAULT now()
        );
        CREATE INDEX integration_credential_organization ON integration_credential (organization_id, data_source_id);

        CREATE TABLE integration_site (
            id bigserial PRIMARY KEY,
            organization_id bigint NOT NULL REFERENCES organization (id),
            credential_id bigint REFERENCES integration_credential (id),
            project_id bigint,
            data_source_id smallint NOT NULL REFERENCES data_source (id),
            external_site_id text NOT NULL,
            external_site_name text,
            -- IANA zone of the site: vendors report local wall time
            time_zone text NOT NULL DEFAULT 'UTC',
            is_active boolean NOT NULL DEFAULT true,
            last_sync_at timestamptz,
            last_sync_status text,
            last_sync_error text,
            UNIQUE (organization_id, data_source_id, external_site_id)
        );
        """)
}
