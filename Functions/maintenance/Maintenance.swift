import Core
import Lake
import LambdaRuntime
import Logging
import Postgres
import Store
import Trust

/// The maintenance function (an EventBridge schedule, every 15 minutes): aggregates of the hours
/// loads changed, daily and monthly rows finalised once their period ended, partitions created
/// ahead and dropped only when final, and the credential watch (docs/aggregates.md).
struct Maintenance: LambdaByteHandler {
    let database: DatabaseSettings
    /// Dirty ranges one pass claims.
    let rangesPerPass: Int
    /// No new pass starts with less than this left.
    let minimumTimeLeft: Duration
    let clock: @Sendable () -> Int64
    /// The lake, for evidence archives (absent when the function has no bucket configured).
    let store: (any ObjectStore)?
    let scratchDirectory: String

    init(environment: Environment) throws {
        database = try DatabaseSettings(environment: environment)
        store = environment["METERLAKE_BUCKET"] != nil || environment["METERLAKE_LAKE_DIR"] != nil ? try ObjectStores.make(environment: environment) : nil
        scratchDirectory = environment["METERLAKE_SCRATCH_DIR"] ?? "/tmp"
        let ranges = try environment.get("METERLAKE_MAINTENANCE_RANGES_PER_PASS", as: Int.self) ?? 5000
        guard (1...1_000_000).contains(ranges) else {
            throw ConfigurationError.invalid(name: "METERLAKE_MAINTENANCE_RANGES_PER_PASS", reason: "must be 1…1000000")
        }
        rangesPerPass = ranges
        minimumTimeLeft = .seconds(30)
        clock = WallClock.milliseconds
    }

    func handle(_ event: [UInt8], context: LambdaContext) throws -> [UInt8] {
        let started = clock()
        let connection: PostgresConnection
        do { connection = try database.connect() } catch {
            throw MaintenanceFailure(reason: "cannot reach PostgreSQL: \(error)")
        }
        let aggregates = Aggregates(connection: connection)
        if let value = try? JSONParser.parse(event), let request = value["evidence"] {
            return try evidence(request, connection: connection, context: context)
        }

        // Each step on its own: one that fails (logged, counted) does not keep the others from running.
        var failures: [String] = []
        func step<T>(_ name: String, _ fallback: T, _ body: () throws -> T) -> T {
            do { return try body() } catch {
                failures.append(name)
                context.logger.error("maintenance step failed", metadata: ["step": .string(name), "error": .string(String(describing: error))])
                return fallback
            }
        }

        // 1. Aggregates: passes until nothing is dirty or the time runs short.
        var total = AggregationPass()
        var passes = 0
        step("aggregates", ()) {
            while context.remainingTime > minimumTimeLeft {
                let pass = try aggregates.pass(maximumRanges: rangesPerPass)
                guard pass.rangesClaimed > 0 else { break }
                passes += 1
                total.rangesClaimed += pass.rangesClaimed
                total.meters += pass.meters
                total.hours += pass.hours
                total.days += pass.days
                total.months += pass.months
                total.hoursInDroppedMonths += pass.hoursInDroppedMonths
            }
        }
        if total.hoursInDroppedMonths > 0 {
            context.logger.warning("late readings for months already dropped: their aggregates are final and were kept (hours without any aggregate were filled)",
                                   metadata: ["hours": .stringConvertible(total.hoursInDroppedMonths)])
        }
        // 2. Daily and monthly rows computed before their period ended.
        let finalized = step("finalize", 0) { context.remainingTime > minimumTimeLeft ? try aggregates.finalize() : 0 }
        let backlog = step("backlog", (ranges: 0, oldestSeconds: Int64?.none)) { try aggregates.backlog() }

        // 3. Partitions: ahead, and retention only for final months.
        let now = clock() / 1000
        let created = step("partitions", [String]()) { try PartitionMaintenance.ensureAhead(now: now, months: 2, connection: connection) }
        let dropped = step("retention", [String]()) { try PartitionMaintenance.dropExpired(now: now, connection: connection) }
        for name in dropped { context.logger.info("partition dropped (its month lies beyond the retention window; its aggregates are final)", metadata: ["partition": .string(name)]) }

        // 4. Credential watch.
        let warnings = step("credentials", [CredentialWarning]()) { try Integrations(connection: connection).warnings() }
        for warning in warnings {
            var metadata: Logger.Metadata = [
                "credentialId": .stringConvertible(warning.credentialID), "organizationId": .stringConvertible(warning.organizationID),
                "vendor": .string(warning.vendor), "state": .string(warning.state.rawValue),
            ]
            if let expires = warning.tokenExpiresAt { metadata["tokenExpiresAt"] = .string(Timestamp.rfc3339(seconds: expires, nanoseconds: 0, zoned: true)) }
            if let error = warning.lastError { metadata["lastError"] = .string(error) }
            context.logger.warning("credential needs attention", metadata: metadata)
        }

        var metrics = EmbeddedMetrics(dimensionSets: [["Function"]])
        metrics.dimension("Function", "maintenance")
        metrics.metric("DirtyRangesProcessed", total.rangesClaimed)
        metrics.metric("HoursRecomputed", total.hours)
        metrics.metric("DaysRecomputed", total.days)
        metrics.metric("MonthsRecomputed", total.months)
        metrics.metric("PeriodsFinalized", finalized)
        metrics.metric("DirtyRangesPending", backlog.ranges)
        metrics.metric("MaintenanceLag", backlog.oldestSeconds ?? 0, unit: .seconds)
        metrics.metric("PartitionsCreated", created.count)
        metrics.metric("PartitionsDropped", dropped.count)
        for state in CredentialWarning.State.allCases {
            metrics.metric("Credentials_" + state.rawValue, warnings.filter { $0.state == state }.count)
        }
        metrics.metric("StepFailures", failures.count)
        metrics.metric("Duration", clock() - started, unit: .milliseconds)
        metrics.property("requestId", context.requestID)
        metrics.emit(timestamp: started, to: context.logOutput)

        var writer = JSONWriter()
        writer.value(.object([
            JSONMember("aggregates", .object([
                JSONMember("passes", .number(String(passes))), JSONMember("ranges", .number(String(total.rangesClaimed))),
                JSONMember("meters", .number(String(total.meters))), JSONMember("hours", .number(String(total.hours))),
                JSONMember("days", .number(String(total.days))), JSONMember("months", .number(String(total.months))),
                JSONMember("finalized", .number(String(finalized))), JSONMember("pending_ranges", .number(String(backlog.ranges))),
                JSONMember("oldest_pending_seconds", backlog.oldestSeconds.map { .number(String($0)) } ?? .null),
            ])),
            JSONMember("partitions", .object([
                JSONMember("created", .array(created.map(JSONValue.string))), JSONMember("dropped", .array(dropped.map(JSONValue.string))),
            ])),
            JSONMember("credentials", .array(warnings.map { warning in
                .object([
                    JSONMember("id", .number(String(warning.credentialID))), JSONMember("organization_id", .number(String(warning.organizationID))),
                    JSONMember("vendor", .string(warning.vendor)), JSONMember("state", .string(warning.state.rawValue)),
                    JSONMember("token_expires_at", warning.tokenExpiresAt.map { .string(Timestamp.rfc3339(seconds: $0, nanoseconds: 0, zoned: true)) } ?? .null),
                    JSONMember("last_error", warning.lastError.map(JSONValue.string) ?? .null),
                ])
            })),
            JSONMember("failed_steps", .array(failures.map(JSONValue.string))),
            JSONMember("duration_ms", .number(String(clock() - started))),
        ]))
        return writer.bytes
    }
}

extension Maintenance {
    /// An evidence request: `{"evidence": {"organization_id", "meter_ids", "from", "to", "expected_wh"}}` (docs/trust.md).
    func evidence(_ request: JSONValue, connection: PostgresConnection, context: LambdaContext) throws -> [UInt8] {
        guard let store else { throw EvidenceError("this function has no lake configured (METERLAKE_BUCKET): it cannot archive evidence") }
        func instant(_ name: String) throws -> Int64 {
            guard let text = request[name]?.text, case .zoned(let seconds) = ISO8601.parse(text) else {
                throw EvidenceError("evidence.\(name) must be an instant with its zone (2026-11-02T06:00:00Z)")
            }
            return seconds
        }
        guard let org = request["organization_id"]?.text.flatMap({ Int64($0) }), org > 0, case .array(let ids)? = request["meter_ids"] else {
            throw EvidenceError("evidence needs organization_id and meter_ids")
        }
        let evidence = EvidenceRequest(organizationID: org, meterIDs: ids.compactMap { $0.text.flatMap { Int64($0) } }, from: try instant("from"),
                                       to: try instant("to"), expectedWh: request["expected_wh"]?.double)
        let keeper = EvidenceKeeper(connection: connection, store: store, scratchDirectory: scratchDirectory)
        let id = try keeper.create(evidence)
        let row = try connection.query("SELECT data_hash, archive_path FROM default_event WHERE id = $1", [String(id)])
        context.logger.info("evidence created", metadata: ["evidenceId": .stringConvertible(id), "organizationId": .stringConvertible(org)])
        var writer = JSONWriter()
        writer.value(.object([JSONMember("evidence", .object([
            JSONMember("id", .number(String(id))), JSONMember("data_hash", .string(row[0, "data_hash"]!)),
            JSONMember("archive_path", .string(row[0, "archive_path"]!)),
        ]))]))
        return writer.bytes
    }
}

/// The database could not be reached or failed: the invocation fails, the next schedule retries.
struct MaintenanceFailure: ReportableError, CustomStringConvertible {
    let reason: String
    var errorType: String { "Maintenance.Transient" }
    var description: String { reason }
}
