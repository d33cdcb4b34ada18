import FoundationEssentials

/// Why configuration could not be read. Messages name the variable, never its value.
public enum ConfigurationError: Error, Equatable, Sendable, CustomStringConvertible {
    case missing(name: String)
    case invalid(name: String, reason: String)

    public var description: String {
        switch self {
        case .missing(let name): "configuration \(name) is not set"
        case .invalid(let name, let reason): "configuration \(name) is invalid: \(reason)"
        }
    }
}

/// The process environment as a value. Read once at cold start; tests build one from a dictionary
/// instead of calling `setenv`, which is not safe while tests run in parallel.
public struct Environment: Sendable {
    public let values: [String: String]

    /// The current process's environment.
    public init() { self.values = ProcessInfo.processInfo.environment }

    public init(_ values: [String: String]) { self.values = values }

    /// The value of `name`, with an empty string treated as unset.
    public subscript(name: String) -> String? {
        guard let value = values[name], !value.isEmpty else { return nil }
        return value
    }

    /// The value of `name`, or ``ConfigurationError/missing(name:)``.
    public func require(_ name: String) throws(ConfigurationError) -> String {
        guard let value = self[name] else { throw .missing(name: name) }
        return value
    }

    /// The value of `name` converted to `T`, or `nil` when unset.
    public func get<T: LosslessStringConvertible>(_ name: String, as type: T.Type) throws(ConfigurationError) -> T? {
        guard let text = self[name] else { return nil }
        guard let value = T(text) else {
            throw .invalid(name: name, reason: "expected \(T.self), got \(text.count) characters that are not one")
        }
        return value
    }

    /// The value of `name` converted to `T`; missing or unconvertible values throw.
    public func require<T: LosslessStringConvertible>(_ name: String, as type: T.Type) throws(ConfigurationError) -> T {
        guard let value = try get(name, as: type) else { throw .missing(name: name) }
        return value
    }
}
