/// Violations as the JSON array stored in `ingestion_log.errors` and in reports.
public enum ViolationReport {
    public static func json(_ violations: [SchemaViolation]) -> String {
        var writer = JSONWriter()
        writer.beginArray()
        for violation in violations {
            writer.beginObject()
            writer.key("code")
            writer.string(violation.code.rawValue)
            writer.key("line")
            writer.number(violation.line)
            writer.key("row")
            writer.number(violation.row)
            writer.key("column")
            writer.string(violation.column)
            writer.key("value")
            writer.string(violation.value)
            writer.key("message")
            writer.string(violation.message)
            writer.endObject()
        }
        writer.endArray()
        return String(decoding: writer.bytes, as: UTF8.self)
    }
}
