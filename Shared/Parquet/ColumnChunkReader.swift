import Compression

/// Reads the pages of one column chunk of one row group, one decoded page at a time
/// (parquet.md §5). The chunk's stored bytes are held in memory; decoded values never exceed
/// one page plus the dictionary.
public final class ColumnChunkReader {
    public let column: ParquetColumn
    private let chunk: [UInt8]
    private let codec: Codec
    private let limits: ParquetLimits
    /// Where the chunk starts in the file (for error messages).
    private let fileOffset: Int64
    private var position = 0
    private var rowsLeft: Int
    private var dictionary: ColumnStorage?
    private var dataPagesSeen = false
    private let context: String

    init(column: ParquetColumn, chunk: [UInt8], fileOffset: Int64, codec: Codec, rows: Int, limits: ParquetLimits, context: String) {
        self.column = column
        self.chunk = chunk
        self.fileOffset = fileOffset
        self.codec = codec
        self.rowsLeft = rows
        self.limits = limits
        self.context = context
    }

    /// What the chunk's dictionary holds in memory (0 without one); it lives as long as the reader.
    public var dictionaryBytesHeld: Int {
        guard let dictionary else { return 0 }
        return ColumnPage(rowCount: 0, validity: nil, values: dictionary).bytesHeld
    }

    /// The next data page, or `nil` once the row group's rows are all read.
    public func nextPage() throws(ParquetError) -> ColumnPage? {
        while rowsLeft > 0 {
            guard position < chunk.count else {
                throw ParquetError.malformed("the column chunk ends with \(rowsLeft) rows still to read").located(context)
            }
            let pageOffset = fileOffset + Int64(position)
            let where_ = "\(context), page at offset \(pageOffset)"
            var reader = ThriftReader(chunk, range: position..<chunk.count, maximumDepth: limits.maximumThriftDepth, context: "page header")
            let header: PageHeader
            do { header = try PageHeader(decoding: &reader) } catch { throw error.located(where_) }
            let bodyStart = reader.position
            guard header.compressedSize <= chunk.count - bodyStart else {
                throw ParquetError.malformed("the page's \(header.compressedSize) bytes run past the end of its column chunk").located(where_)
            }
            guard header.compressedSize <= limits.maximumPageBytes, header.uncompressedSize <= limits.maximumPageBytes else {
                throw ParquetError.limitExceeded("a page of \(max(header.compressedSize, header.uncompressedSize)) bytes, more than the limit of \(limits.maximumPageBytes)").located(where_)
            }
            position = bodyStart + header.compressedSize
            let body = bodyStart..<position
            do {
                switch PageType(rawValue: header.type) {
                case .dictionaryPage?:
                    try readDictionary(header, body)
                case .dataPage?:
                    return try readDataPage(header, body, version2: false)
                case .dataPageV2?:
                    return try readDataPage(header, body, version2: true)
                case .indexPage?, nil:
                    continue  // index pages and page types from the future: skipped by size
                }
            } catch {
                throw error.located(where_)
            }
        }
        return nil
    }

    private func readDictionary(_ header: PageHeader, _ body: Range<Int>) throws(ParquetError) {
        guard dictionary == nil else { throw .malformed("a second dictionary page") }
        guard !dataPagesSeen else { throw .malformed("a dictionary page after data pages") }
        guard header.seenPageHeader, header.numValues >= 0 else { throw .malformed("a dictionary page without its header") }
        guard header.encoding == Encoding.plain.rawValue || header.encoding == Encoding.plainDictionary.rawValue else {
            throw .unsupported("dictionary page encoding \(Encoding.named(header.encoding))")
        }
        guard header.numValues <= limits.maximumDictionaryEntries else {
            throw .limitExceeded("a dictionary of \(header.numValues) entries, more than the limit of \(limits.maximumDictionaryEntries)")
        }
        guard header.uncompressedSize <= limits.maximumDictionaryBytes else {
            throw .limitExceeded("a dictionary page of \(header.uncompressedSize) bytes, more than the limit of \(limits.maximumDictionaryBytes)")
        }
        let payload = try decompress(body, size: header.uncompressedSize)
        dictionary = try payload.withBytes { buffer throws(ParquetError) -> ColumnStorage in
            var cursor = ByteCursor(buffer)
            return try ValueDecoder.plain(&cursor, type: column.physicalType, typeLength: column.typeLength, count: header.numValues, what: "dictionary page")
        }
    }

    private func readDataPage(_ header: PageHeader, _ body: Range<Int>, version2: Bool) throws(ParquetError) -> ColumnPage {
        dataPagesSeen = true
        guard header.seenPageHeader, header.numValues >= 0 else { throw .malformed("a data page without its header") }
        guard header.numValues <= limits.maximumPageValues else {
            throw .limitExceeded("a page of \(header.numValues) values, more than the limit of \(limits.maximumPageValues)")
        }
        guard header.numValues <= rowsLeft else {
            throw .malformed("a page of \(header.numValues) values with only \(rowsLeft) rows left in the row group")
        }
        let rows = header.numValues
        var validity: [Bool]?
        var present = rows
        // The values section: a range of a buffer (the page decompressed, or the chunk itself for
        // an uncompressed v2 page), decoded where it lies rather than copied out.
        let values: [UInt8]
        let valueRange: Range<Int>
        if version2 {
            let levels = header.repetitionLevelsLength + header.definitionLevelsLength
            guard header.repetitionLevelsLength == 0 else { throw .malformed("repetition levels in a flat column") }
            guard levels <= body.count, levels <= header.uncompressedSize else {
                throw .malformed("level lengths (\(levels) bytes) beyond the page")
            }
            if column.isOptional {
                (validity, present) = try chunk.withBytes { buffer throws(ParquetError) in
                    let levelBytes = UnsafeRawBufferPointer(rebasing: buffer[body.lowerBound..<body.lowerBound + header.definitionLevelsLength])
                    return try Self.definitionLevels(ByteCursor(levelBytes), rows: rows)
                }
                guard rows - present == header.numNulls else {
                    throw .malformed("the page header counts \(header.numNulls) nulls, the definition levels \(rows - present)")
                }
            } else if header.definitionLevelsLength != 0 || header.numNulls != 0 {
                throw .malformed("definition levels or nulls in a REQUIRED column")
            }
            let stored = body.lowerBound + levels..<body.upperBound
            let valueSize = header.uncompressedSize - levels
            if header.isCompressed {
                values = try decompress(stored, size: valueSize)
                valueRange = 0..<values.count
            } else {
                guard stored.count == valueSize else {
                    throw .malformed("an uncompressed values section of \(stored.count) bytes where \(valueSize) were declared")
                }
                values = chunk
                valueRange = stored
            }
        } else {
            let payload = try decompress(body, size: header.uncompressedSize)
            if column.isOptional {
                var levelStart = 0
                (validity, present, levelStart) = try payload.withBytes { buffer throws(ParquetError) in
                    var cursor = ByteCursor(buffer)
                    let length = try cursor.uint32LE("definition levels")
                    let levels = try cursor.take(length, "definition levels")
                    let (validity, present) = try Self.definitionLevels(levels, rows: rows)
                    return (validity, present, cursor.position)
                }
                valueRange = levelStart..<payload.count
            } else {
                valueRange = 0..<payload.count
            }
            values = payload
        }
        let storage = try values.withBytes { buffer throws(ParquetError) -> ColumnStorage in
            var cursor = ByteCursor(UnsafeRawBufferPointer(rebasing: buffer[valueRange]))
            return try decodeValues(&cursor, encoding: header.encoding, count: present)
        }
        guard storage.count == present else {
            throw .malformed("\(storage.count) values decoded where the levels promise \(present)")
        }
        rowsLeft -= rows
        return ColumnPage(rowCount: rows, validity: validity, values: storage)
    }

    /// Definition levels (bit width 1 for a flat OPTIONAL column) as validity flags, and how
    /// many rows have a value. `nil` flags mean every row has one.
    private static func definitionLevels(_ cursor: ByteCursor, rows: Int) throws(ParquetError) -> ([Bool]?, Int) {
        var decoder = try HybridDecoder(cursor, bitWidth: 1, what: "definition levels")
        let (flags, present) = try decoder.decodeFlags(count: rows)
        return (present == rows ? nil : flags, present)
    }

    private func decodeValues(_ cursor: inout ByteCursor, encoding: Int32, count: Int) throws(ParquetError) -> ColumnStorage {
        let type = column.physicalType
        switch Encoding(rawValue: encoding) {
        case .plain?:
            return try ValueDecoder.plain(&cursor, type: type, typeLength: column.typeLength, count: count, what: "PLAIN values")
        case .plainDictionary?, .rleDictionary?:
            guard let dictionary else { throw .malformed("a dictionary-encoded page without a dictionary page") }
            return try ValueDecoder.dictionaryIndexed(&cursor, dictionary: dictionary, type: type, count: count, what: "dictionary-encoded values")
        case .rle? where type == .boolean:
            return try ValueDecoder.rleBooleans(&cursor, count: count, what: "RLE booleans")
        case .deltaBinaryPacked?:
            return try ValueDecoder.deltaBinaryPacked(&cursor, type: type, count: count, what: "DELTA_BINARY_PACKED values")
        case .deltaLengthByteArray? where type == .byteArray:
            return .bytes(try ValueDecoder.deltaLengthByteArray(&cursor, count: count, what: "DELTA_LENGTH_BYTE_ARRAY values"))
        case .deltaByteArray? where type == .byteArray || type == .fixedLenByteArray:
            return .bytes(try ValueDecoder.deltaByteArray(
                &cursor, count: count, fixedLength: type == .fixedLenByteArray ? column.typeLength : nil,
                maximumBytes: limits.maximumPageValueBytes, what: "DELTA_BYTE_ARRAY values"))
        case .byteStreamSplit?:
            return try ValueDecoder.byteStreamSplit(&cursor, type: type, typeLength: column.typeLength, count: count, what: "BYTE_STREAM_SPLIT values")
        default:
            throw .unsupported("encoding \(Encoding.named(encoding)) for a \(type) column")
        }
    }

    /// The page bytes in `range`, decompressed to exactly `size` bytes with the chunk's codec.
    private func decompress(_ range: Range<Int>, size: Int) throws(ParquetError) -> [UInt8] {
        guard size >= 0 else { throw .malformed("negative uncompressed size") }
        return try chunk.withBytes { buffer throws(ParquetError) -> [UInt8] in
            let input = UnsafeRawBufferPointer(rebasing: buffer[range])
            switch codec {
            case .uncompressed:
                guard input.count == size else {
                    throw .malformed("an uncompressed page of \(input.count) bytes declares \(size)")
                }
                return Array(input)
            case .snappy:
                return try Snappy.decompress(input, size: size)
            case .gzip:
                do { return try BlockDecompression.gunzip(input, size: size) } catch { throw .malformed("GZIP page: \(error)") }
            case .zstd:
                do { return try BlockDecompression.unzstd(input, size: size) } catch { throw .malformed("ZSTD page: \(error)") }
            case .lzo, .brotli, .lz4, .lz4Raw:
                throw .unsupported("codec \(codec.name)")
            }
        }
    }
}
