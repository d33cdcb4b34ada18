import Core
import Foundation
import Testing
import TestSupport

/// Reads a whole file through ``ReadingFileReader`` into readings and violations.
struct ReadResult {
    var format: DetectedFormat
    var readings: [MeterReading] = []
    var violations: [SchemaViolation] = []
    var processed = 0
    var rejected = 0
}

let sampleNow: Int64 = 1_772_400_000  // 2026-03-01T21:20:00Z
let sampleIngestedAt: Int64 = 1_772_400_000_123

func read(
    _ bytes: [UInt8], name: String, source: SourceSystem = .manual, organization: Int64 = 42,
    limits: ValidationLimits = ValidationLimits(), chunk: Int = 4096, batch: Int = 3
) throws(FileFormatError) -> ReadResult {
    let reader = try ReadingFileReader(
        source: MemoryByteSource(bytes, chunkSize: chunk), name: name, sourceSystem: source, organizationID: organization,
        limits: limits, now: sampleNow, ingestedAt: sampleIngestedAt)
    var result = ReadResult(format: reader.detected)
    while let next = try reader.nextBatch(maximumRows: batch) {
        #expect(next.rowsProcessed <= batch)
        result.readings += next.readings
        result.violations += next.violations
        result.processed += next.rowsProcessed
        result.rejected += next.rowsRejected
    }
    return result
}

func sample(_ name: String) throws -> [UInt8] {
    Array(try Data(contentsOf: Fixture.repository.appendingPathComponent("docs/samples/\(name)")))
}

/// The four readings every sample file describes.
let expectedSampleReadings: [MeterReading] = [
    MeterReading(sourceSystem: .manual, organizationID: 42, externalSiteID: "site-7", externalDeviceID: "INV-001",
                 timestamp: 1_772_344_800, readingIntervalSeconds: 900, energyWh: 1250.5, powerW: 5002, irradianceWm2: 412.5,
                 temperatureC: 18.25, otherMetrics: [JSONMember("inverter_mode", .string("MPPT"))], quality: .measured, ingestedAt: sampleIngestedAt),
    MeterReading(sourceSystem: .manual, organizationID: 42, externalSiteID: "site-7", externalDeviceID: "INV-001",
                 timestamp: 1_772_345_700, readingIntervalSeconds: 900, energyWh: 1310, powerW: 5240, temperatureC: 18.5,
                 quality: .measured, ingestedAt: sampleIngestedAt),
    MeterReading(sourceSystem: .manual, organizationID: 42, externalSiteID: "site-7", externalDeviceID: "INV-002",
                 timestamp: 1_772_345_700, readingIntervalSeconds: 900, quality: .missing, ingestedAt: sampleIngestedAt),
    MeterReading(sourceSystem: .manual, organizationID: 42, externalSiteID: "site-7", externalDeviceID: "site",
                 timestamp: 1_772_344_800, readingIntervalSeconds: 3600, energyWh: 4800.25, powerW: 4800.25, quality: .estimated,
                 ingestedAt: sampleIngestedAt),
]

@Suite struct ReadingFileReaderTests {
    @Test(arguments: ["readings.csv", "readings.ndjson", "readings.json"])
    func everySampleFileYieldsTheDocumentedReadings(name: String) throws {
        for chunk in [1, 7, 64, 1 << 16] {
            let result = try read(try sample(name), name: name, chunk: chunk)
            #expect(result.violations == [])
            #expect(result.processed == 4 && result.rejected == 0)
            var readings = result.readings
            // The site-level row's extras differ by format in how they were written; compare them apart.
            let siteMetrics = readings[3].otherMetrics
            readings[3].otherMetrics = []
            #expect(readings == expectedSampleReadings, "\(name), chunk \(chunk)")
            if name == "readings.csv" {
                #expect(siteMetrics == [JSONMember("inverter_mode", .string("derived, from 15-min data"))])
            } else {
                #expect(siteMetrics == [JSONMember("derived_from", .string("15-min data")), JSONMember("devices_reporting", .number("2"))])
            }
        }
    }

    @Test func theEnvelopeAppliesItsSiteAndOffsetAndMustMatchTheLakePath() throws {
        let envelope = try sample("envelope.json")
        let result = try read(envelope, name: "export.json", source: .snowflake)
        #expect(result.violations == [])
        #expect(result.readings.map(\.externalSiteID) == ["site-7", "site-7"])
        #expect(result.readings.map(\.timestamp) == [1_772_344_800, 1_772_345_700])
        #expect(throws: FileFormatError.notAnEnvelope(reason: "source \"snowflake\" does not match the file's location (manual)")) {
            try read(envelope, name: "export.json", source: .manual)
        }
        #expect(throws: FileFormatError.notAnEnvelope(reason: "organization_id 42 does not match the file's location (7)")) {
            try read(envelope, name: "export.json", source: .snowflake, organization: 7)
        }
        // The readings are streamed: members that shape them (site_id, utc_offset) must come
        // first; source and organization_id are checked wherever they come, and a late mismatch
        // fails the whole file.
        let lateSite = #"{"readings":[{"external_device_id":"d","timestamp":"2026-03-01T07:00:00","reading_interval_seconds":900}],"site_id":12345}"#
        #expect(throws: FileFormatError.notAnEnvelope(reason: "site_id must come before readings (it shapes how they are read)")) {
            try read(Array(lateSite.utf8), name: "x.json")
        }
        let lateMatch = #"{"site_id":12345,"utc_offset":"+01:00","readings":[{"external_device_id":"d","timestamp":"2026-03-01T07:00:00","reading_interval_seconds":900}],"source":"manual","organization_id":42}"#
        let early = try read(Array(lateMatch.utf8), name: "x.json")
        #expect(early.readings.first?.externalSiteID == "12345")
        #expect(early.readings.first?.timestamp == 1_772_344_800)
        let lateMismatch = lateMatch.replacingOccurrences(of: #""organization_id":42"#, with: #""organization_id":43"#)
        #expect(throws: FileFormatError.notAnEnvelope(reason: "organization_id 43 does not match the file's location (42)")) {
            try read(Array(lateMismatch.utf8), name: "x.json")
        }
        #expect(throws: FileFormatError.notAnEnvelope(reason: "no \"readings\" array")) { try read(Array(#"{"site_id":"s"}"#.utf8), name: "x.json") }
    }

    @Test func gzipIsDetectedByContentAndMembersConcatenate() throws {
        for name in ["readings.csv.gz", "readings.ndjson.gz", "readings.json.gz", "two-members.csv.gz"] {
            let bytes = Array(try Fixture.data("gzip/\(name)"))
            for chunk in [1, 13, 1 << 16] {
                let result = try read(bytes, name: name, chunk: chunk)
                #expect(result.format.gzip)
                #expect(result.readings.count == 4 && result.violations.isEmpty, "\(name) chunk \(chunk)")
            }
            // The magic decides, not the name.
            #expect(try read(bytes, name: name.replacingOccurrences(of: ".gz", with: "")).readings.count == 4)
        }
    }

    @Test func brokenGzipIsAWholeFileError() throws {
        #expect(throws: FileFormatError.corruptCompression(reason: "the data ends early (truncated file)")) {
            try read(Array(try Fixture.data("gzip/truncated.csv.gz")), name: "t.csv.gz")
        }
        let corrupt = #expect(throws: FileFormatError.self) { try read(Array(try Fixture.data("gzip/corrupt.csv.gz")), name: "c.csv.gz") }
        guard case .corruptCompression? = corrupt else {
            Issue.record("expected corrupt compression, got \(String(describing: corrupt))")
            return
        }
        // 64 MiB of zeros: with default limits the 64 KiB field cap stops it first; with generous
        // CSV limits the ratio guard does, after about 1 MiB of output.
        #expect(throws: FileFormatError.fieldTooLong(line: 1, limit: 65536)) { try read(Array(try Fixture.data("gzip/bomb.csv.gz")), name: "b.csv.gz") }
        var generous = ValidationLimits()
        generous.maximumFieldBytes = 1 << 30
        generous.maximumRecordBytes = 1 << 30
        #expect(throws: FileFormatError.compressionRatio(limit: 1000)) {
            try read(Array(try Fixture.data("gzip/bomb.csv.gz")), name: "b.csv.gz", limits: generous)
        }
        var limits = ValidationLimits()
        limits.maximumDecompressedBytes = 500
        #expect(throws: FileFormatError.decompressedTooLarge(limit: 500)) {
            try read(Array(try Fixture.data("gzip/readings.ndjson.gz")), name: "r.ndjson.gz", limits: limits)
        }
    }

    @Test func detectsFormatsFromNameAndContent() throws {
        let ndjson = try sample("readings.ndjson")
        #expect(try read(ndjson, name: "raw/manual/42/2026-03-01/upload.json").format == DetectedFormat(format: .ndjson, gzip: false))
        #expect(try read(ndjson, name: "upload").format.format == .ndjson)
        #expect(try read(try sample("readings.json"), name: "upload").format.format == .json)
        #expect(try read(try sample("readings.csv"), name: "upload").format.format == .csv)
        #expect(try read(try sample("readings.csv"), name: "UPLOAD.CSV").readings.count == 4)
        #expect(try read(try sample("readings.parquet"), name: "upload").format == DetectedFormat(format: .parquet, gzip: false))
        #expect(throws: FileFormatError.parquet(.notParquet("the file does not end with PAR1"))) {
            try read(Array("PAR1....PAR0".utf8), name: "unload_0_0_0.snappy.parquet")
        }
    }

    @Test func structuralErrorsNameTheProblem() throws {
        #expect(throws: FileFormatError.missingHeader) { try read([], name: "a.csv") }
        #expect(throws: FileFormatError.missingColumns(["reading_interval_seconds"])) {
            try read(Array("external_site_id,external_device_id,timestamp\n".utf8), name: "a.csv")
        }
        #expect(throws: FileFormatError.duplicateHeader(name: "TIMESTAMP")) {
            try read(Array("timestamp,TIMESTAMP\n".utf8), name: "a.csv")
        }
        #expect(throws: FileFormatError.emptyHeader(column: 2)) { try read(Array("a,,b\n".utf8), name: "a.csv") }
        #expect(throws: FileFormatError.invalidJSON(JSONSyntaxError(reason: "expected ',' or '}' in an object", line: 2, column: 8))) {
            try read(Array("{\"a\":1}\n{\"a\":1 \"b\":2}\n".utf8), name: "a.ndjson")
        }
        #expect(throws: FileFormatError.notAReading(line: 2, reason: "a reading must be a JSON object")) {
            try read(Array("{\"a\":1}\n[1]\n".utf8), name: "a.ndjson")
        }
        #expect(throws: FileFormatError.notAReading(line: 1, reason: "key \"Timestamp\" appears twice (names are case-insensitive)")) {
            try read(Array(#"{"timestamp":"a","Timestamp":"b"}"#.utf8), name: "a.ndjson")
        }
        // Extra columns too, ASCII or not; an exact repeat is a syntax error at the key.
        #expect(throws: FileFormatError.notAReading(line: 1, reason: "key \"Inverter_MODE\" appears twice (names are case-insensitive)")) {
            try read(Array(#"{"inverter_mode":"a","power_w":1,"Inverter_MODE":"b"}"#.utf8), name: "a.ndjson")
        }
        #expect(throws: FileFormatError.notAReading(line: 1, reason: "key \"ZÄHLER\" appears twice (names are case-insensitive)")) {
            try read(Array(#"{"zähler":1,"ZÄHLER":2}"#.utf8), name: "a.ndjson")
        }
        #expect(throws: FileFormatError.invalidJSON(JSONSyntaxError(reason: "duplicate key \"mode\"", line: 1, column: 14))) {
            try read(Array(#"{"mode":"a", "mode":"b"}"#.utf8), name: "a.ndjson")
        }
        // Names of the same length that differ are not duplicates (temperature_c, inverter_mode).
        let sameLength = try read(Array(#"{"external_site_id":"s","external_device_id":"d","timestamp":"2026-03-01T06:00:00Z","reading_interval_seconds":900,"temperature_c":1,"inverter_mode":"x","inverter_modf":"y"}"#.utf8), name: "a.ndjson")
        #expect(sameLength.readings.first?.otherMetrics == [JSONMember("inverter_mode", .string("x")), JSONMember("inverter_modf", .string("y"))])
        var limits = ValidationLimits()
        // JSON documents are streamed: no cap on the whole, only on each reading.
        limits.maximumDocumentBytes = 100
        #expect(try read(Array(("[" + String(repeating: "{},", count: 100) + "{}]").utf8), name: "a.json", limits: limits).processed == 101)
        limits.maximumRecordBytes = 50
        #expect(throws: FileFormatError.recordTooLong(line: 1, limit: 50)) {
            try read(Array(("{\"x\":\"" + String(repeating: "y", count: 100) + "\"}\n").utf8), name: "a.ndjson", limits: limits)
        }
    }
}

/// Records that repeat the previous record's keys skip the duplicate checks for those keys
/// (``JSONKeyCache``): what differs from that record must still be checked, in every container.
@Suite struct RepeatedKeysTests {
    /// `count` good readings with the same nine keys, then `last`; as NDJSON, a bare array and an envelope.
    func files(_ last: String, count: Int = 5) -> [(name: String, bytes: [UInt8], lastLine: Int)] {
        let good = (0..<count).map { i in
            #"{"external_site_id":"s","external_device_id":"d\#(i)","timestamp":"2026-03-01T06:00:00Z","reading_interval_seconds":900,"energy_wh":1,"power_w":2,"temperature_c":3,"quality":"measured","inverter_mode":"x"}"#
        }
        let lines = good + [last]
        return [
            ("a.ndjson", Array(lines.joined(separator: "\n").utf8), count + 1),
            ("a.json", Array(("[\n" + lines.joined(separator: ",\n") + "\n]").utf8), count + 2),
            ("a.json", Array(("{\"source\":\"manual\",\"readings\":[\n" + lines.joined(separator: ",\n") + "\n]}").utf8), count + 2),
        ]
    }

    static let head = #"{"external_site_id":"s","external_device_id":"z","timestamp":"2026-03-01T06:00:00Z","reading_interval_seconds":900,"energy_wh":1,"power_w":2,"temperature_c":3,"quality":"measured","#

    @Test(arguments: [7, 64, 4096])
    func aKeyRepeatedWhereTheLastRecordHadAnotherIsStillADuplicate(chunk: Int) throws {
        // The tenth key repeats the first, where the records before had nine keys.
        for file in files(Self.head + #""inverter_mode":"x","external_site_id":"t"}"#) {
            let column = Self.head.utf8.count + #""inverter_mode":"x","#.utf8.count + 1
            #expect(throws: FileFormatError.invalidJSON(JSONSyntaxError(reason: "duplicate key \"external_site_id\"", line: file.lastLine, column: column))) {
                try read(file.bytes, name: file.name, chunk: chunk)
            }
        }
        // In place of a key the records before had at that position.
        for file in files(Self.head + #""quality":"x"}"#) {
            #expect(throws: FileFormatError.invalidJSON(JSONSyntaxError(reason: "duplicate key \"quality\"", line: file.lastLine, column: Self.head.utf8.count + 1))) {
                try read(file.bytes, name: file.name, chunk: chunk)
            }
        }
        // An extra repeated in another case, and a canonical name in another case.
        for last in [Self.head + #""inverter_mode":"x","INVERTER_MODE":"y"}"#, Self.head + #""inverter_mode":"x","Quality":"measured"}"#] {
            let repeated = last.contains("INVERTER") ? "INVERTER_MODE" : "Quality"
            for file in files(last) {
                #expect(throws: FileFormatError.notAReading(line: file.lastLine, reason: "key \"\(repeated)\" appears twice (names are case-insensitive)")) {
                    try read(file.bytes, name: file.name, chunk: chunk)
                }
            }
        }
    }

    @Test func onlyALeadingRunOfTheLastWholeRecordsKeysIsTrusted() throws {
        // The same keys at the same positions, but after one that differs: "c" at 2 repeats "c" at 0.
        // Then keys the cache holds from two records ("a" at 2 from the first, "a", "b" from the
        // second): the third record's "a" at 2 is past what the last record had.
        for (lines, key, column) in [
            ([#"{"a":1,"b":1,"c":1}"#, #"{"c":1,"b":1,"c":2}"#], "c", 14),
            ([#"{"x":1,"y":1,"a":1}"#, #"{"a":1,"b":1}"#, #"{"a":1,"b":1,"a":2}"#], "a", 14),
            // An escaped key is not remembered: the "b" the cache keeps at 1 is from the first record.
            ([#"{"a":1,"b":1,"c":1}"#, #"{"b":1,"\u0061":1,"c":1}"#, #"{"b":1,"b":2,"c":1}"#], "b", 8),
            // An empty record trusts nothing, though the cache still holds keys.
            ([#"{"a":1,"b":1}"#, #"{"b":1}"#, #"{}"#, #"{"b":1,"b":2}"#], "b", 8),
        ] {
            let line = lines.count
            #expect(throws: FileFormatError.invalidJSON(JSONSyntaxError(reason: "duplicate key \"\(key)\"", line: line, column: column))) {
                try read(Array(lines.joined(separator: "\n").utf8), name: "a.ndjson")
            }
            #expect(throws: FileFormatError.invalidJSON(JSONSyntaxError(reason: "duplicate key \"\(key)\"", line: line + 1, column: column))) {
                try read(Array(("[\n" + lines.joined(separator: ",\n") + "\n]").utf8), name: "a.json")
            }
        }
    }

    /// Only letters fold: "[" and "{" differ by the case bit but are different names.
    @Test func namesThatDifferByTheCaseBitOutsideLettersAreDifferent() throws {
        let line = #"{"external_site_id":"s","external_device_id":"d","timestamp":"2026-03-01T06:00:00Z","reading_interval_seconds":900,"m[":1,"m{":2,"M@":3,"m`":4}"#
        let result = try read(Array(line.utf8), name: "a.ndjson")
        #expect(result.violations.isEmpty)
        #expect(result.readings.first?.otherMetrics.map(\.key) == ["m[", "m{", "M@", "m`"])
    }

    /// Positions kept across a read of the next chunk are document offsets: the window's front
    /// is dropped as it is read (256 KiB chunks, as the validator reads).
    @Test func aRepeatedEnvelopeMemberAfterALongOneIsNamedWhereItIs() throws {
        for filler in stride(from: 100_000, through: 900_000, by: 61_111) {
            let head = #"{"source":"manual","x":""# + String(repeating: "A", count: filler) + #"","#
            // More document after it, so that reading ahead drops the window's front.
            let tail = #","y":""# + String(repeating: "B", count: 300_000) + #"","readings":[]}"#
            let bytes = Array((head + #""source":"manual""# + tail).utf8)
            #expect(throws: FileFormatError.invalidJSON(JSONSyntaxError(reason: "duplicate key \"source\"", line: 1, column: head.utf8.count + 1))) {
                try read(bytes, name: "a.json", chunk: 256 * 1024)
            }
        }
    }

    @Test func aKeyThatIsNotRememberedEndsTheTrustedRun() throws {
        // An escaped key is not remembered; the record after it repeats a key at its end.
        let escaped = #"{"external_site_id":"s","external_device_id":"e","timestamp":"2026-03-01T06:15:00Z","reading_interval_seconds":900,"\u0065nergy_wh":1}"#
        let again = #"{"external_site_id":"s","external_device_id":"e","timestamp":"2026-03-01T06:30:00Z","reading_interval_seconds":900,"energy_wh":1,"energy_wh":2}"#
        let bytes = Array((escaped + "\n" + again).utf8)
        #expect(throws: FileFormatError.invalidJSON(JSONSyntaxError(reason: "duplicate key \"energy_wh\"", line: 2, column: again.utf8.count - #""energy_wh":2}"#.utf8.count + 1))) {
            try read(bytes, name: "a.ndjson")
        }
        // Records with more keys than the linear check covers (the sets take over at 16).
        let many = (0..<20).map { #""k\#($0)":\#($0)"# }.joined(separator: ",")
        let base = #"{"external_site_id":"s","external_device_id":"d","timestamp":"2026-03-01T06:00:00Z","reading_interval_seconds":900,"#
        let wide = (0..<3).map { base.replacingOccurrences(of: "\"d\"", with: "\"d\($0)\"") + many + "}" }
        let ok = try read(Array(wide.joined(separator: "\n").utf8), name: "a.ndjson")
        #expect(ok.readings.count == 3 && ok.readings.allSatisfy { $0.otherMetrics.count == 20 })
        let column = (base + many).utf8.count + 2
        for (repeated, expected) in [
            ("k3", FileFormatError.invalidJSON(JSONSyntaxError(reason: "duplicate key \"k3\"", line: 4, column: column))),
            ("K3", .notAReading(line: 4, reason: "key \"K3\" appears twice (names are case-insensitive)")),
            ("external_device_id", .invalidJSON(JSONSyntaxError(reason: "duplicate key \"external_device_id\"", line: 4, column: column))),
        ] {
            let bad = wide + [base + many + #","\#(repeated)":1}"#]
            #expect(throws: expected, "\(repeated) after 24 keys the records before had") {
                try read(Array(bad.joined(separator: "\n").utf8), name: "a.ndjson")
            }
        }
    }
}

@Suite struct BatchPrefetcherTests {
    func prefetcher(depth: Int) -> BatchPrefetcher {
        BatchPrefetcher(maximumRows: 1, depth: depth) { () throws(FileFormatError) in
            try ReadingFileReader(source: MemoryByteSource(try! sample("readings.csv")), name: "r.csv", sourceSystem: .manual,
                                  organizationID: 42, now: sampleNow, ingestedAt: sampleIngestedAt)
        }
    }

    @Test func deliversEveryBatchInOrder() throws {
        let batches = prefetcher(depth: 2)
        var devices: [String] = []
        while let batch = try batches.next() { devices += batch.readings.map(\.externalDeviceID) }
        #expect(devices == ["INV-001", "INV-001", "INV-002", "site"])
    }

    /// The validator drops a prefetcher unread when the database is down or the file is a
    /// duplicate: that must neither hang nor trap (libdispatch traps when a semaphore is freed
    /// below its initial value).
    @Test(arguments: [1, 2, 4])
    func anUnreadPrefetcherCancelsAndFreesCleanly(depth: Int) throws {
        for _ in 0..<10 {
            let batches = prefetcher(depth: depth)
            // Let the producer fill its room and block, as it does while the validator checks for
            // a duplicate (the case that trapped).
            usleep(20_000)
            batches.cancel()
        }
        prefetcher(depth: depth).cancel()  // and before it has started
        let partly = prefetcher(depth: depth)
        _ = try partly.next()
        partly.cancel()
    }

    @Test func anErrorOpeningTheReaderComesOutOfTheFirstBatch() {
        let batches = BatchPrefetcher { () throws(FileFormatError) in throw FileFormatError.missingHeader }
        #expect(throws: FileFormatError.missingHeader) { try batches.next() }
    }
}
