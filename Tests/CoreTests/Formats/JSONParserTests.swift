import Core
import Testing

@Suite struct JSONParserTests {
    func parse(_ text: String, depth: Int = 64) throws(JSONSyntaxError) -> JSONValue {
        try JSONParser.parse(Array(text.utf8), maximumDepth: depth)
    }

    @Test func parsesEveryValueKindAndKeepsNumberLiteralsExact() throws {
        let value = try parse(#" {"a": [1, -0.5, 2e10, 9007199254740993], "b": {"c": null, "d": true, "e": false}, "s": "x\"\\\/\b\f\n\r\t\u00e9\ud83d\ude00"} "#)
        #expect(value["a"] == .array([.number("1"), .number("-0.5"), .number("2e10"), .number("9007199254740993")]))
        #expect(value["b"]?["d"] == .bool(true))
        #expect(value["s"] == .string("x\"\\/\u{08}\u{0C}\n\r\té😀"))
        #expect(value.serialized == #"{"a":[1,-0.5,2e10,9007199254740993],"b":{"c":null,"d":true,"e":false},"s":"x\"\\/\u0008\u000c\n\r\té😀"}"#)
    }

    @Test(arguments: [
        (#"{"a":1,"a":2}"#, "duplicate key \"a\"", 1, 8),
        ("[1,]", "unexpected character ']'", 1, 4),
        ("NaN", "unexpected character 'N'", 1, 1),
        ("[Infinity]", "unexpected character 'I'", 1, 2),
        ("[01]", "invalid number: leading zero", 1, 3),
        ("[1.]", "invalid number: no digits after '.'", 1, 4),
        (#"["\ud800"]"#, "lone surrogate \\ud800", 1, 9),
        (#"["\udc00x"]"#, "lone surrogate \\udc00", 1, 9),
        (#"["a\u0000"]"#, "NUL character in a string", 1, 10),
        ("[\"a\tb\"]", "unescaped control character in a string", 1, 4),
        ("{\"a\":\n 1 2}", "expected ',' or '}' in an object", 2, 4),
        ("[1] [2]", "unexpected content after the value", 1, 5),
        ("", "unexpected end of input", 1, 1),
        (#"{"a" 1}"#, "expected ':'", 1, 6),
    ])
    func refusesInvalidJSONWithLineAndColumn(text: String, reason: String, line: Int, column: Int) {
        #expect(throws: JSONSyntaxError(reason: reason, line: line, column: column)) { try parse(text) }
    }

    @Test func refusesInvalidUTF8AndDeepNesting() throws {
        #expect(throws: JSONSyntaxError.self) { try JSONParser.parse([0x22, 0xC3, 0x28, 0x22]) }
        #expect(throws: JSONSyntaxError.self) { try JSONParser.parse([0x22, 0x5C, 0x6E, 0xFF, 0x22]) }
        let deep = String(repeating: "[", count: 65) + String(repeating: "]", count: 65)
        #expect(throws: JSONSyntaxError.self) { try parse(deep) }
        #expect(try parse(String(repeating: "[", count: 64) + String(repeating: "]", count: 64)) != .null)
        // Far deeper than the stack could take if depth were not capped.
        #expect(throws: JSONSyntaxError.self) { try parse(String(repeating: "[", count: 1_000_000)) }
    }
}

@Suite struct ISO8601Tests {
    @Test(arguments: [
        ("2026-03-01T06:15:00Z", ISO8601.Result.zoned(1_772_345_700)),
        ("2026-03-01t06:15:00z", .zoned(1_772_345_700)),
        ("2026-03-01 07:15:00+01:00", .zoned(1_772_345_700)),
        ("2026-03-01T01:15-0500", .zoned(1_772_345_700)),
        ("2026-03-01T08:15:00.000+02", .zoned(1_772_345_700)),
        ("2026-03-01T06:15:00", .naive(1_772_345_700)),
        ("2024-02-29T00:00:00Z", .zoned(1_709_164_800)),
        ("2026-02-29T00:00:00Z", .invalid("day 29 does not exist in 2026-02")),
        ("2026-13-01T00:00:00Z", .invalid("month 13 does not exist")),
        ("2026-03-01T24:00:00Z", .invalid("time of day out of range")),
        ("2026-03-01T06:15:60Z", .invalid("time of day out of range")),
        ("2026-03-01T06:15:00.5Z", .invalid("fractional seconds: an interval starts on a whole second")),
        ("2026-03-01", .invalid("a date without a time")),
        ("01/03/2026 06:15", .invalid("expected YYYY-MM-DDTHH:MM:SS with Z or an offset")),
        ("2026-03-01T06:15:00+25:00", .invalid("invalid zone: expected Z or ±HH:MM")),
        ("2026-03-01T06:15:00 Europe/Berlin", .invalid("invalid zone: expected Z or ±HH:MM")),
        ("1772345700", .invalid("expected YYYY-MM-DDTHH:MM:SS with Z or an offset")),
    ])
    func parses(text: String, expected: ISO8601.Result) {
        #expect(ISO8601.parse(Array(text.utf8)) == expected)
    }

    /// Offsets at their bounds, in every written form, and what is not one.
    @Test(arguments: [
        ("Z", 0), ("z", 0), ("+18:00", 64_800), ("-18", -64_800), ("+1859", 68_340), ("-00:00", 0), ("+05:30", 19_800),
        ("+0530", 19_800), ("+05", 18_000), ("+19", nil), ("+05:60", nil), ("+05:300", nil), ("+05:3", nil), ("+5:30", nil),
        ("+05:", nil), ("+05-30", nil), ("+05::30", nil), ("05:30", nil), ("", nil), ("+", nil), ("Zx", nil),
    ] as [(String, Int?)])
    func offsets(text: String, expected: Int?) {
        #expect(ISO8601.offset(Array(text.utf8)) == expected)
    }

    @Test func anythingAfterTheZoneIsRefused() {
        #expect(ISO8601.parse("2026-03-01T06:15:00+0100x") == .invalid("invalid zone: expected Z or ±HH:MM"))
        #expect(ISO8601.parse("2026-03-01T06:15:00Zx") == .invalid("invalid zone: expected Z or ±HH:MM"))
        #expect(ISO8601.parse("2026-03-01T07:15:00+01:00") == .zoned(1_772_345_700))
    }
}
