// libFuzzer target for the Parquet reader: any input must either read or fail with a
// ParquetError; a crash, a sanitizer report, a hang or a runaway allocation is a bug.
// Built and run by Tests/Fuzz/run.sh (swiftc -sanitize=fuzzer,address; a SwiftPM executable
// target cannot link libFuzzer's main).
import Parquet

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    var limits = ParquetLimits()
    // Small caps keep each input cheap; the guards are the same at any size.
    limits.maximumPageBytes = 1 << 20
    limits.maximumChunkBytes = 4 << 20
    limits.maximumDictionaryEntries = 1 << 16
    do {
        let file = try ParquetFile(input: MemoryInput(bytes), limits: limits)
        for group in 0..<file.rowGroupCount {
            for column in file.columns.indices {
                let reader = try file.columnChunk(rowGroup: group, column: column)
                while let page = try reader.nextPage() {
                    // Touch every value, as a reader of the rows would.
                    var present = 0
                    for row in 0..<page.rowCount where page.validity?[row] ?? true {
                        _ = page.values.value(at: present)
                        present += 1
                    }
                    precondition(present == page.values.count, "validity and values disagree")
                }
            }
        }
    } catch {
        _ = error.description
    }
    return 0
}
