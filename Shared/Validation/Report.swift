import Core
import Store

/// Violations of one file as the validator keeps them: the first `capacity` in full, the rest
/// only counted.
struct ViolationSample {
    let capacity: Int
    private(set) var kept: [SchemaViolation] = []
    private(set) var total = 0

    init(capacity: Int) { self.capacity = capacity }

    mutating func add(_ violations: [SchemaViolation]) {
        total += violations.count
        kept += violations.prefix(max(0, capacity - kept.count))
    }
}

/// The JSON written beside a quarantined (or partly rejected) file, and the `errors` column of its
/// `ingestion_log` row.
struct FileReport {
    var key: String
    var sha256: String
    var size: Int64
    var status: FileStatus
    var reason: String
    var summary = LoadSummary()
    var violations = ViolationSample(capacity: 0)
    /// Why the file could not be read, when it could not.
    var fileError: String?

    var json: [UInt8] {
        var writer = JSONWriter()
        writer.beginObject()
        writer.key("key"); writer.string(key)
        writer.key("status"); writer.string(status.rawValue)
        writer.key("reason"); writer.string(reason)
        writer.key("sha256"); writer.string(sha256)
        writer.key("size"); writer.number(size)
        writer.key("rows_processed"); writer.number(summary.rowsProcessed)
        writer.key("rows_loaded"); writer.number(status == .validated ? summary.rowsLoaded : 0)
        writer.key("rows_rejected"); writer.number(summary.rowsRejected)
        if let fileError { writer.key("file_error"); writer.string(fileError) }
        writer.key("violations_total"); writer.number(max(violations.total, violations.kept.count))
        writer.key("violations_shown"); writer.number(violations.kept.count)
        writer.key("violations")
        writer.raw(ViolationReport.json(violations.kept))
        writer.endObject()
        writer.newline()
        return writer.bytes
    }

    /// `[{"reason": …}, violation…]`: the reason, then at most `limit` violations.
    func errorsJSON(limit: Int) -> String { Self.errorsJSON(reason: reason, violations: Array(violations.kept.prefix(limit))) }

    static func errorsJSON(reason: String, violations: [SchemaViolation]) -> String {
        "[{\"reason\":" + JSONValue.string(reason).serialized + "}" + (violations.isEmpty ? "]" : "," + ViolationReport.json(violations).dropFirst())
    }

    /// `12.3%`: a share to one decimal.
    static func percent(_ share: Double) -> String { "\(Double(Int((share * 1000).rounded())) / 10)%" }
}
