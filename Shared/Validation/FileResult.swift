/// What became of one file, as the function returns it (interfaces.md, "Validator response").
public enum FileStatus: String, Codable, Sendable, CaseIterable {
    /// Loaded (possibly with some rows rejected) and moved to `validated/`.
    case validated
    /// Refused whole, moved to `quarantine/` with a report.
    case quarantined
    /// Settled by an earlier delivery of the same event: at most the move was finished.
    case duplicate
    /// Not the validator's to touch (not under `raw/`, another bucket, already gone).
    case skipped
}

/// One file's outcome.
public struct FileResult: Codable, Sendable, Equatable {
    public var key: String
    public var status: FileStatus
    public var rowsProcessed: Int
    public var rowsLoaded: Int
    public var rowsRejected: Int
    public var destination: String?
    /// Why a file was quarantined or skipped.
    public var reason: String?

    public init(
        key: String, status: FileStatus, rowsProcessed: Int = 0, rowsLoaded: Int = 0, rowsRejected: Int = 0,
        destination: String? = nil, reason: String? = nil
    ) {
        self.key = key
        self.status = status
        self.rowsProcessed = rowsProcessed
        self.rowsLoaded = rowsLoaded
        self.rowsRejected = rowsRejected
        self.destination = destination
        self.reason = reason
    }

    enum CodingKeys: String, CodingKey {
        case key, status, destination, reason
        case rowsProcessed = "rows_processed"
        case rowsLoaded = "rows_loaded"
        case rowsRejected = "rows_rejected"
    }

    /// `destination` is always present (`null` when the file did not move).
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(key, forKey: .key)
        try container.encode(status, forKey: .status)
        try container.encode(rowsProcessed, forKey: .rowsProcessed)
        try container.encode(rowsLoaded, forKey: .rowsLoaded)
        try container.encode(rowsRejected, forKey: .rowsRejected)
        try container.encode(destination, forKey: .destination)
        try container.encodeIfPresent(reason, forKey: .reason)
    }
}

public struct ValidatorResponse: Codable, Sendable, Equatable {
    public var files: [FileResult]
    public init(files: [FileResult]) { self.files = files }
}
