extension Migration {
    /// The OAuth connect flow: one row per issued `state`, keyed by its nonce. It holds the PKCE
    /// verifier server-side (it never travels through the browser; wiped when spent), is spent
    /// exactly once, then holds the vendor's tokens, sealed, until the user who started the flow
    /// completes it from the browser that finished it (a one-time completion code, kept hashed);
    /// and who connected a credential.
    static let m0006 = Migration(version: 6, name: "oauth_connect", sql: """
        CREATE TABLE oauth_pending (
            nonce text PRIMARY KEY,
            organization_id bigint NOT NULL REFERENCES organization (id),
            data_source_id smallint NOT NULL REFERENCES data_source (id),
            -- the user (JWT sub) who started the flow; only they can complete it
            user_id text NOT NULL,
            code_verifier text NOT NULL,
            created_at timestamptz NOT NULL DEFAULT now(),
            used_at timestamptz,
            -- after the code exchange: the tokens (AES-256-GCM envelope) and the SHA-256 of the
            -- completion code the callback page handed to its opener
            sealed_grant text,
            token_expires_at timestamptz,
            completion_hash text UNIQUE,
            exchanged_at timestamptz,
            completed_at timestamptz
        );
        CREATE INDEX oauth_pending_created ON oauth_pending (created_at);
        CREATE INDEX oauth_pending_user ON oauth_pending (user_id, created_at);
        ALTER TABLE integration_credential ADD COLUMN connected_by text;
        """)
}
