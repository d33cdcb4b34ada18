// The vendor part of `meterlake local`: demo credentials and sites, then the built fetchers.
import Core
import FoundationEssentials
import Postgres
import Store

#if canImport(Glibc)
import Glibc
#endif

enum VendorDemo {
    /// The fake vendors' demo accounts (Tools/fake_vendors.py); a real account works the same way
    /// with `meterlake credential add` (docs/fetchers.md).
    static let credentials: [(vendor: SourceSystem, plaintext: String)] = [
        (.solarEdge, #"{"api_key": "demo-account-key"}"#),
        (.goodWe, #"{"account": "demo@example.org", "password": "demo-password"}"#),
        // OAuth tokens as the connect flow stores them; the Enphase one has expired, so the run refreshes it.
        (.enphase, #"{"access_token": "demo-enphase-access", "refresh_token": "demo-enphase-refresh", "expires_at": "2020-01-01T00:00:00Z"}"#),
        (.sma, #"{"access_token": "demo-sma-access", "refresh_token": "demo-sma-refresh", "expires_at": "2100-01-01T00:00:00Z"}"#),
    ]
    static let goodWePlant = "6a1e8c2f-0000-4000-8000-000000000001"

    /// Registers the demo credentials once, runs each fetcher on a scheduled event, and returns
    /// the objects they wrote with a summary of the run.
    static func run(connection: PostgresConnection, environment: Environment, directory: String) throws -> (keys: [String], summary: String) {
        let integrations = Integrations(connection: connection)
        let keys = try EnvelopeKeys(environment: environment)
        // Only the vendors whose cloud the environment names (Tools/local.sh names all four fakes).
        let named: [SourceSystem: String] = [.solarEdge: "SOLAREDGE_API_BASE_URL", .goodWe: "GOODWE_API_BASE_URL",
                                             .enphase: "ENPHASE_API_BASE_URL", .sma: "SMA_API_BASE_URL"]
        let vendors = credentials.map(\.vendor).filter { environment[named[$0]!] != nil }
        for (vendor, plaintext) in credentials where vendors.contains(vendor) {
            guard try integrations.activeCredentials(organizationID: 42, vendor: vendor).isEmpty else { continue }
            let oauth = vendor == .enphase || vendor == .sma
            let id = try integrations.addCredential(organizationID: 42, vendor: vendor, authType: oauth ? "oauth2" : "api_key",
                                                    envelope: try CredentialEnvelope.seal(Array(plaintext.utf8), keys: keys))
            // GoodWe names no zone: its plant is registered by hand, as an operator would.
            if vendor == .goodWe {
                _ = try integrations.upsertSite(organizationID: 42, vendor: .goodWe, credentialID: id, externalSiteID: goodWePlant,
                                                timeZone: "Europe/Berlin")
            }
        }
        let scratch = LocalRun.makeTemporaryDirectory()
        let event = scratch + "/scheduled.json"
        _ = FileIO.write(Array(#"{"detail-type":"Scheduled Event","source":"aws.events","detail":{}}"#.utf8), to: event)
        var written: [String] = []
        var out = "vendor clouds (SolarEdge, GoodWe, Enphase, SMA at \(environment["SOLAREDGE_API_BASE_URL"] ?? "-")…):\n"
        out += LocalRun.pad("fetcher", 19) + LocalRun.pad("site", 38) + LocalRun.pad("status", 14) + "window, objects\n"
        for fetcher in vendors.map({ "fetcher-" + $0.rawValue }) {
            let binary = directory + "/" + fetcher
            guard access(binary, X_OK) == 0 else { throw Failure.refused("no \(fetcher) binary at \(binary): swift build --product \(fetcher)") }
            let status = try Spawn.run(binary, ["--event", event], standardOutput: scratch + "/\(fetcher).json", standardError: scratch + "/\(fetcher).log")
            let body = FileIO.readAll(scratch + "/\(fetcher).json") ?? []
            guard status == 0, let response = try? JSONParser.parse(body), case .array(let sites)? = response["sites"] else {
                throw Failure.refused("\(fetcher) failed:\n" + String(decoding: body, as: UTF8.self)
                    + String(decoding: FileIO.readAll(scratch + "/\(fetcher).log") ?? [], as: UTF8.self))
            }
            for site in sites {
                func text(_ name: String) -> String { if case .string(let value)? = site[name] { value } else { "-" } }
                var objects: [String] = []
                if case .array(let keys)? = site["objects"] { objects = keys.compactMap { if case .string(let key) = $0 { key } else { nil } } }
                written += objects
                let window = site["window"].map { "\(($0["start"]).map(\.serialized) ?? "")…\(($0["end"]).map(\.serialized) ?? "")" } ?? ""
                out += LocalRun.pad(fetcher, 19) + LocalRun.pad(text("external_site_id"), 38) + LocalRun.pad(text("status"), 14)
                    + window.replacing("\"", with: "") + ", \(objects.count) object\(objects.count == 1 ? "" : "s")"
                    + (text("error") == "-" ? "" : " (\(text("error")))") + "\n"
            }
        }
        return (written, out + "\n")
    }
}
