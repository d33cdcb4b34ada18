import Core
import Lake
import LambdaRuntime
import Store
import Validation
import Cryptography
import Foundation
import Testing
import TestSupport

/// The built `meterlake` operator command, as an operator runs it.
@Suite struct MeterlakeCommandTests {
    let binary: String
    let key = Base64.encode(SecureRandom.bytes(32))
    let secret = "an operator's state secret, thirty-two bytes or more"

    init() throws { binary = try BuiltBinary.path("meterlake") }

    func run(_ arguments: [String], input: String = "", environment: [String: String]) throws -> (status: Int32, out: String, err: String) {
        let process = try ChildProcess(binary, arguments: arguments, environment: environment, input: Array(input.utf8))
        let status = try process.waitForExit()
        return (status, process.standardOutput, process.standardError)
    }

    @Test func sealsAndOpensAcrossAKeyRotation() throws {
        let credential = #"{"api_key":"L4QLVQ1LOKCQX2193VSEICXW61NP6B1O"}"#
        let sealed = try run(["seal"], input: credential + "\n", environment: ["METERLAKE_ENCRYPTION_KEY": key])
        #expect(sealed.status == 0)
        let envelope = sealed.out.trimmingCharacters(in: .newlines)
        #expect(!sealed.out.contains("L4QLVQ"))
        // The trailing newline of `echo` was dropped: the envelope holds exactly the credential.
        #expect(try CredentialEnvelope.open(envelope, keys: try EnvelopeKeys(current: Base64.decode(key)!)) == Array(credential.utf8))

        let opened = try run(["open"], input: sealed.out, environment: ["METERLAKE_ENCRYPTION_KEY": key])
        #expect(opened.status == 0)
        #expect(opened.out == credential + "\n")

        let newKey = Base64.encode(SecureRandom.bytes(32))
        let rotated = try run(["open"], input: envelope, environment: ["METERLAKE_ENCRYPTION_KEY": newKey, "METERLAKE_ENCRYPTION_KEY_PREVIOUS": key])
        #expect(rotated.out == credential + "\n")

        let raw = try run(["seal", "--raw"], input: "x\n", environment: ["METERLAKE_ENCRYPTION_KEY": key])
        #expect(try CredentialEnvelope.open(raw.out.trimmingCharacters(in: .newlines), keys: try EnvelopeKeys(current: Base64.decode(key)!)) == Array("x\n".utf8))
    }

    @Test func refusesWithAClearMessageAndExitOne() throws {
        let sealed = try run(["seal"], input: "secret-token", environment: ["METERLAKE_ENCRYPTION_KEY": key])
        let wrong = try run(["open"], input: sealed.out, environment: ["METERLAKE_ENCRYPTION_KEY": Base64.encode(SecureRandom.bytes(32))])
        #expect(wrong.status == 1)
        #expect(wrong.err == "meterlake: the credential envelope does not open with the configured keys (wrong key or altered data)\n")
        #expect(wrong.out.isEmpty)
        let garbage = try run(["open"], input: "not an envelope", environment: ["METERLAKE_ENCRYPTION_KEY": key])
        #expect(garbage.status == 1)
        #expect(garbage.err.contains("malformed"))
        let unset = try run(["seal"], input: "x", environment: [:])
        #expect(unset.status == 1)
        #expect(unset.err == "meterlake: configuration METERLAKE_ENCRYPTION_KEY is not set\n")
        let usage = try run(["sael"], environment: [:])
        #expect(usage.status == 2)
        #expect(usage.err.contains("unknown command 'sael'") && usage.err.contains("usage: meterlake"))
    }

    @Test func issuesAndVerifiesOAuthState() throws {
        let environment = ["METERLAKE_STATE_SECRET": secret]
        let issued = try run(["state", "issue", "--org", "42", "--vendor", "solaredge"], environment: environment)
        #expect(issued.status == 0)
        let state = issued.out.trimmingCharacters(in: .newlines)
        let verified = try run(["state", "verify", "--vendor", "solaredge", state], environment: environment)
        #expect(verified.status == 0)
        let payload = try JSONSerialization.jsonObject(with: Data(verified.out.utf8)) as? [String: Any]
        #expect(payload?["organization_id"] as? Int == 42)
        #expect(payload?["vendor"] as? String == "solaredge")
        let now = Int(Date().timeIntervalSince1970)
        #expect(abs((payload?["issued_at"] as? Int ?? 0) - now) < 30)

        let wrongVendor = try run(["state", "verify", "--vendor", "goodwe", state], environment: environment)
        #expect(wrongVendor.status == 1)
        #expect(wrongVendor.err == "meterlake: the OAuth state is for vendor solaredge, not goodwe\n")
        let otherSecret = try run(["state", "verify", "--vendor", "solaredge", state], environment: ["METERLAKE_STATE_SECRET": secret + "!"])
        #expect(otherSecret.err == "meterlake: the OAuth state signature does not verify\n")
        let badOrg = try run(["state", "issue", "--org", "x", "--vendor", "sma"], environment: environment)
        #expect(badOrg.status == 2)
    }

    @Test func migratesAndMaintainsPartitionsOfTheDatabaseItIsGiven() throws {
        let database = try TestDatabase(migrated: false)
        let first = try run(["migrate"], environment: ["DATABASE_URL": database.url])
        #expect(first.status == 0)
        #expect(first.out == "applied migrations \(Migration.all.map { String($0.version) }.joined(separator: ", "))\n")
        let again = try run(["migrate"], environment: ["DATABASE_URL": database.url])
        #expect(again.out == "database up to date (\(Migration.all.count) migrations)\n")
        let partitions = try run(["partitions"], environment: ["DATABASE_URL": database.url])
        #expect(partitions.status == 0)
        let count = try database.connect().query("SELECT count(*) AS n FROM pg_inherits WHERE inhparent = 'meter_reading'::regclass")
        #expect(count[0, "n"] == "3")
        #expect(partitions.out.hasPrefix("created: meter_reading_y"))
        let unset = try run(["migrate"], environment: [:])
        #expect(unset.status == 1)
        #expect(unset.err == "meterlake: configuration DATABASE_URL is not set\n")
    }

    @Test func localRunsTheMainJobOnALocalLake() throws {
        let database = try TestDatabase(migrated: false)
        let vendors = try FakeVendors()
        let lake = FileManager.default.temporaryDirectory.appendingPathComponent("lake-\(UUID().uuidString)").path
        let samples = Fixture.repository.appendingPathComponent("docs/samples").path
        let run = try run(["local", "--lake", lake, "--validator", try BuiltBinary.path("validator"), "--samples", samples,
                           "--fetchers", BuiltBinary.directory.path],
                          environment: vendors.environment.merging(["DATABASE_URL": database.url, "METERLAKE_ENCRYPTION_KEY": key]) { $1 })
        #expect(run.status == 0, "\(run.err)")
        // The fetchers ran first, against the fake vendor clouds.
        #expect(run.out.contains("fetcher-solaredge  3017452                               success"))
        #expect(run.out.contains("fetcher-solaredge  3017453                               success"))
        #expect(run.out.contains("fetcher-goodwe     6a1e8c2f-0000-4000-8000-000000000001  success"))
        #expect(run.out.contains("fetcher-enphase    4123456                               success"))
        #expect(run.out.contains("fetcher-sma        8731046                               success"))
        #expect(run.out.contains("partly bad.csv                           validated    40    39      1"))
        #expect(run.out.contains("mostly bad.csv                           quarantined  20    0       5"))
        #expect(run.out.contains("data_0_0_0.snappy.parquet                validated    4     4       0"))
        #expect(run.out.contains("quarantined broken.csv: the file is structurally broken"))
        #expect(run.out.contains("ingestion_log: quarantined 2, validated 10"))
        let store = try LocalObjectStore(directory: lake)
        #expect(try store.list(prefix: "raw/").isEmpty)
        #expect(try store.list(prefix: "validated/").count == 11, "10 files and one rejects report")
        #expect(try store.list(prefix: "validated/").filter { $0.key.contains("/solaredge/42/") }.count == 2)
        #expect(try store.list(prefix: "quarantine/").count == 4, "2 files and their reports")
        // The vendors' demo credentials are stored sealed, and never printed.
        #expect(!run.out.contains("demo-password") && !run.out.contains("demo-account-key"))
        let sealed = try database.connect().query("SELECT count(*) AS n FROM integration_credential WHERE encrypted_credentials NOT LIKE '%demo%'")
        #expect(sealed[0, "n"] == "4")
        #expect(!run.out.contains("demo-enphase-refresh") && !run.out.contains("demo-sma-secret"))
    }

    /// Only the vendor clouds the environment names are fetched from.
    @Test func localFetchesOnlyTheVendorsItIsPointedAt() throws {
        let database = try TestDatabase(migrated: false)
        let vendors = try FakeVendors()
        let lake = FileManager.default.temporaryDirectory.appendingPathComponent("lake-\(UUID().uuidString)").path
        let run = try run(["local", "--lake", lake, "--validator", try BuiltBinary.path("validator"), "--samples",
                           Fixture.repository.appendingPathComponent("docs/samples").path, "--fetchers", BuiltBinary.directory.path],
                          environment: ["DATABASE_URL": database.url, "METERLAKE_ENCRYPTION_KEY": key, "SOLAREDGE_API_BASE_URL": vendors.solarEdgeURL])
        #expect(run.status == 0, "\(run.err)")
        #expect(run.out.contains("fetcher-solaredge  3017452") && !run.out.contains("fetcher-goodwe") && !run.out.contains("fetcher-enphase"))
        #expect(try database.connect().query("SELECT count(*) AS n FROM integration_credential")[0, "n"] == "1")
    }

    @Test func localRunsTheValidatorWithoutAShellWhateverItsPath() throws {
        let database = try TestDatabase(migrated: false)
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("spawn-\(UUID().uuidString)").path
        let marker = base + "/PWNED"
        // A path that a shell would split into three commands, the middle one creating the marker.
        let hostile = base + "/x';touch \(marker);'"
        try FileManager.default.createDirectory(atPath: hostile, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: base) }
        try FileManager.default.copyItem(atPath: try BuiltBinary.path("validator"), toPath: hostile + "/validator")
        let run = try run(["local", "--lake", base + "/lake", "--validator", hostile + "/validator",
                           "--samples", Fixture.repository.appendingPathComponent("docs/samples").path],
                          environment: ["DATABASE_URL": database.url])
        #expect(!FileManager.default.fileExists(atPath: marker), "a shell ran the path")
        #expect(run.status == 0, "\(run.err)")
        #expect(run.out.contains("ingestion_log: quarantined 2, validated 5"), "\(run.out)")
    }

    @Test func aBadDatabaseURLIsRefusedWithoutQuotingThePassword() throws {
        for url in ["postgresql://meter:S3cr%t!pw@db.example.com/meterlake", "postgresql://meter:S3cr3t@db.example.com/meterlake"] {
            let run = try run(["migrate"], environment: ["DATABASE_URL": url])
            #expect(run.status == 1)
            #expect(run.err.contains("DATABASE_URL"), "\(run.err)")
            #expect(!run.err.contains("S3cr") && !run.out.contains("S3cr"), "\(run.err)")
        }
    }

    /// `credential add` checks and seals what it stores; `site add` registers a site under the
    /// organisation's one credential, refuses unknown zones and ambiguous credentials.
    @Test func addsCredentialsAndSites() throws {
        let database = try TestDatabase()
        let environment = ["DATABASE_URL": database.url, "METERLAKE_ENCRYPTION_KEY": key]
        let added = try run(["credential", "add", "--org", "42", "--vendor", "goodwe"],
                            input: #"{"account": "me@example.org", "password": "pw-9f8e7d"}"#, environment: environment)
        #expect(added.status == 0 && added.out == "1\n", "\(added.err)")
        let stored = try database.connect().query("SELECT auth_type, encrypted_credentials, is_active FROM integration_credential")
        #expect(stored[0, "auth_type"] == "api_key" && stored[0, "is_active"] == "t")
        #expect(try CredentialEnvelope.open(stored[0, "encrypted_credentials"]!, keys: try EnvelopeKeys(current: Base64.decode(key)!))
            == Array(#"{"account": "me@example.org", "password": "pw-9f8e7d"}"#.utf8))
        #expect(!stored[0, "encrypted_credentials"]!.contains("pw-9f8e7d"))

        let missing = try run(["credential", "add", "--org", "42", "--vendor", "goodwe"], input: #"{"account": "me@example.org"}"#,
                              environment: environment)
        #expect(missing.status == 1)
        #expect(missing.err.contains("a goodwe credential needs password as strings"))
        let noOrg = try run(["credential", "add", "--org", "999", "--vendor", "solaredge"], input: #"{"api_key": "k-123456"}"#,
                            environment: environment)
        #expect(noOrg.status == 1 && noOrg.err == "meterlake: organisation 999 does not exist\n")

        let site = try run(["site", "add", "--org", "42", "--vendor", "goodwe", "--site", "plant-1", "--time-zone", "Europe/Vienna"],
                           environment: environment)
        #expect(site.status == 0, "\(site.err)")
        let again = try run(["site", "add", "--org", "42", "--vendor", "goodwe", "--site", "plant-1", "--time-zone", "Europe/Berlin"],
                            environment: environment)
        #expect(again.out == site.out)
        let sites = try database.connect().query("SELECT external_site_id, time_zone, credential_id, is_active FROM integration_site")
        #expect(sites.count == 1 && sites[0, "time_zone"] == "Europe/Berlin" && sites[0, "credential_id"] == "1" && sites[0, "is_active"] == "t")

        let noZone = try run(["site", "add", "--org", "42", "--vendor", "goodwe", "--site", "p2"], environment: environment)
        #expect(noZone.status == 1 && noZone.err.contains("a new site needs --time-zone Area/City"))
        let keepsZone = try run(["site", "add", "--org", "42", "--vendor", "goodwe", "--site", "plant-1"], environment: environment)
        #expect(keepsZone.status == 0, "an existing site keeps the zone an operator gave it")
        try database.connect().query("UPDATE integration_site SET time_zone_source = 'inferred'")
        let inferred = try run(["site", "add", "--org", "42", "--vendor", "goodwe", "--site", "plant-1"], environment: environment)
        #expect(inferred.status == 1 && inferred.err.contains("site plant-1's zone is inferred: give it with --time-zone Area/City"))
        let badZone = try run(["site", "add", "--org", "42", "--vendor", "goodwe", "--site", "p2", "--time-zone", "Mars/Base"],
                              environment: environment)
        #expect(badZone.status == 1 && badZone.err.contains("unknown time zone \"Mars/Base\""))
        let noCredential = try run(["site", "add", "--org", "42", "--vendor", "solaredge", "--site", "1", "--time-zone", "UTC"], environment: environment)
        #expect(noCredential.status == 1 && noCredential.err.contains("has no active solaredge credential"))
        _ = try run(["credential", "add", "--org", "42", "--vendor", "goodwe"], input: #"{"account": "b", "password": "c-123456"}"#,
                    environment: environment)
        let ambiguous = try run(["site", "add", "--org", "42", "--vendor", "goodwe", "--site", "p3", "--time-zone", "UTC"], environment: environment)
        #expect(ambiguous.status == 1 && ambiguous.err.contains("has 2 active goodwe credentials (1, 2): choose one with --credential ID"))
        let chosen = try run(["site", "add", "--org", "42", "--vendor", "goodwe", "--site", "p3", "--credential", "2", "--time-zone", "UTC"],
                             environment: environment)
        #expect(chosen.status == 0)
    }
}
