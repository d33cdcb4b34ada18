import Core
import Testing

@Suite struct CSVReaderTests {
    func records(_ text: [UInt8], chunk: Int = 5, limits: ValidationLimits = ValidationLimits()) throws(FileFormatError) -> [CSVRecord] {
        var reader = CSVReader(source: MemoryByteSource(text, chunkSize: chunk), limits: limits)
        var all: [CSVRecord] = []
        while let record = try reader.next() { all.append(record) }
        return all
    }

    @Test func handlesQuotesDoubledQuotesLineBreaksBOMAndEveryChunkSize() throws {
        let text = Array("\u{FEFF}a,b,c\r\n\"x, y\",\"say \"\"hi\"\"\",\"two\nlines\"\n\n1,,3\r4,5,\"\"\r\n7,8,9".utf8)
        let expected = [
            CSVRecord(fields: ["a", "b", "c"], line: 1),
            CSVRecord(fields: ["x, y", "say \"hi\"", "two\nlines"], line: 2),
            CSVRecord(fields: ["1", "", "3"], line: 5),
            CSVRecord(fields: ["4", "5", ""], line: 6),
            CSVRecord(fields: ["7", "8", "9"], line: 7),
        ]
        for chunk in 1...12 {
            #expect(try records(text, chunk: chunk) == expected, "chunk size \(chunk)")
        }
        #expect(try records(text, chunk: 1 << 20) == expected)
    }

    /// Line breaks inside quotes (CRLF, lone CR, LF) at every position relative to a chunk
    /// boundary: the lines of later records, and of a later error, stay exact.
    @Test func lineNumbersStayExactAfterQuotedLineBreaksAtEveryChunkBoundary() throws {
        let text = Array("h1,h2\r\n\"a\r\nb\",1\r\n\"c\rd\r\n\r\ne\",2\r\n\"f\ng\",3\r\nlast,4\r\n".utf8)
        let expected = [
            CSVRecord(fields: ["h1", "h2"], line: 1),
            CSVRecord(fields: ["a\r\nb", "1"], line: 2),
            CSVRecord(fields: ["c\rd\r\n\r\ne", "2"], line: 4),
            CSVRecord(fields: ["f\ng", "3"], line: 8),
            CSVRecord(fields: ["last", "4"], line: 10),
        ]
        for chunk in 1...text.count {
            #expect(try records(text, chunk: chunk) == expected, "chunk size \(chunk)")
        }
        let broken = Array("h\r\n\"x\r\ny\"\r\nbad\"quote\r\n".utf8)
        for chunk in 1...broken.count {
            #expect(throws: FileFormatError.strayQuote(line: 4, column: 1), "chunk size \(chunk)") { try records(broken, chunk: chunk) }
        }
    }

    @Test func refusesBrokenStructureWithTheLine() {
        #expect(throws: FileFormatError.unterminatedQuote(line: 2)) { try records(Array("a,b\n\"open,1\n2,3\n".utf8)) }
        #expect(throws: FileFormatError.strayQuote(line: 2, column: 1)) { try records(Array("a,b\nx\"y,1\n".utf8)) }
        #expect(throws: FileFormatError.strayQuote(line: 2, column: 1)) { try records(Array("a,b\n\"x\"y,1\n".utf8)) }
        #expect(throws: FileFormatError.invalidUTF8(line: 3)) { try records(Array("a,b\n1,2\n3,".utf8) + [0xC3, 0x28] + Array("\n".utf8)) }
        var small = ValidationLimits()
        small.maximumFieldBytes = 8
        #expect(throws: FileFormatError.fieldTooLong(line: 2, limit: 8)) { try records(Array("a,b\n123456789,1\n".utf8), limits: small) }
        #expect(throws: FileFormatError.fieldTooLong(line: 2, limit: 8)) { try records(Array("a,b\n\"123456789\",1\n".utf8), limits: small) }
        // An unbalanced quote cannot swallow a large file: the field cap stops it.
        #expect(throws: FileFormatError.fieldTooLong(line: 2, limit: 8)) { try records(Array(("a\n\"" + String(repeating: "x\n", count: 1000)).utf8), limits: small) }
        small.maximumColumns = 3
        #expect(throws: FileFormatError.tooManyColumns(line: 1, count: 4, limit: 3)) { try records(Array("a,b,c,d\n".utf8), limits: small) }
    }
}
