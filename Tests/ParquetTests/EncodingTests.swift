@testable import Parquet
import Testing

/// The worked examples of parquet.md §6 and §8, decoded by the internal decoders directly.
@Suite struct EncodingTests {
    func hybrid(_ bytes: [UInt8], width: Int, count: Int) throws -> [UInt32] {
        try bytes.withBytes { buffer throws(ParquetError) in
            var decoder = try HybridDecoder(ByteCursor(buffer), bitWidth: width, what: "test")
            return try decoder.decode(count: count)
        }
    }

    @Test func bitPackedRunsUnpackLeastSignificantBitFirst() throws {
        // w = 3, values 0...7: one group of 8, bytes 88 C6 FA.
        #expect(try hybrid([0x03, 0x88, 0xC6, 0xFA], width: 3, count: 8) == [0, 1, 2, 3, 4, 5, 6, 7])
        // w = 1, values 1,1,0,1,1,1,1,1: header 03, byte FB.
        #expect(try hybrid([0x03, 0xFB], width: 1, count: 8) == [1, 1, 0, 1, 1, 1, 1, 1])
        // A run longer than needed stops at the count; w = 0 needs no value bytes.
        #expect(try hybrid([0xD0, 0x0F, 0x01], width: 1, count: 3) == [1, 1, 1])
        #expect(try hybrid([0x08], width: 0, count: 4) == [0, 0, 0, 0])
        // Widths needing a 64-bit window that straddles bytes (w = 31).
        let values: [UInt32] = (0..<8).map { UInt32($0) * 0x0FED_CBA9 & 0x7FFF_FFFF }
        var packed = [UInt8](repeating: 0, count: 31)
        for (index, value) in values.enumerated() {
            for bit in 0..<31 where value >> UInt32(bit) & 1 == 1 { packed[(index * 31 + bit) / 8] |= 1 << UInt8((index * 31 + bit) % 8) }
        }
        #expect(try hybrid([0x03] + packed, width: 31, count: 8) == values)
    }

    @Test func hybridRejectsBrokenRuns() {
        #expect(throws: ParquetError.self) { try hybrid([0x00], width: 1, count: 1) }  // run of length 0
        #expect(throws: ParquetError.self) { try hybrid([0x05, 0x01], width: 8, count: 16) }  // 2 groups, 1 byte
        #expect(throws: ParquetError.self) { try hybrid([0x02], width: 8, count: 1) }  // value byte missing
        #expect(throws: ParquetError.self) { try hybrid([0x02, 0x00], width: 33, count: 1) }
    }

    func snappy(_ bytes: [UInt8], size: Int) throws -> [UInt8] {
        try bytes.withBytes { buffer throws(ParquetError) in try Snappy.decompress(buffer, size: size) }
    }

    @Test func snappyLiteralsAndOverlappingCopies() throws {
        // 11 bytes: literal "ab" (tag 0x04), then a 1-byte-offset copy of 9 bytes at offset 2.
        #expect(try snappy([0x0B, 0x04, 0x61, 0x62, 0x15, 0x02], size: 11) == Array("abababababa".utf8))
        // A 2-byte-offset copy (tag 10): literal "xyz", copy 3 at offset 3.
        #expect(try snappy([0x06, 0x08, 0x78, 0x79, 0x7A, 0x0A, 0x03, 0x00], size: 6) == Array("xyzxyz".utf8))
    }

    @Test func snappyRejectsWhatDoesNotAddUp() {
        #expect(throws: ParquetError.self) { try snappy([0x05, 0x04, 0x61, 0x62], size: 4) }  // declares 5, page 4
        #expect(throws: ParquetError.self) { try snappy([0x04, 0x04, 0x61, 0x62, 0x09, 0x00], size: 4) }  // offset 0
        #expect(throws: ParquetError.self) { try snappy([0x04, 0x04, 0x61, 0x62, 0x09, 0x09], size: 4) }  // offset past output
        #expect(throws: ParquetError.self) { try snappy([0x04, 0x0C, 0x61], size: 4) }  // literal past the input
        #expect(throws: ParquetError.self) { try snappy([0x03, 0x04, 0x61, 0x62], size: 3) }  // ends short
    }
}
