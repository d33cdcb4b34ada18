import Core
import FoundationEssentials

/// The handler the loop runs: event bytes in, response bytes out. A thrown error becomes the
/// invocation's error report; the loop carries on with the next event.
public protocol LambdaByteHandler {
    func handle(_ event: [UInt8], context: LambdaContext) throws -> [UInt8]
}

/// A typed handler: a `Decodable` event in, an `Encodable` response out.
public protocol LambdaHandler {
    associatedtype Event: Decodable
    associatedtype Output: Encodable
    func handle(_ event: Event, context: LambdaContext) throws -> Output
}

/// The event bytes were not the JSON the handler expects.
public struct InvalidEventError: ReportableError, Equatable, CustomStringConvertible {
    public let expected: String
    public let reason: String
    public var errorType: String { "Runtime.InvalidEvent" }
    public var description: String { "the event is not a valid \(expected): \(reason)" }

    public init(expected: String, reason: String) {
        self.expected = expected
        self.reason = reason
    }
}

/// Decodes events and encodes responses around a ``LambdaHandler``.
public struct CodableHandlerAdapter<Handler: LambdaHandler>: LambdaByteHandler {
    public let handler: Handler
    private let decoder = JSONDecoder()
    private let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }()

    public init(_ handler: Handler) { self.handler = handler }

    public func handle(_ event: [UInt8], context: LambdaContext) throws -> [UInt8] {
        let decoded: Handler.Event
        do {
            decoded = try decoder.decode(Handler.Event.self, from: Data(event))
        } catch let error as DecodingError {
            throw InvalidEventError(expected: String(describing: Handler.Event.self), reason: error.summary)
        }
        return Array(try encoder.encode(handler.handle(decoded, context: context)))
    }
}

/// A byte handler from a closure, for small functions and tests.
public struct ClosureHandler: LambdaByteHandler {
    private let body: ([UInt8], LambdaContext) throws -> [UInt8]
    public init(_ body: @escaping ([UInt8], LambdaContext) throws -> [UInt8]) { self.body = body }
    public func handle(_ event: [UInt8], context: LambdaContext) throws -> [UInt8] { try body(event, context) }
}

extension DecodingError {
    /// One line: where in the document and what was wrong.
    public var summary: String {
        func path(_ context: Context) -> String {
            let keys = context.codingPath.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined()
            return keys.isEmpty ? "the top level" : String(keys.dropFirst(keys.hasPrefix(".") ? 1 : 0))
        }
        switch self {
        case .keyNotFound(let key, let context):
            let at = path(context)
            return "missing key \"\(key.stringValue)\"" + (context.codingPath.isEmpty ? "" : " in \(at)")
        case .typeMismatch(let type, let context): return "expected \(type) at \(path(context))"
        case .valueNotFound(let type, let context): return "expected \(type) at \(path(context)), found null"
        case .dataCorrupted(let context):
            return context.codingPath.isEmpty ? "not valid JSON" : "invalid value at \(path(context))"
        @unknown default: return "undecodable"
        }
    }
}
