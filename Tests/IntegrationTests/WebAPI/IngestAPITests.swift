import Compression
import Core
import Cryptography
import Foundation
import Lake
import Postgres
import Store
import Testing
import TestSupport

/// The BUILT ingest-api function through the local Runtime API with function-URL events, against
/// moto S3, PostgreSQL, the fake vendors, and (for a whole upload) the BUILT validator. (S3's
/// notification is what cannot run here: the test hands the validator the event S3 would send.)
final class IngestFlow {
    let validator: ValidatorHarness
    let vendors: FakeVendors
    let harness: WebHarness
    var database: TestDatabase { validator.database }
    var store: S3ObjectStore { validator.store }

    init(databaseURL: String? = nil, extra: [String: String] = [:]) throws {
        validator = try ValidatorHarness()
        vendors = try FakeVendors()
        var settings = try validator.environment()
        settings["AWS_LAMBDA_RUNTIME_API"] = nil
        settings["AWS_LAMBDA_FUNCTION_NAME"] = nil
        settings.merge(vendors.environment) { $1 }
        if let databaseURL { settings["DATABASE_URL"] = databaseURL }
        settings.merge(extra) { $1 }
        harness = try WebHarness(function: "ingest-api", database: validator.database, settings: settings)
    }

    static func csv(rows: Int, bad: Int = 0, site: String = "site-up") -> [UInt8] {
        var text = "external_site_id,external_device_id,timestamp,reading_interval_seconds,energy_wh,power_w,quality\n"
        for index in 0..<rows {
            let minutes = index * 15
            let time = String(format: "2026-03-01T%02d:%02d:00Z", minutes / 60, minutes % 60)
            text += index < bad ? "\(site),INV-1,\(time),900,-5,10,measured\n" : "\(site),INV-1,\(time),900,\(100 + index),400,measured\n"
        }
        return Array(text.utf8)
    }

    /// `curl -X PUT` of `bytes` to a presigned URL, with the headers the API named.
    func put(_ url: String, _ bytes: [UInt8], contentLength: Int? = nil) throws -> Int32 {
        let file = try scratchFile(bytes)
        defer { try? FileManager.default.removeItem(atPath: file) }
        let curl = try ChildProcess("/usr/bin/curl", arguments: [
            "-sS", "-o", "/dev/null", "-w", "%{http_code}", "-H", "content-length: \(contentLength ?? bytes.count)", "-H", "if-none-match: *",
            "--upload-file", file, url,
        ], environment: ["PATH": "/usr/bin:/bin"])
        _ = try curl.waitForExit(timeout: 30)
        return Int32(curl.standardOutput.trimmingCharacters(in: .whitespacesAndNewlines)) ?? -1
    }
}

@Suite(.serialized) struct IngestAPITests {
    let token = TestTokens.user("uploader", organizations: [42])

    @Test func aManualUploadEndToEnd() throws {
        let flow = try IngestFlow()
        let file = IngestFlow.csv(rows: 12)
        let presigned = try flow.harness.json("POST", "/uploads", ["organization_id": 42, "file_name": "März Export (final).csv", "size": file.count], token: token)
        #expect(presigned.status == 201, "\(presigned.body)")
        let key = try #require(presigned.json["key"] as? String)
        let day = Timestamp.day(epochSeconds: Int64(Date().timeIntervalSince1970))
        #expect(key.hasPrefix("raw/manual/42/\(day)/") && key.hasSuffix("_M_rz_Export__final_.csv"), "\(key)")
        #expect(presigned.json["method"] as? String == "PUT")
        #expect((presigned.json["headers"] as? [String: String]) == ["content-length": String(file.count), "if-none-match": "*"])
        let url = try #require(presigned.json["upload_url"] as? String)
        #expect(url.contains("X-Amz-Expires=900") && url.contains("X-Amz-SignedHeaders=content-length%3Bhost%3Bif-none-match"))
        guard case .zoned(let expires)? = (presigned.json["expires_at"] as? String).map(ISO8601.parse) else { Issue.record("no expires_at"); return }
        #expect(abs(expires - Int64(Date().timeIntervalSince1970) - 900) < 30)
        #expect(!flow.harness.output.contains("X-Amz-Signature"), "a presigned URL must never be logged")

        // Not uploaded yet: nothing there.
        #expect(try flow.harness.json("GET", "/uploads/status", nil, token: token, query: "key=\(PercentEncoding.encode(key))").status == 404)
        #expect(try flow.put(url, file) == 200)
        // Create-only: the same URL cannot replace what landed.
        #expect(try flow.put(url, IngestFlow.csv(rows: 12, site: "site-x")) == 412)
        let pending = try flow.harness.json("GET", "/uploads/status", nil, token: token, query: "key=\(PercentEncoding.encode(key))")
        #expect(pending.status == 200 && pending.json["status"] as? String == "pending")

        // S3 would notify the validator now.
        try flow.validator.start()
        let files = try flow.validator.files(try flow.validator.invoke([key], count: 1))
        #expect(files.first?.status == .validated, "\(files)")
        let status = try flow.harness.json("GET", "/uploads/status", nil, token: token, query: "key=\(PercentEncoding.encode(key))")
        #expect(status.status == 200)
        #expect(status.json["status"] as? String == "validated", "\(status.body)")
        #expect(status.json["rows_processed"] as? Int == 12 && status.json["rows_loaded"] as? Int == 12 && status.json["rows_rejected"] as? Int == 0)
        #expect(status.json["destination"] as? String == "validated/\(day)/" + key.dropFirst(4))
        #expect(try flow.validator.count("SELECT count(*) AS n FROM meter_reading") == 12)

        // Status by content hash (how a Snowflake client finds its unload).
        let sha = Hex.encode(SHA256.hash(file))
        let byHash = try flow.harness.json("GET", "/ingestions", nil, token: token, query: "organization_id=42&sha256=\(sha.uppercased())")
        let ingestions = try #require(byHash.json["ingestions"] as? [[String: Any]])
        try #require(ingestions.count == 1)
        #expect(ingestions[0]["key"] as? String == key && ingestions[0]["rows_loaded"] as? Int == 12)
        #expect((ingestions[0]["finished_at"] as? String)?.hasSuffix("Z") == true)
        let otherOrg = try flow.harness.json("GET", "/ingestions", nil, token: TestTokens.user(organizations: [7]), query: "organization_id=42&sha256=\(sha)")
        #expect(otherOrg.status == 403)
        #expect(try flow.harness.json("GET", "/ingestions", nil, token: token, query: "organization_id=42&sha256=xyz").status == 400)
        #expect(try flow.harness.json("GET", "/ingestions", nil, token: token, query: "organization_id=42&sha256=\(String(repeating: "g", count: 64))").status == 400)
    }

    @Test func aQuarantinedUploadShowsItsFirstViolations() throws {
        let flow = try IngestFlow()
        let file = IngestFlow.csv(rows: 30, bad: 25)
        let presigned = try flow.harness.json("POST", "/uploads", ["organization_id": 42, "file_name": "bad.csv", "size": file.count], token: token)
        let key = try #require(presigned.json["key"] as? String)
        #expect(try flow.put(try #require(presigned.json["upload_url"] as? String), file) == 200)
        try flow.validator.start()
        #expect(try flow.validator.files(try flow.validator.invoke([key], count: 1)).first?.status == .quarantined)
        let status = try flow.harness.json("GET", "/uploads/status", nil, token: token, query: "key=\(PercentEncoding.encode(key))")
        #expect(status.json["status"] as? String == "quarantined" && status.json["rows_rejected"] as? Int == 25)
        let errors = try #require(status.json["errors"] as? [[String: Any]])
        #expect((errors.first?["reason"] as? String)?.contains("25 of 30 rows rejected") == true)
        #expect(errors.count == 21, "the reason and the first 20 violations")
        #expect(errors[1]["column"] as? String == "energy_wh" && errors[1]["line"] as? Int == 2)

        // A load in progress, and a transient failure, read as pending while the file waits in raw/.
        let waiting = "raw/manual/42/2026-03-01/waiting.csv"
        _ = try flow.store.put(waiting, body: .bytes(IngestFlow.csv(rows: 2)), contentType: nil)
        let connection = try flow.database.connect()
        try connection.query("INSERT INTO ingestion_log (bucket, key, size, sha256, status) VALUES ('b', $1, 1, repeat('a', 64), 'processing')", [waiting])
        func statusOf(_ key: String) throws -> String? {
            try flow.harness.json("GET", "/uploads/status", nil, token: token, query: "key=\(PercentEncoding.encode(key))").json["status"] as? String
        }
        #expect(try statusOf(waiting) == "pending")
        try connection.query("UPDATE ingestion_log SET status = 'failed', errors = '[{\"reason\":\"cannot connect to 10.0.0.5\"}]' WHERE key = $1", [waiting])
        #expect(try statusOf(waiting) == "pending")
        try flow.store.delete(waiting)
        #expect(try statusOf(waiting) == "failed")
        let failed = try flow.harness.json("GET", "/uploads/status", nil, token: token, query: "key=\(PercentEncoding.encode(waiting))")
        #expect(!failed.body.contains("10.0.0.5"), "a failure's internal text is not shown")
    }

    @Test func keysOfAnotherOrganisationAndHostileNamesAreRefused() throws {
        let flow = try IngestFlow()
        let foreign = "raw/manual/7/2026-03-01/abc_x.csv"
        _ = try flow.store.put(foreign, body: .bytes(Array("x".utf8)), contentType: nil)
        let refused = try flow.harness.json("GET", "/uploads/status", nil, token: token, query: "key=\(PercentEncoding.encode(foreign))")
        #expect(refused.status == 403 && refused.errorCode == "forbidden")
        #expect(try flow.harness.json("GET", "/uploads/status", nil, token: token, query: "key=validated%2Fx").status == 400)
        #expect(try flow.harness.json("GET", "/uploads/status", nil, token: token, query: "key=raw%2Fsolaredge%2F42%2F2026-03-01%2Fa.json").status == 400)
        #expect(try flow.harness.json("POST", "/uploads", ["organization_id": 7, "file_name": "a.csv", "size": 5], token: token).status == 403)

        let names: [(String, Int, String?)] = [
            ("../../etc/passwd.csv", 201, "_passwd.csv"), ("..\\..\\boot.ini.csv", 201, "_boot.ini.csv"), ("...hidden.json", 201, "_hidden.json"),
            ("a..b.ndjson.gz", 201, "_a_b.ndjson.gz"), ("line\nbreak.csv", 422, nil), ("nul\u{1}.csv", 422, nil), ("payload.exe", 422, nil),
            ("data.parquet.gz", 422, nil), (String(repeating: "a", count: 300) + ".csv", 201, nil), (String(repeating: "a", count: 2000) + ".csv", 400, nil),
            ("<script>.json", 201, "__script_.json"), ("%2e%2e%2fx.csv", 201, "_2e_2e_2fx.csv"),
            ("del\u{7F}.csv", 422, nil), ("x.ndjson", 201, "_x.ndjson"), ("X.CSV.GZ", 201, "_X.csv.gz"),
        ]
        for (name, expected, suffix) in names {
            let answer = try flow.harness.json("POST", "/uploads", ["organization_id": 42, "file_name": name, "size": 10], token: token)
            #expect(answer.status == expected, "\(name.debugDescription): \(answer.body)")
            guard expected == 201, let key = answer.json["key"] as? String else { continue }
            let last = String(key.split(separator: "/").last!)
            #expect(!key.contains("..") && last.utf8.count <= 17 + 120 && (try? LakeKey(key)) != nil, "\(key)")
            if let suffix { #expect(last.hasSuffix(suffix), "\(name.debugDescription) → \(key)") }
        }
        #expect(try flow.harness.json("POST", "/uploads", ["organization_id": 42, "file_name": "a.csv", "size": 0], token: token).status == 422)
        #expect(try flow.harness.json("POST", "/uploads", ["organization_id": 42, "file_name": "a.csv", "size": 6_000_000_000], token: token).status == 413)
    }

    @Test func theUploadSizeLimitIsExactAndALakeDownShows() throws {
        let flow = try IngestFlow(extra: ["METERLAKE_UPLOAD_MAX_BYTES": "100", "AWS_ENDPOINT_URL_S3": "http://127.0.0.1:1"])
        #expect(try flow.harness.json("POST", "/uploads", ["organization_id": 42, "file_name": "a.csv", "size": 100], token: token).status == 201)
        #expect(try flow.harness.json("POST", "/uploads", ["organization_id": 42, "file_name": "a.csv", "size": 101], token: token).status == 413)
        let health = try flow.harness.request("GET", "/health/full")
        #expect(health.status == 503 && ((health.json["checks"] as? [String: Any])?["lake"] as? [String: Any])?["ok"] as? Bool == false)
        #expect(((health.json["checks"] as? [String: Any])?["database"] as? [String: Any])?["ok"] as? Bool == true)
    }

    @Test func expiredOrForgedTokensAreRefused() throws {
        let flow = try IngestFlow()
        let now = Int64(Date().timeIntervalSince1970)
        for bad in [TestTokens.user(organizations: [42], now: now - 7200), TestTokens.user(organizations: [42]).dropLast(2) + "xx",
                    TestTokens.hs256(#"{"sub":"u","aud":"authenticated","exp":\#(now + 60),"app_metadata":{"organization_id":42}}"#, secret: "not the project's secret, but long enough")] {
            let answer = try flow.harness.json("POST", "/uploads", ["organization_id": 42, "file_name": "a.csv", "size": 5], token: String(bad))
            #expect(answer.status == 401 && answer.errorCode == "unauthorized")
        }
        #expect(try flow.harness.json("GET", "/credentials", nil, token: nil, query: "organization_id=42").status == 401)
    }

    @Test func aDryRunReportsWithoutLoadingOrStoring() throws {
        let flow = try IngestFlow()
        let good = try flow.harness.request("POST", "/validate", query: "organization_id=42&format=csv",
                                            headers: ["authorization": "Bearer " + token], body: IngestFlow.csv(rows: 8), base64: true)
        #expect(good.status == 200)
        #expect(good.json["status"] as? String == "validated" && good.json["rows_processed"] as? Int == 8 && good.json["rows_loaded"] as? Int == 8)
        let bad = try flow.harness.request("POST", "/validate", query: "organization_id=42&format=csv",
                                           headers: ["authorization": "Bearer " + token], body: IngestFlow.csv(rows: 4, bad: 3))
        #expect(bad.status == 200 && bad.json["status"] as? String == "quarantined" && bad.json["rows_rejected"] as? Int == 3)
        let violation = try #require((bad.json["violations"] as? [[String: Any]])?.first)
        #expect(violation["line"] as? Int == 2 && violation["column"] as? String == "energy_wh" && violation["value"] as? String == "-5")
        let parquet = try flow.harness.request("POST", "/validate", query: "organization_id=42&format=parquet",
                                               headers: ["authorization": "Bearer " + token],
                                               body: Array(try Data(contentsOf: Fixture.repository.appendingPathComponent("docs/samples/readings.parquet"))), base64: true)
        #expect(parquet.status == 200 && (parquet.json["rows_processed"] as? Int ?? 0) > 0, "\(parquet.body)")
        let broken = try flow.harness.request("POST", "/validate", query: "organization_id=42&format=json",
                                              headers: ["authorization": "Bearer " + token], body: Array("[{\"a\":".utf8))
        #expect(broken.status == 200 && (broken.json["file_error"] as? String)?.isEmpty == false)
        // A small body that inflates past the dry run's 64 MiB is refused as a file, not read.
        let bomb = try Deflater.gzip(Array("external_site_id,external_device_id,timestamp,reading_interval_seconds,energy_wh\n".utf8) + [UInt8](repeating: 0x20, count: 70 * 1024 * 1024))
        #expect(bomb.count < 200_000)
        let bombed = try flow.harness.request("POST", "/validate", query: "organization_id=42&format=csv", headers: ["authorization": "Bearer " + token], body: bomb, base64: true)
        #expect(bombed.status == 200 && bombed.json["status"] as? String == "quarantined" && (bombed.json["file_error"] as? String)?.isEmpty == false, "\(bombed.body.prefix(300))")
        // Nothing loaded, logged or stored.
        #expect(try flow.validator.count("SELECT count(*) AS n FROM meter_reading") == 0)
        #expect(try flow.validator.count("SELECT count(*) AS n FROM ingestion_log") == 0)
        #expect(try flow.store.list(prefix: "").isEmpty)
        #expect(try flow.harness.request("POST", "/validate", query: "organization_id=42&format=xlsx", headers: ["authorization": "Bearer " + token], body: [1]).status == 400)
        #expect(try flow.harness.request("POST", "/validate", query: "organization_id=42&format=parquet", headers: ["authorization": "Bearer " + token],
                                         body: [0x1F, 0x8B, 8, 0], base64: true).status == 422)
        #expect(try flow.harness.request("POST", "/validate", query: "organization_id=7&format=csv", headers: ["authorization": "Bearer " + token], body: [1]).status == 403)
    }

    @Test func credentialsAreCheckedSealedListedWithoutSecretsAndDeleted() throws {
        let flow = try IngestFlow()
        let added = try flow.harness.json("POST", "/credentials", ["organization_id": 42, "vendor": "solaredge", "credentials": ["api_key": "demo-account-key"]], token: token)
        #expect(added.status == 201, "\(added.body)")
        let sites = try #require(added.json["sites"] as? [[String: Any]])
        #expect(Set(sites.compactMap { $0["external_site_id"] as? String }) == ["3017452", "3017453"])
        let id = try #require(added.json["id"] as? Int)
        let stored = try flow.database.connect().query("SELECT encrypted_credentials, auth_type, connected_by FROM integration_credential WHERE id = $1", [String(id)])
        let plaintext = try CredentialEnvelope.open(stored[0, "encrypted_credentials"]!, keys: flow.harness.keys)
        #expect(String(decoding: plaintext, as: UTF8.self) == #"{"api_key":"demo-account-key"}"#)
        #expect(stored[0, "auth_type"] == "api_key" && stored[0, "connected_by"] == "uploader")

        let calls = try flow.database.connect().query("SELECT sum(calls) AS n FROM vendor_call_count WHERE credential_id = $1 AND scope = 'account'", [String(id)])
        #expect(calls[0, "n"] == "1", "the check's one call counts against the account")
        #expect(try flow.harness.json("POST", "/credentials", ["organization_id": 42, "vendor": "solaredge", "credentials": ["api_key": ""]], token: token).errorCode == "bad_credentials")
        let unknownSite = try flow.harness.json("POST", "/credentials", ["organization_id": 42, "vendor": "solaredge",
                                                                         "credentials": ["api_key": "not-a-key", "site_id": "999999"]], token: token)
        #expect(unknownSite.status == 422 && unknownSite.errorCode == "credentials_refused", "\(unknownSite.body)")
        let wrong = try flow.harness.json("POST", "/credentials", ["organization_id": 42, "vendor": "solaredge", "credentials": ["api_key": "not-a-key"]], token: token)
        #expect(wrong.status == 422 && wrong.errorCode == "credentials_refused")
        let wrongPassword = try flow.harness.json("POST", "/credentials", ["organization_id": 42, "vendor": "goodwe",
                                                                           "credentials": ["account": "demo@example.org", "password": "guess"]], token: token)
        #expect(wrongPassword.status == 422, "\(wrongPassword.body)")
        let goodwe = try flow.harness.json("POST", "/credentials", ["organization_id": 42, "vendor": "goodwe",
                                                                    "credentials": ["account": "demo@example.org", "password": "demo-password"]], token: token)
        #expect(goodwe.status == 201, "\(goodwe.body)")
        #expect(try flow.harness.json("POST", "/credentials", ["organization_id": 42, "vendor": "enphase", "credentials": ["x": "y"]], token: token).status == 422)

        let listed = try flow.harness.json("GET", "/credentials", nil, token: token, query: "organization_id=42")
        let credentials = try #require(listed.json["credentials"] as? [[String: Any]])
        #expect(credentials.count == 2 && credentials[0]["vendor"] as? String == "solaredge" && credentials[0]["sites"] as? Int == 2)
        for secret in ["demo-account-key", "demo-password", "not-a-key", "guess", stored[0, "encrypted_credentials"]!] {
            #expect(!listed.body.contains(secret) && !flow.harness.output.contains(secret), "a secret leaked")
        }

        #expect(try flow.harness.json("DELETE", "/credentials/\(id)", nil, token: TestTokens.user(organizations: [7])).status == 404)
        let deleted = try flow.harness.json("DELETE", "/credentials/\(id)", nil, token: token)
        #expect(deleted.status == 200 && deleted.json["is_active"] as? Bool == false)
        let row = try flow.database.connect().query("SELECT encrypted_credentials, is_active FROM integration_credential WHERE id = $1", [String(id)])
        #expect(row[0, "encrypted_credentials"] == "" && row[0, "is_active"] == "f")
        #expect(try flow.validator.count("SELECT count(*) AS n FROM integration_site WHERE credential_id = \(id) AND is_active") == 0)
    }

    @Test func healthSaysWhatIsDownAndWarnsOfExpiringTokens() throws {
        let flow = try IngestFlow()
        let live = try flow.harness.request("GET", "/health/full")
        #expect(live.status == 200, "\(live.body)")
        let checks = try #require(live.json["checks"] as? [String: Any])
        #expect((checks["database"] as? [String: Any])?["ok"] as? Bool == true && (checks["lake"] as? [String: Any])?["ok"] as? Bool == true)
        #expect((checks["ingestion"] as? [String: Any])?["failure_share_last_24h"] as? Double == 0)
        #expect((checks["ingestion"] as? [String: Any])?["files_last_24h"] == nil, "no counts for anonymous callers")

        // Expiry warnings: an API-key token at 8, 7 and 0 days, an OAuth token left expired.
        let connection = try flow.database.connect()
        for (index, days) in [8.0, 6.9, 0.0].enumerated() {
            try connection.query("""
                INSERT INTO integration_credential (organization_id, data_source_id, auth_type, encrypted_credentials, token_expires_at)
                VALUES (42, 1, 'api_key', 'sealed-\(index)', now() + make_interval(secs => $1::double precision))
                """, [String(days * 86_400)])
        }
        try connection.query("INSERT INTO integration_credential (organization_id, data_source_id, auth_type, encrypted_credentials, token_expires_at) VALUES (42, 3, 'oauth2', 'sealed', now() - interval '2 hours')")
        let health = try flow.harness.json("GET", "/health/credentials", nil, token: token, query: "organization_id=42")
        let listed = try #require(health.json["credentials"] as? [[String: Any]])
        #expect(listed.map { $0["expiring_within_7_days"] as? Bool } == [false, true, true, true])
        #expect(listed.map { ($0["warnings"] as? [String]) ?? [] } == [[], ["expires_within_7_days"], ["expires_within_7_days"], ["token_not_refreshed"]])
        #expect(!health.body.contains("sealed"))

        // The same function with its database down: liveness still answers, the full check says what failed.
        let down = try IngestFlow(databaseURL: "postgresql://postgres@127.0.0.1:1/none?connect_timeout=2")
        #expect(try down.harness.request("GET", "/health").status == 200)
        let degraded = try down.harness.request("GET", "/health/full")
        #expect(degraded.status == 503 && degraded.json["status"] as? String == "degraded")
        let downChecks = try #require(degraded.json["checks"] as? [String: Any])
        #expect((downChecks["database"] as? [String: Any])?["ok"] as? Bool == false && (downChecks["lake"] as? [String: Any])?["ok"] as? Bool == true)
        #expect(!degraded.body.contains("127.0.0.1") && !degraded.body.contains("postgres@"))
        let status = try down.harness.json("GET", "/credentials", nil, token: token, query: "organization_id=42")
        #expect(status.status == 503 && status.errorCode == "database_unavailable")
    }
}
