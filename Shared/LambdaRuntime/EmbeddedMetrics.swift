import Core

/// One CloudWatch Embedded Metric Format line: metrics taken from a log line, no API call.
///
/// The `_aws` directive names the namespace, the dimension sets and each metric with its unit; the
/// members follow at the top level (dimensions first, then metrics, then extra properties such as
/// the request id), in the order they were added.
public struct EmbeddedMetrics: Sendable {
    public enum Unit: String, Sendable {
        case count = "Count"
        case milliseconds = "Milliseconds"
        case bytes = "Bytes"
        case seconds = "Seconds"
        case none = "None"
    }

    public let namespace: String
    /// The dimension sets CloudWatch aggregates by, each a list of dimension names.
    public let dimensionSets: [[String]]
    private(set) var dimensions: [(name: String, value: String)] = []
    private(set) var metrics: [(name: String, unit: Unit, value: Int64)] = []
    private(set) var properties: [(name: String, value: String)] = []

    public init(namespace: String = "Meterlake", dimensionSets: [[String]]) {
        self.namespace = namespace
        self.dimensionSets = dimensionSets
    }

    public mutating func dimension(_ name: String, _ value: String) { dimensions.append((name, value)) }
    public mutating func metric(_ name: String, _ value: Int64, unit: Unit = .count) { metrics.append((name, unit, value)) }
    public mutating func metric(_ name: String, _ value: Int, unit: Unit = .count) { metric(name, Int64(value), unit: unit) }
    /// A member that is logged but is no metric and no dimension (searchable in Logs Insights).
    public mutating func property(_ name: String, _ value: String) { properties.append((name, value)) }

    /// The line, newline included.
    public func line(timestamp milliseconds: Int64) -> [UInt8] {
        var writer = JSONWriter()
        writer.beginObject()
        writer.key("_aws")
        writer.beginObject()
        writer.key("Timestamp"); writer.number(milliseconds)
        writer.key("CloudWatchMetrics")
        writer.beginArray()
        writer.beginObject()
        writer.key("Namespace"); writer.string(namespace)
        writer.key("Dimensions")
        writer.beginArray()
        for set in dimensionSets {
            writer.beginArray()
            for name in set { writer.string(name) }
            writer.endArray()
        }
        writer.endArray()
        writer.key("Metrics")
        writer.beginArray()
        for metric in metrics {
            writer.beginObject()
            writer.key("Name"); writer.string(metric.name)
            writer.key("Unit"); writer.string(metric.unit.rawValue)
            writer.endObject()
        }
        writer.endArray()
        writer.endObject()
        writer.endArray()
        writer.endObject()
        for dimension in dimensions { writer.key(dimension.name); writer.string(dimension.value) }
        for metric in metrics { writer.key(metric.name); writer.number(metric.value) }
        for property in properties { writer.key(property.name); writer.string(property.value) }
        writer.endObject()
        writer.newline()
        return writer.bytes
    }

    public func emit(timestamp milliseconds: Int64, to output: LogOutput) { output.emit(line(timestamp: milliseconds)) }
}
