import Foundation
import LambdaRuntime
import Synchronization
import Testing
import Validation

@Suite struct ValidatorMetricsTests {
    @Test func emitsOneEmbeddedMetricFormatLineCloudWatchAccepts() throws {
        let lines = Mutex<[String]>([])
        let output = LogOutput { bytes in lines.withLock { $0.append(String(decoding: bytes, as: UTF8.self)) } }
        let result = FileResult(key: "raw/manual/42/2026-03-01/a.csv", status: .quarantined, rowsProcessed: 20, rowsLoaded: 0,
                                rowsRejected: 5, destination: "quarantine/x", reason: "too many rejects")
        ValidatorMetrics.line(for: result, durationMilliseconds: 37, requestID: "req-9").emit(timestamp: 1_772_345_702_301, to: output)
        let all = lines.withLock { $0 }
        #expect(all.count == 1)
        #expect(all[0].hasSuffix("\n") && !all[0].dropLast().contains("\n"), "one line")
        let line = try #require(try JSONSerialization.jsonObject(with: Data(all[0].utf8)) as? [String: Any])
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
