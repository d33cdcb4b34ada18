import Core
import FoundationEssentials
import Logging

#if canImport(Glibc)
import Glibc
#endif

/// `sam local invoke` without Docker: one event, a synthetic context, the response on stdout.
/// Logs go to stderr so that stdout is exactly the response (or the error report).
enum LocalInvocation {
    static func run(
        name: String, arguments: [String], environment: Environment,
        makeHandler: (Environment, Logger) throws -> some LambdaByteHandler
    ) -> Int32 {
        let logger = Logger.lambda(label: name, environment: environment, output: .standardError)
        let event: [UInt8]
        switch parse(arguments.dropFirst()) {
        case .help:
            print(usage(name))
            return 0
        case .failure(let message):
            printError(message + "\n\n" + usage(name))
            return 2
        case .event(let path):
            guard let bytes = FileIO.readAll(path) else {
                printError("\(name): cannot read the event from \(path == "-" ? "standard input" : path)")
                return 2
            }
            event = bytes
        }

        let handler: any LambdaByteHandler
        do {
            handler = try makeHandler(environment, logger)
        } catch {
            emit(ErrorReport(error).json)
            return 1
        }
        let timeout = environment["AWS_LAMBDA_FUNCTION_TIMEOUT"].flatMap { Int64($0) } ?? 900
        let region = environment["AWS_REGION"] ?? "local"
        let metadata = InvocationMetadata(
            requestID: UUID().uuidString.lowercased(), deadlineMilliseconds: WallClock.milliseconds() + timeout * 1000,
            invokedFunctionARN: "arn:aws:lambda:\(region):000000000000:function:\(name)",
            traceID: environment["_X_AMZN_TRACE_ID"])
        let context = LambdaContext(metadata: metadata, environment: environment, logger: logger, logOutput: .standardError)
        do {
            emit(try handler.handle(event, context: context))
            return 0
        } catch {
            emit(ErrorReport(error).json)
            return 1
        }
    }

    enum Command: Equatable { case help, event(String), failure(String) }

    static func parse(_ arguments: ArraySlice<String>) -> Command {
        var path = "-"
        var rest = arguments
        while let argument = rest.popFirst() {
            switch argument {
            case "-h", "--help": return .help
            case "--event", "-e":
                guard let value = rest.popFirst() else { return .failure("--event needs a file name (or - for stdin)") }
                path = value
            default:
                if argument.hasPrefix("--event=") { path = String(argument.dropFirst(8)) } else {
                    return .failure("unknown argument: \(argument)")
                }
            }
        }
        return .event(path)
    }

    static func usage(_ name: String) -> String {
        """
        usage: \(name) [--event FILE]

        Without AWS_LAMBDA_RUNTIME_API, runs one invocation locally: reads the event (JSON) from FILE,
        or from standard input when FILE is - or absent, prints the response on standard output and
        exits 0; a handler error prints Lambda's error document and exits 1. Logs go to standard error.
        Under Lambda (AWS_LAMBDA_RUNTIME_API set) it serves the Runtime API instead.
        """
    }

    private static func emit(_ bytes: [UInt8]) {
        LogOutput.standardOutput.emit(bytes + [UInt8(ascii: "\n")])
    }

    private static func printError(_ message: String) {
        LogOutput.standardError.write(message + "\n")
    }
}
