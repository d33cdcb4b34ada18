import LambdaRuntime

/// The validator's metrics: one EMF line per file, by function and by status.
public enum ValidatorMetrics {
    public static func line(for result: FileResult, durationMilliseconds: Int64, requestID: String) -> EmbeddedMetrics {
        var metrics = EmbeddedMetrics(dimensionSets: [["Function"], ["Function", "Status"]])
        metrics.dimension("Function", "validator")
        metrics.dimension("Status", result.status.rawValue)
        metrics.metric("Files", 1)
        metrics.metric("RowsProcessed", result.rowsProcessed)
        metrics.metric("RowsLoaded", result.rowsLoaded)
        metrics.metric("RowsRejected", result.rowsRejected)
        metrics.metric("Quarantined", result.status == .quarantined ? 1 : 0)
        metrics.metric("Duration", durationMilliseconds, unit: .milliseconds)
        metrics.property("requestId", requestID)
        metrics.property("key", result.key)
        return metrics
    }
}
