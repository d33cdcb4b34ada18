/// The value encodings of parquet.md §6-§7, over a bounded byte range. Every length, count and
/// width is checked against the bytes left before it is used, so hostile pages fail with a
/// typed error and never read out of bounds, allocate from a declared count, or loop forever.
struct ByteCursor {
    let base: UnsafePointer<UInt8>
    var position: Int
    let end: Int

    init(_ buffer: UnsafeRawBufferPointer) {
        // An empty buffer may have no base address; point at a valid dummy byte instead.
        base = buffer.baseAddress.map { $0.assumingMemoryBound(to: UInt8.self) } ?? ByteCursor.empty
        position = 0
        end = buffer.count
    }

    private nonisolated(unsafe) static let empty: UnsafePointer<UInt8> = {
        let pointer = UnsafeMutablePointer<UInt8>.allocate(capacity: 1)
        pointer.initialize(to: 0)
        return UnsafePointer(pointer)
    }()

    var remaining: Int { end - position }

    mutating func byte(_ what: String) throws(ParquetError) -> UInt8 {
        guard position < end else { throw .malformed("\(what): the page ends early") }
        defer { position += 1 }
        return base[position]
    }

    mutating func uint32LE(_ what: String) throws(ParquetError) -> Int {
        guard remaining >= 4 else { throw .malformed("\(what): the page ends early") }
        defer { position += 4 }
        return Int(UnsafeRawPointer(base + position).loadUnaligned(as: UInt32.self).littleEndian)
    }

    mutating func varint(_ what: String) throws(ParquetError) -> UInt64 {
        var result: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            let next = try byte(what)
            guard shift < 63 || next <= 1 else { throw .malformed("\(what): a varint longer than 64 bits") }
            result |= UInt64(next & 0x7F) << shift
            if next & 0x80 == 0 { return result }
            shift += 7
        }
    }

    mutating func zigzag(_ what: String) throws(ParquetError) -> Int64 {
        let raw = try varint(what)
        return Int64(bitPattern: (raw >> 1) ^ (0 &- (raw & 1)))
    }

    /// Takes `count` bytes as a sub-cursor.
    mutating func take(_ count: Int, _ what: String) throws(ParquetError) -> ByteCursor {
        guard count >= 0, count <= remaining else {
            throw .malformed("\(what): \(count) bytes declared, \(remaining) left in the page")
        }
        defer { position += count }
        return ByteCursor(base: base, position: position, end: position + count)
    }

    private init(base: UnsafePointer<UInt8>, position: Int, end: Int) {
        self.base = base
        self.position = position
        self.end = end
    }
}

/// Reads `width` bits (0...64) starting at bit `bit` of `count` bytes at `base`, LSB first.
@inline(__always)
private func loadBits(_ base: UnsafePointer<UInt8>, count: Int, bit: Int, width: Int) -> UInt64 {
    let byte = bit >> 3
    let shift = UInt64(bit & 7)
    var word: UInt64
    if byte + 8 <= count {
        word = UnsafeRawPointer(base + byte).loadUnaligned(as: UInt64.self).littleEndian >> shift
    } else {
        word = 0
        var index = 0
        while byte + index < count, index < 8 {
            word |= UInt64(base[byte + index]) << UInt64(8 * index)
            index += 1
        }
        word >>= shift
    }
    if shift + UInt64(width) > 64, byte + 8 < count {
        word |= UInt64(base[byte + 8]) << (64 - shift)
    }
    return width == 64 ? word : word & ((1 << UInt64(width)) - 1)
}

/// The RLE / bit-packed hybrid (parquet.md §6) with a known bit width (0...32).
struct HybridDecoder {
    var cursor: ByteCursor
    let bitWidth: Int
    let what: String

    init(_ cursor: ByteCursor, bitWidth: Int, what: String) throws(ParquetError) {
        guard (0...32).contains(bitWidth) else { throw .malformed("\(what): bit width \(bitWidth) (at most 32)") }
        self.cursor = cursor
        self.bitWidth = bitWidth
        self.what = what
    }

    /// Decodes exactly `count` values into `output` (values wider than `T` are truncated; the
    /// callers pick a `T` that holds `bitWidth` bits).
    mutating func decode<T: FixedWidthInteger & UnsignedInteger>(into output: UnsafeMutablePointer<T>, count: Int) throws(ParquetError) {
        var produced = 0
        let valueBytes = (bitWidth + 7) / 8
        let mask: UInt64 = bitWidth == 0 ? 0 : (1 << UInt64(bitWidth)) - 1
        while produced < count {
            let header = try cursor.varint(what)
            guard header >> 1 <= UInt64(Int32.max) else { throw .malformed("\(what): a run longer than 2^31 values") }
            let length = Int(header >> 1)
            guard length > 0 else { throw .malformed("\(what): a run of length 0") }
            if header & 1 == 0 {
                guard cursor.remaining >= valueBytes else { throw .malformed("\(what): the data ends inside a run") }
                var value: UInt64 = 0
                for index in 0..<valueBytes { value |= UInt64(cursor.base[cursor.position + index]) << UInt64(8 * index) }
                cursor.position += valueBytes
                let take = min(length, count - produced)
                (output + produced).update(repeating: T(truncatingIfNeeded: value), count: take)
                produced += take
            } else {
                // `length` groups of 8 values; the last run of a page may stop short of its padding.
                let values = length * 8
                let take = min(values, count - produced)
                let needed = (take * bitWidth + 7) / 8
                guard needed <= cursor.remaining else {
                    throw .malformed("\(what): a bit-packed run of \(values) values needs \(needed) bytes, \(cursor.remaining) are left")
                }
                let start = cursor.base + cursor.position
                let available = cursor.remaining
                let out = output + produced
                if bitWidth == 0 {
                    out.update(repeating: 0, count: take)
                } else {
                    // Values whose 8-byte window lies inside the data load it whole (w <= 32, so
                    // shift + w < 64); the last few are assembled byte by byte.
                    let fast = available >= 8 ? min(take, (available - 8) * 8 / bitWidth + 1) : 0
                    var bit = 0
                    for index in 0..<fast {
                        let word = UnsafeRawPointer(start + (bit >> 3)).loadUnaligned(as: UInt64.self).littleEndian
                        out[index] = T(truncatingIfNeeded: (word >> UInt64(bit & 7)) & mask)
                        bit += bitWidth
                    }
                    for index in fast..<take {
                        out[index] = T(truncatingIfNeeded: loadBits(start, count: available, bit: bit, width: bitWidth))
                        bit += bitWidth
                    }
                }
                cursor.position += min(length * bitWidth, available)
                produced += take
            }
        }
    }

    /// Decodes `count` values into a new array.
    mutating func decode(count: Int) throws(ParquetError) -> [UInt32] {
        guard count > 0 else { return [] }
        var values = [UInt32](repeating: 0, count: count)
        try values.withMutableBytes { buffer throws(ParquetError) in
            try decode(into: buffer.baseAddress!.assumingMemoryBound(to: UInt32.self), count: count)
        }
        return values
    }

    /// Decodes `count` levels of a flat column (each 0 or 1) as flags, and counts the ones.
    mutating func decodeFlags(count: Int) throws(ParquetError) -> (flags: [Bool], ones: Int) {
        guard count > 0 else { return ([], 0) }
        var levels = [UInt8](repeating: 0, count: count)
        try levels.withMutableBytes { buffer throws(ParquetError) in
            try decode(into: buffer.baseAddress!.assumingMemoryBound(to: UInt8.self), count: count)
        }
        var ones = 0
        var largest: UInt8 = 0
        for level in levels {
            ones &+= Int(level)
            largest |= level
        }
        guard largest <= 1 else { throw .malformed("\(what): a level above 1 in a flat column") }
        let flags = [Bool](unsafeUninitializedCapacity: count) { buffer, initialized in
            // Every byte is 0 or 1 (checked above): exactly Bool's representation.
            levels.withUnsafeBytes { UnsafeMutableRawPointer(buffer.baseAddress!).copyMemory(from: $0.baseAddress!, byteCount: count) }
            initialized = count
        }
        return (flags, ones)
    }
}

/// DELTA_BINARY_PACKED (parquet.md §7) for INT32 (`is32`, wrapping in 32 bits) and INT64.
enum DeltaBinaryPacked {
    static func decode(_ cursor: inout ByteCursor, count expected: Int?, is32: Bool, what: String) throws(ParquetError) -> [Int64] {
        let blockSize = try cursor.varint(what)
        let miniblocks = try cursor.varint(what)
        let total = try cursor.varint(what)
        var previous = try cursor.zigzag(what)
        guard blockSize > 0, blockSize % 128 == 0, blockSize <= 1 << 20, miniblocks > 0, blockSize % miniblocks == 0,
              (blockSize / miniblocks) % 32 == 0
        else {
            throw .malformed("\(what): DELTA_BINARY_PACKED header with block size \(blockSize) and \(miniblocks) miniblocks")
        }
        if let expected, total != UInt64(expected) {
            throw .malformed("\(what): DELTA_BINARY_PACKED holds \(total) values where \(expected) were expected")
        }
        // Every value after the first takes at least 0 bits, but each block of them takes at
        // least a byte: bound the count by what the bytes left can hold.
        guard total <= UInt64(cursor.remaining) * blockSize + 1 else {
            throw .malformed("\(what): DELTA_BINARY_PACKED claims \(total) values in \(cursor.remaining) bytes")
        }
        let count = Int(total)
        var values: [Int64] = []
        guard count > 0 else { return values }
        values.reserveCapacity(count)
        values.append(previous)
        let perMiniblock = Int(blockSize / miniblocks)
        let maximumWidth = is32 ? 32 : 64
        while values.count < count {
            let minimumDelta = try cursor.zigzag(what)
            let widths = try cursor.take(Int(miniblocks), what)
            for miniblock in 0..<Int(miniblocks) where values.count < count {
                let width = Int(widths.base[widths.position + miniblock])
                guard width <= maximumWidth else { throw .malformed("\(what): DELTA_BINARY_PACKED bit width \(width)") }
                let take = min(perMiniblock, count - values.count)
                let needed = (take * width + 7) / 8
                guard needed <= cursor.remaining else { throw .malformed("\(what): a DELTA_BINARY_PACKED miniblock runs past the page") }
                let start = cursor.base + cursor.position
                let available = cursor.remaining
                var bit = 0
                for _ in 0..<take {
                    let packed = width == 0 ? 0 : loadBits(start, count: available, bit: bit, width: width)
                    bit += width
                    var next = previous &+ minimumDelta &+ Int64(bitPattern: packed)
                    if is32 { next = Int64(Int32(truncatingIfNeeded: next)) }
                    values.append(next)
                    previous = next
                }
                cursor.position += min(perMiniblock * width / 8, available)
            }
        }
        return values
    }
}

/// Decoders of the values section of a page (or a dictionary page) into ``ColumnStorage``.
enum ValueDecoder {
    /// PLAIN values of `type`.
    static func plain(_ cursor: inout ByteCursor, type: PhysicalType, typeLength: Int, count: Int, what: String) throws(ParquetError) -> ColumnStorage {
        func fixed<T>(_ width: Int, as: T.Type) throws(ParquetError) -> [T] {
            let (bytes, overflow) = count.multipliedReportingOverflow(by: width)
            guard !overflow, bytes <= cursor.remaining else {
                throw .malformed("\(what): \(count) PLAIN \(type) values need \(bytes) bytes, \(cursor.remaining) are left")
            }
            let source = UnsafeRawPointer(cursor.base + cursor.position)
            cursor.position += bytes
            return [T](unsafeUninitializedCapacity: count) { buffer, initialized in
                UnsafeMutableRawPointer(buffer.baseAddress!).copyMemory(from: source, byteCount: bytes)
                initialized = count
            }
        }
        guard count > 0 else { return ValueDecoder.empty(type) }
        switch type {
        case .boolean:
            let bytes = (count + 7) / 8
            let data = try cursor.take(bytes, what)
            var values = [Bool](repeating: false, count: count)
            for index in 0..<count { values[index] = (data.base[data.position + (index >> 3)] >> UInt8(index & 7)) & 1 == 1 }
            return .boolean(values)
        case .int32: return .int32(try fixed(4, as: Int32.self))
        case .int64: return .int64(try fixed(8, as: Int64.self))
        case .float: return .float(try fixed(4, as: Float.self))
        case .double: return .double(try fixed(8, as: Double.self))
        case .int96:
            let data = try cursor.take(count.multipliedReportingOverflow(by: 12).overflow ? -1 : count * 12, what)
            var values: [Int96Value] = []
            values.reserveCapacity(count)
            for index in 0..<count {
                let pointer = UnsafeRawPointer(data.base + data.position + index * 12)
                values.append(Int96Value(
                    nanosecondsOfDay: pointer.loadUnaligned(as: Int64.self).littleEndian,
                    julianDay: pointer.loadUnaligned(fromByteOffset: 8, as: Int32.self).littleEndian))
            }
            return .int96(values)
        case .fixedLenByteArray:
            let (bytes, overflow) = count.multipliedReportingOverflow(by: typeLength)
            let data = try cursor.take(overflow ? -1 : bytes, what)
            let offsets = [Int](unsafeUninitializedCapacity: count + 1) { buffer, initialized in
                for index in 0...count { buffer[index] = index * typeLength }
                initialized = count + 1
            }
            return .bytes(ByteArrayValues(offsets: offsets, bytes: Array(UnsafeBufferPointer(start: data.base + data.position, count: bytes))))
        case .byteArray:
            // Every value takes at least its 4-byte length: the count is bounded by the bytes left.
            guard count <= cursor.remaining / 4 else {
                throw .malformed("\(what): \(count) PLAIN BYTE_ARRAY values cannot fit in \(cursor.remaining) bytes")
            }
            var offsets = [Int]()
            offsets.reserveCapacity(count + 1)
            offsets.append(0)
            var bytes = [UInt8]()
            bytes.reserveCapacity(cursor.remaining - 4 * count)
            for _ in 0..<count {
                let length = try cursor.uint32LE(what)
                guard length <= cursor.remaining else {
                    throw .malformed("\(what): a BYTE_ARRAY value of \(length) bytes, \(cursor.remaining) left in the page")
                }
                bytes.append(contentsOf: UnsafeBufferPointer(start: cursor.base + cursor.position, count: length))
                cursor.position += length
                offsets.append(bytes.count)
            }
            return .bytes(ByteArrayValues(offsets: offsets, bytes: bytes))
        }
    }

    static func empty(_ type: PhysicalType) -> ColumnStorage {
        switch type {
        case .boolean: .boolean([])
        case .int32: .int32([])
        case .int64: .int64([])
        case .int96: .int96([])
        case .float: .float([])
        case .double: .double([])
        case .byteArray, .fixedLenByteArray: .bytes(ByteArrayValues())
        }
    }

    /// Dictionary indices (a bit-width byte, then hybrid runs), resolved against `dictionary`.
    static func dictionaryIndexed(
        _ cursor: inout ByteCursor, dictionary: ColumnStorage, type: PhysicalType, count: Int, what: String
    ) throws(ParquetError) -> ColumnStorage {
        guard count > 0 else { return empty(type) }
        let width = Int(try cursor.byte(what))
        var decoder = try HybridDecoder(cursor, bitWidth: width, what: "\(what) dictionary indices")
        var indices = [Int32](repeating: 0, count: count)
        try indices.withMutableBytes { buffer throws(ParquetError) in
            try decoder.decode(into: buffer.baseAddress!.assumingMemoryBound(to: UInt32.self), count: count)
        }
        cursor = decoder.cursor
        var largest: UInt32 = 0
        for index in indices { largest = max(largest, UInt32(bitPattern: index)) }
        guard Int(largest) < dictionary.count else {
            throw .malformed("\(what): dictionary index \(largest) out of range (the dictionary has \(dictionary.count) entries)")
        }
        // Every index is below the dictionary's size: gather without a check per value.
        func gather<T>(_ entries: [T]) -> [T] {
            entries.withUnsafeBufferPointer { table in
                [T](unsafeUninitializedCapacity: count) { buffer, initialized in
                    for position in 0..<count { (buffer.baseAddress! + position).initialize(to: table[Int(indices[position])]) }
                    initialized = count
                }
            }
        }
        switch dictionary {
        case .boolean(let entries): return .boolean(gather(entries))
        case .int32(let entries): return .int32(gather(entries))
        case .int64(let entries): return .int64(gather(entries))
        case .int96(let entries): return .int96(gather(entries))
        case .float(let entries): return .float(gather(entries))
        case .double(let entries): return .double(gather(entries))
        case .bytes(let entries): return .dictionary(entries, indices: indices)
        case .dictionary(let entries, let inner): return .dictionary(entries, indices: gather(inner))
        }
    }

    /// RLE-encoded booleans: a 4-byte length, then hybrid runs of width 1.
    static func rleBooleans(_ cursor: inout ByteCursor, count: Int, what: String) throws(ParquetError) -> ColumnStorage {
        let length = try cursor.uint32LE(what)
        var decoder = try HybridDecoder(try cursor.take(length, what), bitWidth: 1, what: "\(what) RLE booleans")
        let bits = try decoder.decode(count: count)
        return .boolean(bits.map { $0 == 1 })
    }

    static func deltaBinaryPacked(_ cursor: inout ByteCursor, type: PhysicalType, count: Int, what: String) throws(ParquetError) -> ColumnStorage {
        switch type {
        case .int32:
            return .int32(try DeltaBinaryPacked.decode(&cursor, count: count, is32: true, what: what).map { Int32(truncatingIfNeeded: $0) })
        case .int64:
            return .int64(try DeltaBinaryPacked.decode(&cursor, count: count, is32: false, what: what))
        default:
            throw .malformed("\(what): DELTA_BINARY_PACKED on a \(type) column")
        }
    }

    /// Lengths (DELTA_BINARY_PACKED), then the bytes of every value back to back.
    static func deltaLengthByteArray(_ cursor: inout ByteCursor, count: Int, what: String) throws(ParquetError) -> ByteArrayValues {
        let lengths = try DeltaBinaryPacked.decode(&cursor, count: count, is32: true, what: "\(what) lengths")
        var offsets = [Int]()
        offsets.reserveCapacity(count + 1)
        offsets.append(0)
        var total = 0
        for length in lengths {
            guard length >= 0, length <= cursor.remaining - total else {
                throw .malformed("\(what): a value of \(length) bytes runs past the page")
            }
            total += Int(length)
            offsets.append(total)
        }
        let bytes = Array(UnsafeBufferPointer(start: cursor.base + cursor.position, count: total))
        cursor.position += total
        return ByteArrayValues(offsets: offsets, bytes: bytes)
    }

    /// Prefix lengths, then suffixes as DELTA_LENGTH_BYTE_ARRAY; each value is a prefix of the
    /// previous value followed by its suffix.
    static func deltaByteArray(
        _ cursor: inout ByteCursor, count: Int, fixedLength: Int?, maximumBytes: Int, what: String
    ) throws(ParquetError) -> ByteArrayValues {
        let prefixes = try DeltaBinaryPacked.decode(&cursor, count: count, is32: true, what: "\(what) prefix lengths")
        let suffixes = try deltaLengthByteArray(&cursor, count: count, what: "\(what) suffixes")
        var values = ByteArrayValues()
        values.offsets.reserveCapacity(count + 1)
        var previous = 0..<0
        for index in 0..<count {
            let prefix = prefixes[index]
            guard prefix >= 0, prefix <= previous.count else {
                throw .malformed("\(what): prefix length \(prefix) exceeds the previous value's \(previous.count) bytes")
            }
            let start = values.bytes.count
            guard start + Int(prefix) + suffixes[index].count <= maximumBytes else {
                throw .limitExceeded("\(what): the values expand past the limit of \(maximumBytes) bytes")
            }
            // Byte by byte from its own storage: appending a slice of the array itself would keep
            // a second reference to it and copy the whole buffer on every value.
            for offset in previous.lowerBound..<previous.lowerBound + Int(prefix) { values.bytes.append(values.bytes[offset]) }
            values.bytes.append(contentsOf: suffixes[index])
            values.offsets.append(values.bytes.count)
            previous = start..<values.bytes.count
            if let fixedLength, previous.count != fixedLength {
                throw .malformed("\(what): a FIXED_LEN_BYTE_ARRAY(\(fixedLength)) value of \(previous.count) bytes")
            }
        }
        return values
    }

    /// BYTE_STREAM_SPLIT: `width` streams of `count` bytes, stream `s` holding byte `s` of each value.
    static func byteStreamSplit(_ cursor: inout ByteCursor, type: PhysicalType, typeLength: Int, count: Int, what: String) throws(ParquetError) -> ColumnStorage {
        let width: Int = switch type {
        case .int32, .float: 4
        case .int64, .double: 8
        case .fixedLenByteArray: typeLength
        default: 0
        }
        guard width > 0 else { throw .malformed("\(what): BYTE_STREAM_SPLIT on a \(type) column") }
        guard cursor.remaining == width * count else {
            throw .malformed("\(what): BYTE_STREAM_SPLIT needs \(width) × \(count) bytes, the page has \(cursor.remaining)")
        }
        var interleaved = [UInt8](repeating: 0, count: width * count)
        for stream in 0..<width {
            let source = cursor.base + cursor.position + stream * count
            for index in 0..<count { interleaved[index * width + stream] = source[index] }
        }
        cursor.position += width * count
        return try interleaved.withBytes { buffer throws(ParquetError) in
            var inner = ByteCursor(buffer)
            return try plain(&inner, type: type, typeLength: typeLength, count: count, what: what)
        }
    }
}

extension Array {
    /// `withUnsafeBytes` for a body that throws ``ParquetError`` (the standard one rethrows untyped).
    func withBytes<Result>(_ body: (UnsafeRawBufferPointer) throws(ParquetError) -> Result) throws(ParquetError) -> Result {
        let outcome = withUnsafeBytes { buffer in Swift.Result { () throws(ParquetError) in try body(buffer) } }
        return try outcome.get()
    }

    /// `withUnsafeMutableBytes` for a body that throws ``ParquetError``.
    mutating func withMutableBytes<Result>(_ body: (UnsafeMutableRawBufferPointer) throws(ParquetError) -> Result) throws(ParquetError) -> Result {
        let outcome = withUnsafeMutableBytes { buffer in Swift.Result { () throws(ParquetError) in try body(buffer) } }
        return try outcome.get()
    }
}
