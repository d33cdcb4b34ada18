import Core
import Store

/// The validator's reading and checking of one file, with nothing loaded and nothing stored: the
/// report it would write (`POST /validate`). Rows are read with the same readers, limits and
/// vendor transforms, and judged by the same reject threshold; only what needs the database
/// (duplicates beyond the reader's memory, readings already stored) is not checked.
public enum DryRun {
    /// The report of the file at `path` (`name` guides format detection, as a key's extension does).
    /// - Parameter keepGoing: Asked before each batch; false (the invocation's time runs short)
    ///   ends the read with the report so far, saying so.
    public static func report(path: String, name: String, size: Int64, sha256: String, source: SourceSystem, organizationID: Int64,
                              configuration: ValidatorConfiguration, now: Int64, keepGoing: () -> Bool = { true }) -> [UInt8] {
        var report = FileReport(key: name, sha256: sha256, size: size, status: .quarantined, reason: "",
                                violations: ViolationSample(capacity: configuration.maximumReportedViolations))
        do {
            let reader = try ReadingFileReader(path: path, name: name, sourceSystem: source, organizationID: organizationID,
                                               limits: configuration.limits, transforms: configuration.transforms, now: now / 1000, ingestedAt: now)
            while let batch = try reader.nextBatch(maximumRows: configuration.batchRows) {
                report.violations.add(batch.violations)
                report.summary.rowsProcessed += batch.rowsProcessed
                report.summary.rowsRejected += batch.rowsRejected
                guard keepGoing() else {
                    report.reason = "the dry run stopped after \(report.summary.rowsProcessed) rows: its time ran out (validate a smaller file)"
                    report.fileError = "time limit"
                    return report.json
                }
            }
        } catch {
            report.reason = "the file is structurally broken: \(error)"
            report.fileError = error.description
            return report.json
        }
        let summary = report.summary
        if configuration.accepts(rowsProcessed: summary.rowsProcessed, rowsRejected: summary.rowsRejected) {
            report.status = .validated
            report.summary.rowsInserted = summary.rowsProcessed - summary.rowsRejected
            report.reason = summary.rowsRejected == 0 ? "every row is valid" : "\(summary.rowsRejected) rejected rows would not be loaded"
        } else {
            report.reason = summary.rowsProcessed == 0
                ? "the file holds no readings"
                : "\(summary.rowsRejected) of \(summary.rowsProcessed) rows rejected "
                    + "(\(FileReport.percent(Double(summary.rowsRejected) / Double(summary.rowsProcessed)))), "
                    + "above the \(FileReport.percent(configuration.rejectThreshold)) threshold: the file would be quarantined"
        }
        return report.json
    }
}
