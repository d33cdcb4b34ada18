extension Migration {
    /// The OAuth connect flow: one row per issued `state`, keyed by its nonce, holding the PKCE
    /// verifier server-side (it never travels through the browser) and spent exactly once; and who
    /// connected a credential.
    static let m0006 = Migration(version: 6, name: "oauth_connect", sql: """
        CREATE TABLE oauth_pending (
            nonce text PRIMARY KEY,
            organization_id bigint NOT NULL REFERENCES organization (id),
            data_source_id smallint NOT NULL REFERENCES data_source (id),
            -- the user (JWT sub) who started the flow
            user_id text NOT NULL,
            code_verifier text NOT NULL,
            created_at timestamptz NOT NULL DEFAULT now(),
            used_at timestamptz
        );
        CREATE INDEX oauth_pending_created ON oauth_pending (created_at);
        ALTER TABLE integration_credential ADD COLUMN connected_by text;
        """)
}
