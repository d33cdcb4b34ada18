#if canImport(Glibc)
import Glibc
#endif

/// Random access to the bytes of a file (Parquet keeps its metadata at the end).
public protocol RandomAccessInput: AnyObject {
    var size: Int64 { get }
    /// Exactly `count` bytes from `offset` (the caller has checked the range against `size`).
    func read(offset: Int64, count: Int) throws(ParquetError) -> [UInt8]
}

/// A file on disk, read with `pread`. Owned by one thread at a time.
public final class FileInput: RandomAccessInput {
    private let descriptor: Int32
    public let size: Int64

    public init(path: String) throws(ParquetError) {
        descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { throw .io("cannot open \(path): \(String(cString: strerror(errno)))") }
        var status = stat()
        guard fstat(descriptor, &status) == 0 else {
            close(descriptor)
            throw .io("cannot stat \(path): \(String(cString: strerror(errno)))")
        }
        size = Int64(status.st_size)
    }

    deinit { close(descriptor) }

    public func read(offset: Int64, count: Int) throws(ParquetError) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        var done = 0
        while done < count {
            let result = bytes.withUnsafeMutableBytes { buffer in
                pread(descriptor, buffer.baseAddress! + done, count - done, off_t(offset) + off_t(done))
            }
            if result > 0 {
                done += result
            } else if result == 0 {
                throw .io("the file ends at \(offset + Int64(done)), before the \(count) bytes at \(offset)")
            } else if errno != EINTR {
                throw .io("read failed: \(String(cString: strerror(errno)))")
            }
        }
        return bytes
    }
}

/// Bytes in memory (tests, the fuzzer).
public final class MemoryInput: RandomAccessInput {
    private let bytes: [UInt8]
    public var size: Int64 { Int64(bytes.count) }

    public init(_ bytes: [UInt8]) { self.bytes = bytes }

    public func read(offset: Int64, count: Int) throws(ParquetError) -> [UInt8] {
        Array(bytes[Int(offset)..<Int(offset) + count])
    }
}

/// A flat Parquet file: its footer is read and checked on open; row groups are then read one
/// column chunk at a time (parquet.md §1).
public final class ParquetFile {
    public let columns: [ParquetColumn]
    /// Rows in the whole file.
    public let rowCount: Int64
    /// The writer, as the footer names it (`parquet-cpp-arrow version 26.0.1`).
    public let createdBy: String?
    private let rowGroups: [RowGroupMetaData]
    private let input: any RandomAccessInput
    private let limits: ParquetLimits
    /// Where the footer starts: column chunks must lie in `[4, footerStart)`.
    private let footerStart: Int64

    public init(input: any RandomAccessInput, limits: ParquetLimits = ParquetLimits()) throws(ParquetError) {
        self.input = input
        self.limits = limits
        let size = input.size
        guard size >= 12 else { throw .notParquet("\(size) bytes, fewer than a Parquet file's 12-byte frame") }
        let tail = try input.read(offset: size - 8, count: 8)
        let magic = Array(tail[4...])
        if magic == Array("PARE".utf8) { throw .unsupported("an encrypted footer (PARE)") }
        guard magic == Array("PAR1".utf8) else { throw .notParquet("the file does not end with PAR1") }
        guard try input.read(offset: 0, count: 4) == Array("PAR1".utf8) else { throw .notParquet("the file does not start with PAR1") }
        let footerLength = Int64(UInt32(tail[0]) | UInt32(tail[1]) << 8 | UInt32(tail[2]) << 16 | UInt32(tail[3]) << 24)
        guard footerLength > 0, footerLength <= size - 12 else {
            throw .malformed("footer length \(footerLength) does not fit a file of \(size) bytes")
        }
        guard footerLength <= Int64(limits.maximumFooterBytes) else {
            throw .limitExceeded("a footer of \(footerLength) bytes, more than the limit of \(limits.maximumFooterBytes)")
        }
        footerStart = size - 8 - footerLength
        let footer = try input.read(offset: footerStart, count: Int(footerLength))
        var reader = ThriftReader(footer, range: 0..<footer.count, maximumDepth: limits.maximumThriftDepth, context: "footer")
        let metadata = try FileMetaData(decoding: &reader)
        if metadata.encrypted { throw .unsupported("an encrypted file (plaintext footer with encryption_algorithm)") }
        columns = try ParquetColumn.columns(of: metadata.schema, limits: limits)
        var total: Int64 = 0
        for (index, group) in metadata.rowGroups.enumerated() {
            guard group.columns.count == columns.count else {
                throw .malformed("row group \(index) has \(group.columns.count) column chunks for \(columns.count) columns")
            }
            let (sum, overflow) = total.addingReportingOverflow(group.numRows)
            guard !overflow else { throw .malformed("row counts overflow") }
            total = sum
        }
        guard total == metadata.numRows else {
            throw .malformed("the row groups hold \(total) rows, the footer says \(metadata.numRows)")
        }
        let (perByte, overflow) = size.multipliedReportingOverflow(by: limits.maximumRowsPerFileByte)
        let rowLimit = max(limits.rowAllowance, overflow ? .max : perByte)
        guard total <= rowLimit else {
            throw .limitExceeded("\(total) rows declared in a file of \(size) bytes, more than the limit of \(rowLimit) "
                + "(\(limits.maximumRowsPerFileByte) rows per byte beyond the first \(limits.rowAllowance))")
        }
        let (cells, cellsOverflow) = total.multipliedReportingOverflow(by: Int64(max(1, columns.count)))
        let (cellsPerByte, perByteOverflow) = size.multipliedReportingOverflow(by: limits.maximumCellsPerFileByte)
        let cellLimit = max(limits.cellAllowance, perByteOverflow ? .max : cellsPerByte)
        guard !cellsOverflow, cells <= cellLimit else {
            throw .limitExceeded("\(total) rows × \(columns.count) columns declared in a file of \(size) bytes, more than the limit of "
                + "\(cellLimit) cells (\(limits.maximumCellsPerFileByte) per byte beyond the first \(limits.cellAllowance))")
        }
        // Each row group's chunks are read into memory whole: together they may not claim more
        // than the data area holds (chunks of a well-formed file never share bytes).
        let dataArea = footerStart - 4
        for (index, group) in metadata.rowGroups.enumerated() {
            var claimed: Int64 = 0
            for chunk in group.columns {
                let size = max(0, chunk.metaData?.totalCompressedSize ?? 0)
                let (sum, overflow) = claimed.addingReportingOverflow(size)
                guard !overflow, sum <= dataArea else {
                    throw .malformed("row group \(index): its column chunks claim more bytes than the file's data area of \(dataArea) (chunks that overlap)")
                }
                claimed = sum
            }
        }
        rowCount = metadata.numRows
        rowGroups = metadata.rowGroups
        createdBy = metadata.createdBy
    }

    public var rowGroupCount: Int { rowGroups.count }

    public func rowCount(ofRowGroup index: Int) -> Int64 { rowGroups[index].numRows }

    /// A reader of one column chunk; its stored bytes are read now.
    public func columnChunk(rowGroup: Int, column index: Int) throws(ParquetError) -> ColumnChunkReader {
        let column = columns[index]
        let context = "row group \(rowGroup), column \"\(column.name)\""
        let group = rowGroups[rowGroup]
        let chunk = group.columns[index]
        if chunk.encrypted { throw .unsupported("\(context): an encrypted column") }
        if let path = chunk.filePath { throw .unsupported("\(context): data in another file (\(path))") }
        guard let meta = chunk.metaData else { throw .malformed("\(context): no column metadata") }
        guard meta.path.count == 1, meta.path[0] == column.name else {
            throw .malformed("\(context): the chunk's path \(meta.path) does not match the schema")
        }
        guard meta.type == column.physicalType.rawValue else {
            throw .malformed("\(context): the chunk's physical type \(meta.type) differs from the schema's \(column.physicalType)")
        }
        guard let codec = Codec(rawValue: meta.codec) else { throw .unsupported("\(context): codec \(meta.codec)") }
        switch codec {
        case .uncompressed, .snappy, .gzip, .zstd: break
        default: throw .unsupported("\(context): codec \(codec.name) (SNAPPY, GZIP, ZSTD and UNCOMPRESSED are read)")
        }
        guard group.numRows <= limits.maximumRowGroupRows else {
            throw .limitExceeded("\(context): \(group.numRows) rows in one row group, more than the limit of \(limits.maximumRowGroupRows)")
        }
        guard meta.numValues == group.numRows else {
            throw .malformed("\(context): the chunk has \(meta.numValues) values for \(group.numRows) rows")
        }
        // The chunk starts at the dictionary page when there is one (parquet.md §5).
        var start = meta.dataPageOffset
        if let dictionary = meta.dictionaryPageOffset, dictionary >= 4, dictionary < meta.dataPageOffset || meta.dataPageOffset < 4 {
            start = dictionary
        }
        let size = meta.totalCompressedSize
        if group.numRows == 0 {
            return ColumnChunkReader(column: column, chunk: [], fileOffset: start, codec: codec, rows: 0, limits: limits, context: context)
        }
        guard start >= 4, size <= footerStart - start else {
            throw .malformed("\(context): the chunk's bytes \(start)..<\(start + size) lie outside the data area 4..<\(footerStart)")
        }
        guard size <= limits.maximumChunkBytes else {
            throw .limitExceeded("\(context): a column chunk of \(size) bytes, more than the limit of \(limits.maximumChunkBytes)")
        }
        let bytes = try input.read(offset: start, count: Int(size))
        return ColumnChunkReader(column: column, chunk: bytes, fileOffset: start, codec: codec, rows: Int(group.numRows), limits: limits, context: context)
    }
}
