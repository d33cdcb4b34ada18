import Compression
import Core
import Cryptography
import Lake
import Postgres
import Store

#if canImport(Glibc)
import Glibc
#endif

extension EvidenceKeeper {
    /// What `meterlake evidence verify` found: every problem in words (where, what), or none.
    public struct Verification: Sendable, Equatable {
        public var id: Int64
        public var readings: Int
        public var problems: [String]
        public var verified: Bool { problems.isEmpty }
    }

    /// Re-hashes the archive and checks it against the row and the aggregates; works without the
    /// readings (their partitions may be gone).
    public func verify(id: Int64) throws -> Verification {
        let rows = try connection.query("""
            SELECT organization_id, extract(epoch FROM breach_start)::bigint AS start, extract(epoch FROM breach_end)::bigint AS end_,
                   meter_ids::text AS meters, evidence::text AS evidence, data_hash, archive_path
            FROM default_event WHERE id = $1
            """, [String(id)])
        guard rows.count == 1 else { throw EvidenceError("there is no evidence \(id)") }
        var problems: [String] = []
        guard let evidence = try? JSONParser.parse(Array(rows[0, "evidence"]!.utf8)) else { throw EvidenceError("evidence \(id): the evidence column is not JSON") }
        let dataHash = rows[0, "data_hash"]!
        let archivePath = rows[0, "archive_path"] ?? ""
        let meters = rows[0, "meters"]!.dropFirst().dropLast().split(separator: ",").compactMap { Int64($0) }
        let request = EvidenceRequest(organizationID: Int64(rows[0, "organization_id"]!)!, meterIDs: meters, from: Int64(rows[0, "start"]!)!,
                                      to: Int64(rows[0, "end_"]!)!, expectedWh: evidence["expected_wh"]?.double)
        func text(_ value: JSONValue?) -> String { value?.text ?? value?.serialized ?? "absent" }

        // 1. The row against itself: columns and the evidence document must agree.
        if evidence["data_hash"] != .string(dataHash) { problems.append("row: data_hash column \(dataHash.prefix(12))… differs from evidence.data_hash \(text(evidence["data_hash"]).prefix(12))…") }
        if evidence["archive_path"] != .string(archivePath) { problems.append("row: archive_path column differs from evidence.archive_path") }
        if evidence["breach_period"]?["start"] != .string(Timestamp.rfc3339(seconds: request.from, nanoseconds: 0, zoned: true))
            || evidence["breach_period"]?["end"] != .string(Timestamp.rfc3339(seconds: request.to, nanoseconds: 0, zoned: true)) {
            problems.append("row: breach_start/breach_end differ from evidence.breach_period")
        }
        if evidence["meters"] != .array(request.meterIDs.map { .number(String($0)) }) { problems.append("row: meter_ids differ from evidence.meters") }

        // 2. The archive: bytes, hash, chunks.
        let scratch = scratchDirectory + "/meterlake-evidence-" + Hex.encode(SecureRandom.bytes(8))
        defer { unlink(scratch) }
        let archive: [UInt8]
        do {
            _ = try store.get(archivePath, to: scratch)
            guard let compressed = FileIO.readAll(scratch) else { throw EvidenceError("cannot read the downloaded archive") }
            archive = try Inflater.gunzip(compressed, limit: 1 << 30)
        } catch let error as ObjectStoreError {
            problems.append("archive \(archivePath): cannot be read (\(error))")
            return Verification(id: id, readings: 0, problems: problems)
        } catch {
            problems.append("archive \(archivePath): its compressed bytes are damaged (\(error))")
            return Verification(id: id, readings: 0, problems: problems)
        }
        let lines = archive.split(separator: 0x0A, omittingEmptySubsequences: false).dropLast()
        let readingLines = Array(lines.dropFirst())
        if Hex.encode(SHA256.hash(archive)) != dataHash {
            var located = false
            if let header = lines.first, Hex.encode(SHA256.hash(Array(header) + [0x0A])) != text(evidence["header_hash"]) {
                problems.append("archive \(archivePath): line 1 (the header) changed")
                located = true
            }
            if case .array(let chunks)? = evidence["chunk_hashes"] {
                for (index, expected) in chunks.enumerated() {
                    let first = index * Self.chunkReadings
                    guard first < readingLines.count else {
                        problems.append("archive \(archivePath): readings \(first + 1)… are missing")
                        located = true
                        break
                    }
                    let slice = readingLines[first..<min(readingLines.count, first + Self.chunkReadings)]
                    let bytes: [UInt8] = slice.flatMap { line -> [UInt8] in Array(line) + [0x0A] }
                    if .string(Hex.encode(SHA256.hash(bytes))) != expected {
                        problems.append("archive \(archivePath): readings \(first + 1)–\(first + slice.count) (lines \(first + 2)–\(first + slice.count + 1)) changed")
                        located = true
                    }
                }
            }
            if !located { problems.append("archive \(archivePath): its SHA-256 is not the row's data_hash (readings were added at the end)") }
        }

        // 3. The archive's header against the row: the claim must be the archive's.
        if let line = lines.first, let header = try? JSONParser.parse(Array(line)) {
            if header["organization_id"]?.text != String(request.organizationID) {
                problems.append("archive line 1: organisation \(text(header["organization_id"])), the row says \(request.organizationID)")
            }
            if header["period"]?["start"] != .string(Timestamp.rfc3339(seconds: request.from, nanoseconds: 0, zoned: true))
                || header["period"]?["end"] != .string(Timestamp.rfc3339(seconds: request.to, nanoseconds: 0, zoned: true)) {
                problems.append("archive line 1: the period \(text(header["period"]?["start"]))–\(text(header["period"]?["end"])) is not the row's breach period")
            }
            var archived: [Int64] = []
            if case .array(let meters)? = header["meters"] { archived = meters.compactMap { $0["meter_id"]?.text.flatMap { Int64($0) } } }
            if archived != request.meterIDs { problems.append("archive line 1: meters \(archived), the row says \(request.meterIDs)") }
            let archivedExpected = header["expected_wh"]?.double, statedExpected = evidence["expected_wh"]?.double
            if (archivedExpected == nil) != (statedExpected == nil) || (archivedExpected.map { a in statedExpected.map { Self.differs(a, $0) } ?? true } ?? false) {
                problems.append("evidence.expected_wh is \(text(evidence["expected_wh"])), the archive's header says \(text(header["expected_wh"]))")
            }
        } else {
            problems.append("archive line 1: not the JSON header")
        }

        // 4. The archive's content against the row and the aggregates, hour by hour.
        var actual = 0.0
        var hours: [String: (energy: Double, count: Int)] = [:]
        for line in readingLines {
            guard case .array(let fields)? = try? JSONParser.parse(Array(line)), fields.count == 7,
                let meter = fields[0].text, let time = fields[1].text, time.utf8.count >= 13 else { continue }
            let key = meter + " " + String(time.prefix(13))
            var hour = hours[key] ?? (0, 0)
            if fields[5] != .string("missing"), let energy = fields[3].text.flatMap(Double.init) {
                actual += energy
                hour.energy += energy
                hour.count += 1
            }
            hours[key] = hour
        }
        let stored = try connection.query("""
            SELECT meter_id::text || ' ' || to_char(period_start AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24') AS k, coalesce(energy_wh, 0) AS e, reading_count AS n
            FROM meter_aggregate WHERE period = 'hourly' AND meter_id = ANY($1::bigint[])
              AND period_start >= to_timestamp($2) AND period_start < to_timestamp($3)
            """, ["{" + request.meterIDs.map(String.init).joined(separator: ",") + "}", String(request.from), String(request.to)])
        var aggregated: [String: (energy: Double, count: Int)] = [:]
        for row in stored.rows { aggregated[row[0]!] = (Double(row[1]!) ?? 0, Int(row[2]!) ?? 0) }
        var hourProblems: [String] = []
        for key in Set(hours.keys).union(aggregated.keys).sorted() {
            let archived = hours[key] ?? (0, 0), kept = aggregated[key] ?? (0, 0)
            if Self.differs(archived.energy, kept.energy) || archived.count != kept.count {
                let parts = key.split(separator: " ")
                hourProblems.append("meter \(parts[0]) hour \(parts.count > 1 ? parts[1] : ""):00Z: the archive holds \(JSONValue.format(archived.energy)) Wh in \(archived.count) readings, the aggregates \(JSONValue.format(kept.energy)) Wh in \(kept.count)")
            }
        }
        problems += hourProblems.prefix(10)
        if hourProblems.count > 10 { problems.append("… and \(hourProblems.count - 10) more hours") }
        if evidence["readings"]?.text != String(readingLines.count) {
            problems.append("evidence.readings is \(text(evidence["readings"])), the archive holds \(readingLines.count)")
        }
        let sample = (readingLines.prefix(3) + (readingLines.count > 3 ? readingLines.suffix(min(3, readingLines.count - 3)) : [])).map { String(decoding: $0, as: UTF8.self) }
        if evidence["sample_readings"] != .array(sample.map(JSONValue.string)) { problems.append("evidence.sample_readings differ from the archive's first and last readings") }
        let stated = evidence["actual_wh"]?.double ?? .nan
        func differs(_ a: Double, _ b: Double) -> Bool { Self.differs(a, b) }
        if differs(stated, actual) { problems.append("evidence.actual_wh is \(text(evidence["actual_wh"])), the archive's readings sum to \(JSONValue.format(actual))") }
        let figures = try figures(request)
        if differs(figures.actualWh, actual) {
            problems.append("the aggregates now say \(JSONValue.format(figures.actualWh)) Wh for the period, the archive's readings \(JSONValue.format(actual))")
        }
        if differs(evidence["availability"]?["hours_available"]?.double ?? .nan, figures.hoursAvailable)
            || differs(evidence["availability"]?["hours_expected"]?.double ?? .nan, figures.hoursExpected) {
            problems.append("evidence.availability differs from the aggregates (\(JSONValue.format(figures.hoursAvailable)) of \(JSONValue.format(figures.hoursExpected)) hours)")
        }
        if let expected = request.expectedWh, differs(evidence["shortfall_wh"]?.double ?? .nan, max(0, expected - stated)) {
            problems.append("evidence.shortfall_wh is \(text(evidence["shortfall_wh"])), expected_wh − actual_wh is \(JSONValue.format(max(0, expected - stated)))")
        }

        // 5. The files the readings came from: still at their chain positions, with their hashes.
        if case .array(let sources)? = evidence["sources"] {
            let ids = sources.compactMap { $0["ingestion_id"]?.text.flatMap { Int64($0) } }
            let now = Dictionary(uniqueKeysWithValues: try IngestionChain.positions(ids: ids, connection: connection).map { ($0.id, $0) })
            for source in sources {
                guard let id = source["ingestion_id"]?.text.flatMap({ Int64($0) }) else { continue }
                let cited = (source["chain_position"]?.text, source["row_hash"]?.text)
                guard let current = now[id] else {
                    problems.append("source ingestion \(id) (\(text(source["key"]))): its ingestion_log row is gone")
                    continue
                }
                if cited.0 != current.position.map(String.init) || cited.1 != current.hash {
                    problems.append("source ingestion \(id) (\(current.key)): cited at chain position \(cited.0 ?? "none"), now at \(current.position.map(String.init) ?? "none") with another hash")
                }
            }
        }
        return Verification(id: id, readings: readingLines.count, problems: problems)
    }
}
