import Core
import Foundation
import Logging
import Synchronization
import Testing

@Suite struct JSONWriterTests {
    @Test func escapesAndNestsCorrectly() throws {
        var writer = JSONWriter()
        writer.beginObject()
        writer.key("text")
        writer.string("quote \" backslash \\ tab \t nl \n bell \u{07} ☀")
        writer.key("list")
        writer.beginArray()
        writer.number(1)
        writer.beginObject()
        writer.key("x")
        writer.null()
        writer.endObject()
        writer.number(2.5)
        writer.bool(false)
        writer.endArray()
        writer.key("nan")
        writer.number(Double.nan)
        writer.endObject()
        let text = String(decoding: writer.bytes, as: UTF8.self)
        #expect(text == #"{"text":"quote \" backslash \\ tab \t nl \n bell \u0007 ☀","list":[1,{"x":null},2.5,false],"nan":null}"#)
        // And a real JSON parser agrees on the value.
        let parsed = try JSONSerialization.jsonObject(with: Data(writer.bytes)) as? [String: Any]
        #expect(parsed?["text"] as? String == "quote \" backslash \\ tab \t nl \n bell \u{07} ☀")
    }
}

@Suite struct TimestampTests {
    @Test(arguments: [
        (Int64(0), "1970-01-01T00:00:00.000Z"),
        (Int64(1_772_345_702_301), "2026-03-01T06:15:02.301Z"),
        (Int64(951_782_400_000), "2000-02-29T00:00:00.000Z"),
        (Int64(-1), "1969-12-31T23:59:59.999Z"),
        (Int64(4_102_444_799_999), "2099-12-31T23:59:59.999Z"),
    ])
    func formatsRFC3339(milliseconds: Int64, expected: String) {
        #expect(Timestamp.rfc3339(milliseconds: milliseconds) == expected)
    }

    @Test func civilAndDaysAreInverseOverFourCenturies() {
        var previous = Timestamp.days(year: 1899, month: 12, day: 31)
        for days in stride(from: -25_567, to: 120_000, by: 1) {
            let date = Timestamp.civil(days: days)
            #expect(Timestamp.days(year: date.year, month: date.month, day: date.day) == days)
            #expect(days == previous + 1)
            previous = days
        }
        #expect(Timestamp.day(epochSeconds: 1_772_345_702) == "2026-03-01")
    }
}

@Suite struct JSONLogHandlerTests {
    final class Lines: Sendable {
        let storage = Mutex<[String]>([])
        var all: [String] { storage.withLock { $0 } }
    }

    @Test func writesOneJSONObjectPerLineWithLambdaLevelsAndMetadata() throws {
        let lines = Lines()
        let output = LogOutput { bytes in lines.storage.withLock { $0.append(String(decoding: bytes, as: UTF8.self)) } }
        var logger = Logger(label: "t") { _ in JSONLogHandler(level: .debug, output: output, clock: { 1_772_345_702_301 }) }
        logger[metadataKey: "requestId"] = "req-1"
        logger.warning("row rejected\nsecond line", metadata: ["rows": .stringConvertible(1432), "key": "raw/site 7/a.csv"])
        logger.trace("not written")
        logger.critical("dying")
        #expect(lines.all.count == 2)
        #expect(lines.all[0] == #"{"timestamp":"2026-03-01T06:15:02.301Z","level":"WARN","message":"row rejected\nsecond line","key":"raw/site 7/a.csv","requestId":"req-1","rows":1432}"# + "\n")
        #expect(lines.all[1].contains(#""level":"FATAL""#))
    }

    @Test func lambdaLevelNamesRoundTrip() {
        for level in [Logger.Level.trace, .debug, .info, .warning, .error, .critical] {
            #expect(JSONLogHandler.level(fromLambdaName: JSONLogHandler.lambdaName(of: level)) == level)
        }
        #expect(JSONLogHandler.level(fromLambdaName: "warn") == .warning)
        #expect(JSONLogHandler.level(fromLambdaName: "verbose") == nil)
        #expect(JSONLogHandler.level(fromLambdaName: nil) == nil)
    }
}

@Suite struct EnvironmentTests {
    @Test func requireAndConvert() throws {
        let environment = Environment(["A": "1", "B": "x", "EMPTY": ""])
        #expect(try environment.require("A") == "1")
        #expect(try environment.require("A", as: Int.self) == 1)
        #expect(try environment.get("MISSING", as: Int.self) == nil)
        #expect(throws: ConfigurationError.missing(name: "EMPTY")) { try environment.require("EMPTY") }
        #expect(throws: ConfigurationError.self) { try environment.require("B", as: Double.self) }
        // The message names the variable but never repeats its value.
        do {
            _ = try Environment(["SECRET": "hunter2"]).require("SECRET", as: Int.self)
        } catch {
            #expect(error.description.contains("SECRET"))
            #expect(!error.description.contains("hunter2"))
        }
    }
}

@Suite struct MetricsTests {
    @Test func emitsOneEmbeddedMetricFormatLineCloudWatchAccepts() throws {
        let lines = JSONLogHandlerTests.Lines()
        let output = LogOutput { bytes in lines.storage.withLock { $0.append(String(decoding: bytes, as: UTF8.self)) } }
        let result = FileResult(key: "raw/manual/42/2026-03-01/a.csv", status: "quarantined", rowsProcessed: 20, rowsLoaded: 0,
                                rowsRejected: 5, destination: "quarantine/x", reason: "too many rejects")
        Metrics.emit(result, durationMilliseconds: 37, requestID: "req-9", now: 1_772_345_702_301, output: output)
        #expect(lines.all.count == 1)
        #expect(lines.all[0].hasSuffix("\n") && !lines.all[0].dropLast().contains("\n"), "one line")
        let line = try #require(try JSONSerialization.jsonObject(with: Data(lines.all[0].utf8)) as? [String: Any])
        let aws = try #require(line["_aws"] as? [String: Any])
        #expect(aws["Timestamp"] as? Int == 1_772_345_702_301)
        let directive = try #require((aws["CloudWatchMetrics"] as? [[String: Any]])?.first)
        #expect(directive["Namespace"] as? String == "Meterlake")
        // Every dimension and metric the directive names is a top-level member of the right type.
        for set in try #require(directive["Dimensions"] as? [[String]]) {
            for name in set { #expect(line[name] is String, "dimension \(name)") }
        }
        let metrics = try #require(directive["Metrics"] as? [[String: String]])
        for metric in metrics { #expect(line[metric["Name"]!] is Int, "metric \(metric["Name"]!)") }
        #expect(line["RowsRejected"] as? Int == 5 && line["Quarantined"] as? Int == 1 && line["Duration"] as? Int == 37)
        #expect(line["requestId"] as? String == "req-9" && line["Status"] as? String == "quarantined")
        // Request ids and keys stay log fields, never dimensions (each value would be a billed metric).
        #expect(!(directive["Dimensions"] as! [[String]]).joined().contains("requestId"))
    }
}
