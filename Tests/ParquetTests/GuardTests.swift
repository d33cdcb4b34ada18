import Parquet
import Testing

/// Every guard of parquet.md §10, each on a handcrafted file that breaks exactly one thing: the
/// reader must fail with the right kind of typed error and a message that names the problem,
/// never crash, hang or allocate what the file merely claims.
@Suite struct GuardTests {
    enum Kind: String { case notParquet, malformed, unsupported, limitExceeded, io }

    /// Opens `bytes` and reads every page of every column chunk; the cells read.
    @discardableResult
    static func readAll(_ bytes: [UInt8], limits: ParquetLimits = ParquetLimits()) throws(ParquetError) -> [ParquetValue] {
        let file = try ParquetFile(input: MemoryInput(bytes), limits: limits)
        var cells: [ParquetValue] = []
        for group in 0..<file.rowGroupCount {
            for column in file.columns.indices {
                let reader = try file.columnChunk(rowGroup: group, column: column)
                while let page = try reader.nextPage() {
                    var next = 0
                    for row in 0..<page.rowCount {
                        if let validity = page.validity, !validity[row] {
                            cells.append(.null)
                        } else {
                            cells.append(page.values.value(at: next))
                            next += 1
                        }
                    }
                }
            }
        }
        return cells
    }

    func expectFailure(
        _ bytes: [UInt8], _ kind: Kind, _ fragment: String, limits: ParquetLimits = ParquetLimits(),
        sourceLocation: SourceLocation = #_sourceLocation
    ) {
        do {
            let cells = try Self.readAll(bytes, limits: limits)
            Issue.record("read \(cells.count) cells; expected a \(kind) error about \"\(fragment)\"", sourceLocation: sourceLocation)
        } catch {
            let actual: Kind = switch error {
            case .notParquet: .notParquet
            case .malformed: .malformed
            case .unsupported: .unsupported
            case .limitExceeded: .limitExceeded
            case .io: .io
            }
            #expect(actual == kind, "\(error)", sourceLocation: sourceLocation)
            #expect(error.description.contains(fragment), "\(error)", sourceLocation: sourceLocation)
        }
    }

    /// A valid one-column file: INT32 OPTIONAL values 1, null, 3.
    static func valid() -> ParquetBuilder {
        var builder = ParquetBuilder()
        builder.pages = [ParquetBuilder.int32Page([1, nil, 3])]
        builder.rows = 3
        return builder
    }

    /// `file` with its footer replaced by `footer` (and the length fixed up).
    static func reframed(_ file: [UInt8], footer: [UInt8]) -> [UInt8] {
        let length = Int(file[file.count - 8]) | Int(file[file.count - 7]) << 8 | Int(file[file.count - 6]) << 16
        let body = Array(file[..<(file.count - 8 - length)])
        return body + footer + ParquetBuilder.uint32LE(footer.count) + Array("PAR1".utf8)
    }

    static func footer(of file: [UInt8]) -> [UInt8] {
        let length = Int(file[file.count - 8]) | Int(file[file.count - 7]) << 8 | Int(file[file.count - 6]) << 16
        return Array(file[(file.count - 8 - length)..<(file.count - 8)])
    }

    // MARK: - The builder itself

    @Test func handcraftedFileReads() throws {
        #expect(try Self.readAll(Self.valid().build()) == [.int32(1), .null, .int32(3)])
    }

    // MARK: - Frame and footer

    @Test func frameIsCheckedFirst() {
        let good = Self.valid().build()
        expectFailure([], .notParquet, "0 bytes")
        expectFailure(Array("PAR1".utf8), .notParquet, "4 bytes")
        expectFailure(Array(good[..<11]), .notParquet, "11 bytes")
        expectFailure(Array("PAR0".utf8) + good[4...], .notParquet, "does not start with PAR1")
        expectFailure(Array(good.dropLast()) + [0x30], .notParquet, "does not end with PAR1")
        expectFailure(Array(good[..<(good.count / 2)]), .notParquet, "does not end with PAR1")
        expectFailure(Array(good.dropLast(4)) + Array("PARE".utf8), .unsupported, "encrypted footer")
    }

    @Test func footerLengthMustFit() {
        let good = Self.valid().build()
        func withLength(_ length: UInt32) -> [UInt8] {
            Array(good.dropLast(8)) + ParquetBuilder.uint32LE(Int(length)) + Array("PAR1".utf8)
        }
        expectFailure(withLength(0), .malformed, "footer length 0")
        expectFailure(withLength(UInt32(good.count - 11)), .malformed, "does not fit")
        expectFailure(withLength(0xFFFF_FFFF), .malformed, "footer length 4294967295")
        var limits = ParquetLimits()
        limits.maximumFooterBytes = 16
        expectFailure(good, .limitExceeded, "footer of", limits: limits)
    }

    @Test func truncatedOrGarbageThriftFails() {
        let good = Self.valid().build()
        let footer = Self.footer(of: good)
        expectFailure(Self.reframed(good, footer: Array(footer.dropLast(6))), .malformed, "footer")
        expectFailure(Self.reframed(good, footer: [0x1F, 0xFF, 0xFF]), .malformed, "footer")
        var builder = Self.valid()
        builder.pages[0].header = .raw([0x15, 0x00, 0x1F])
        expectFailure(builder.build(), .malformed, "page header")
    }

    @Test func negativeSizesAndCountsAreRefused() {
        var builder = Self.valid()
        builder.pages[0].header = builder.pages[0].header.setting(3, .i32(-5))
        expectFailure(builder.build(), .malformed, "negative compressed_page_size")
        builder = Self.valid()
        builder.editFile = { $0.setting(3, .i64(-1)) }
        expectFailure(builder.build(), .malformed, "negative num_rows")
    }

    @Test func hugeDeclaredListsAndBinariesFailFast() {
        var builder = Self.valid()
        // A schema list claiming 2^31 elements, then nothing.
        builder.editFile = { $0.setting(2, .raw([0xFC, 0x80, 0x80, 0x80, 0x80, 0x08], type: 9)) }
        expectFailure(builder.build(), .malformed, "2147483648 elements")
        builder = Self.valid()
        // created_by (the footer's last field) claiming 2^40 bytes: its length byte becomes a
        // 6-byte varint.
        builder.editFile = { $0.setting(6, .binary([])) }
        let bytes = builder.build()
        let footer = Self.footer(of: bytes)
        let patched = Array(footer.dropLast(2)) + [0x80, 0x80, 0x80, 0x80, 0x80, 0x20, 0x00]
        expectFailure(Self.reframed(bytes, footer: patched), .malformed, "past the end of the metadata")
    }

    @Test func deepNestingIsCapped() {
        // An unknown field (id 20) holding 10 000 nested structs.
        let nested = [UInt8](repeating: 0x1C, count: 10_000) + [UInt8](repeating: 0x00, count: 10_001)
        var builder = Self.valid()
        builder.editFile = { $0.setting(20, .raw(nested)) }
        expectFailure(builder.build(), .malformed, "nested deeper than")
    }

    @Test func schemaMustBeFlatAndWellFormed() {
        var builder = Self.valid()
        builder.editFile = { file in
            file.setting(2, .list(12, [
                .structure([(4, .string("schema")), (5, .i32(1))]),
                .structure([(3, .i32(1)), (4, .string("group")), (5, .i32(1))]),
                .structure([(1, .i32(1)), (3, .i32(1)), (4, .string("v"))]),
            ]))
        }
        expectFailure(builder.build(), .unsupported, "nested column")
        builder.editFile = { file in
            file.setting(2, .list(12, [.structure([(4, .string("schema")), (5, .i32(5))]), .structure([(1, .i32(1)), (4, .string("v"))])]))
        }
        expectFailure(builder.build(), .malformed, "declares 5 children")
        builder = Self.valid()
        builder.physicalType = 9
        expectFailure(builder.build(), .malformed, "unknown physical type 9")
        builder = Self.valid()
        builder.repetition = 2
        expectFailure(builder.build(), .unsupported, "repeated column")
        builder = Self.valid()
        builder.extraSchema = [(10, .structure([(3, .structure([]))]))]  // LogicalType LIST
        expectFailure(builder.build(), .unsupported, "logical type 3")
        builder = Self.valid()
        builder.physicalType = 7  // FIXED_LEN_BYTE_ARRAY without type_length
        expectFailure(builder.build(), .malformed, "no valid type_length")
    }

    @Test func encryptionAndExternalDataAreRefused() {
        var builder = Self.valid()
        builder.editFile = { $0.setting(8, .structure([(1, .structure([]))])) }
        expectFailure(builder.build(), .unsupported, "encrypted file")
        builder = Self.valid()
        builder.editFile = { file in
            guard case .structure(let fields) = file, let groups = fields.first(where: { $0.0 == 4 })?.1,
                  case .list(_, let list) = groups, case .structure(let group) = list[0],
                  case .list(_, let chunks)? = group.first(where: { $0.0 == 1 })?.1
            else { return file }
            let chunk = chunks[0].setting(1, .string("elsewhere.parquet"))
            return file.setting(4, .list(12, [list[0].setting(1, .list(12, [chunk]))]))
        }
        expectFailure(builder.build(), .unsupported, "another file")
    }

    // MARK: - Chunks and pages

    @Test func chunkMustLieInTheDataArea() {
        var builder = Self.valid()
        builder.editColumn = { $0.setting(9, .i64(1_000_000_000)) }
        expectFailure(builder.build(), .malformed, "outside the data area")
        builder.editColumn = { $0.setting(7, .i64(1 << 40)) }
        expectFailure(builder.build(), .malformed, "claim more bytes than the file's data area")
    }

    @Test func pageMustLieInItsChunk() {
        var builder = Self.valid()
        builder.pages[0].header = builder.pages[0].header.setting(3, .i32(10_000))
        expectFailure(builder.build(), .malformed, "run past the end of its column chunk")
    }

    @Test func uncompressedSizeBombsAreRefusedBeforeAllocating() {
        var builder = Self.valid()
        builder.codec = 1
        builder.pages[0].header = builder.pages[0].header.setting(2, .i32(Int32.max))
        expectFailure(builder.build(), .limitExceeded, "more than the limit")
        // A row group claiming 10^12 rows.
        builder = Self.valid()
        builder.rows = 1_000_000_000_000
        expectFailure(builder.build(), .limitExceeded, "1000000000000 rows")
    }

    @Test func corruptCompressedPagesAreFileErrors() {
        for (codec, fragment) in [(Int32(1), "snappy"), (2, "GZIP page"), (6, "ZSTD page")] {
            var builder = Self.valid()
            builder.codec = codec
            let body: [UInt8] = [0x0E, 0x1F, 0x8B, 0x28, 0xB5, 0x2F, 0xFD, 0xFF, 0xFF, 0xFF]
            builder.pages[0] = (ParquetBuilder.dataPageHeader(values: 3, encoding: 0, size: 14, compressedSize: body.count), body)
            expectFailure(builder.build(), .malformed, fragment)
        }
    }

    @Test func unsupportedCodecsSaySo() {
        for (codec, name) in [(Int32(3), "LZO"), (4, "BROTLI"), (7, "LZ4_RAW")] {
            var builder = Self.valid()
            builder.codec = codec
            expectFailure(builder.build(), .unsupported, "codec \(name)")
        }
    }

    @Test func pageValueCountsMustMatchTheRows() {
        var builder = Self.valid()
        builder.pages = [ParquetBuilder.int32Page([1, 2, 3, 4, 5])]
        expectFailure(builder.build(), .malformed, "only 3 rows left")
        builder = Self.valid()
        builder.pages = [ParquetBuilder.int32Page([1, 2])]
        expectFailure(builder.build(), .malformed, "1 rows still to read")
        builder = Self.valid()
        builder.editColumn = { $0.setting(5, .i64(7)) }
        expectFailure(builder.build(), .malformed, "7 values for 3 rows")
        builder = Self.valid()
        builder.editFile = { $0.setting(3, .i64(5)) }
        expectFailure(builder.build(), .malformed, "the footer says 5")
    }

    @Test func levelAndValueLengthsAreBounded() {
        var builder = Self.valid()
        let levels = ParquetBuilder.rle([1, 0, 1], width: 1)
        var body = ParquetBuilder.uint32LE(1000) + levels + ParquetBuilder.uint32LE(1) + ParquetBuilder.uint32LE(3)
        builder.pages = [(ParquetBuilder.dataPageHeader(values: 3, encoding: 0, size: body.count), body)]
        expectFailure(builder.build(), .malformed, "1000 bytes declared")
        // A BYTE_ARRAY value claiming a million bytes.
        builder = Self.valid()
        builder.physicalType = 6
        body = ParquetBuilder.uint32LE(levels.count) + levels + ParquetBuilder.uint32LE(1_000_000) + Array("abcdefgh".utf8)
        builder.pages = [(ParquetBuilder.dataPageHeader(values: 3, encoding: 0, size: body.count), body)]
        expectFailure(builder.build(), .malformed, "1000000 bytes")
        // A zero-length RLE run in the definition levels.
        builder = Self.valid()
        body = ParquetBuilder.uint32LE(2) + [0x00, 0x01] + ParquetBuilder.uint32LE(1)
        builder.pages = [(ParquetBuilder.dataPageHeader(values: 3, encoding: 0, size: body.count), body)]
        expectFailure(builder.build(), .malformed, "run of length 0")
    }

    /// A dictionary of INT32 `entries`, then a data page of `indices` at `width` bits.
    static func dictionaryFile(entries: [Int32], indices: [Int], width: UInt8, dictionary: Bool = true) -> [UInt8] {
        var builder = ParquetBuilder()
        builder.repetition = 0
        let dictionaryBody = entries.flatMap { ParquetBuilder.uint32LE(Int(UInt32(bitPattern: $0))) }
        let data = [width] + ParquetBuilder.rle(indices, width: Int(width))
        if dictionary { builder.pages.append((ParquetBuilder.dictionaryPageHeader(values: entries.count, size: dictionaryBody.count), dictionaryBody)) }
        builder.pages.append((ParquetBuilder.dataPageHeader(values: indices.count, encoding: 8, size: data.count), data))
        builder.rows = Int64(indices.count)
        return builder.build()
    }

    @Test func dictionaryIndicesAreChecked() throws {
        #expect(try Self.readAll(Self.dictionaryFile(entries: [7, 9], indices: [1, 0, 1], width: 1)) == [.int32(9), .int32(7), .int32(9)])
        // Bit width 0: every index is 0.
        #expect(try Self.readAll(Self.dictionaryFile(entries: [42], indices: [0, 0], width: 0)) == [.int32(42), .int32(42)])
        expectFailure(Self.dictionaryFile(entries: [7, 9], indices: [5], width: 3), .malformed, "dictionary index 5 out of range")
        expectFailure(Self.dictionaryFile(entries: [7], indices: [0], width: 1, dictionary: false), .malformed, "without a dictionary page")
        expectFailure(Self.dictionaryFile(entries: [7], indices: [0], width: 40), .malformed, "bit width 40")
        // Two dictionary pages.
        var builder = ParquetBuilder()
        builder.repetition = 0
        let entry = ParquetBuilder.uint32LE(7)
        builder.pages = [(ParquetBuilder.dictionaryPageHeader(values: 1, size: 4), entry), (ParquetBuilder.dictionaryPageHeader(values: 1, size: 4), entry)]
        builder.rows = 1
        expectFailure(builder.build(), .malformed, "a second dictionary page")
    }

    /// DELTA_BINARY_PACKED encoding of `values`: blocks of 128 in 4 miniblocks of 8-bit deltas
    /// (each delta minus its block's minimum must fit a byte).
    static func deltaEncode(_ values: [Int64]) -> [UInt8] {
        var out: [UInt8] = []
        func zigzag(_ value: Int64) { Thrift.varint(UInt64(bitPattern: (value << 1) ^ (value >> 63)), into: &out) }
        Thrift.varint(128, into: &out)
        Thrift.varint(4, into: &out)
        Thrift.varint(UInt64(values.count), into: &out)
        zigzag(values.first ?? 0)
        guard values.count > 1 else { return out }
        let deltas = zip(values.dropFirst(), values).map { $0 - $1 }
        for blockStart in stride(from: 0, to: deltas.count, by: 128) {
            let block = deltas[blockStart..<min(blockStart + 128, deltas.count)]
            let minimum = block.min()!
            zigzag(minimum)
            out += [8, 8, 8, 8]
            for miniblock in 0..<4 {
                let slice = block.dropFirst(miniblock * 32).prefix(32)
                guard !slice.isEmpty else { break }
                out += (0..<32).map { index in index < slice.count ? UInt8(slice[slice.startIndex + index] - minimum) : 0 }
            }
        }
        return out
    }

    @Test func deltaAndStreamSplitGuards() throws {
        func file(type: Int32, encoding: Int32, body: [UInt8], rows: Int) -> [UInt8] {
            var builder = ParquetBuilder()
            builder.repetition = 0
            builder.physicalType = type
            builder.pages = [(ParquetBuilder.dataPageHeader(values: rows, encoding: encoding, size: body.count), body)]
            builder.rows = Int64(rows)
            return builder.build()
        }
        // The encoder above round-trips.
        #expect(try Self.readAll(file(type: 2, encoding: 5, body: Self.deltaEncode([5, 3, 10, 10]), rows: 4)) == [5, 3, 10, 10].map { .int64($0) })
        // A block size that is not a multiple of 128.
        expectFailure(file(type: 2, encoding: 5, body: [100, 4, 1, 0], rows: 1), .malformed, "block size 100")
        // Miniblock bit width above 64.
        var body = Self.deltaEncode([1, 2])
        body[6] = 70  // after the 5-byte header and the minimum delta: the first miniblock's width
        expectFailure(file(type: 2, encoding: 5, body: body, rows: 2), .malformed, "bit width 70")
        // A total count that disagrees with the page.
        expectFailure(file(type: 2, encoding: 5, body: Self.deltaEncode([1, 2, 3]), rows: 2), .malformed, "holds 3 values where 2")
        // BYTE_STREAM_SPLIT of two FLOATs in 7 bytes.
        expectFailure(file(type: 4, encoding: 9, body: [1, 2, 3, 4, 5, 6, 7], rows: 2), .malformed, "BYTE_STREAM_SPLIT needs 4 × 2 bytes")
        // DELTA_BYTE_ARRAY whose second prefix (5) is longer than the first value ("a").
        let strings = Self.deltaEncode([0, 5]) + Self.deltaEncode([1, 1]) + Array("ab".utf8)
        expectFailure(file(type: 6, encoding: 7, body: strings, rows: 2), .malformed, "prefix length 5 exceeds")
        // DELTA_BYTE_ARRAY whose values each repeat all of the previous one: 20 000 values of a
        // 60 KB page would expand to 200 MB. The cap stops it as it grows.
        let count = 20_000
        let bomb = Self.deltaEncode((0..<Int64(count)).map { $0 }) + Self.deltaEncode([Int64](repeating: 1, count: count))
            + [UInt8](repeating: 0x61, count: count)
        var limits = ParquetLimits()
        limits.maximumPageValueBytes = 16 * 1024 * 1024
        expectFailure(file(type: 6, encoding: 7, body: bomb, rows: count), .limitExceeded, "expand past the limit", limits: limits)
        // An encoding the page type cannot have.
        expectFailure(file(type: 1, encoding: 6, body: [0], rows: 1), .unsupported, "DELTA_LENGTH_BYTE_ARRAY")
    }

    @Test func zeroRowFilesRead() throws {
        var builder = ParquetBuilder()
        builder.rows = 0
        #expect(try Self.readAll(builder.build()).isEmpty)
    }

    /// The review's bomb: a few hundred bytes whose OPTIONAL column declares 2^30 nulls in one
    /// RLE run. Each of three bounds refuses it alone, before anything is allocated from the count.
    @Test func aFewBytesCannotClaimABillionValues() throws {
        func bomb(rows: Int64, pageValues: Int) -> [UInt8] {
            var builder = ParquetBuilder()
            // One RLE run of `pageValues` zeros (all null): a header varint and one byte.
            var run: [UInt8] = []
            Thrift.varint(UInt64(pageValues) << 1, into: &run)
            run.append(0)
            let body = ParquetBuilder.uint32LE(run.count) + run
            builder.pages = [(ParquetBuilder.dataPageHeader(values: pageValues, encoding: 0, size: body.count), body)]
            builder.rows = rows
            return builder.build()
        }
        // First with a small cap, so that a missing guard fails here by assertion, not by allocation.
        var small = ParquetLimits()
        small.maximumPageValues = 1000
        expectFailure(bomb(rows: 1001, pageValues: 1001), .limitExceeded, "a page of 1001 values, more than the limit of 1000", limits: small)
        let file = bomb(rows: 1 << 30, pageValues: 1 << 30)
        #expect(file.count < 512)
        // 1. The file declares far more rows than its bytes can carry.
        expectFailure(file, .limitExceeded, "1073741824 rows declared in a file of \(file.count) bytes")
        // 2. Past that (a generous allowance), the row group is over the cap.
        var generous = ParquetLimits()
        generous.rowAllowance = 1 << 40
        expectFailure(file, .limitExceeded, "1073741824 rows × 1 columns declared in a file of", limits: generous)
        generous.cellAllowance = 1 << 40
        expectFailure(file, .limitExceeded, "1073741824 rows in one row group, more than the limit of 16777216", limits: generous)
        // 3. Past that too, the page is: no level, flag or value array of 2^30 is ever made.
        generous.maximumRowGroupRows = 1 << 40
        expectFailure(file, .limitExceeded, "a page of 1073741824 values, more than the limit of 1048576", limits: generous)
        // A page of exactly the limit is read (a million nulls from a few bytes).
        let largest = bomb(rows: 1 << 20, pageValues: 1 << 20)
        let cells = try GuardTests.readAll(largest, limits: generous)
        #expect(cells.count == 1 << 20 && cells.allSatisfy { $0 == .null })
        expectFailure(bomb(rows: (1 << 20) + 1, pageValues: (1 << 20) + 1), .limitExceeded, "a page of 1048577 values", limits: generous)
    }

    /// A dictionary lives as long as its row group, in every column at once: its page is capped,
    /// and the record source counts it in the columns' shared budget.
    @Test func aDictionaryPageIsCappedBeforeItIsDecompressed() {
        var builder = ParquetBuilder()
        builder.repetition = 0
        let entries = [Int32(5), -7].flatMap { ParquetBuilder.uint32LE(Int(UInt32(bitPattern: $0))) }
        let data: [UInt8] = [1] + ParquetBuilder.rle([1, 1, 0], width: 1)
        builder.pages = [
            (ParquetBuilder.dictionaryPageHeader(values: 2, size: entries.count), entries),
            (ParquetBuilder.dataPageHeader(values: 3, encoding: 8, size: data.count), data),
        ]
        builder.rows = 3
        var limits = ParquetLimits()
        limits.maximumDictionaryBytes = 7
        expectFailure(builder.build(), .limitExceeded, "a dictionary page of 8 bytes, more than the limit of 7", limits: limits)
        limits.maximumDictionaryBytes = 8
        #expect(throws: Never.self) { try GuardTests.readAll(builder.build(), limits: limits) }
    }

    @Test func theRowsPerByteBoundScalesWithTheFile() {
        var limits = ParquetLimits()
        limits.rowAllowance = 10
        limits.maximumRowsPerFileByte = 2
        var builder = GuardTests.valid()
        let small = builder.build()
        #expect(throws: Never.self) { try GuardTests.readAll(small, limits: limits) }
        builder.rows = Int64(small.count) * 3
        expectFailure(builder.build(), .limitExceeded, "rows declared in a file of", limits: limits)
    }
}

/// Files that carry only the legacy ConvertedType (older parquet-mr, Hive, Spark) and the
/// parquet-mr v1 writer's PLAIN_DICTIONARY encoding.
@Suite struct LegacyWriterTests {
    func column(physical: Int32, _ schema: [(Int16, Thrift)]) throws -> ParquetColumn {
        var builder = ParquetBuilder()
        builder.physicalType = physical
        builder.extraSchema = schema
        builder.rows = 0
        return try #require(try ParquetFile(input: MemoryInput(builder.build())).columns.first)
    }

    @Test func convertedTypesAloneGiveTheLogicalType() throws {
        #expect(try column(physical: 2, [(6, .i32(9))]).logicalType == .timestamp(unit: .millis, utc: true))
        #expect(try column(physical: 2, [(6, .i32(10))]).logicalType == .timestamp(unit: .micros, utc: true))
        #expect(try column(physical: 1, [(6, .i32(6))]).logicalType == .date)
        #expect(try column(physical: 1, [(6, .i32(13))]).logicalType == .integer(bitWidth: 32, signed: false))
        #expect(try column(physical: 2, [(6, .i32(18))]).logicalType == .integer(bitWidth: 64, signed: true))
        #expect(try column(physical: 6, [(6, .i32(0))]).logicalType == .string)
        #expect(try column(physical: 2, [(6, .i32(5)), (7, .i32(3)), (8, .i32(12))]).logicalType == .decimal(scale: 3, precision: 12))
        // A LogicalType wins over the ConvertedType (pyarrow writes both; local timestamps only the first).
        #expect(try column(physical: 2, [(6, .i32(9)), (10, .structure([(8, .structure([(1, .bool(false)), (2, .structure([(3, .structure([]))]))]))]))]).logicalType
            == .timestamp(unit: .nanos, utc: false))
        // Annotations that contradict the physical type are malformed.
        #expect(throws: ParquetError.self) { try column(physical: 1, [(6, .i32(9))]) }
        #expect(throws: ParquetError.self) { try column(physical: 1, [(6, .i32(5)), (7, .i32(4)), (8, .i32(12))]) }  // precision 12 on INT32
    }

    @Test func plainDictionaryPagesAsParquetMRWritesThem() throws {
        var builder = ParquetBuilder()
        builder.repetition = 0
        let entries = [Int32(5), -7].flatMap { ParquetBuilder.uint32LE(Int(UInt32(bitPattern: $0))) }
        let data: [UInt8] = [1] + ParquetBuilder.rle([1, 1, 0], width: 1)
        builder.pages = [
            (ParquetBuilder.dictionaryPageHeader(values: 2, size: entries.count).setting(7, .structure([(1, .i32(2)), (2, .i32(2))])), entries),
            (ParquetBuilder.dataPageHeader(values: 3, encoding: 2, size: data.count), data),
        ]
        builder.rows = 3
        #expect(try GuardTests.readAll(builder.build()) == [.int32(-7), .int32(-7), .int32(5)])
    }
}
