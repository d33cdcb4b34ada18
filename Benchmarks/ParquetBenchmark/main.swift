// Decodes a Parquet file with the meterlake reader, best of N runs, and prints one JSON line:
//   {"rows": N, "decode_seconds": s, "readings_seconds": s}
// decode: every page of every column into typed values (what pyarrow's read_table does);
// readings: the validator's path, rows mapped and checked into MeterReadings.
// Benchmarks/parquet_benchmark.py runs it beside pyarrow on the same file and prints ratios.
import BenchmarkSupport
import Core
import Parquet

#if canImport(Glibc)
import Glibc
#endif

let arguments = CommandLine.arguments
guard arguments.count >= 2 else {
    print("usage: parquet-benchmark FILE [RUNS]")
    exit(2)
}
let path = arguments[1]
let runs = arguments.count > 2 ? Int(arguments[2]) ?? 5 : 5

var rows = 0
var checksum = 0
let decode = try best(runs) {
    let file = try ParquetFile(input: try FileInput(path: path))
    rows = Int(file.rowCount)
    for group in 0..<file.rowGroupCount {
        for column in file.columns.indices {
            let reader = try file.columnChunk(rowGroup: group, column: column)
            while let page = try reader.nextPage() { checksum &+= page.values.count &+ page.rowCount }
        }
    }
}
var readingsCount = 0
let readings = try best(runs) {
    let reader = try ReadingFileReader(path: path, name: "bench.parquet", sourceSystem: .snowflake, organizationID: 1,
                                       now: 4_000_000_000, ingestedAt: 0)
    readingsCount = 0
    while let batch = try reader.nextBatch(maximumRows: 10_000) { readingsCount += batch.readings.count }
}
precondition(checksum > 0 && readingsCount == rows, "read \(readingsCount) readings of \(rows) rows")
print(#"{"rows": \#(rows), "decode_seconds": \#(decode), "readings_seconds": \#(readings)}"#)
