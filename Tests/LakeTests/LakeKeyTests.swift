import Core
import Lake
import Testing

@Suite struct S3EventKeyTests {
    @Test(arguments: [
        ("raw/manual/42/2026-03-01/site+7.csv", "raw/manual/42/2026-03-01/site 7.csv"),
        ("raw/manual/42/2026-03-01/a%2Bb.csv", "raw/manual/42/2026-03-01/a+b.csv"),
        ("raw/manual/42/2026-03-01/Z%C3%A4hler.json", "raw/manual/42/2026-03-01/Zähler.json"),
        // Decoded once: an encoded percent stays a percent.
        ("raw/manual/42/2026-03-01/100%2541.csv", "raw/manual/42/2026-03-01/100%41.csv"),
        ("raw/manual/42/2026-03-01/k%00zzz.csv", "raw/manual/42/2026-03-01/k\u{0}zzz.csv"),
        ("raw/manual/42/2026-03-01/%2e%2e/x.csv", "raw/manual/42/2026-03-01/../x.csv"),
    ])
    func decodesFormEncodingOnce(encoded: String, decoded: String) {
        #expect(S3Event.decodeKey(encoded) == decoded)
    }

    @Test(arguments: ["raw/a%2", "raw/a%zz.csv", "raw/%", "raw/%C3%28.csv", "raw/%FF.csv"])
    func refusesBadEscapesAndInvalidUTF8(encoded: String) {
        #expect(S3Event.decodeKey(encoded) == nil)
    }
}

@Suite struct LakeKeyTests {
    @Test func parsesATrustedKey() throws {
        let key = try LakeKey("raw/snowflake/42/2026-03-01/unload/data_0_0_0.snappy.parquet")
        #expect(key.source == .snowflake)
        #expect(key.organizationID == 42)
        #expect(key.date == "2026-03-01")
        #expect(key.rest == "snowflake/42/2026-03-01/unload/data_0_0_0.snappy.parquet")
        #expect(LakeKey.destination(.validated, day: "2026-12-04", rawKey: key.key)
            == "validated/2026-12-04/snowflake/42/2026-03-01/unload/data_0_0_0.snappy.parquet")
        #expect(LakeKey.destination(.quarantine, day: "2026-12-04", rawKey: key.key)
            == "quarantine/2026-12-04/snowflake/42/2026-03-01/unload/data_0_0_0.snappy.parquet")
        for source in SourceSystem.allCases {
            #expect(try LakeKey("raw/\(source.rawValue)/1/2026-01-31/a.json").source == source)
        }
        #expect(try LakeKey("raw/manual/999999999999999999/2024-02-29/a.csv").organizationID == 999_999_999_999_999_999)
    }

    @Test(arguments: [
        ("raw/manual/42/a.csv", LakeKey.Problem.shape),
        ("raw/manual/42/2026-03-01", .shape),
        ("raw/ftp/42/2026-03-01/a.csv", .unknownSource("ftp")),
        ("raw/Manual/42/2026-03-01/a.csv", .unknownSource("Manual")),
        ("raw/manual/0/2026-03-01/a.csv", .organization("0")),
        ("raw/manual/042/2026-03-01/a.csv", .organization("042")),
        ("raw/manual/-4/2026-03-01/a.csv", .organization("-4")),
        ("raw/manual/+4/2026-03-01/a.csv", .organization("+4")),
        ("raw/manual/٤٢/2026-03-01/a.csv", .organization("٤٢")),
        ("raw/manual/9999999999999999999/2026-03-01/a.csv", .organization("9999999999999999999")),
        ("raw/manual/42/2026-02-30/a.csv", .date("2026-02-30")),
        ("raw/manual/42/2026-3-01/a.csv", .date("2026-3-01")),
        ("raw/manual/42/2026-03-01T00/a.csv", .date("2026-03-01T00")),
        ("raw/manual/42/2026-03-01/../a.csv", .dotSegment),
        ("raw/manual/42/2026-03-01/./a.csv", .dotSegment),
        ("raw/manual/42/2026-03-01//a.csv", .dotSegment),
        ("raw/manual/42/2026-03-01/", .dotSegment),
        ("raw/manual/42/2026-03-01/k\u{0}zzz.csv", .controlCharacter(scalar: 0, offset: 26)),
        ("raw/manual/42/2026-03-01/a\nb.csv", .controlCharacter(scalar: 0x0A, offset: 26)),
        ("raw/manual/42/2026-03-01/a\u{7F}.csv", .controlCharacter(scalar: 0x7F, offset: 26)),
    ])
    func refusesEachUntrustedShape(key: String, problem: LakeKey.Problem) {
        #expect(throws: problem) { try LakeKey(key) }
    }

    @Test func boundsTheLengthSoThatEveryDestinationFitsS3() throws {
        let prefix = "raw/manual/42/2026-03-01/"
        let longest = prefix + String(repeating: "a", count: LakeKey.maximumBytes - prefix.utf8.count)
        #expect(LakeKey.maximumBytes == 994)
        #expect((LakeKey.destination(.quarantine, day: "2026-12-04", rawKey: longest) + ".report.json").utf8.count == 1024)
        #expect(try LakeKey(longest).key == longest)
        #expect(throws: LakeKey.Problem.tooLong) { try LakeKey(longest + "a") }
    }

    @Test func namesTheControlCharacterAndItsPlace() {
        #expect(LakeKey.Problem.controlCharacter(scalar: 0, offset: 26).description == "the key contains the control character U+0000 at byte 26")
        #expect(LakeKey.controlCharacter(in: "raw/ok.csv") == nil)
        #expect(LakeKey.controlCharacter(in: "raw/\u{1F}") == .controlCharacter(scalar: 0x1F, offset: 4))
    }
}
