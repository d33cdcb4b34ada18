import Core
import Foundation
import Testing

@Suite struct JSONWriterTests {
    @Test func escapesAndNestsCorrectly() throws {
        var writer = JSONWriter()
        writer.beginObject()
        writer.key("text")
        writer.string("quote \" backslash \\ tab \t nl \n bell \u{07} ☀")
        writer.key("list")
        writer.beginArray()
        writer.number(1)
        writer.beginObject()
        writer.key("x")
        writer.null()
        writer.endObject()
        writer.number(2.5)
        writer.bool(false)
        writer.endArray()
        writer.key("nan")
        writer.number(Double.nan)
        writer.endObject()
        let text = String(decoding: writer.bytes, as: UTF8.self)
        #expect(text == #"{"text":"quote \" backslash \\ tab \t nl \n bell \u0007 ☀","list":[1,{"x":null},2.5,false],"nan":null}"#)
        // And a real JSON parser agrees on the value.
        let parsed = try JSONSerialization.jsonObject(with: Data(writer.bytes)) as? [String: Any]
        #expect(parsed?["text"] as? String == "quote \" backslash \\ tab \t nl \n bell \u{07} ☀")
    }
}

@Suite struct TimestampTests {
    @Test(arguments: [
        (Int64(0), "1970-01-01T00:00:00.000Z"),
        (Int64(1_772_345_702_301), "2026-03-01T06:15:02.301Z"),
        (Int64(951_782_400_000), "2000-02-29T00:00:00.000Z"),
        (Int64(-1), "1969-12-31T23:59:59.999Z"),
        (Int64(4_102_444_799_999), "2099-12-31T23:59:59.999Z"),
    ])
    func formatsRFC3339(milliseconds: Int64, expected: String) {
        #expect(Timestamp.rfc3339(milliseconds: milliseconds) == expected)
    }

    @Test func civilAndDaysAreInverseOverFourCenturies() {
        var previous = Timestamp.days(year: 1899, month: 12, day: 31)
        for days in stride(from: -25_567, to: 120_000, by: 1) {
            let date = Timestamp.civil(days: days)
            #expect(Timestamp.days(year: date.year, month: date.month, day: date.day) == days)
            #expect(days == previous + 1)
            previous = days
        }
        #expect(Timestamp.day(epochSeconds: 1_772_345_702) == "2026-03-01")
    }
}

@Suite struct EnvironmentTests {
    @Test func requireAndConvert() throws {
        let environment = Environment(["A": "1", "B": "x", "EMPTY": ""])
        #expect(try environment.require("A") == "1")
        #expect(try environment.require("A", as: Int.self) == 1)
        #expect(try environment.get("MISSING", as: Int.self) == nil)
        #expect(throws: ConfigurationError.missing(name: "EMPTY")) { try environment.require("EMPTY") }
        #expect(throws: ConfigurationError.self) { try environment.require("B", as: Double.self) }
        // The message names the variable but never repeats its value.
        do {
            _ = try Environment(["SECRET": "hunter2"]).require("SECRET", as: Int.self)
        } catch {
            #expect(error.description.contains("SECRET"))
            #expect(!error.description.contains("hunter2"))
        }
    }
}
