import Core
import LambdaRuntime
import Logging
import Synchronization
import Testing

/// Lines written to a ``LogOutput``, kept for inspection.
final class Lines: Sendable {
    let storage = Mutex<[String]>([])
    var all: [String] { storage.withLock { $0 } }
    var output: LogOutput { LogOutput { bytes in self.storage.withLock { $0.append(String(decoding: bytes, as: UTF8.self)) } } }
}

@Suite struct JSONLogHandlerTests {
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

