// meterlake credential add / site add: register what the fetchers read.
import Core
import Postgres
import Store

enum IntegrationCommands {
    /// The members each vendor's stored credential must have (interfaces.md).
    static let required: [SourceSystem: (authType: String, members: [String])] = [
        .solarEdge: ("api_key", ["api_key"]),
        .goodWe: ("api_key", ["account", "password"]),
        .enphase: ("oauth2", ["access_token", "refresh_token", "expires_at"]),
        .sma: ("oauth2", ["access_token", "refresh_token", "expires_at"]),
    ]

    static func vendor(_ name: String?) throws(Failure) -> SourceSystem {
        guard let name, let vendor = SourceSystem(rawValue: name), required[vendor] != nil else {
            throw .usage("--vendor must be one of enphase, goodwe, sma, solaredge")
        }
        return vendor
    }

    static func organization(_ text: String?) throws(Failure) -> Int64 {
        guard let text, let id = Int64(text), id > 0 else { throw .usage("--org needs a positive integer") }
        return id
    }

    /// `credential rekey [--batch N]`: every credential re-sealed under METERLAKE_ENCRYPTION_KEY.
    static func rekey(_ arguments: ArraySlice<String>, environment: Environment) throws(Failure) -> String {
        let parsed = try options(arguments, allowed: ["batch"])
        guard parsed.positional.isEmpty else { throw .usage("credential rekey takes only --batch N") }
        let batch = parsed.named["batch"].flatMap { Int($0) } ?? 100
        guard (1...10_000).contains(batch) else { throw .usage("--batch needs 1…10000") }
        do {
            let keys = try EnvelopeKeys(environment: environment)
            guard keys.previous != nil else {
                throw Failure.usage("set METERLAKE_ENCRYPTION_KEY_PREVIOUS to the key being retired (and METERLAKE_ENCRYPTION_KEY to the new one)")
            }
            let summary = try CredentialRekey(connection: try DatabaseSettings(environment: environment).connect(), keys: keys).run(batchSize: batch)
            var out = "re-sealed \(summary.resealed), already under the current key \(summary.alreadyCurrent)"
            if !summary.unopenable.isEmpty { out += ", opening with neither key: \(summary.unopenable.map(String.init).joined(separator: ", "))" }
            if !summary.busy.isEmpty { out += ", busy (a refresh held them; run again): \(summary.busy.map(String.init).joined(separator: ", "))" }
            out += "\nstill under the previous key: \(summary.remainingUnderPrevious)"
            // Rows neither key opens cannot be helped by either key: they do not hold the retirement up.
            out += summary.remainingUnderPrevious == 0 && summary.busy.isEmpty
                ? " — the previous key can be retired once the longest function timeout and the 10-minute OAuth completion window have passed (remove METERLAKE_ENCRYPTION_KEY_PREVIOUS everywhere)"
                : " — run again before retiring the previous key"
            return out
        } catch let failure as Failure {
            throw failure
        } catch {
            throw .refused("\(error)")
        }
    }

    static func connect(_ environment: Environment, organizationID: Int64) throws(Failure) -> PostgresConnection {
        do {
            let connection = try DatabaseSettings(environment: environment).connect()
            guard try connection.query("SELECT 1 FROM organization WHERE id = $1", [String(organizationID)]).count == 1 else {
                throw Failure.refused("organisation \(organizationID) does not exist")
            }
            return connection
        } catch let failure as Failure {
            throw failure
        } catch {
            throw .refused("\(error)")
        }
    }

    /// `credential add --org N --vendor V`: the plaintext JSON on stdin, checked, sealed, stored.
    static func credential(_ arguments: ArraySlice<String>, environment: Environment) throws(Failure) -> String {
        if arguments.first == "rekey" { return try rekey(arguments.dropFirst(), environment: environment) }
        guard arguments.first == "add" else { throw .usage("credential needs 'add' or 'rekey'") }
        let parsed = try options(arguments.dropFirst(), allowed: ["org", "vendor"])
        guard parsed.positional.isEmpty else { throw .usage("credential add takes the credential on stdin, not as an argument") }
        let organizationID = try organization(parsed.named["org"])
        let vendor = try vendor(parsed.named["vendor"])
        let plaintext = try standardInput()
        guard let value = try? JSONParser.parse(plaintext), case .object(let members) = value else {
            throw .refused("the credential on stdin must be a JSON object, e.g. \(example(vendor))")
        }
        let (authType, needed) = required[vendor]!
        let missing = needed.filter { name in
            guard case .string(let text)? = members.first(where: { $0.key == name })?.value else { return true }
            return text.isEmpty
        }
        guard missing.isEmpty else {
            throw .refused("a \(vendor.rawValue) credential needs \(missing.joined(separator: ", ")) as strings, e.g. \(example(vendor))")
        }
        var expiresAt: Int64?
        if case .string(let text)? = value["expires_at"] {
            guard case .zoned(let seconds) = ISO8601.parse(text) else { throw .refused("expires_at must be an ISO-8601 instant with a zone") }
            expiresAt = seconds
        }
        let connection = try connect(environment, organizationID: organizationID)
        do {
            let envelope = try CredentialEnvelope.seal(plaintext, keys: try EnvelopeKeys(environment: environment))
            let id = try Integrations(connection: connection).addCredential(
                organizationID: organizationID, vendor: vendor, authType: authType, envelope: envelope, tokenExpiresAt: expiresAt)
            return String(id)
        } catch {
            throw .refused("\(error)")
        }
    }

    /// `site add --org N --vendor V --site EXT [--time-zone ZONE] [--credential ID]`; the zone may be
    /// left out only for a site whose zone the vendor or an operator gave before.
    static func site(_ arguments: ArraySlice<String>, environment: Environment) throws(Failure) -> String {
        guard arguments.first == "add" else { throw .usage("site needs 'add'") }
        let parsed = try options(arguments.dropFirst(), allowed: ["org", "vendor", "site", "time-zone", "credential"])
        guard parsed.positional.isEmpty else { throw .usage("site add takes only options") }
        let organizationID = try organization(parsed.named["org"])
        let vendor = try vendor(parsed.named["vendor"])
        guard let site = parsed.named["site"], !site.isEmpty, site.utf8.count <= 200, !site.contains(where: { $0.isNewline }) else {
            throw .usage("site add needs --site EXT (the vendor's site id)")
        }
        let zone = parsed.named["time-zone"]
        if let zone {
            do { _ = try ZoneDatabase.standard(environment: environment).rules(zone) } catch { throw .refused("--time-zone: \(error)") }
        }
        let connection = try connect(environment, organizationID: organizationID)
        let integrations = Integrations(connection: connection)
        do {
            let credentialID: Int64
            if let given = parsed.named["credential"] {
                guard let id = Int64(given), let credential = try integrations.credential(id: id),
                    credential.organizationID == organizationID, credential.vendor == vendor
                else { throw Failure.refused("credential \(given) is not a \(vendor.rawValue) credential of organisation \(organizationID)") }
                credentialID = credential.id
            } else {
                let active = try integrations.activeCredentials(organizationID: organizationID, vendor: vendor)
                guard active.count == 1 else {
                    throw Failure.refused(active.isEmpty
                        ? "organisation \(organizationID) has no active \(vendor.rawValue) credential: add one with meterlake credential add"
                        : "organisation \(organizationID) has \(active.count) active \(vendor.rawValue) credentials (\(active.map { String($0.id) }.joined(separator: ", "))): choose one with --credential ID")
                }
                credentialID = active[0].id
            }
            // Vendors report local wall time: a site is never fetched on a zone nobody chose.
            if zone == nil {
                let existing = try integrations.site(organizationID: organizationID, vendor: vendor, externalSiteID: site)
                guard let existing, existing.timeZoneSource == "vendor" || existing.timeZoneSource == "configured" else {
                    throw Failure.refused(existing == nil
                        ? "a new site needs --time-zone Area/City (its IANA zone: vendors report local wall time)"
                        : "site \(site)'s zone is \(existing!.timeZoneSource): give it with --time-zone Area/City")
                }
            }
            let id = try integrations.upsertSite(organizationID: organizationID, vendor: vendor, credentialID: credentialID,
                                                 externalSiteID: site, timeZone: zone)
            return String(id)
        } catch let failure as Failure {
            throw failure
        } catch {
            throw .refused("\(error)")
        }
    }

    static func example(_ vendor: SourceSystem) -> String {
        switch vendor {
        case .solarEdge: #"{"api_key": "…"}"#
        case .goodWe: #"{"account": "…", "password": "…"}"#
        default: #"{"access_token": "…", "refresh_token": "…", "expires_at": "2026-01-01T00:00:00Z"}"#
        }
    }
}
