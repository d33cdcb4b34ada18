/// A decoder of the Snappy raw block format (google/snappy `format_description.txt`), the codec
/// Parquet writers use by default. Every tag is checked against the input and output bounds.
enum Snappy {
    /// Decompresses a block that must expand to exactly `size` bytes.
    static func decompress(_ input: UnsafeRawBufferPointer, size: Int) throws(ParquetError) -> [UInt8] {
        // The preamble: the uncompressed length as a varint of at most 5 bytes (< 2^32).
        var preamble = ByteCursor(input)
        let declared = try preamble.varint("snappy length")
        guard preamble.position <= 5 else { throw .malformed("snappy: a length varint longer than 5 bytes") }
        var position = preamble.position
        guard declared == UInt64(size) else {
            throw .malformed("snappy: the block declares \(declared) bytes, the page \(size)")
        }
        var output = [UInt8](repeating: 0, count: size)
        let failure: String? = output.withUnsafeMutableBufferPointer { out -> String? in
            guard let destination = out.baseAddress else { return position == input.count ? nil : "data after an empty block" }
            let source = input.baseAddress!.assumingMemoryBound(to: UInt8.self)
            let inputEnd = input.count
            var produced = 0
            while position < inputEnd {
                let tag = source[position]
                position += 1
                switch tag & 3 {
                case 0:  // literal
                    var length = Int(tag >> 2)
                    if length >= 60 {
                        let extra = length - 59
                        guard position + extra <= inputEnd else { return "the data ends inside a literal's length" }
                        length = 0
                        for index in 0..<extra { length |= Int(source[position + index]) << (8 * index) }
                        position += extra
                    }
                    length += 1
                    guard length <= inputEnd - position else { return "a literal of \(length) bytes runs past the end of the data" }
                    guard length <= size - produced else { return "a literal runs past the declared \(size) bytes" }
                    (destination + produced).update(from: source + position, count: length)
                    position += length
                    produced += length
                default:  // copy
                    let length: Int
                    let offset: Int
                    switch tag & 3 {
                    case 1:
                        guard position < inputEnd else { return "the data ends inside a copy" }
                        length = Int((tag >> 2) & 7) + 4
                        offset = Int(tag >> 5) << 8 | Int(source[position])
                        position += 1
                    case 2:
                        guard position + 2 <= inputEnd else { return "the data ends inside a copy" }
                        length = Int(tag >> 2) + 1
                        offset = Int(source[position]) | Int(source[position + 1]) << 8
                        position += 2
                    default:
                        guard position + 4 <= inputEnd else { return "the data ends inside a copy" }
                        length = Int(tag >> 2) + 1
                        offset = Int(source[position]) | Int(source[position + 1]) << 8 | Int(source[position + 2]) << 16
                            | Int(source[position + 3]) << 24
                        position += 4
                    }
                    guard offset > 0, offset <= produced else { return "a copy from offset \(offset) with \(produced) bytes produced" }
                    guard length <= size - produced else { return "a copy runs past the declared \(size) bytes" }
                    let from = destination + produced - offset
                    let to = destination + produced
                    if offset >= length {
                        to.update(from: from, count: length)
                    } else {
                        // Overlapping: the copy repeats the last `offset` bytes (a run).
                        for index in 0..<length { to[index] = from[index] }
                    }
                    produced += length
                }
            }
            return produced == size ? nil : "\(produced) bytes instead of the declared \(size)"
        }
        if let failure { throw .malformed("snappy: \(failure)") }
        return output
    }
}
