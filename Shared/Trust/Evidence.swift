import Compression
import Core
import Cryptography
import Lake
import Postgres
import Store

/// What an evidence request names: an organisation's meters and a breach period (UTC, `[from, to)`).
public struct EvidenceRequest: Sendable, Equatable {
    public var organizationID: Int64
    public var meterIDs: [Int64]
    /// Unix seconds, on whole hours.
    public var from: Int64
    public var to: Int64
    /// The energy the contract expected in the period, when the caller states it.
    public var expectedWh: Double?

    public init(organizationID: Int64, meterIDs: [Int64], from: Int64, to: Int64, expectedWh: Double?) {
        self.organizationID = organizationID
        self.meterIDs = Array(Set(meterIDs)).sorted()
        self.from = from
        self.to = to
        self.expectedWh = expectedWh
    }
}

/// Why evidence could not be made, or does not verify.
public struct EvidenceError: Error, Equatable, Sendable, CustomStringConvertible, ReportableError {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
    public var errorType: String { "Evidence.Refused" }
}

/// Breach evidence that survives the readings (docs/trust.md): the readings of the meters in the
/// period written once, in a canonical serialisation, to `archive/evidence/{org}/{id}.json.gz`;
/// a `default_event` row with the figures from the aggregates, a sample, the SHA-256 of the
/// serialisation, one SHA-256 per 1,000 readings, and the chain positions of the files the
/// readings came from.
public struct EvidenceKeeper {
    public let connection: PostgresConnection
    public let store: any ObjectStore
    public let scratchDirectory: String

    public static let chunkReadings = 1000
    public static let format = "meterlake.evidence.v1"
    /// Readings one archive may hold.
    /// Readings one archive may hold (about 300 MB of memory a half million while it is built).
    public static let maximumReadings = 500_000

    public init(connection: PostgresConnection, store: any ObjectStore, scratchDirectory: String = "/tmp") {
        self.connection = connection
        self.store = store
        self.scratchDirectory = scratchDirectory
    }

    /// The archive's canonical bytes: a header line, then one line per reading (sorted by meter,
    /// then time): `[meter_id, "timestamp", interval_s, "energy_wh"|null, "power_w"|null, "quality", ingestion_id|null]`,
    /// numbers of the database as PostgreSQL prints them (exact round trip), each line ending in `\n`.
    func document(_ request: EvidenceRequest) throws -> (bytes: [UInt8], readings: Int, headerHash: String, chunks: [String], lines: [String], ingestionIDs: [Int64], actualWh: Double) {
        let meters = try connection.query("""
            SELECT m.id, s.name AS source, m.external_site_id, m.external_device_id FROM meter m JOIN data_source s ON s.id = m.data_source_id
            WHERE m.id = ANY($1::bigint[]) AND m.organization_id = $2 ORDER BY m.id
            """, [array(request.meterIDs), String(request.organizationID)])
        guard meters.count == request.meterIDs.count else {
            throw EvidenceError("meters \(request.meterIDs.map(String.init).joined(separator: ", ")) are not all meters of organisation \(request.organizationID)")
        }
        var header = JSONWriter()
        header.beginObject()
        header.key("format"); header.string(Self.format)
        header.key("organization_id"); header.number(request.organizationID)
        header.key("period"); header.beginObject()
        header.key("start"); header.string(Timestamp.rfc3339(seconds: request.from, nanoseconds: 0, zoned: true))
        header.key("end"); header.string(Timestamp.rfc3339(seconds: request.to, nanoseconds: 0, zoned: true))
        header.endObject()
        if let expected = request.expectedWh {
            header.key("expected_wh"); header.raw(JSONValue.format(expected))
        }
        header.key("meters"); header.beginArray()
        for row in 0..<meters.count {
            header.beginObject()
            header.key("meter_id"); header.number(Int64(meters[row, "id"]!)!)
            header.key("source"); header.string(meters[row, "source"]!)
            header.key("external_site_id"); header.string(meters[row, "external_site_id"]!)
            header.key("external_device_id"); header.string(meters[row, "external_device_id"]!)
            header.endObject()
        }
        header.endArray()
        header.endObject()
        var bytes = header.bytes + [0x0A]
        let headerHash = Hex.encode(SHA256.hash(bytes))
        // Shortest exact text for every double, whatever the session was left with.
        try connection.query("SET LOCAL extra_float_digits = 1")
        let readings = try connection.query("""
            SELECT meter_id, (extract(epoch FROM "timestamp"))::bigint AS t, reading_interval_seconds, energy_wh::text AS e, power_w::text AS p,
                   quality, ingestion_id
            FROM meter_reading WHERE meter_id = ANY($1::bigint[]) AND "timestamp" >= to_timestamp($2) AND "timestamp" < to_timestamp($3)
            ORDER BY meter_id, "timestamp" LIMIT $4
            """, [array(request.meterIDs), String(request.from), String(request.to), String(Self.maximumReadings + 1)])
        guard readings.count <= Self.maximumReadings else { throw EvidenceError("more than \(Self.maximumReadings) readings: split the period") }
        var chunks: [String] = []
        var lines: [String] = []
        var chunk: [UInt8] = []
        var ingestionIDs = Set<Int64>()
        var actual = 0.0
        for row in 0..<readings.count {
            var line = JSONWriter()
            line.beginArray()
            line.number(Int64(readings[row, "meter_id"]!)!)
            line.string(Timestamp.rfc3339(seconds: Int64(readings[row, "t"]!)!, nanoseconds: 0, zoned: true))
            line.number(Int64(readings[row, "reading_interval_seconds"]!)!)
            if let energy = readings[row, "e"] {
                line.string(energy)
                if readings[row, "quality"] != "missing" { actual += Double(energy) ?? 0 }
            } else {
                line.null()
            }
            if let power = readings[row, "p"] { line.string(power) } else { line.null() }
            line.string(readings[row, "quality"]!)
            if let id = readings[row, "ingestion_id"].flatMap({ Int64($0) }) {
                line.number(id)
                ingestionIDs.insert(id)
            } else {
                line.null()
            }
            line.endArray()
            let text = line.bytes + [0x0A]
            if row < 3 || row >= readings.count - 3 { lines.append(String(decoding: line.bytes, as: UTF8.self)) }
            chunk += text
            bytes += text
            if (row + 1) % Self.chunkReadings == 0 {
                chunks.append(Hex.encode(SHA256.hash(chunk)))
                chunk = []
            }
        }
        if !chunk.isEmpty { chunks.append(Hex.encode(SHA256.hash(chunk))) }
        return (bytes, readings.count, headerHash, chunks, lines, ingestionIDs.sorted(), actual)
    }

    /// The figures of the period from the aggregates (hourly rows): energy, available and expected hours.
    func figures(_ request: EvidenceRequest) throws -> (actualWh: Double, hoursAvailable: Double, hoursExpected: Double) {
        let rows = try connection.query("""
            SELECT coalesce(sum(energy_wh), 0) AS energy, coalesce(sum(hours_available), 0) AS available
            FROM meter_aggregate WHERE period = 'hourly' AND meter_id = ANY($1::bigint[])
              AND period_start >= to_timestamp($2) AND period_start < to_timestamp($3)
            """, [array(request.meterIDs), String(request.from), String(request.to)])
        let hours = Double(request.to - request.from) / 3600 * Double(request.meterIDs.count)
        return (Double(rows[0, "energy"]!) ?? 0, Double(rows[0, "available"]!) ?? 0, hours)
    }

    /// Makes the evidence: the archive first, then the row; returns the row's id.
    /// - Throws: ``EvidenceError`` when the period is not whole hours, the meters are not the
    ///   organisation's, or the period's aggregates are not final (pending dirty ranges).
    public func create(_ request: EvidenceRequest) throws -> Int64 {
        guard request.from < request.to, request.from % 3600 == 0, request.to % 3600 == 0 else {
            throw EvidenceError("the breach period must start and end on whole UTC hours, start before end")
        }
        guard !request.meterIDs.isEmpty, request.meterIDs.count <= 1000 else { throw EvidenceError("name 1 to 1000 meters") }
        if let expected = request.expectedWh, !(expected.isFinite && expected >= 0 && expected < 1e15) {
            throw EvidenceError("expected_wh must be a number from 0 to 1e15")
        }
        // One snapshot for the check, the archive and the figures: a load committing meanwhile
        // cannot make the archive and the row disagree.
        return try connection.transaction {
            try connection.query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            let pending = try connection.query("""
                SELECT count(*) AS n FROM aggregate_dirty WHERE meter_id = ANY($1::bigint[]) AND first_hour < to_timestamp($3) AND last_hour >= to_timestamp($2)
                """, [array(request.meterIDs), String(request.from), String(request.to)])
            guard pending[0, "n"] == "0" else {
                throw EvidenceError("the period's aggregates are not final (\(pending[0, "n"]!) dirty ranges wait): run the maintenance function first")
            }
            let document = try document(request)
            guard document.readings > 0 else { throw EvidenceError("no readings of these meters in the period: nothing to keep") }
            let figures = try figures(request)
            guard !Self.differs(figures.actualWh, document.actualWh) else {
                throw EvidenceError("the aggregates say \(JSONValue.format(figures.actualWh)) Wh, the readings \(JSONValue.format(document.actualWh)): they are not final; run the maintenance function first")
            }
            let dataHash = Hex.encode(SHA256.hash(document.bytes))
            let id = Int64(try connection.query("SELECT nextval(pg_get_serial_sequence('default_event', 'id')) AS id")[0, "id"]!)!
            let archivePath = "archive/evidence/\(request.organizationID)/\(id).json.gz"
            let compressed = try Deflater.gzip(document.bytes)
            try store.put(archivePath, body: .bytes(compressed), contentType: "application/gzip")
            let sources = try IngestionChain.positions(ids: document.ingestionIDs, connection: connection)
            let evidence = Self.evidence(request, figures: figures, readings: document.readings, sample: document.lines, dataHash: dataHash,
                                         headerHash: document.headerHash, chunks: document.chunks, archivePath: archivePath,
                                         archiveBytes: compressed.count, sources: sources)
            try connection.query("""
                INSERT INTO default_event (id, organization_id, breach_start, breach_end, meter_ids, evidence, data_hash, archive_path)
                VALUES ($1, $2, to_timestamp($3), to_timestamp($4), $5::bigint[], $6::jsonb, $7, $8)
                """, [String(id), String(request.organizationID), String(request.from), String(request.to), array(request.meterIDs),
                      evidence.serialized, dataHash, archivePath])
            return id
        }
    }

    /// Two figures differ beyond a relative 1e-6 (sums of doubles in another order).
    static func differs(_ a: Double, _ b: Double) -> Bool { !(abs(a - b) <= 1e-6 * max(1, abs(b))) }

    static func evidence(_ request: EvidenceRequest, figures: (actualWh: Double, hoursAvailable: Double, hoursExpected: Double), readings: Int,
                         sample: [String], dataHash: String, headerHash: String, chunks: [String], archivePath: String, archiveBytes: Int,
                         sources: [(id: Int64, key: String, position: Int64?, hash: String?)]) -> JSONValue {
        func number(_ value: Double) -> JSONValue { .number(JSONValue.format(value)) }
        var members = [
            JSONMember("format", .string(format)),
            JSONMember("breach_period", .object([JSONMember("start", .string(Timestamp.rfc3339(seconds: request.from, nanoseconds: 0, zoned: true))),
                                                 JSONMember("end", .string(Timestamp.rfc3339(seconds: request.to, nanoseconds: 0, zoned: true)))])),
            JSONMember("meters", .array(request.meterIDs.map { .number(String($0)) })),
            JSONMember("actual_wh", number(figures.actualWh)),
            JSONMember("availability", .object([JSONMember("hours_available", number(figures.hoursAvailable)),
                                                JSONMember("hours_expected", number(figures.hoursExpected)),
                                                JSONMember("pct", number(figures.hoursExpected > 0 ? 100 * figures.hoursAvailable / figures.hoursExpected : 0))])),
        ]
        if let expected = request.expectedWh {
            members.append(JSONMember("expected_wh", number(expected)))
            members.append(JSONMember("shortfall_wh", number(max(0, expected - figures.actualWh))))
        }
        members += [
            JSONMember("readings", .number(String(readings))),
            JSONMember("sample_readings", .array(sample.map(JSONValue.string))),
            JSONMember("data_hash", .string(dataHash)),
            JSONMember("header_hash", .string(headerHash)),
            JSONMember("chunk_readings", .number(String(chunkReadings))),
            JSONMember("chunk_hashes", .array(chunks.map(JSONValue.string))),
            JSONMember("archive_path", .string(archivePath)),
            JSONMember("archive_bytes", .number(String(archiveBytes))),
            JSONMember("sources", .array(sources.map { source in
                .object([JSONMember("ingestion_id", .number(String(source.id))), JSONMember("key", .string(source.key)),
                         JSONMember("chain_position", source.position.map { .number(String($0)) } ?? .null),
                         JSONMember("row_hash", source.hash.map(JSONValue.string) ?? .null)])
            })),
        ]
        return .object(members)
    }

    private func array(_ ids: [Int64]) -> String { "{" + ids.map(String.init).joined(separator: ",") + "}" }
}

extension JSONValue {
    /// A double as JSON text: integral values without a fraction, others to 6 decimals (figures for people).
    static func format(_ value: Double) -> String {
        guard value.isFinite else { return "null" }
        // Beyond what six decimals in an Int64 hold: the shortest exact form.
        guard abs(value) < 1e12 else { return String(value) }
        if value == value.rounded() { return String(Int64(value)) }
        var text = String(Int64((value * 1_000_000).rounded()))
        let negative = text.hasPrefix("-")
        if negative { text.removeFirst() }
        while text.count < 7 { text = "0" + text }
        var result = String(text.dropLast(6)) + "." + String(text.suffix(6))
        while result.hasSuffix("0") { result.removeLast() }
        return (negative ? "-" : "") + result
    }
}
