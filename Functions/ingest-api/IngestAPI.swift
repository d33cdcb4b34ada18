import Core
import Cryptography
import Fetching
import Lake
import LambdaRuntime
import Logging
import Postgres
import Store
import Validation
import Vendors
import WebAPI

#if canImport(Glibc)
import Glibc
#endif

/// The ingest API: manual uploads (presigned PUTs into `raw/manual/`), their status, status by
/// content hash (Snowflake unloads), dry-run validation, API-key credentials, and health — one
/// function behind a function URL (docs/ingest-api.md).
struct IngestAPI {
    let verifier: JWTVerifier
    let database: DatabaseSettings
    let keys: EnvelopeKeys
    let store: any ObjectStore
    let validator: ValidatorConfiguration
    let zones: ZoneDatabase
    let caBundlePath: String?
    let frontendOrigin: String?
    /// The API-key vendors whose credentials can be pasted.
    let drivers: [SourceSystem: any VendorDriver]
    /// The largest upload presigned (bytes).
    let maximumUploadBytes: Int64
    /// How long a presigned upload URL lives (seconds).
    let uploadURLLifetime: Int
    let clock: @Sendable () -> Int64
    /// One database connection kept for the life of the environment (requests are served one at a time).
    let connections: ConnectionKeeper
    /// `/health/full` answers from the last check for 15 s: an anonymous flood costs no database work.
    let healthCache = HealthCache(seconds: 15)

    static let maximumDryRunBytes = 6 * 1024 * 1024
    static let maximumJSONBytes = 64 * 1024
    static let allowedExtensions = [".csv", ".json", ".ndjson", ".parquet", ".csv.gz", ".json.gz", ".ndjson.gz"]

    init(environment: Environment) throws {
        verifier = try JWTVerifier(environment: environment)
        database = try DatabaseSettings(environment: environment)
        keys = try EnvelopeKeys(environment: environment)
        store = try ObjectStores.make(environment: environment)
        validator = try ValidatorConfiguration(environment: environment)
        zones = ZoneDatabase.standard(environment: environment)
        caBundlePath = S3Configuration.caBundle(environment: environment)
        frontendOrigin = environment["METERLAKE_FRONTEND_ORIGIN"]
        drivers = [
            .solarEdge: SolarEdgeDriver(baseURL: try environment.url("SOLAREDGE_API_BASE_URL", default: "https://monitoringapi.solaredge.com/")),
            .goodWe: GoodWeDriver(baseURL: try environment.url("GOODWE_API_BASE_URL", default: "https://www.semsportal.com/api/")),
        ]
        let maximum = try environment.get("METERLAKE_UPLOAD_MAX_BYTES", as: Int64.self) ?? 5 * 1024 * 1024 * 1024
        guard (1...(5 * 1024 * 1024 * 1024)).contains(maximum) else {
            throw ConfigurationError.invalid(name: "METERLAKE_UPLOAD_MAX_BYTES", reason: "must be 1 byte to 5 GiB (S3's largest single PUT)")
        }
        maximumUploadBytes = maximum
        let lifetime = try environment.get("METERLAKE_UPLOAD_URL_SECONDS", as: Int.self) ?? 900
        guard (60...3600).contains(lifetime) else {
            throw ConfigurationError.invalid(name: "METERLAKE_UPLOAD_URL_SECONDS", reason: "must be 60…3600")
        }
        uploadURLLifetime = lifetime
        clock = WallClock.milliseconds
        connections = ConnectionKeeper(database: database)
    }

    /// The validator's checks with limits for a request, not a landed file: at most 64 MiB
    /// decompressed (a 6 MB body at most ~10×), Parquet pages and chunks sized for a 512 MB function.
    var dryRunConfiguration: ValidatorConfiguration {
        var configuration = validator
        configuration.limits.maximumDecompressedBytes = 64 * 1024 * 1024
        configuration.limits.maximumDocumentBytes = 64 * 1024 * 1024
        configuration.limits.parquet.maximumPageBytes = 16 * 1024 * 1024
        configuration.limits.parquet.maximumChunkBytes = 64 * 1024 * 1024
        configuration.maximumReportedViolations = 200
        return configuration
    }

    var function: WebFunction {
        WebFunction(name: "ingest-api", routes: [
            Route("POST", "/uploads", createUpload),
            Route("GET", "/uploads/status", uploadStatus),
            Route("GET", "/ingestions", ingestions),
            Route("POST", "/validate", dryRun),
            Route("POST", "/credentials", addCredential),
            Route("GET", "/credentials", listCredentials),
            Route("DELETE", "/credentials/{id}", deleteCredential),
            Route("GET", "/health", { _ in .json(.object([JSONMember("status", .string("ok"))])) }),
            Route("GET", "/health/full", fullHealth),
            Route("GET", "/health/credentials", credentialHealth),
        ], allowedOrigin: frontendOrigin, verifier: verifier, maximumBodyBytes: Self.maximumDryRunBytes, clock: clock)
    }

    // MARK: Helpers

    func connection() throws -> PostgresConnection {
        do { return try connections.connection() } catch {
            throw APIError(status: 503, code: "database_unavailable", message: "the database cannot be reached; try again shortly")
        }
    }

    /// A small JSON body (the upload's own bytes go to S3, not here).
    func smallJSON(_ context: RouteContext) throws -> JSONValue {
        guard context.request.body.count <= Self.maximumJSONBytes else {
            throw APIError(status: 413, code: "body_too_large", message: "a JSON body may be at most \(Self.maximumJSONBytes) bytes")
        }
        return try context.request.jsonBody()
    }

    /// A positive organisation id from a body member or query parameter, granted by the token.
    func organization(_ value: String?, context: RouteContext, user: VerifiedToken) throws -> Int64 {
        guard let text = value, !text.isEmpty else { throw APIError.badRequest("organization_id is required", code: "missing_parameter") }
        guard text.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }), let id = Int64(text), id > 0 else {
            throw APIError.badRequest("organization_id must be a positive integer")
        }
        return try context.organization(id, of: user)
    }

    static func time(_ seconds: Int64?) -> JSONValue {
        seconds.map { .string(Timestamp.rfc3339(seconds: $0, nanoseconds: 0, zoned: true)) } ?? .null
    }

    // MARK: POST /uploads

    /// A file name made safe for a key: its last path segment, with every character outside
    /// `A-Z a-z 0-9 . _ -` replaced by `_`, no leading dots, at most 120 bytes (the extension kept).
    static func sanitize(fileName: String) throws -> (name: String, extension: String) {
        let lastSegment = fileName.split(whereSeparator: { $0 == "/" || $0 == "\\" }).last.map(String.init) ?? ""
        guard !lastSegment.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) else {
            throw APIError(status: 422, code: "bad_file_name", message: "the file name contains control characters")
        }
        let lowered = lastSegment.lowercased()
        guard let ext = allowedExtensions.filter({ lowered.hasSuffix($0) }).max(by: { $0.count < $1.count }) else {
            throw APIError(status: 422, code: "bad_file_name",
                           message: "the file name must end in one of \(allowedExtensions.joined(separator: " ")) (got \(String(lastSegment.suffix(20)).debugDescription))")
        }
        var stem = String(lastSegment.unicodeScalars.dropLast(ext.unicodeScalars.count).map { scalar -> Character in
            let allowed = (scalar >= "A" && scalar <= "Z") || (scalar >= "a" && scalar <= "z") || (scalar >= "0" && scalar <= "9") || scalar == "_" || scalar == "-" || scalar == "."
            return allowed ? Character(scalar) : "_"
        })
        while stem.hasPrefix(".") { stem.removeFirst() }
        while stem.contains("..") { stem = stem.replacing("..", with: "_") }
        if stem.isEmpty { stem = "upload" }
        return (String(stem.prefix(120 - ext.count)) + ext, ext)
    }

    func createUpload(_ context: RouteContext) throws -> WebResponse {
        let user = try context.user()
        let body = try smallJSON(context)
        let organizationID = try organization(body["organization_id"]?.text, context: context, user: user)
        guard case .string(let fileName)? = body["file_name"], !fileName.isEmpty, fileName.utf8.count <= 1024 else {
            throw APIError.badRequest("file_name is required (a string of at most 1024 bytes)", code: "missing_parameter")
        }
        guard let sizeText = body["size"]?.text, let size = Int64(sizeText) else {
            throw APIError.badRequest("size is required: the file's exact size in bytes", code: "missing_parameter")
        }
        guard size > 0 else { throw APIError(status: 422, code: "empty_file", message: "an empty file holds no readings") }
        guard size <= maximumUploadBytes else {
            throw APIError(status: 413, code: "file_too_large", message: "the file is \(size) bytes; the largest upload is \(maximumUploadBytes)")
        }
        let (name, _) = try Self.sanitize(fileName: fileName)
        let now = clock() / 1000
        let id = Hex.encode(SecureRandom.bytes(8))
        let key = "raw/manual/\(organizationID)/\(Timestamp.day(epochSeconds: now))/\(id)_\(name)"
        // Signed headers the client must send as they are: the size, and create-only (S3 refuses a
        // second PUT to the key, so a used URL cannot replace the file).
        let signed = [("content-length", String(size)), ("if-none-match", "*")]
        let url = try store.presignedURL(method: "PUT", key: key, expires: uploadURLLifetime, now: now, headers: signed)
        context.lambda.logger.info("upload presigned", metadata: [
            "organizationId": .stringConvertible(organizationID), "key": .string(key), "size": .stringConvertible(size),
        ])
        return .json(.object([
            JSONMember("key", .string(key)), JSONMember("upload_url", .string(url)), JSONMember("method", .string("PUT")),
            JSONMember("headers", .object(signed.map { JSONMember($0.0, .string($0.1)) })),
            JSONMember("expires_at", Self.time(now + Int64(uploadURLLifetime))),
        ]), status: 201)
    }

    // MARK: GET /uploads/status, GET /ingestions

    func uploadStatus(_ context: RouteContext) throws -> WebResponse {
        let user = try context.user()
        let key = try context.request.parameter("key")
        let lakeKey: LakeKey
        do { lakeKey = try LakeKey(key) } catch {
            throw APIError.badRequest("key is not an upload key: \(error)", code: "bad_key")
        }
        guard lakeKey.source == .manual || lakeKey.source == .snowflake else {
            throw APIError.badRequest("status is kept for uploads: keys under raw/manual/ and raw/snowflake/", code: "bad_key")
        }
        _ = try context.organization(lakeKey.organizationID, of: user)
        let entry = try IngestionLog(connection: try connection()).latest(key: key)
        var status: String
        var errors: JSONValue = .array([])
        if let entry {
            status = entry.status == .processing ? "pending" : entry.status.rawValue
            if entry.status == .failed {
                // A transient failure's text is ours (a database or S3 message may name a host): not shown.
                errors = .array([.object([JSONMember("reason", .string("a transient failure; the validator retries the file while it waits in raw/"))])])
            } else if case .array(let list)? = try? JSONParser.parse(Array(entry.errors.utf8)) {
                errors = .array(Array(list.prefix(21)))
            }
        } else {
            guard try store.head(key) != nil else {
                throw APIError.notFound("nothing has landed at this key yet (the upload has not finished, or the key is wrong)")
            }
            status = "pending"
        }
        // A failed attempt leaves the file in raw/ for a retry: still pending while it is there.
        if entry?.status == .failed, try store.head(key) != nil { status = "pending" }
        return .json(.object([
            JSONMember("key", .string(key)), JSONMember("status", .string(status)),
            JSONMember("rows_processed", .number(String(entry?.rowsProcessed ?? 0))), JSONMember("rows_loaded", .number(String(entry?.rowsLoaded ?? 0))),
            JSONMember("rows_rejected", .number(String(entry?.rowsRejected ?? 0))), JSONMember("errors", errors),
            JSONMember("destination", entry?.destination.map(JSONValue.string) ?? .null),
        ]))
    }

    func ingestions(_ context: RouteContext) throws -> WebResponse {
        let user = try context.user()
        let organizationID = try organization(context.request.query["organization_id"], context: context, user: user)
        let sha256 = try context.request.parameter("sha256").lowercased()
        guard sha256.utf8.count == 64, sha256.utf8.allSatisfy({ ($0 >= 48 && $0 <= 57) || ($0 >= 97 && $0 <= 102) }) else {
            throw APIError.badRequest("sha256 must be 64 hexadecimal digits", code: "bad_parameter")
        }
        let entries = try IngestionLog(connection: try connection()).entries(organizationID: organizationID, sha256: sha256)
        return .json(.object([JSONMember("ingestions", .array(entries.map { entry in
            .object([
                JSONMember("key", .string(entry.key)), JSONMember("status", .string(entry.status.rawValue)),
                JSONMember("rows_loaded", .number(String(entry.rowsLoaded))), JSONMember("rows_rejected", .number(String(entry.rowsRejected))),
                JSONMember("finished_at", Self.time(entry.finishedAt)),
            ])
        }))]))
    }

    // MARK: POST /validate

    func dryRun(_ context: RouteContext) throws -> WebResponse {
        let user = try context.user()
        let organizationID = try organization(context.request.query["organization_id"], context: context, user: user)
        let format = try context.request.parameter("format").lowercased()
        guard ["csv", "json", "ndjson", "parquet"].contains(format) else {
            throw APIError.badRequest("format must be csv, json, ndjson or parquet", code: "bad_parameter")
        }
        let body = context.request.body
        guard !body.isEmpty else { throw APIError(status: 422, code: "empty_file", message: "send the file as the request body") }
        let gzip = body.starts(with: [0x1F, 0x8B])
        guard !(gzip && format == "parquet") else {
            throw APIError(status: 422, code: "gzip_parquet", message: "Parquet files are compressed inside; send them without gzip")
        }
        let name = "upload.\(format)" + (gzip && format != "parquet" ? ".gz" : "")
        let path = validator.scratchDirectory + "/meterlake-dry-run-" + Hex.encode(SecureRandom.bytes(8)) + "." + format
        guard FileIO.write(body, to: path, exclusive: true) else {
            throw APIError(status: 500, code: "scratch_unavailable", message: "the file could not be staged for reading")
        }
        defer { unlink(path) }
        let report = DryRun.report(path: path, name: name, size: Int64(body.count), sha256: Hex.encode(SHA256.hash(body)), source: .manual,
                                   organizationID: organizationID, configuration: dryRunConfiguration, now: clock(),
                                   keepGoing: { context.lambda.remainingTime > .seconds(5) })
        return WebResponse(status: 200, headers: ["content-type": "application/json"], body: report)
    }

    // MARK: Credentials

    func addCredential(_ context: RouteContext) throws -> WebResponse {
        let user = try context.user()
        let body = try smallJSON(context)
        let organizationID = try organization(body["organization_id"]?.text, context: context, user: user)
        guard case .string(let vendorName)? = body["vendor"], let vendor = SourceSystem(rawValue: vendorName) else {
            throw APIError.badRequest("vendor is required: \"solaredge\" or \"goodwe\"", code: "missing_parameter")
        }
        guard let driver = drivers[vendor] else {
            let hint = vendor == .enphase || vendor == .sma ? ": connect it through the OAuth flow (POST /oauth/state)" : ""
            throw APIError(status: 422, code: "unknown_vendor", message: "\(vendor.rawValue) credentials cannot be pasted\(hint)")
        }
        guard case .object? = body["credentials"] else {
            throw APIError.badRequest("credentials is required: an object", code: "missing_parameter")
        }
        let required = vendor == .solarEdge ? ["api_key"] : ["account", "password"]
        var members: [JSONMember] = []
        for name in required {
            guard case .string(let value)? = body["credentials"]?[name], !value.isEmpty, value.utf8.count <= 256 else {
                throw APIError(status: 422, code: "bad_credentials", message: "credentials.\(name) is required (a string of at most 256 bytes)")
            }
            members.append(JSONMember(name, .string(value)))
        }
        var site: String?
        if vendor == .solarEdge, let given = body["credentials"]?["site_id"]?.text {
            guard !given.isEmpty, given.utf8.count <= 40, given.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }) else {
                throw APIError(status: 422, code: "bad_credentials", message: "credentials.site_id must be a SolarEdge site id (digits)")
            }
            site = given
        }
        let plaintext = Array(JSONValue.object(members).serialized.utf8)
        let connector = Connector(driver: driver, database: database, keys: keys, zones: zones, caBundlePath: caBundlePath)
        let remaining = { context.lambda.remainingTime - .seconds(3) }
        let checked: (sites: [DiscoveredSite], calls: Int)
        do {
            checked = try connector.check(plaintext: plaintext, site: site, timeLeft: remaining)
        } catch VendorError.credentialRefused(let reason) {
            throw APIError(status: 422, code: "credentials_refused", message: reason)
        } catch let error as VendorError {
            throw APIError(status: 502, code: "vendor_unavailable", message: "\(vendor.rawValue) could not check the credentials: \(error)")
        }
        let connection = try connection()
        let (id, registered) = try connection.transaction { () throws -> (Int64, [RegisteredSite]) in
            let stored = try connector.store(plaintext: plaintext, organizationID: organizationID, authType: "api_key", expiresAt: nil,
                                             connectedBy: user.subject, on: connection)
            return (stored.id, try connector.register(checked.sites, credentialID: stored.id, organizationID: organizationID,
                                                      calls: checked.calls, on: connection))
        }
        context.lambda.logger.info("credential stored", metadata: [
            "organizationId": .stringConvertible(organizationID), "vendor": .string(vendor.rawValue), "credentialId": .stringConvertible(id),
            "sites": .stringConvertible(registered.count),
        ])
        return .json(.object([
            JSONMember("id", .number(String(id))), JSONMember("vendor", .string(vendor.rawValue)),
            JSONMember("sites", .array(registered.map { site in
                .object([JSONMember("external_site_id", .string(site.externalSiteID)), JSONMember("name", site.name.map(JSONValue.string) ?? .null),
                         JSONMember("time_zone", site.timeZone.map(JSONValue.string) ?? .null), JSONMember("active", .bool(site.inactiveReason == nil)),
                         JSONMember("inactive_reason", site.inactiveReason.map(JSONValue.string) ?? .null)])
            })),
        ]), status: 201)
    }

    func summaries(_ context: RouteContext) throws -> (Int64, [CredentialSummary]) {
        let user = try context.user()
        let organizationID = try organization(context.request.query["organization_id"], context: context, user: user)
        return (organizationID, try Integrations(connection: try connection()).credentialSummaries(organizationID: organizationID))
    }

    func listCredentials(_ context: RouteContext) throws -> WebResponse {
        let (_, credentials) = try summaries(context)
        return .json(.object([JSONMember("credentials", .array(credentials.map { credential in
            .object([
                JSONMember("id", .number(String(credential.id))), JSONMember("vendor", .string(credential.vendor.rawValue)),
                JSONMember("auth_type", .string(credential.authType)), JSONMember("is_active", .bool(credential.isActive)),
                JSONMember("last_used_at", Self.time(credential.lastUsedAt)), JSONMember("last_error", credential.lastError.map(JSONValue.string) ?? .null),
                JSONMember("token_expires_at", Self.time(credential.tokenExpiresAt)), JSONMember("created_at", Self.time(credential.createdAt)),
                JSONMember("sites", .number(String(credential.sites))),
            ])
        }))]))
    }

    func deleteCredential(_ context: RouteContext) throws -> WebResponse {
        let user = try context.user()
        let text = context.parameter("id")
        guard text.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }), let id = Int64(text), id > 0 else {
            throw APIError.badRequest("the credential id must be a positive integer")
        }
        guard let organizationID = try Integrations(connection: try connection()).deleteCredential(id: id, organizationIDs: user.organizations) else {
            throw APIError.notFound("no credential \(id) in the organisations this token grants")
        }
        context.lambda.logger.info("credential deleted", metadata: ["organizationId": .stringConvertible(organizationID), "credentialId": .stringConvertible(id)])
        return .json(.object([JSONMember("id", .number(String(id))), JSONMember("is_active", .bool(false))]))
    }

    // MARK: Health

    /// Database round trip, lake reachable, newest ingestion's age and the last day's failure
    /// share, each with its latency; 503 when the database or the lake fails. No secret and no
    /// error text from a library (which could name a host or user) is shown: only states.
    func fullHealth(_ context: RouteContext) throws -> WebResponse {
        if let cached = healthCache.answer(now: clock()) { return cached }
        var checks: [JSONMember] = []
        var healthy = true
        var started = clock()
        var health: IngestionHealth?
        do {
            let connection = try connections.connection()
            _ = try connection.query("SELECT 1")
            let databaseMilliseconds = clock() - started
            checks.append(JSONMember("database", .object([JSONMember("ok", .bool(true)), JSONMember("latency_ms", .number(String(databaseMilliseconds)))])))
            started = clock()
            health = try IngestionLog(connection: connection).health()
        } catch {
            healthy = false
            checks.append(JSONMember("database", .object([JSONMember("ok", .bool(false)), JSONMember("latency_ms", .number(String(clock() - started))),
                                                           JSONMember("error", .string("unreachable or failing"))])))
            context.lambda.logger.warning("health: database check failed", metadata: ["error": .string(String(describing: error))])
        }
        if let health {
            let share = health.filesLastDay == 0 ? 0 : Double(health.failedLastDay) / Double(health.filesLastDay)
            checks.append(JSONMember("ingestion", .object([
                JSONMember("newest_age_seconds", health.newestAgeSeconds.map { .number(String($0)) } ?? .null),
                JSONMember("failure_share_last_24h", .number(String(Double(Int(share * 10_000)) / 10_000))),
                JSONMember("latency_ms", .number(String(clock() - started))),
            ])))
        }
        started = clock()
        do {
            // A HEAD under the prefix the function may read: a 404 proves the lake answers.
            _ = try store.head("raw/manual/health-probe")
            checks.append(JSONMember("lake", .object([JSONMember("ok", .bool(true)), JSONMember("latency_ms", .number(String(clock() - started)))])))
        } catch {
            healthy = false
            checks.append(JSONMember("lake", .object([JSONMember("ok", .bool(false)), JSONMember("latency_ms", .number(String(clock() - started))),
                                                       JSONMember("error", .string("unreachable or refusing"))])))
            context.lambda.logger.warning("health: lake check failed", metadata: ["error": .string(String(describing: error))])
        }
        let answer = WebResponse.json(.object([JSONMember("status", .string(healthy ? "ok" : "degraded")), JSONMember("checks", .object(checks))]),
                                      status: healthy ? 200 : 503)
        healthCache.keep(answer, now: clock())
        return answer
    }

    /// Per credential, the states of the maintenance function's credential watch
    /// (docs/aggregates.md): `expires_within_7_days`, `token_not_refreshed`, `inactive`, `failing`.
    func credentialHealth(_ context: RouteContext) throws -> WebResponse {
        let (organizationID, credentials) = try summaries(context)
        let warnings = try Integrations(connection: try connection()).warnings(organizationID: organizationID)
        let now = clock() / 1000
        return .json(.object([JSONMember("credentials", .array(credentials.map { credential in
            let expiring = credential.tokenExpiresAt.map { $0 - now <= 7 * 86_400 } ?? false
            let states = warnings.filter { $0.credentialID == credential.id }.map { JSONValue.string($0.state.rawValue) }
            return .object([
                JSONMember("id", .number(String(credential.id))), JSONMember("vendor", .string(credential.vendor.rawValue)),
                JSONMember("is_active", .bool(credential.isActive)), JSONMember("last_used_at", Self.time(credential.lastUsedAt)),
                JSONMember("last_error", credential.lastError.map(JSONValue.string) ?? .null),
                JSONMember("token_expires_at", Self.time(credential.tokenExpiresAt)), JSONMember("expiring_within_7_days", .bool(expiring)),
                JSONMember("warnings", .array(states)),
            ])
        }))]))
    }
}

/// The environment's database connection, opened on first use and kept between invocations
/// (libpq reconnects one that a frozen environment lost). One left inside a transaction by a
/// failed request is replaced.
final class ConnectionKeeper {
    let database: DatabaseSettings
    private var kept: PostgresConnection?

    init(database: DatabaseSettings) { self.database = database }

    func connection() throws -> PostgresConnection {
        if let kept, !kept.inTransaction { return kept }
        let fresh = try database.connect()
        kept = fresh
        return fresh
    }
}

/// The last `/health/full` answer, reused for a few seconds.
final class HealthCache {
    let milliseconds: Int64
    private var kept: (answer: WebResponse, at: Int64)?

    init(seconds: Int64) { milliseconds = seconds * 1000 }

    func answer(now: Int64) -> WebResponse? {
        guard let kept, now - kept.at < milliseconds else { return nil }
        return kept.answer
    }

    func keep(_ answer: WebResponse, now: Int64) { kept = (answer, now) }
}
