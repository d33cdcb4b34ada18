import Core
import Logging
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Where log lines go: a file descriptor (stdout on Lambda) or a closure (tests).
public struct LogOutput: Sendable {
    let emit: @Sendable ([UInt8]) -> Void

    public init(_ emit: @escaping @Sendable ([UInt8]) -> Void) { self.emit = emit }

    /// Writes `text` as it is (add the newline yourself).
    public func write(_ text: String) { emit(Array(text.utf8)) }

    /// Standard output: CloudWatch takes one event per line. Each line is a single `write(2)`
    /// under a lock, so lines never interleave and nothing waits in a buffer when the process dies.
    public static let standardOutput = LogOutput.descriptor(1)
    /// Standard error, used by local invocations so that stdout carries only the response.
    public static let standardError = LogOutput.descriptor(2)

    static func descriptor(_ descriptor: Int32) -> LogOutput {
        LogOutput { line in
            writeLock.withLock { _ in
                line.withUnsafeBytes { bytes in
                    var offset = 0
                    while offset < bytes.count {
                        let written = Glibc.write(descriptor, bytes.baseAddress! + offset, bytes.count - offset)
                        if written < 0 { if errno == EINTR { continue } else { return } }
                        offset += written
                    }
                }
            }
        }
    }
}

private let writeLock = Mutex(())

/// A swift-log handler that writes one JSON object per line, in the shape Lambda's JSON log
/// format reads: `timestamp` (RFC 3339, UTC, milliseconds), `level` (TRACE…FATAL), `message`,
/// then the metadata (the request id under `requestId`), keys sorted for stable output.
public struct JSONLogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level
    private let output: LogOutput
    private let clock: @Sendable () -> Int64

    /// - Parameters:
    ///   - level: The lowest level written.
    ///   - output: Where lines go.
    ///   - clock: Milliseconds since the Unix epoch (injected in tests).
    public init(
        level: Logger.Level = .info, output: LogOutput = .standardOutput,
        clock: @escaping @Sendable () -> Int64 = WallClock.milliseconds
    ) {
        self.logLevel = level
        self.output = output
        self.clock = clock
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var merged = metadata
        if let extra = event.metadata { merged.merge(extra) { $1 } }
        var line = JSONWriter()
        line.beginObject()
        line.key("timestamp")
        line.string(Timestamp.rfc3339(milliseconds: clock()))
        line.key("level")
        line.string(Self.lambdaName(of: event.level))
        line.key("message")
        line.string(event.message.description)
        for key in merged.keys.sorted() {
            line.key(key)
            line.metadata(merged[key]!)
        }
        line.endObject()
        line.newline()
        output.emit(line.bytes)
    }

    /// Lambda's level names (`AWS_LAMBDA_LOG_LEVEL` and the JSON log filter use them).
    public static func lambdaName(of level: Logger.Level) -> String {
        switch level {
        case .trace: "TRACE"
        case .debug: "DEBUG"
        case .info, .notice: "INFO"
        case .warning: "WARN"
        case .error: "ERROR"
        case .critical: "FATAL"
        }
    }

    /// Parses `AWS_LAMBDA_LOG_LEVEL` (case-insensitive); unknown or absent → `nil`.
    public static func level(fromLambdaName name: String?) -> Logger.Level? {
        switch name?.uppercased() {
        case "TRACE": .trace
        case "DEBUG": .debug
        case "INFO": .info
        case "WARN", "WARNING": .warning
        case "ERROR": .error
        case "FATAL", "CRITICAL": .critical
        default: nil
        }
    }
}

extension JSONWriter {
    mutating func metadata(_ value: Logger.Metadata.Value) {
        switch value {
        case .string(let text): string(text)
        case .stringConvertible(let convertible):
            // Numbers and booleans stay JSON numbers and booleans; anything else becomes a string.
            switch convertible {
            case let number as Int: raw(String(number))
            case let number as Int64: raw(String(number))
            case let number as UInt64: raw(String(number))
            case let number as Double where number.isFinite: raw(String(number))
            case let flag as Bool: raw(flag ? "true" : "false")
            default: string(convertible.description)
            }
        case .array(let values):
            beginArray()
            for value in values { metadata(value) }
            endArray()
        case .dictionary(let dictionary):
            beginObject()
            for name in dictionary.keys.sorted() {
                key(name)
                metadata(dictionary[name]!)
            }
            endObject()
        }
    }
}

extension Logger {
    /// A logger writing JSON lines at the level named by `AWS_LAMBDA_LOG_LEVEL` (default INFO).
    public static func lambda(label: String, environment: Environment, output: LogOutput = .standardOutput) -> Logger {
        let level = JSONLogHandler.level(fromLambdaName: environment["AWS_LAMBDA_LOG_LEVEL"]) ?? .info
        return Logger(label: label) { _ in JSONLogHandler(level: level, output: output) }
    }
}
