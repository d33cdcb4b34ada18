import Core
import Cryptography
import Lake
import Postgres
import Store
import Validation

#if canImport(Glibc)
import Glibc
#endif

/// One file of a replay.
public struct ReplayedFile: Sendable, Equatable {
    /// The key the file landed under (`raw/…`), as `ingestion_log` names it.
    public var key: String
    /// Where it lies (`validated/…`): read, never moved.
    public var object: String
    public var summary: ReplaySummary?
    /// Why it was not replayed.
    public var problem: String?
}

/// Re-derives database rows from the files in `validated/` with today's validator code (after a
/// transform fix, say): the same readers, checks and vendor transforms, one transaction a file,
/// without moving any object, and marks the hours for the maintenance function (docs/trust.md).
public struct Replayer {
    public let connection: PostgresConnection
    public let store: any ObjectStore
    public let configuration: ValidatorConfiguration

    public init(connection: PostgresConnection, store: any ObjectStore, configuration: ValidatorConfiguration) {
        self.connection = connection
        self.store = store
        self.configuration = configuration
    }

    /// The validated files of `source` and `organizationID` that landed on a UTC day in
    /// `[from, to]` (`YYYY-MM-DD`), each replayed (or, with `dryRun`, only counted).
    public func run(source: SourceSystem, organizationID: Int64, from: String, to: String, dryRun: Bool, now: Int64) throws -> [ReplayedFile] {
        guard case .naive(let first) = ISO8601.parse(from + "T00:00"), case .naive(let last) = ISO8601.parse(to + "T00:00"), first <= last,
            from.utf8.count == 10, to.utf8.count == 10 else {
            throw EvidenceError("--from and --to must be days (YYYY-MM-DD), from not after to")
        }
        // The files come from ingestion_log (validated, with their destination), not from listing the lake.
        let logged = try connection.query("""
            SELECT key, destination FROM ingestion_log
            WHERE status = 'validated' AND destination IS NOT NULL AND data_source_id = $1 AND organization_id = $2
              AND key LIKE $3 AND substr(key, $4, 10) BETWEEN $5 AND $6
            ORDER BY key, finished_at
            """, [String(source.id), String(organizationID), "raw/\(source.rawValue)/\(organizationID)/%",
                  String("raw/\(source.rawValue)/\(organizationID)/".count + 1), from, to])
        var files: [ReplayedFile] = []
        var seen = Set<String>()
        for row in logged.rows {
            guard let rawKey = row[0], let object = row[1], seen.insert(object).inserted, let lakeKey = try? LakeKey(rawKey) else { continue }
            files.append(replay(object: object, rawKey: rawKey, lakeKey: lakeKey, dryRun: dryRun, now: now))
        }
        return files
    }

    private func replay(object: String, rawKey: String, lakeKey: LakeKey, dryRun: Bool, now: Int64) -> ReplayedFile {
        var result = ReplayedFile(key: rawKey, object: object)
        let scratch = configuration.scratchDirectory + "/meterlake-replay-" + Hex.encode(SecureRandom.bytes(8))
        defer { unlink(scratch) }
        do {
            let logged = try connection.query("""
                SELECT id, sha256, size, bucket FROM ingestion_log WHERE key = $1 AND status = 'validated' AND destination = $2
                ORDER BY finished_at DESC LIMIT 1
                """, [rawKey, object])
            guard logged.count == 1, let id = Int64(logged[0, "id"]!) else {
                result.problem = "no validated ingestion_log row names this object"
                return result
            }
            let info = try store.get(object, to: scratch)
            let digest = try FileDigest.sha256(path: scratch)
            guard digest.hex == logged[0, "sha256"] else {
                result.problem = "the object's SHA-256 (\(digest.hex.prefix(12))…) is not the file ingestion \(id) recorded (\(logged[0, "sha256"]!.prefix(12))…): not replayed"
                return result
            }
            let file = IngestedFile(bucket: logged[0, "bucket"]!, key: rawKey, size: info.size, etag: info.etag, sha256: digest.hex,
                                    source: lakeKey.source, organizationID: lakeKey.organizationID, destination: object)
            let reader = try ReadingFileReader(path: scratch, name: rawKey, sourceSystem: lakeKey.source, organizationID: lakeKey.organizationID,
                                               limits: configuration.limits, transforms: configuration.transforms, now: now, ingestedAt: now * 1000)
            result.summary = try ReadingLoader(connection: connection).replay(file, ingestionID: id, batches: {
                try reader.nextBatch(maximumRows: configuration.batchRows)
            }, dryRun: dryRun, accepts: { processed, rejected in configuration.accepts(rowsProcessed: processed, rowsRejected: rejected) })
        } catch .noSuchKey as ObjectStoreError {
            result.problem = "the object is no longer in validated/ (it expires 30 days after validation)"
        } catch {
            result.problem = "\(error)"
        }
        return result
    }
}
