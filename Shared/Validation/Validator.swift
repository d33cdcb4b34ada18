import Core
import FoundationEssentials
import Lake
import LambdaRuntime
import Logging
import Postgres
import Store

#if canImport(Glibc)
import Glibc
#endif

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
            let duration = clock() - started
            var logger = context.logger
            logger[metadataKey: "key"] = .string(result.key)
            logger.info("file \(result.status.rawValue)", metadata: [
                "status": .string(result.status.rawValue), "rowsProcessed": .stringConvertible(result.rowsProcessed),
                "rowsLoaded": .stringConvertible(result.rowsLoaded), "rowsRejected": .stringConvertible(result.rowsRejected),
                "destination": .string(result.destination ?? ""), "reason": .string(result.reason ?? ""),
                "durationMs": .stringConvertible(duration),
            ])
            ValidatorMetrics.line(for: result, durationMilliseconds: duration, requestID: context.requestID)
                .emit(timestamp: clock(), to: context.logOutput)
        }
        return ValidatorResponse(files: files)
    }

    // MARK: - One file, step by step

    /// The file being processed: what the event, the store and the hash said of it.
    private struct LandedFile {
        var key: String
        /// The UTC day of processing: the destination's folder.
        var day: String
        var object: ObjectInfo
        var sha256 = ""
        /// `nil` while (or when) the key is not trusted.
        var lakeKey: LakeKey?

        func destination(_ area: LakeArea) -> String { LakeKey.destination(area, day: day, rawKey: key) }

        func logged(in bucket: String) -> LoggedFile {
            LoggedFile(bucket: bucket, key: key, size: object.size, etag: object.etag, sha256: sha256,
                       source: lakeKey?.source, organizationID: lakeKey?.organizationID)
        }
    }

    private func process(_ record: S3Event.Record, context: LambdaContext) throws -> FileResult {
        // 1. Is it ours?
        let key: String
        switch admit(record) {
        case .skip(let result): return result
        case .admit(let admitted): key = admitted
        }

        // 2. Download it (a file already gone was settled by an earlier delivery, or never ours).
        let scratch = configuration.scratchDirectory + "/meterlake-" + UUID().uuidString.lowercased()
        defer { unlink(scratch) }
        var file: LandedFile
        do {
            file = LandedFile(key: key, day: Timestamp.day(epochSeconds: clock() / 1000), object: try store.get(key, to: scratch))
        } catch .noSuchKey {
            return try alreadyGone(key)
        } catch .invalidKey(_, let reason) {
            // Not an object this function may read (a symbolic link in a local lake): left untouched.
            return skipped(key, "untrusted object: \(reason)")
        } catch {
            throw transient(key, error)
        }
        // Hash the file and start parsing it at once, both on other threads: neither waits for
        // the other, and the duplicate check below only needs the hash.
        let hashing = BackgroundDigest(path: scratch)
        defer { _ = try? hashing.wait() }  // (before the scratch file goes)

        // 3. Trust the key, or quarantine the file untouched.
        let lakeKey: LakeKey
        do {
            lakeKey = try LakeKey(key)
        } catch {
            file.sha256 = try digest(hashing, key: key)
            return try quarantine(FileReport(key: key, sha256: file.sha256, size: file.object.size, status: .quarantined,
                                             reason: "untrusted key: \(error)"), of: file)
        }
        file.lakeKey = lakeKey

        // 4. Start reading ahead: parse and check the next batches while the current one loads.
        let (now, limits, transforms) = (clock(), configuration.limits, configuration.transforms)
        let batches = BatchPrefetcher(maximumRows: configuration.batchRows, depth: 4) { () throws(FileFormatError) in
            try ReadingFileReader(path: scratch, name: key, sourceSystem: lakeKey.source, organizationID: lakeKey.organizationID,
                                  limits: limits, transforms: transforms, now: now / 1000, ingestedAt: now)
        }
        defer { batches.cancel() }
        file.sha256 = try digest(hashing, key: key)

        // 5. A retried event: the file settled before, only its move is left.
        if let previous = try attempt(key, { try IngestionLog(connection: $0).find(sha256: file.sha256, key: key) }), previous.status.isSettled {
            return try finishMove(file, previous)
        }
        guard context.remainingTime >= configuration.minimumTimeLeft else {
            throw transient(key, TransientFailure(key: key, reason: "too little time left (\(context.remainingTime)) to start a load"),
                            recordingFailureOf: file.sha256)
        }

        // 6. Load it, in one transaction, and decide.
        return try load(file, lakeKey: lakeKey, batches: batches)
    }

    private enum Admission {
        case admit(String)
        case skip(FileResult)
    }

    /// Decodes the event's key and checks that the file is this function's to move.
    private func admit(_ record: S3Event.Record) -> Admission {
        guard let key = S3Event.decodeKey(record.s3.object.key) else {
            return .skip(skipped(record.s3.object.key, "the event's key is not valid URL encoding"))
        }
        if let bucket = configuration.bucket, record.s3.bucket.name != bucket {
            return .skip(skipped(key, "the event names bucket \(record.s3.bucket.name); this function serves \(bucket)"))
        }
        guard key.hasPrefix("raw/") else { return .skip(skipped(key, "not under raw/: the validator only moves files it owns")) }
        // A control character cannot be recorded faithfully (PostgreSQL text holds no NUL, and a
        // cut key could overwrite another file's row): such a key is left untouched in raw/.
        if let problem = LakeKey.controlCharacter(in: key) { return .skip(skipped(key, "untrusted key: \(problem)")) }
        // Nor can a key whose quarantine copy would be longer than S3 allows: it could never leave raw/.
        if key.utf8.count > LakeKey.maximumBytes { return .skip(skipped(key, "untrusted key: \(LakeKey.Problem.tooLong)")) }
        return .admit(key)
    }

    private func load(_ file: LandedFile, lakeKey: LakeKey, batches: BatchPrefetcher) throws -> FileResult {
        let destination = file.destination(.validated)
        var report = FileReport(key: file.key, sha256: file.sha256, size: file.object.size, status: .quarantined, reason: "",
                                violations: ViolationSample(capacity: configuration.maximumReportedViolations))
        let outcome: LoadOutcome
        do {
            let ingested = IngestedFile(bucket: store.location, key: file.key, size: file.object.size, etag: file.object.etag,
                                        sha256: file.sha256, source: lakeKey.source, organizationID: lakeKey.organizationID,
                                        destination: destination)
            outcome = try ReadingLoader(connection: try connection(key: file.key)).load(ingested, batches: {
                let batch = try batches.next()
                if let batch { report.violations.add(batch.violations) }
                return batch
            }, decide: { [configuration] summary in
                configuration.accepts(rowsProcessed: summary.rowsProcessed, rowsRejected: summary.rowsRejected)
            }, rejected: { report.violations.add($0) })
        } catch let error as FileFormatError {
            report.reason = "the file is structurally broken: \(error)"
            report.fileError = error.description
            return try quarantine(report, of: file)
        } catch let error as PostgresError where !error.isTransient {
            // The database refused the file itself (an organisation it does not know, a value
            // its constraints reject): retrying cannot help.
            report.reason = "the database refused the file: \(error)"
            return try quarantine(report, of: file)
        } catch {
            throw transient(file.key, error, recordingFailureOf: file.sha256)
        }

        switch outcome {
        case .declined(let summary):
            report.summary = summary
            report.reason = summary.rowsProcessed == 0
                ? "the file holds no readings"
                : "\(summary.rowsRejected) of \(summary.rowsProcessed) rows rejected "
                    + "(\(FileReport.percent(Double(summary.rowsRejected) / Double(summary.rowsProcessed)))), "
                    + "above the \(FileReport.percent(configuration.rejectThreshold)) threshold: nothing loaded"
            return try quarantine(report, of: file)
        case .loaded(let summary):
            do {
                if summary.rowsRejected > 0 {
                    report.status = .validated
                    report.summary = summary
                    report.reason = "\(summary.rowsRejected) rejected rows were not loaded"
                    try store.put(destination + ".report.json", body: .bytes(report.json), contentType: "application/json")
                }
                try move(file.key, to: destination)
            } catch {
                throw transient(file.key, error)
            }
            return FileResult(key: file.key, status: .validated, rowsProcessed: summary.rowsProcessed, rowsLoaded: summary.rowsLoaded,
                              rowsRejected: summary.rowsRejected, destination: destination)
        case .settledElsewhere:
            // Another delivery of this event loaded or quarantined the file while this one read it.
            guard let previous = try attempt(file.key, { try IngestionLog(connection: $0).find(sha256: file.sha256, key: file.key) }),
                previous.status.isSettled
            else {
                throw transient(file.key, TransientFailure(key: file.key, reason: "another delivery settled the file, but its log row is gone"))
            }
            return try finishMove(file, previous)
        }
    }

    /// Copies `key` to `destination`. An object already gone because a concurrent delivery of the
    /// same event put it there is no error: the destination holds it.
    private func copy(_ key: String, to destination: String) throws(ObjectStoreError) {
        do {
            try store.copy(from: key, to: destination)
        } catch .noSuchKey(key) {
            guard try store.head(destination) != nil else { throw .noSuchKey(key: key) }
        }
    }

    /// Copy, then delete from `raw/` (``copy(_:to:)``'s tolerance included).
    private func move(_ key: String, to destination: String) throws(ObjectStoreError) {
        try copy(key, to: destination)
        try store.delete(key)
    }

    // MARK: - Effects

    /// Copies the file and its report to `quarantine/`, records it, then deletes it from `raw/`.
    private func quarantine(_ report: FileReport, of file: LandedFile) throws -> FileResult {
        let destination = file.destination(.quarantine)
        do {
            try copy(file.key, to: destination)
            try store.put(destination + ".report.json", body: .bytes(report.json), contentType: "application/json")
            let log = IngestionLog(connection: try connection(key: file.key))
            let recorded = try log.recordQuarantine(
                file.logged(in: store.location), rowsProcessed: report.summary.rowsProcessed, rowsRejected: report.summary.rowsRejected,
                errors: report.errorsJSON(limit: configuration.maximumLoggedViolations), destination: destination)
            try store.delete(file.key)
            if !recorded, let previous = try log.find(sha256: file.sha256, key: file.key) {
                // A concurrent delivery of the same event settled it first: this one is the duplicate.
                return duplicate(file.key, of: previous, at: previous.destination)
            }
        } catch {
            throw transient(file.key, error)
        }
        return FileResult(key: file.key, status: .quarantined, rowsProcessed: report.summary.rowsProcessed,
                          rowsRejected: report.summary.rowsRejected, destination: destination, reason: report.reason)
    }

    /// A file settled by an earlier delivery whose move did not finish: finish it, change nothing else.
    private func finishMove(_ file: LandedFile, _ previous: IngestionRecord) throws -> FileResult {
        let destination = previous.destination ?? file.destination(previous.status == .validated ? .validated : .quarantine)
        do {
            if previous.destination == nil {
                try IngestionLog(connection: try connection(key: file.key)).setDestination(destination, sha256: file.sha256, key: file.key)
            }
            try move(file.key, to: destination)
        } catch {
            throw transient(file.key, error)
        }
        return duplicate(file.key, of: previous, at: destination)
    }

    /// The object is gone from `raw/`: a duplicate of a settled file, or something never ours.
    private func alreadyGone(_ key: String) throws -> FileResult {
        guard let previous = try attempt(key, { try IngestionLog(connection: $0).latestSettled(key: key) }) else {
            return skipped(key, "the object no longer exists and was never recorded")
        }
        return duplicate(key, of: previous, at: previous.destination)
    }

    /// A file another delivery settled: its counts as recorded.
    private func duplicate(_ key: String, of previous: IngestionRecord, at destination: String?) -> FileResult {
        FileResult(key: key, status: .duplicate, rowsProcessed: previous.rowsProcessed, rowsLoaded: previous.rowsLoaded,
                   rowsRejected: previous.rowsRejected, destination: destination)
    }

    private func skipped(_ key: String, _ reason: String) -> FileResult {
        FileResult(key: key, status: .skipped, reason: reason)
    }

    // MARK: - Failures

    private func digest(_ hashing: BackgroundDigest, key: String) throws -> String {
        do { return try hashing.wait() } catch { throw transient(key, error) }
    }

    /// Runs a database step; any failure is transient.
    private func attempt<T>(_ key: String, _ body: (PostgresConnection) throws -> T) throws -> T {
        do { return try body(try connection(key: key)) } catch { throw transient(key, error) }
    }

    /// The kept connection, opened on first use (a cold start with the database down still starts).
    private func connection(key: String) throws -> PostgresConnection {
        if let database { return database }
        do {
            let connection = try configuration.database.connect()
            database = connection
            return connection
        } catch {
            throw TransientFailure(key: key, reason: "\(error)")
        }
    }

    /// The invocation error for a failure worth retrying; with `sha256`, the failure is also
    /// recorded in `ingestion_log` when the database can be reached.
    private func transient(_ key: String, _ error: any Error, recordingFailureOf sha256: String? = nil) -> any Error {
        let failure = error as? TransientFailure ?? TransientFailure(key: key, reason: "\(error)")
        if let sha256, let connection = try? connection(key: key) {
            try? IngestionLog(connection: connection).recordFailure(
                bucket: store.location, key: key, sha256: sha256, errors: FileReport.errorsJSON(reason: failure.reason, violations: []))
        }
        return failure
    }
}
