import FoundationEssentials
import Logging
import Postgres

#if canImport(Glibc)
import Glibc
#endif

/// One file's outcome, as the function returns it (see interfaces.md).
public struct FileResult: Codable, Sendable, Equatable {
    public init(key: String, status: String, rowsProcessed: Int, rowsLoaded: Int, rowsRejected: Int, destination: String?, reason: String?) {
        self.key = key
        self.status = status
        self.rowsProcessed = rowsProcessed
        self.rowsLoaded = rowsLoaded
        self.rowsRejected = rowsRejected
        self.destination = destination
        self.reason = reason
    }

    public var key: String
    /// `validated`, `quarantined`, `duplicate`, or `skipped` (not under `raw/`, or already gone:
    /// the validator never touches objects it does not own).
    public var status: String
    public var rowsProcessed: Int
    public var rowsLoaded: Int
    public var rowsRejected: Int
    public var destination: String?
    /// Why a file was quarantined or skipped.
    public var reason: String?

    enum CodingKeys: String, CodingKey {
        case key, status, destination, reason
        case rowsProcessed = "rows_processed"
        case rowsLoaded = "rows_loaded"
        case rowsRejected = "rows_rejected"
    }

    /// `destination` is always present (`null` when the file did not move).
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(key, forKey: .key)
        try container.encode(status, forKey: .status)
        try container.encode(rowsProcessed, forKey: .rowsProcessed)
        try container.encode(rowsLoaded, forKey: .rowsLoaded)
        try container.encode(rowsRejected, forKey: .rowsRejected)
        try container.encode(destination, forKey: .destination)
        try container.encodeIfPresent(reason, forKey: .reason)
    }
}

public struct ValidatorResponse: Codable, Sendable, Equatable {
    public var files: [FileResult]
}

/// A failure worth retrying (database unreachable, S3 throttling after retries, too little time):
/// the invocation fails, Lambda retries the event, and the object stays in `raw/`.
public struct TransientFailure: LambdaReportableError, CustomStringConvertible {
    public var key: String
    public var reason: String
    public var errorType: String { "Validator.Transient" }
    public var description: String { "\(key): \(reason) (the file stays in raw/; the event will be retried)" }
}

/// Settings of the validator function.
public struct ValidatorConfiguration: Sendable {
    public var databaseURL: String
    /// Share of rejected rows above which the whole file is quarantined.
    public var rejectThreshold: Double
    public var limits = ValidationLimits()
    /// Where objects are downloaded (Lambda's /tmp).
    public var scratchDirectory: String
    /// The bucket events must name (S3 only); `nil` accepts any (the local lake).
    public var bucket: String?
    /// Violations kept in a report.
    public var maximumReportedViolations = 1000
    /// Time to keep in hand before starting a file: below it the invocation fails for a retry.
    public var minimumTimeLeft: Duration = .seconds(15)
    /// Rows per batch: one COPY each; two batches are read ahead.
    public var batchRows = 10_000

    public init(databaseURL: String, rejectThreshold: Double = 0.05, scratchDirectory: String = "/tmp", bucket: String? = nil) {
        self.databaseURL = databaseURL
        self.rejectThreshold = rejectThreshold
        self.scratchDirectory = scratchDirectory
        self.bucket = bucket
    }

    /// `DATABASE_URL`, `METERLAKE_REJECT_THRESHOLD` (default 0.05), `METERLAKE_BUCKET` unless
    /// `METERLAKE_LAKE_DIR` is set, `METERLAKE_SCRATCH_DIR` (default /tmp).
    public init(environment: Environment) throws(ConfigurationError) {
        let threshold = try environment.get("METERLAKE_REJECT_THRESHOLD", as: Double.self) ?? 0.05
        guard (0...1).contains(threshold) else {
            throw .invalid(name: "METERLAKE_REJECT_THRESHOLD", reason: "must be a share between 0 and 1")
        }
        self.init(
            databaseURL: try environment.require("DATABASE_URL"), rejectThreshold: threshold,
            scratchDirectory: environment["METERLAKE_SCRATCH_DIR"] ?? "/tmp",
            bucket: environment["METERLAKE_LAKE_DIR"] == nil ? environment["METERLAKE_BUCKET"] : nil)
    }
}

/// The validator: each landed file is checked, loaded whole or not at all, and moved to
/// `validated/` or `quarantine/` (with a report), and recorded in `ingestion_log`.
///
/// Order of effects, so that nothing is lost and a retried event is a no-op: load and record in
/// one transaction, then copy the object to its destination, then delete it from `raw/`. A
/// retry finds the file's SHA-256 and key in `ingestion_log` and only finishes the move.
public final class Validator: LambdaHandler {
    public let configuration: ValidatorConfiguration
    private let store: any ObjectStore
    private var database: PostgresConnection?
    private let clock: @Sendable () -> Int64

    public init(configuration: ValidatorConfiguration, store: any ObjectStore, clock: @escaping @Sendable () -> Int64 = WallClock.milliseconds) {
        self.configuration = configuration
        self.store = store
        self.clock = clock
    }

    public func handle(_ event: S3Event, context: LambdaContext) throws -> ValidatorResponse {
        var files: [FileResult] = []
        for record in event.Records {
            let started = clock()
            let result = try process(record, context: context)
            files.append(result)
            var logger = context.logger
            logger[metadataKey: "key"] = .string(result.key)
            logger.info("file \(result.status)", metadata: [
                "status": .string(result.status), "rowsProcessed": .stringConvertible(result.rowsProcessed),
                "rowsLoaded": .stringConvertible(result.rowsLoaded), "rowsRejected": .stringConvertible(result.rowsRejected),
                "destination": .string(result.destination ?? ""), "reason": .string(result.reason ?? ""),
                "durationMs": .stringConvertible(clock() - started),
            ])
            Metrics.emit(result, durationMilliseconds: clock() - started, requestID: context.requestID, now: clock(), output: context.logOutput)
        }
        return ValidatorResponse(files: files)
    }

    // MARK: - One file

    private func process(_ record: S3Event.Record, context: LambdaContext) throws -> FileResult {
        guard let key = S3Event.decodeKey(record.s3.object.key) else {
            return skipped(record.s3.object.key, "the event's key is not valid URL encoding")
        }
        if let bucket = configuration.bucket, record.s3.bucket.name != bucket {
            return skipped(key, "the event names bucket \(record.s3.bucket.name); this function serves \(bucket)")
        }
        guard key.hasPrefix("raw/") else { return skipped(key, "not under raw/: the validator only moves files it owns") }
        let day = Timestamp.day(epochSeconds: clock() / 1000)

        let scratch = configuration.scratchDirectory + "/meterlake-" + UUID().uuidString.lowercased()
        defer { unlink(scratch) }
        let object: ObjectInfo
        do {
            object = try store.get(key, to: scratch)
        } catch .noSuchKey {
            return try alreadyGone(key)
        } catch {
            throw transient(key, error, sha: nil)
        }
        // Hash the file and start parsing it at once, both on other threads: neither waits for
        // the other, and the duplicate check below only needs the hash.
        let hashing = BackgroundDigest(path: scratch)
        defer { _ = try? hashing.wait() }  // (before the scratch file goes)
        let lakeKey: LakeKey
        do {
            lakeKey = try LakeKey(key)
        } catch {
            let digest: String
            do { digest = try hashing.wait() } catch { throw transient(key, error, sha: nil) }
            return try quarantine(key, day: day, sha: digest, size: object.size, etag: object.etag, source: nil, organization: nil,
                                  reason: "untrusted key: \(error)", summary: LoadSummary(), violations: [], fileError: nil)
        }
        let (now, limits) = (clock(), configuration.limits)
        // Parse and check the next batches while the current one is loading.
        let batches = BatchPrefetcher(maximumRows: configuration.batchRows, depth: 4) { () throws(FileFormatError) in
            try ReadingFileReader(path: scratch, name: key, sourceSystem: lakeKey.source, organizationID: lakeKey.organizationID,
                                  limits: limits, now: now / 1000, ingestedAt: now)
        }
        defer { batches.cancel() }
        let digest: String
        do { digest = try hashing.wait() } catch { throw transient(key, error, sha: nil) }

        if let previous = try recorded(sha: digest, key: key), previous.status == "validated" || previous.status == "quarantined" {
            // Loaded (or quarantined) before; the move did not finish. Finish it, change nothing else.
            let destination = previous.destination
                ?? LakeKey.destination(previous.status == "validated" ? "validated" : "quarantine", day: day, rawKey: key)
            do {
                if previous.destination == nil {
                    try connection(key: key).query(
                        "UPDATE ingestion_log SET destination = $1 WHERE sha256 = $2 AND key = $3", [destination, digest, key])
                }
                try store.move(from: key, to: destination)
            } catch {
                throw transient(key, error, sha: nil)
            }
            return FileResult(key: key, status: "duplicate", rowsProcessed: previous.processed, rowsLoaded: previous.loaded,
                              rowsRejected: previous.rejected, destination: destination, reason: nil)
        }
        guard context.remainingTime >= configuration.minimumTimeLeft else {
            throw transient(key, TransientFailure(key: key, reason: "too little time left (\(context.remainingTime)) to start a load"), sha: digest)
        }

        let destination = LakeKey.destination("validated", day: day, rawKey: key)
        let file = IngestedFile(bucket: store.location, key: key, size: object.size, etag: object.etag, sha256: digest,
                                source: lakeKey.source, organizationID: lakeKey.organizationID, destination: destination)
        var violations: [SchemaViolation] = []
        var totalViolations = 0
        let outcome: LoadOutcome
        do {
            let threshold = configuration.rejectThreshold
            outcome = try ReadingLoader(connection: try connection(key: key)).load(file, batches: {
                let batch = try batches.next()
                if let batch {
                    totalViolations += batch.violations.count
                    violations += batch.violations.prefix(max(0, self.configuration.maximumReportedViolations - violations.count))
                }
                return batch
            }, decide: { summary in
                summary.rowsProcessed > 0 && Double(summary.rowsRejected) / Double(summary.rowsProcessed) <= threshold
            })
        } catch let error as FileFormatError {
            return try quarantine(key, day: day, sha: digest, size: object.size, etag: object.etag, source: lakeKey.source,
                                  organization: lakeKey.organizationID, reason: "the file is structurally broken: \(error)",
                                  summary: LoadSummary(), violations: violations, fileError: error.description, totalViolations: totalViolations)
        } catch let error as PostgresError where !error.isTransient {
            // The database refused the file itself (an organisation it does not know, a value
            // its constraints reject): retrying cannot help.
            return try quarantine(key, day: day, sha: digest, size: object.size, etag: object.etag, source: lakeKey.source,
                                  organization: lakeKey.organizationID, reason: "the database refused the file: \(error)",
                                  summary: LoadSummary(), violations: violations, fileError: nil, totalViolations: totalViolations)
        } catch {
            throw transient(key, error, sha: digest)
        }

        switch outcome {
        case .declined(let summary):
            let share = summary.rowsProcessed == 0 ? 0 : Double(summary.rowsRejected) / Double(summary.rowsProcessed)
            let reason = summary.rowsProcessed == 0
                ? "the file holds no readings"
                : "\(summary.rowsRejected) of \(summary.rowsProcessed) rows rejected (\(Self.percent(share))), above the \(Self.percent(configuration.rejectThreshold)) threshold: nothing loaded"
            return try quarantine(key, day: day, sha: digest, size: object.size, etag: object.etag, source: lakeKey.source,
                                  organization: lakeKey.organizationID, reason: reason, summary: summary, violations: violations,
                                  fileError: nil, totalViolations: totalViolations)
        case .loaded(let summary):
            do {
                if summary.rowsRejected > 0 {
                    try store.put(destination + ".report.json", body: .bytes(Self.report(
                        key: key, sha: digest, size: object.size, status: "validated",
                        reason: "\(summary.rowsRejected) rejected rows were not loaded", summary: summary,
                        violations: violations, totalViolations: totalViolations, fileError: nil)), contentType: "application/json")
                }
                try store.move(from: key, to: destination)
            } catch {
                throw transient(key, error, sha: nil)
            }
            return FileResult(key: key, status: "validated", rowsProcessed: summary.rowsProcessed, rowsLoaded: summary.rowsLoaded,
                              rowsRejected: summary.rowsRejected, destination: destination, reason: nil)
        }
    }

    // MARK: - Effects

    private func quarantine(
        _ key: String, day: String, sha: String, size: Int64, etag: String?, source: SourceSystem?, organization: Int64?,
        reason: String, summary: LoadSummary, violations: [SchemaViolation], fileError: String?, totalViolations: Int = 0
    ) throws -> FileResult {
        let destination = LakeKey.destination("quarantine", day: day, rawKey: key)
        do {
            try store.copy(from: key, to: destination)
            try store.put(destination + ".report.json", body: .bytes(Self.report(
                key: key, sha: sha, size: size, status: "quarantined", reason: reason, summary: summary, violations: violations,
                totalViolations: totalViolations, fileError: fileError)), contentType: "application/json")
            try connection(key: key).query("""
                INSERT INTO ingestion_log (bucket, key, size, etag, sha256, data_source_id, organization_id, status,
                    rows_processed, rows_loaded, rows_rejected, errors, destination, finished_at)
                VALUES ($1, $2, $3, $4, $5, $6, $7, 'quarantined', $8, 0, $9, $10::jsonb, $11, now())
                ON CONFLICT (sha256, key) DO UPDATE SET status = 'quarantined', rows_processed = EXCLUDED.rows_processed,
                    rows_loaded = 0, rows_rejected = EXCLUDED.rows_rejected, errors = EXCLUDED.errors,
                    destination = EXCLUDED.destination, finished_at = now()
                """, [store.location, key, String(size), etag, sha, source.map { String($0.id) }, organization.map(String.init),
                      String(summary.rowsProcessed), String(summary.rowsRejected),
                      Self.errorsJSON(reason: reason, violations: Array(violations.prefix(100))), destination])
            try store.delete(key)
        } catch {
            throw transient(key, error, sha: nil)
        }
        return FileResult(key: key, status: "quarantined", rowsProcessed: summary.rowsProcessed, rowsLoaded: 0,
                          rowsRejected: summary.rowsRejected, destination: destination, reason: reason)
    }

    private func alreadyGone(_ key: String) throws -> FileResult {
        let rows = try connection(key: key).query("""
            SELECT status, destination, rows_processed, rows_loaded, rows_rejected FROM ingestion_log
            WHERE key = $1 AND status IN ('validated', 'quarantined') ORDER BY finished_at DESC NULLS LAST LIMIT 1
            """, [key])
        guard rows.count == 1 else { return skipped(key, "the object no longer exists and was never recorded") }
        return FileResult(key: key, status: "duplicate", rowsProcessed: Int(rows[0, "rows_processed"] ?? "0") ?? 0,
                          rowsLoaded: Int(rows[0, "rows_loaded"] ?? "0") ?? 0, rowsRejected: Int(rows[0, "rows_rejected"] ?? "0") ?? 0,
                          destination: rows[0, "destination"], reason: nil)
    }

    private struct Recorded {
        var status: String
        var destination: String?
        var processed: Int
        var loaded: Int
        var rejected: Int
    }

    private func recorded(sha: String, key: String) throws -> Recorded? {
        do {
            let rows = try connection(key: key).query(
                "SELECT status, destination, rows_processed, rows_loaded, rows_rejected FROM ingestion_log WHERE sha256 = $1 AND key = $2",
                [sha, key])
            guard rows.count == 1 else { return nil }
            return Recorded(status: rows[0, "status"]!, destination: rows[0, "destination"], processed: Int(rows[0, "rows_processed"]!) ?? 0,
                            loaded: Int(rows[0, "rows_loaded"]!) ?? 0, rejected: Int(rows[0, "rows_rejected"]!) ?? 0)
        } catch {
            throw transient(key, error, sha: nil)
        }
    }

    /// The kept connection, opened on first use (a cold start with the database down still starts).
    private func connection(key: String) throws -> PostgresConnection {
        if let database { return database }
        do {
            let connection = try PostgresConnection(url: configuration.databaseURL)
            database = connection
            return connection
        } catch {
            throw TransientFailure(key: key, reason: "\(error)")
        }
    }

    /// Records the failure in `ingestion_log` when the database can be reached, and builds the
    /// invocation error.
    private func transient(_ key: String, _ error: any Error, sha: String?) -> any Error {
        if let failure = error as? TransientFailure { return failure }
        if let sha, let connection = try? connection(key: key) {
            _ = try? connection.query("""
                INSERT INTO ingestion_log (bucket, key, size, sha256, status, errors, finished_at)
                VALUES ($1, $2, 0, $3, 'failed', $4::jsonb, now())
                ON CONFLICT (sha256, key) DO UPDATE SET status = 'failed', errors = EXCLUDED.errors, finished_at = now()
                WHERE ingestion_log.status NOT IN ('validated', 'quarantined')
                """, [store.location, key, sha, Self.errorsJSON(reason: "\(error)", violations: [])])
        }
        return TransientFailure(key: key, reason: "\(error)")
    }

    private func skipped(_ key: String, _ reason: String) -> FileResult {
        FileResult(key: key, status: "skipped", rowsProcessed: 0, rowsLoaded: 0, rowsRejected: 0, destination: nil, reason: reason)
    }

    // MARK: - Reports

    static func percent(_ share: Double) -> String { "\(Double(Int((share * 1000).rounded())) / 10)%" }

    static func errorsJSON(reason: String, violations: [SchemaViolation]) -> String {
        "[{\"reason\":" + JSONValue.string(reason).serialized + "}" + (violations.isEmpty ? "]" : "," + ViolationReport.json(violations).dropFirst())
    }

    /// The JSON report written beside a quarantined (or partly rejected) file.
    static func report(
        key: String, sha: String, size: Int64, status: String, reason: String, summary: LoadSummary, violations: [SchemaViolation],
        totalViolations: Int, fileError: String?
    ) -> [UInt8] {
        var writer = JSONWriter()
        writer.beginObject()
        writer.key("key"); writer.string(key)
        writer.key("status"); writer.string(status)
        writer.key("reason"); writer.string(reason)
        writer.key("sha256"); writer.string(sha)
        writer.key("size"); writer.number(size)
        writer.key("rows_processed"); writer.number(summary.rowsProcessed)
        writer.key("rows_loaded"); writer.number(status == "validated" ? summary.rowsLoaded : 0)
        writer.key("rows_rejected"); writer.number(summary.rowsRejected)
        if let fileError { writer.key("file_error"); writer.string(fileError) }
        writer.key("violations_total"); writer.number(max(totalViolations, violations.count))
        writer.key("violations_shown"); writer.number(violations.count)
        writer.key("violations")
        writer.raw(ViolationReport.json(violations))
        writer.endObject()
        writer.newline()
        return writer.bytes
    }
}

/// CloudWatch Embedded Metric Format lines: metrics from log lines, no API call.
public enum Metrics {
    public static let namespace = "Meterlake"

    public static func emit(_ result: FileResult, durationMilliseconds: Int64, requestID: String, now: Int64, output: LogOutput = .standardOutput) {
        var writer = JSONWriter()
        writer.beginObject()
        writer.key("_aws")
        writer.beginObject()
        writer.key("Timestamp"); writer.number(now)
        writer.key("CloudWatchMetrics")
        writer.beginArray()
        writer.beginObject()
        writer.key("Namespace"); writer.string(namespace)
        writer.key("Dimensions")
        writer.raw(#"[["Function"],["Function","Status"]]"#)
        writer.key("Metrics")
        writer.raw(#"[{"Name":"Files","Unit":"Count"},{"Name":"RowsProcessed","Unit":"Count"},{"Name":"RowsLoaded","Unit":"Count"},{"Name":"RowsRejected","Unit":"Count"},{"Name":"Quarantined","Unit":"Count"},{"Name":"Duration","Unit":"Milliseconds"}]"#)
        writer.endObject()
        writer.endArray()
        writer.endObject()
        writer.key("Function"); writer.string("validator")
        writer.key("Status"); writer.string(result.status)
        writer.key("Files"); writer.number(1)
        writer.key("RowsProcessed"); writer.number(result.rowsProcessed)
        writer.key("RowsLoaded"); writer.number(result.rowsLoaded)
        writer.key("RowsRejected"); writer.number(result.rowsRejected)
        writer.key("Quarantined"); writer.number(result.status == "quarantined" ? 1 : 0)
        writer.key("Duration"); writer.number(durationMilliseconds)
        writer.key("requestId"); writer.string(requestID)
        writer.key("key"); writer.string(result.key)
        writer.endObject()
        writer.newline()
        output.emit(writer.bytes)
    }
}
