// Parse+check throughput of the upload-format readers, beside a baseline measured in the same
// run: reading the same bytes from the same file without parsing them. Machines here are noisy,
// so the ratio is the result; absolute numbers are context.
//
//   swift build -c release --product reader-benchmark && .build/release/reader-benchmark [ROWS]
import BenchmarkSupport
import Core

#if canImport(Glibc)
import Glibc
#endif

let rows = CommandLine.arguments.count > 1 ? Int(CommandLine.arguments[1]) ?? 1_000_000 : 1_000_000
let directory = "/tmp/meterlake-bench-\(getpid())"
mkdir(directory, 0o755)
defer { _ = system("rm -rf '\(directory)'") }

/// Writes `rows` readings of 100 devices, 15-minute intervals, in CSV and NDJSON.
func writeFiles() -> (csv: String, ndjson: String) {
    let csvPath = directory + "/readings.csv"
    let ndjsonPath = directory + "/readings.ndjson"
    let csv = fopen(csvPath, "w")!
    let ndjson = fopen(ndjsonPath, "w")!
    fputs("external_site_id,external_device_id,timestamp,reading_interval_seconds,energy_wh,power_w,irradiance_wm2,temperature_c,quality,inverter_mode\n", csv)
    let start: Int64 = 1_735_689_600  // 2025-01-01
    for index in 0..<rows {
        let device = index % 100
        let time = Timestamp.rfc3339(milliseconds: (start + Int64(index / 100) * 900) * 1000)
        let energy = Double(index % 5000) / 4 + 0.25
        let power = energy * 4
        fputs("site-\(device / 10),INV-\(device),\(time),900,\(energy),\(power),\(index % 1200),\(Double(index % 60) - 10.5),measured,MPPT\n", csv)
        fputs(#"{"external_site_id":"site-\#(device / 10)","external_device_id":"INV-\#(device)","timestamp":"\#(time)","reading_interval_seconds":900,"energy_wh":\#(energy),"power_w":\#(power),"irradiance_wm2":\#(index % 1200),"temperature_c":\#(Double(index % 60) - 10.5),"quality":"measured","inverter_mode":"MPPT"}"# + "\n", ndjson)
    }
    fclose(csv)
    fclose(ndjson)
    return (csvPath, ndjsonPath)
}



func baseline(_ path: String) throws -> Double {
    try best {
        let source = try FileByteSource(path: path)
        var checksum: UInt64 = 0
        while true {
            let chunk = try source.read()
            if chunk.isEmpty { break }
            checksum &+= UInt64(chunk.count) &+ UInt64(chunk[chunk.count / 2])
        }
        precondition(checksum > 0)
    }
}

func parse(_ path: String) throws -> Double {
    try best {
        let reader = try ReadingFileReader(
            source: try FileByteSource(path: path), name: path, sourceSystem: .manual, organizationID: 1,
            now: 1_800_000_000, ingestedAt: 1_800_000_000_000)
        var loaded = 0
        while let batch = try reader.nextBatch() {
            precondition(batch.violations.isEmpty, "\(batch.violations.prefix(3))")
            loaded += batch.readings.count
        }
        precondition(loaded == rows)
    }
}

let files = writeFiles()
print("meterlake reader benchmark: \(rows) rows, best of 3 runs each")
print("format   parse+check rows/s   baseline (read only) rows/s   parse/baseline")
for (name, path) in [("CSV", files.csv), ("NDJSON", files.ndjson)] {
    let read = try baseline(path)
    let parsed = try parse(path)
    let parsedRate = Double(rows) / parsed
    let readRate = Double(rows) / read
    let padded = name + String(repeating: " ", count: max(0, 8 - name.count))
    print("\(padded) \(String(Int(parsedRate)).leftPad(19))   \(String(Int(readRate)).leftPad(27))   \(String(format3(parsedRate / readRate)).leftPad(14))")
}

func format3(_ value: Double) -> String {
    let scaled = Int((value * 1000).rounded())
    return "\(scaled / 1000).\(String(scaled % 1000).leftPad(3, "0"))"
}

extension String {
    func leftPad(_ width: Int, _ pad: Character = " ") -> String {
        count >= width ? self : String(repeating: pad, count: width - count) + self
    }
}
