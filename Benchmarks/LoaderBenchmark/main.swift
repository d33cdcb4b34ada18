// Loader throughput beside the physical limit, in the same run and the same database: a plain
// `COPY meter_reading FROM STDIN` of the same rows (meters and partitions made beforehand, so the
// COPY does nothing else). Goal: the loader at >= 0.8x of COPY.
//
//   Benchmarks/run.sh   (starts a throwaway PostgreSQL and sets DATABASE_URL)
import BenchmarkSupport
import Core
import Store
import Postgres

#if canImport(Glibc)
import Glibc
#endif

let rows = CommandLine.arguments.count > 1 ? Int(CommandLine.arguments[1]) ?? 1_000_000 : 1_000_000
guard let url = getenv("DATABASE_URL").map({ String(cString: $0) }) else {
    fatalError("DATABASE_URL is not set: run Benchmarks/run.sh")
}


let connection = try PostgresConnection(url: url)
try connection.runScript("DROP SCHEMA IF EXISTS bench CASCADE; CREATE SCHEMA bench; SET search_path TO bench")
try MigrationRunner.migrate(connection)
try connection.query("INSERT INTO organization (id, name) VALUES (1, 'bench')")

// 1,000 devices × 1,000 quarter hours from 2026-03-01 (11 days: one partition).
let start: Int64 = 1_772_323_200
let devices = 1000
var readings: [MeterReading] = []
readings.reserveCapacity(rows)
for index in 0..<rows {
    readings.append(MeterReading(
        sourceSystem: .manual, organizationID: 1, externalSiteID: "site-\(index % devices / 10)",
        externalDeviceID: "inv-\(index % devices)", timestamp: start + Int64(index / devices) * 900, readingIntervalSeconds: 900,
        energyWh: Double(index % 4000) / 4, powerW: Double(index % 4000), temperatureC: 21.5,
        otherMetrics: [JSONMember("mode", .string("MPPT"))], ingestedAt: 1_772_400_000_000))
}
let file = IngestedFile(bucket: "bench", key: "raw/manual/1/2026-03-01/bench.csv", size: 1, sha256: String(repeating: "0", count: 64), source: .manual, organizationID: 1)

/// Plain COPY of the same rows into the same table: meters and the partition exist already.
@MainActor func plainCopy() throws -> Double {
    try connection.runScript("TRUNCATE meter_reading, ingestion_log; DELETE FROM meter")
    try connection.query("""
        INSERT INTO meter (organization_id, data_source_id, external_site_id, external_device_id)
        SELECT 1, 6, 'site-' || (d / 10), 'inv-' || d FROM generate_series(0, \(devices - 1)) AS d
        """)
    try PartitionMaintenance.ensure(monthIndex: PartitionMaintenance.monthIndex(of: start), connection: connection)
    var ids: [String: Int64] = [:]
    for row in try connection.query("SELECT id, external_device_id FROM meter").rows { ids[row[1]!] = Int64(row[0]!)! }
    return try seconds {
        try connection.transaction {
            try connection.copy(#"COPY meter_reading (meter_id, organization_id, "timestamp", reading_interval_seconds, energy_wh, power_w, irradiance_wm2, temperature_c, other_metrics, quality, ingested_at, ingestion_id) FROM STDIN"#) { writer in
                for reading in readings {
                    writer.plain(String(ids[reading.externalDeviceID]!))
                    writer.plain(String(reading.organizationID))
                    writer.plain(Timestamp.rfc3339(milliseconds: reading.timestamp * 1000))
                    writer.plain(String(reading.readingIntervalSeconds))
                    writer.plain(String(reading.energyWh!))
                    writer.plain(String(reading.powerW!))
                    writer.null()
                    writer.plain(String(reading.temperatureC!))
                    writer.text(reading.otherMetricsJSON)
                    writer.plain(reading.quality.rawValue)
                    writer.plain(Timestamp.rfc3339(milliseconds: reading.ingestedAt))
                    writer.null()
                    writer.endRow()
                    try connection.flush(&writer)
                }
            }
        }
    }
}

/// The loader, from nothing: meters, partitions, COPY, ingestion_log.
@MainActor func loader() throws -> Double {
    try connection.runScript("TRUNCATE meter_reading, ingestion_log; DELETE FROM meter")
    var offset = 0
    return try seconds {
        let outcome = try ReadingLoader(connection: connection).load(file) {
            guard offset < readings.count else { return nil }
            let batch = Array(readings[offset..<min(readings.count, offset + 10_000)])
            offset += batch.count
            return ReadingBatch(readings: batch, rowsProcessed: batch.count)
        }
        guard case .loaded(let summary) = outcome, summary.rowsInserted == rows else { fatalError("load failed: \(outcome)") }
    }
}

print("meterlake loader benchmark: \(rows) rows, alternating runs, best of 2 each")
var copyBest = Double.infinity
var loaderBest = Double.infinity
for _ in 0..<2 {
    copyBest = min(copyBest, try plainCopy())
    loaderBest = min(loaderBest, try loader())
}
let copyRate = Double(rows) / copyBest
let loaderRate = Double(rows) / loaderBest
print("plain COPY       \(Int(copyRate)) rows/s")
print("ReadingLoader    \(Int(loaderRate)) rows/s")
print("loader/COPY      \(Double(Int(loaderRate / copyRate * 1000)) / 1000)  (goal >= 0.8)")
try connection.runScript("DROP SCHEMA bench CASCADE")
