import Core
import Testing

/// The TZif reader against the machine's zone database (tzdata, installed by Tools/requirements.sh).
@Suite struct ZoneInfoTests {
    let zones = ZoneDatabase(directory: "/usr/share/zoneinfo")

    func instant(_ text: String) -> Int64 {
        guard case .zoned(let seconds) = ISO8601.parse(text) else { fatalError("bad instant \(text)") }
        return seconds
    }

    func local(_ year: Int, _ month: Int, _ day: Int, _ hour: Int, _ minute: Int = 0) -> Int64 {
        Int64(Timestamp.days(year: year, month: month, day: day)) * 86_400 + Int64(hour * 3600 + minute * 60)
    }

    @Test func berlinOffsetsAcrossTheYear() throws {
        let berlin = try zones.rules("Europe/Berlin")
        #expect(berlin.offset(at: instant("2026-01-15T12:00:00Z")) == 3600)
        #expect(berlin.offset(at: instant("2026-07-15T12:00:00Z")) == 7200)
        // The change happens at 01:00 UTC on the last Sunday of March and of October.
        #expect(berlin.offset(at: instant("2026-03-29T00:59:59Z")) == 3600)
        #expect(berlin.offset(at: instant("2026-03-29T01:00:00Z")) == 7200)
        #expect(berlin.offset(at: instant("2026-10-25T00:59:59Z")) == 7200)
        #expect(berlin.offset(at: instant("2026-10-25T01:00:00Z")) == 3600)
    }

    @Test func springForwardGapHasNoInstantAndFallBackHourHasTwo() throws {
        let berlin = try zones.rules("Europe/Berlin")
        #expect(berlin.instants(atLocal: local(2026, 3, 29, 2, 30)).isEmpty)
        #expect(berlin.instants(atLocal: local(2026, 3, 29, 3, 0)) == [instant("2026-03-29T01:00:00Z")])
        #expect(berlin.instants(atLocal: local(2026, 10, 25, 2, 15)) == [instant("2026-10-25T00:15:00Z"), instant("2026-10-25T01:15:00Z")])
        #expect(berlin.instants(atLocal: local(2026, 6, 15, 12)) == [instant("2026-06-15T10:00:00Z")])
        #expect(berlin.firstInstant(atOrAfterLocal: local(2026, 3, 29, 2, 15)) == instant("2026-03-29T01:00:00Z"))
    }

    @Test func startOfLocalDay() throws {
        let sydney = try zones.rules("Australia/Sydney")
        #expect(sydney.startOfLocalDay(containing: instant("2024-06-15T03:00:00Z")) == instant("2024-06-14T14:00:00Z"))
        // Havana springs forward at midnight: the day starts at 01:00 local.
        let havana = try zones.rules("America/Havana")
        #expect(havana.startOfLocalDay(containing: instant("2026-03-08T12:00:00Z")) == instant("2026-03-08T05:00:00Z"))
    }

    /// Past the listed transitions the POSIX footer decides: it must agree with every listed one.
    @Test(arguments: ["Europe/Berlin", "America/New_York", "Australia/Sydney", "America/Santiago", "Europe/Dublin", "Asia/Kolkata"])
    func footerRuleAgreesWithTheTable(name: String) throws {
        let rules = try zones.rules(name)
        let footer = try #require(PosixFooter.of(name: name, in: zones.directory))
        var probe = instant("2024-01-01T00:00:00Z")  // (rules changed before: Santiago in 2022)
        while probe < instant("2036-12-31T00:00:00Z") {
            #expect(footer(probe) == rules.offset(at: probe), "\(name) at \(Timestamp.rfc3339(milliseconds: probe * 1000))")
            probe += 3 * 3600 + 17
        }
        // And far beyond the table (2060), offsets still follow the rule's seasons.
        #expect(rules.offset(at: instant("2060-01-15T00:00:00Z")) == footer(instant("2060-01-15T00:00:00Z")))
        #expect(rules.offset(at: instant("2060-07-15T00:00:00Z")) == footer(instant("2060-07-15T00:00:00Z")))
    }

    @Test func legacyAliasesResolve() throws {
        let pacific = try zones.rules("US/Pacific")
        #expect(pacific.offset(at: instant("2026-01-15T12:00:00Z")) == -8 * 3600)
        #expect(pacific.offset(at: instant("2026-07-15T12:00:00Z")) == -7 * 3600)
    }

    @Test(arguments: ["", "../../etc/passwd", "/etc/localtime", "Europe/../UTC", "Europe/Berlin\u{0}", "Europe//Berlin", ".hidden"])
    func refusesNamesThatAreNotZoneNames(name: String) {
        #expect(throws: ZoneError.invalidName(name)) { try zones.rules(name) }
    }

    @Test func unknownAndMalformedZones() {
        #expect(throws: ZoneError.unknownZone(name: "Mars/Olympus_Mons", directory: "/usr/share/zoneinfo")) {
            try zones.rules("Mars/Olympus_Mons")
        }
        #expect(throws: ZoneError.self) { try ZoneRules(name: "x", tzif: Array("TZif2 but nothing else".utf8)) }
        #expect(throws: ZoneError.self) { try ZoneRules(name: "x", tzif: []) }
    }
}

/// The footer of a zone file, evaluated through a zone that has no table at all.
enum PosixFooter {
    static func of(name: String, in directory: String) -> ((Int64) -> Int)? {
        guard let bytes = FileIO.readAll(directory + "/" + name), bytes.last == 0x0A,
            let start = bytes.dropLast().lastIndex(of: 0x0A)
        else { return nil }
        let footer = Array(bytes[start...])
        // A version 2 file with no transitions and no types but one, followed by the footer.
        var file = Array("TZif2".utf8) + Array(repeating: 0, count: 15)
        file += [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0] + [0, 0, 0, 0, 0, 0]
        file += Array("TZif2".utf8) + Array(repeating: 0, count: 15)
        file += [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0] + [0, 0, 0, 0, 0, 0]
        file += footer
        guard let rules = try? ZoneRules(name: name, tzif: file) else { return nil }
        return { rules.offset(at: $0) }
    }
}
