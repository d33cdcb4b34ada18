extension Migration {
    /// What the OAuth fetchers need: the id a vendor now answers to for a migrated site (SMA's
    /// 308), kept apart from `external_site_id`, which names the site's readings for good.
    static let m0005 = Migration(version: 5, name: "oauth_fetchers", sql: """
        ALTER TABLE integration_site ADD COLUMN api_site_id text;
        CREATE INDEX vendor_call_count_month ON vendor_call_count (credential_id, day);
        """)
}
