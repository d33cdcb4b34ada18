import Core
import Foundation
import Testing
import TestSupport

/// Small files built to take a function down (time or memory), and values PostgreSQL would
/// refuse inside COPY: each is refused alone, at once, with where and why.
@Suite struct HostileInputTests {
    let header = "external_site_id,external_device_id,timestamp,reading_interval_seconds,energy_wh"

    /// One NDJSON line of 60,000 distinct keys, then a repeat: a quadratic key check takes
    /// minutes here; a linear one a fraction of a second. (A guard against the complexity class,
    /// with a margin of two orders of magnitude, not a performance measure.)
    @Test(.timeLimit(.minutes(1))) func duplicateKeysAreFoundInLinearTimeInAHugeRecord() throws {
        var line = #"{"external_site_id":"s","external_device_id":"d","timestamp":"2026-03-01T00:00:00Z","reading_interval_seconds":900"#
        for index in 0..<60_000 { line += #","k\#(index)":1"# }
        var limits = ValidationLimits()
        limits.maximumRecordBytes = 4 << 20
        for (repeated, expected) in [(#","k59999":2"#, "duplicate key \"k59999\""), (#","K59999":2"#, "key \"K59999\" appears twice")] {
            let started = Date()
            let error = #expect(throws: FileFormatError.self) {
                try read(Array((line + repeated + "}\n").utf8), name: "huge.ndjson", limits: limits)
            }
            #expect(error?.description.contains(expected) == true, "\(error.map { "\($0)" } ?? "")")
            #expect(Date().timeIntervalSince(started) < 10, "the check is not linear")
        }
    }

    /// A JSON document whose one reading is larger than the record cap is refused at that
    /// reading's line, like an NDJSON line; the cap applies inside an envelope too.
    @Test func aReadingPastTheRecordCapIsRefusedInJSONDocuments() throws {
        var limits = ValidationLimits()
        limits.maximumRecordBytes = 64 * 1024
        let big = #"{"external_site_id":"s","external_device_id":"d","timestamp":"2026-03-01T00:00:00Z","reading_interval_seconds":900,"note":""#
            + String(repeating: "x", count: 100_000) + "\"}"
        let good = #"{"external_site_id":"s","external_device_id":"d","timestamp":"2026-03-01T00:15:00Z","reading_interval_seconds":900}"#
        #expect(throws: FileFormatError.recordTooLong(line: 3, limit: 64 * 1024)) {
            try read(Array("[\n\(good),\n\(big)\n]".utf8), name: "a.json", limits: limits)
        }
        #expect(throws: FileFormatError.recordTooLong(line: 2, limit: 64 * 1024)) {
            let envelope: String = #"{"source":"manual","readings":["# + "\n\(big)]}"
            _ = try read(Array(envelope.utf8), name: "e.json", limits: limits)
        }
        // Deep but small stays a syntax question, and a reading just under the cap reads.
        let fits = String(big.prefix(60_000)) + "\"}"
        let result = try read(Array("[\(fits)]".utf8), name: "f.json", limits: limits)
        #expect(result.processed == 1)
    }

    @Test func otherMetricsThatPostgreSQLWouldRefuseRejectOnlyTheirRow() throws {
        let csv = header + ",note,factor\n"
            + "s,d,2026-03-01T00:00:00Z,900,1,ok,1.5\n"
            + "s,d,2026-03-01T00:15:00Z,900,1,a\u{0}b,2\n"
            + "s,d,2026-03-01T00:30:00Z,900,1,ok,1e999999\n"
            + "s,d,2026-03-01T00:45:00Z,900,1,ok,1e131071\n"
        let result = try read(Array(csv.utf8), name: "m.csv")
        #expect(result.processed == 4 && result.rejected == 2)
        #expect(result.readings.map(\.timestamp) == [1_772_323_200, 1_772_325_900])
        #expect(result.violations.map(\.code) == [.invalidMetric, .invalidMetric])
        #expect(result.violations.map(\.column) == ["note", "factor"])
        #expect(result.violations.map(\.line) == [3, 4])
        #expect(result.violations[0].message == "a NUL character (U+0000): PostgreSQL cannot store it")
        #expect(result.violations[1].message == "a number outside PostgreSQL's numeric range")
    }

    @Test func otherMetricsAreCappedInValuesAndBytesPerRow() throws {
        var limits = ValidationLimits()
        limits.maximumOtherMetricsValues = 50
        limits.maximumOtherMetricsBytes = 1000
        let base = #"{"external_site_id":"s","external_device_id":"d","reading_interval_seconds":900,"#
        let many = base + #""timestamp":"2026-03-01T00:00:00Z","other_metrics":{"#
            + (0..<60).map { #""m\#($0)":\#($0)"# }.joined(separator: ",") + "}}"
        let large = base + #""timestamp":"2026-03-01T00:15:00Z","blob":""# + String(repeating: "y", count: 2000) + "\"}"
        let nested = base + #""timestamp":"2026-03-01T00:30:00Z","deep":[[1,2,3],[4,[5,6]]]}"#
        let result = try read(Array([many, large, nested].joined(separator: "\n").utf8), name: "caps.ndjson", limits: limits)
        #expect(result.rejected == 2)
        #expect(result.violations.map(\.code) == [.invalidMetric, .invalidMetric])
        #expect(result.violations.allSatisfy { $0.message == "other_metrics may hold at most 50 values and 1000 bytes in one row" })
        #expect(result.readings.count == 1 && result.readings[0].otherMetrics.count == 1)
    }

    @Test func aNameFromTheFileIsCutInAViolationLikeItsValue() throws {
        let name = String(repeating: "a", count: 100_000)
        let line = #"{"external_site_id":"s","external_device_id":"d","timestamp":"2026-03-01T00:00:00Z","reading_interval_seconds":900,"other_metrics":{""#
            + name + #"":1e9999999999}}"#
        let result = try read(Array((line + "\n").utf8), name: "n.ndjson")
        #expect(result.violations.count == 1)
        #expect(result.violations[0].column == String(repeating: "a", count: 100) + "…")
    }

    @Test func anEnvelopesOtherMembersAreCappedLikeAReading() {
        var limits = ValidationLimits()
        limits.maximumRecordBytes = 1024
        let envelope = #"{"readings":[],"x":["# + Array(repeating: "0", count: 2000).joined(separator: ",") + "]}"
        #expect(throws: FileFormatError.recordTooLong(line: 1, limit: 1024)) { _ = try read(Array(envelope.utf8), name: "e.json", limits: limits) }
    }

    @Test(arguments: ["b.ndjson", "b.json"])
    func aByteOrderMarkBeforeNDJSONIsNotPartOfIt(name: String) throws {
        let line = #"{"external_site_id":"s","external_device_id":"d","timestamp":"2026-03-01T00:00:00Z","reading_interval_seconds":900}"#
        let second = line.replacingOccurrences(of: "00:00:00Z", with: "00:15:00Z")
        let result = try read([0xEF, 0xBB, 0xBF] + Array((line + "\n" + second + "\n").utf8), name: name)
        #expect(result.readings.count == 2 && result.violations.isEmpty)
    }

    /// A JSON document is streamed through a window: positions stay exact far past where the
    /// window began, on many lines or on one.
    @Test(arguments: [1, 13, 4096])
    func errorsDeepInAStreamedDocumentNameTheirLineAndColumn(chunk: Int) throws {
        let reading = #"{"external_site_id":"s","external_device_id":"d","timestamp":"2026-03-01T00:00:00Z","reading_interval_seconds":900}"#
        var lines = ["["]
        for index in 0..<2_000 { lines.append((index == 0 ? "" : ",") + reading.replacingOccurrences(of: "\"d\"", with: "\"d\(index)\"")) }
        lines.append(#",{"external_site_id":"s",,}"#)
        lines.append("]")
        let document = lines.joined(separator: "\n")
        #expect(throws: FileFormatError.invalidJSON(JSONSyntaxError(reason: "expected a string key", line: 2_002, column: 26))) {
            _ = try read(Array(document.utf8), name: "big.json", chunk: chunk, batch: 500)
        }
        // The same on one line: the column counts from the document's start.
        let oneLine = lines.joined()
        let column = oneLine.utf8.count - #",}]"#.utf8.count + 1
        #expect(throws: FileFormatError.invalidJSON(JSONSyntaxError(reason: "expected a string key", line: 1, column: column))) {
            _ = try read(Array(oneLine.utf8), name: "big.json", chunk: chunk, batch: 500)
        }
        // Blank lines in what the window dropped count too.
        #expect(throws: FileFormatError.invalidJSON(JSONSyntaxError(reason: "expected a string key", line: 4_003, column: 26))) {
            _ = try read(Array(lines.joined(separator: "\n\n").utf8), name: "big.json", chunk: chunk, batch: 500)
        }
        // After one line break, then everything on line 2: the column counts from that break.
        let second = "[\n" + lines.dropFirst().joined()
        let secondColumn = second.utf8.count - 2 - #",}]"#.utf8.count + 1
        #expect(throws: FileFormatError.invalidJSON(JSONSyntaxError(reason: "expected a string key", line: 2, column: secondColumn))) {
            _ = try read(Array(second.utf8), name: "big.json", chunk: chunk, batch: 500)
        }
        // And a good one reads whole, every reading in order.
        let good = (lines.dropLast(2) + ["]"]).joined(separator: "\n")
        let result = try read(Array(good.utf8), name: "big.json", chunk: chunk, batch: 500)
        #expect(result.readings.count == 2_000 && result.readings.last?.externalDeviceID == "d1999")
    }
}
