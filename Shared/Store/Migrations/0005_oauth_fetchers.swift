extension Migration {
    /// What the OAuth fetchers need: the id a vendor now answers to for a migrated site (SMA's
    /// 308), kept apart from `external_site_id`, which names the site's readings for good; and
    /// what a fetcher learnt of a site (Enphase: whether it has a production meter), so later runs
    /// do not ask again.
    static let m0005 = Migration(version: 5, name: "oauth_fetchers", sql: """
        ALTER TABLE integration_site ADD COLUMN api_site_id text;
        ALTER TABLE integration_site ADD COLUMN vendor_attributes jsonb NOT NULL DEFAULT '{}'::jsonb;
        CREATE INDEX vendor_call_count_month ON vendor_call_count (credential_id, day);
        """)
}
