import Core
import Foundation
import Testing
import TestSupport

/// Writes a Parquet file with pyarrow: `script` is Python that builds `table` (pyarrow is
/// imported as `pa`, `datetime` and `decimal` are available).
func pyarrowFile(_ script: String) throws -> [UInt8] {
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("meterlake-\(UUID().uuidString).parquet").path
    defer { try? FileManager.default.removeItem(atPath: path) }
    let program = """
        import sys, datetime, decimal
        import pyarrow as pa, pyarrow.parquet as pq
        \(script)
        pq.write_table(table, sys.argv[1])
        """
    let child = try ChildProcess("/usr/bin/env", arguments: ["python3", "-c", program, path], environment: ProcessInfo.processInfo.environment)
    let status = try child.waitForExit(timeout: 60)
    #expect(status == 0, "pyarrow failed: \(child.standardError)")
    return Array(try Data(contentsOf: URL(fileURLWithPath: path)))
}

/// Parquet files as the validator reads them: columns matched to the canonical fields by name,
/// typed values checked by the same rules as text.
@Suite struct ParquetReadingTests {
    /// The sample's extra column keeps its name as the file spells it (Snowflake upper-cases).
    var expectedParquetReadings: [MeterReading] {
        var readings = expectedSampleReadings
        readings[0].otherMetrics = [JSONMember("INVERTER_MODE", .string("MPPT"))]
        readings[3].otherMetrics = [JSONMember("INVERTER_MODE", .string("derived, from 15-min data"))]
        return readings
    }

    @Test func sampleUnloadYieldsTheDocumentedReadings() throws {
        let bytes = try sample("readings.parquet")
        let result = try read(bytes, name: "raw/snowflake/42/2026-03-01/data_0_0_0.snappy.parquet")
        #expect(result.format == DetectedFormat(format: .parquet, gzip: false))
        #expect(result.violations == [])
        #expect(result.readings == expectedParquetReadings)
        // Read from a file with random access, as the validator does.
        let path = Fixture.repository.appendingPathComponent("docs/samples/readings.parquet").path
        let reader = try ReadingFileReader(path: path, name: "data_0_0_0.snappy.parquet", sourceSystem: .manual, organizationID: 42,
                                           now: sampleNow, ingestedAt: sampleIngestedAt)
        var readings: [MeterReading] = []
        while let batch = try reader.nextBatch(maximumRows: 3) { readings += batch.readings }
        #expect(readings == expectedParquetReadings)
    }

    /// One page per column is held at a time, and all of them together stay under a budget: a
    /// file of many columns with large pages is refused, not allowed to exhaust the function.
    @Test func theColumnsCurrentPagesShareOneMemoryBudget() throws {
        var limits = ValidationLimits()
        limits.parquet.maximumBytesInFlight = 64
        let error = #expect(throws: FileFormatError.self) {
            _ = try read(try sample("readings.parquet"), name: "data.parquet", limits: limits)
        }
        guard case .parquet(.limitExceeded(let message))? = error else {
            Issue.record("expected a Parquet limit, got \(String(describing: error))")
            return
        }
        #expect(message.contains("the current pages of all columns hold"), "\(message)")
        #expect(message.contains("more than the limit of 64"))
        limits.parquet.maximumBytesInFlight = 4096
        #expect(try read(try sample("readings.parquet"), name: "data.parquet", limits: limits).readings == expectedParquetReadings)
    }

    /// A Snowflake-style unload where some intervals have no energy but still a power figure,
    /// marked `missing`: every row loads.
    @Test func missingEnergyWithPowerLoadsFromParquet() throws {
        let bytes = try pyarrowFile("""
            t = datetime.datetime
            table = pa.table({
                "EXTERNAL_SITE_ID": ["s"] * 4, "EXTERNAL_DEVICE_ID": ["d"] * 4,
                "TIMESTAMP": pa.array([t(2026, 3, 1, 6, 0), t(2026, 3, 1, 6, 15), t(2026, 3, 1, 6, 30), t(2026, 3, 1, 6, 45)], pa.timestamp("us", tz="UTC")),
                "READING_INTERVAL_SECONDS": pa.array([900] * 4, pa.int32()),
                "ENERGY_WH": pa.array([1000.0, None, None, 250.0]),
                "POWER_W": pa.array([4000.0, 3900.0, None, 1000.0]),
                "QUALITY": ["measured", "missing", "missing", "estimated"],
            })
            """)
        let result = try read(bytes, name: "raw/snowflake/42/2026-03-01/data_0_0_0.snappy.parquet")
        #expect(result.violations == [])
        #expect(result.readings.map(\.quality) == [.measured, .missing, .missing, .estimated])
        #expect(result.readings.map(\.powerW) == [4000, 3900, nil, 1000])
        #expect(result.readings.map(\.energyWh) == [1000, nil, nil, 250])
    }

    @Test func typedValuesFollowTheSameRules() throws {
        let bytes = try pyarrowFile("""
            t = datetime.datetime
            table = pa.table({
                "External_Site_ID": ["s", "s", "s", "s", "s", "s", "s"],
                "external_device_id": pa.array([1, 2, 3, 4, 5, 6, 7], pa.int64()),
                "timestamp": pa.array([t(2026, 3, 1, 6, 0), t(2026, 3, 1, 6, 0, 0, 500), t(2026, 3, 1, 6, 0), t(2026, 3, 1, 7, 0),
                                       t(2026, 3, 1, 6, 0), t(2026, 3, 1, 6, 0), t(2026, 3, 1, 6, 0)], pa.timestamp("us")),
                "reading_interval_seconds": pa.array([900, 900, 301, 900, 900, 900, 900], pa.int16()),
                "energy_wh": pa.array([1.5, 1.0, 1.0, 2.0, -2.0, None, float("nan")]),
                "utc_offset": [None, None, None, "+01:00", None, None, None],
                "quality": ["measured", None, None, None, None, "estimated", None],
                "count": pa.array([10, None, 2**40, None, None, None, None], pa.uint64()),
                "price": pa.array([decimal.Decimal("-12.340"), None, None, None, None, None, None], pa.decimal128(9, 3)),
                "day": pa.array([datetime.date(2026, 3, 1), None, None, None, None, None, None], pa.date32()),
                "on": pa.array([True, None, None, None, None, None, None]),
                "tag": pa.array([b"\\x01\\xab\\x00\\xff", None, None, None, None, None, None], pa.binary(4)),
            })
            """)
        let result = try read(bytes, name: "typed.parquet")
        #expect(result.processed == 7)
        // Row 1: a naive TIMESTAMP read as UTC; the device id is an integer column.
        let first = try #require(result.readings.first)
        #expect(first.externalDeviceID == "1" && first.timestamp == 1_772_344_800 && first.energyWh == 1.5)
        #expect(first.otherMetrics == [
            JSONMember("count", .number("10")), JSONMember("price", .number("-12.340")),
            JSONMember("day", .string("2026-03-01")), JSONMember("on", .bool(true)), JSONMember("tag", .string("01ab00ff")),
        ])
        // Row 4: the row's utc_offset applies to its naive timestamp (07:00+01:00 = 06:00Z).
        #expect(result.readings.first { $0.externalDeviceID == "4" }?.timestamp == 1_772_344_800)
        let codes = Dictionary(grouping: result.violations, by: \.row).mapValues { $0.map(\.code.rawValue).sorted() }
        #expect(codes[2] == ["invalid_timestamp"])  // half a millisecond past the hour
        #expect(codes[3] == ["invalid_interval"])
        #expect(codes[5] == ["negative_value"])
        #expect(codes[7] == ["not_finite"])
        #expect(Set(result.readings.map(\.externalDeviceID)) == ["1", "4", "6"])
        #expect(result.violations.allSatisfy { $0.line == 0 && !$0.description.hasPrefix("line") })
        #expect(result.violations.first { $0.row == 2 }?.value == "2026-03-01T06:00:00.0005")
    }

    @Test func utcTimestampsAndOffsetsCombine() throws {
        let bytes = try pyarrowFile("""
            t = datetime.datetime
            table = pa.table({
                "EXTERNAL_SITE_ID": ["s", "s"], "EXTERNAL_DEVICE_ID": ["a", "b"],
                "TIMESTAMP": pa.array([t(2026, 3, 1, 7, 0), t(2026, 3, 1, 6, 0)], pa.timestamp("ms", tz="UTC")),
                "READING_INTERVAL_SECONDS": pa.array([decimal.Decimal(900), decimal.Decimal(3600)], pa.decimal128(38, 0)),
                "UTC_OFFSET": ["+01:00", None],
            })
            """)
        let result = try read(bytes, name: "zoned.parquet")
        // A UTC-adjusted timestamp is an instant: the offset column does not move it.
        #expect(result.readings.map(\.timestamp) == [1_772_348_400, 1_772_344_800])
        #expect(result.readings.map(\.readingIntervalSeconds) == [900, 3600])
    }

    @Test func columnNamesAreCheckedLikeCSVHeaders() throws {
        let generic = try pyarrowFile("table = pa.table({'_COL_0': ['s'], '_COL_1': ['d'], '_COL_2': ['x'], '_COL_3': [900]})")
        #expect(throws: FileFormatError.missingColumnsGenericNames(["external_site_id", "external_device_id", "timestamp", "reading_interval_seconds"])) {
            try read(generic, name: "data_0_0_0.snappy.parquet")
        }
        let twice = try pyarrowFile("table = pa.table({'timestamp': ['a'], 'TIMESTAMP': ['b']})")
        #expect(throws: FileFormatError.duplicateHeader(name: "timestamp\" and \"TIMESTAMP")) { try read(twice, name: "t.parquet") }
        let missing = try pyarrowFile("table = pa.table({'external_site_id': ['s'], 'external_device_id': ['d'], 'timestamp': ['x']})")
        #expect(throws: FileFormatError.missingColumns(["reading_interval_seconds"])) { try read(missing, name: "t.parquet") }
    }

    @Test func invalidUTF8InAStringColumnBreaksTheFile() throws {
        // pyarrow refuses to write invalid UTF-8 into a string column; patch the bytes instead
        // (dictionary page and all: no compression).
        var bytes = try pyarrowFile("""
            table = pa.table({'external_site_id': pa.array(['s', 'QQQQ']), 'external_device_id': ['d', 'd'],
                              'timestamp': ['2026-03-01T06:00:00Z', '2026-03-01T06:15:00Z'], 'reading_interval_seconds': [900, 900]})
            pq.write_table = (lambda write: lambda t, p: write(t, p, compression="NONE"))(pq.write_table)
            """)
        let marker = Array("QQQQ".utf8)
        var patched = 0
        for index in 0...(bytes.count - marker.count) where Array(bytes[index..<index + marker.count]) == marker {
            bytes[index + 1] = 0xFF
            patched += 1
        }
        #expect(patched > 0)
        do {
            _ = try read(bytes, name: "bad.parquet")
            Issue.record("an invalid UTF-8 string was accepted")
        } catch {
            #expect(error.description.contains("row 2, column \"external_site_id\": a string that is not valid UTF-8"), "\(error)")
        }
    }

    @Test func brokenParquetIsAWholeFileError() throws {
        var bytes = try sample("readings.parquet")
        bytes[bytes.count - 5] = 0x7F  // the footer length's high byte
        #expect(throws: FileFormatError.self) { try read(bytes, name: "broken.parquet") }
        do { _ = try read(bytes, name: "broken.parquet") } catch { #expect(error.description.contains("footer length")) }
    }
}
