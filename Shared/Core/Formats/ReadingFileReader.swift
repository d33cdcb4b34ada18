import Parquet

/// The formats of the upload file format.
public enum FileFormat: String, Sendable, Equatable {
    case csv, ndjson, json, parquet
}

/// What the reader found a file to be.
public struct DetectedFormat: Sendable, Equatable {
    public var format: FileFormat
    public var gzip: Bool

    public init(format: FileFormat, gzip: Bool) {
        self.format = format
        self.gzip = gzip
    }
}

/// One batch of a file: the readings that passed, the violations of those that did not.
public struct ReadingBatch: Sendable {
    public var readings: [MeterReading] = []
    public var violations: [SchemaViolation] = []
    /// Records read in this batch (loaded or rejected).
    public var rowsProcessed = 0
    /// Records rejected in this batch (a record with three violations counts once).
    public var rowsRejected = 0
    /// Readings the decoder could not check for duplicates within its memory (``DuplicateTracker``):
    /// the loader checks them against the file's other readings before it writes them.
    public var pendingDuplicateChecks: [PendingDuplicateCheck] = []

    /// A reading of this batch still to be checked for an earlier row of the same key, and where it is.
    public struct PendingDuplicateCheck: Sendable, Equatable {
        /// Its index in ``ReadingBatch/readings``.
        public var index: Int
        public var line: Int
        public var row: Int

        public init(index: Int, line: Int, row: Int) {
            self.index = index
            self.line = line
            self.row = row
        }
    }

    public init(readings: [MeterReading] = [], violations: [SchemaViolation] = [], rowsProcessed: Int = 0, rowsRejected: Int = 0) {
        self.readings = readings
        self.violations = violations
        self.rowsProcessed = rowsProcessed
        self.rowsRejected = rowsRejected
    }
}

/// Reads a landed file of the upload format (CSV, NDJSON, JSON, each optionally gzip; Parquet)
/// as batches of checked canonical readings. Memory stays bounded by one batch for CSV, NDJSON
/// and JSON documents (streamed through a window of one reading at most) and by one row group's
/// stored chunks plus a page per column for Parquet.
///
/// A ``FileFormatError`` means the file is structurally broken and nothing of it may load;
/// row-level problems come back as violations in the batches.
public final class ReadingFileReader {
    public let detected: DetectedFormat
    private let records: any RecordSource
    private var decoder: ReadingDecoder

    /// Reads the file at `path`. Parquet is read with random access (its metadata is at the
    /// end); every other format streams.
    ///
    /// - Parameters:
    ///   - name: The object key or file name (its extension guides detection).
    ///   - now: Unix seconds, for the future-timestamp check.
    ///   - ingestedAt: Unix milliseconds stamped on every reading.
    public convenience init(
        path: String, name: String, sourceSystem: SourceSystem, organizationID: Int64,
        limits: ValidationLimits = ValidationLimits(), transforms: VendorTransforms = VendorTransforms(), now: Int64, ingestedAt: Int64
    ) throws(FileFormatError) {
        let input: FileInput
        do { input = try FileInput(path: path) } catch { throw .unreadable(reason: error.description) }
        var head: [UInt8] = []
        if input.size >= 4 {
            do { head = try input.read(offset: 0, count: 4) } catch { throw .unreadable(reason: error.description) }
        }
        let parquetName = name.lowercased().hasSuffix(".parquet") && !head.starts(with: Self.gzipMagic)
        if head == Self.parquetMagic || parquetName {
            self.init(records: try ParquetRecordSource(input: input, limits: limits), detected: DetectedFormat(format: .parquet, gzip: false),
                      sourceSystem: sourceSystem, organizationID: organizationID, limits: limits, now: now, ingestedAt: ingestedAt)
        } else {
            try self.init(source: try FileByteSource(path: path), name: name, sourceSystem: sourceSystem, organizationID: organizationID,
                          limits: limits, transforms: transforms, now: now, ingestedAt: ingestedAt)
        }
    }

    /// Reads a stream. A Parquet stream (gzip-compressed, or not from a file) is first held in
    /// memory, up to ``ValidationLimits/maximumDocumentBytes``.
    public convenience init(
        source: any ByteSource, name: String, sourceSystem: SourceSystem, organizationID: Int64,
        limits: ValidationLimits = ValidationLimits(), transforms: VendorTransforms = VendorTransforms(), now: Int64, ingestedAt: Int64
    ) throws(FileFormatError) {
        let first = try Self.readAtLeast(4, from: source)
        let gzip = first.starts(with: Self.gzipMagic)
        var stream: any ByteSource = PrefixedByteSource(prefix: first, then: source)
        if gzip { stream = try GzipByteSource(stream, limits: limits) }

        // Sniff the (decompressed) start: extension first, content where it is silent or ambiguous.
        let head = try Self.readAtLeast(64 * 1024, from: stream)
        var lowered = name.lowercased()
        if lowered.hasSuffix(".gz") { lowered.removeLast(3) }
        let format: FileFormat
        if head.starts(with: Self.parquetMagic) || lowered.hasSuffix(".parquet") {
            format = .parquet
        } else if lowered.hasSuffix(".csv") {
            format = .csv
        } else if lowered.hasSuffix(".ndjson") || lowered.hasSuffix(".jsonl") {
            format = .ndjson
        } else if lowered.hasSuffix(".json") {
            format = Self.looksLikeNDJSON(head) ? .ndjson : .json
        } else {
            switch head.first(where: { ![0x20, 0x09, 0x0A, 0x0D, 0xEF, 0xBB, 0xBF].contains($0) }) {
            case UInt8(ascii: "[")?: format = .json
            case UInt8(ascii: "{")?: format = Self.looksLikeNDJSON(head) ? .ndjson : .json
            case nil: throw .missingHeader
            default: format = .csv
            }
        }
        let rest = PrefixedByteSource(prefix: head, then: stream)
        let records: any RecordSource
        switch format {
        case .csv: records = try CSVRecordSource(source: rest, limits: limits)
        case .ndjson: records = NDJSONRecordSource(source: rest, limits: limits)
        case .json:
            records = try JSONDocumentRecordSource(source: rest, limits: limits, expectedSource: sourceSystem, expectedOrganization: organizationID,
                                                   transforms: transforms)
        case .parquet:
            var bytes: [UInt8] = []
            while case let chunk = try rest.read(), !chunk.isEmpty {
                bytes += chunk
                guard bytes.count <= limits.maximumDocumentBytes else { throw .documentTooLarge(limit: limits.maximumDocumentBytes) }
            }
            records = try ParquetRecordSource(input: MemoryInput(bytes), limits: limits)
        }
        self.init(records: records, detected: DetectedFormat(format: format, gzip: gzip), sourceSystem: sourceSystem,
                  organizationID: organizationID, limits: limits, now: now, ingestedAt: ingestedAt)
    }

    private init(
        records: any RecordSource, detected: DetectedFormat, sourceSystem: SourceSystem, organizationID: Int64,
        limits: ValidationLimits, now: Int64, ingestedAt: Int64
    ) {
        self.records = records
        self.detected = detected
        decoder = ReadingDecoder(limits: limits, source: sourceSystem, organizationID: organizationID, now: now, ingestedAt: ingestedAt)
        decoder.declaredUTCOffset = records.declaredUTCOffset
        decoder.declaredSiteID = records.declaredSiteID
    }

    static let gzipMagic: [UInt8] = [0x1F, 0x8B]
    static let parquetMagic: [UInt8] = Array("PAR1".utf8)

    /// The next batch of at most `maximumRows` records, or `nil` when the file is done.
    public func nextBatch(maximumRows: Int = 10_000) throws(FileFormatError) -> ReadingBatch? {
        var batch = ReadingBatch()
        batch.readings.reserveCapacity(min(maximumRows, 10_000))
        while batch.rowsProcessed < maximumRows, let record = try records.next() {
            batch.rowsProcessed += 1
            let before = batch.violations.count
            if let reading = decoder.decode(record, violations: &batch.violations) {
                if decoder.lastReadingNeedsDuplicateCheck {
                    batch.pendingDuplicateChecks.append(.init(index: batch.readings.count, line: record.line, row: record.row))
                }
                batch.readings.append(reading)
            } else if batch.violations.count > before {
                batch.rowsRejected += 1
            }
        }
        return batch.rowsProcessed == 0 ? nil : batch
    }

    /// Reads until at least `count` bytes (or the end) have arrived, however small the chunks.
    static func readAtLeast(_ count: Int, from source: any ByteSource) throws(FileFormatError) -> [UInt8] {
        var bytes: [UInt8] = []
        while bytes.count < count {
            let chunk = try source.read()
            if chunk.isEmpty { break }
            bytes += chunk
        }
        return bytes
    }

    /// A `.json` file whose first line is a whole object followed by more lines is NDJSON.
    static func looksLikeNDJSON(_ head: [UInt8]) -> Bool {
        guard let newline = head.firstIndex(of: 0x0A) else { return false }
        let start = head.starts(with: [0xEF, 0xBB, 0xBF]) ? 3 : 0
        guard start <= newline else { return false }
        var parser = JSONParser(bytes: head, range: start..<newline)
        guard parser.peek() == UInt8(ascii: "{"), (try? parser.parseValue(depth: 0)) != nil, parser.peek() == nil else {
            return false
        }
        return head[(newline + 1)...].contains { ![0x20, 0x09, 0x0A, 0x0D].contains($0) }
    }
}

/// Bytes already read, then the rest of a source.
final class PrefixedByteSource: ByteSource {
    private var prefix: [UInt8]?
    private let source: any ByteSource

    init(prefix: [UInt8], then source: any ByteSource) {
        self.prefix = prefix.isEmpty ? nil : prefix
        self.source = source
    }

    func read() throws(FileFormatError) -> [UInt8] {
        if let prefix {
            self.prefix = nil
            return prefix
        }
        return try source.read()
    }
}
