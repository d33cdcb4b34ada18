// libFuzzer target for the text readers: CSV, NDJSON, JSON documents (array and envelope), each
// also through gzip, and fetcher envelopes of vendor answers (SolarEdge, GoodWe, Enphase, SMA) through their
// transforms. The first byte picks the file name the reader detects by (and the lake source), the
// chunk size and how far a JSON document is read ahead; the rest is the file. Any input must read to its end or fail with a FileFormatError: a crash, a sanitizer
// report, a hang or a runaway allocation is a bug. Built and run by Tests/Fuzz/run.sh.
import Core
import Vendors

private let names: [(name: String, source: SourceSystem)] = [
    ("f.csv", .manual), ("f.ndjson", .manual), ("f.json", .manual), ("f.csv.gz", .manual), ("f.ndjson.gz", .manual),
    ("f.json.gz", .manual), ("site.json", .solarEdge), ("site.json", .goodWe), ("site.json", .enphase), ("site.json", .sma),
]
private let transforms = VendorCatalog.transforms(zones: ZoneDatabase(directory: "/usr/share/zoneinfo"))

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard size > 0 else { return 0 }
    let (name, source) = names[Int(data[0]) % names.count]
    let bytes = Array(UnsafeBufferPointer(start: data + 1, count: size - 1))
    var limits = ValidationLimits()
    // Small caps keep each input cheap; the guards are the same at any size.
    limits.maximumRecordBytes = 64 * 1024
    // A short read-ahead makes a JSON document's window drop its front often, with values far
    // longer than what is read ahead: where a kept position could go stale.
    limits.jsonReadAheadBytes = [64 * 1024, 256, 16][Int(data[0]) / 10 % 3]
    limits.maximumDocumentBytes = 1 << 20
    limits.maximumDecompressedBytes = 4 << 20
    limits.maximumDuplicateTrackerBytes = 4 * DuplicateTracker.pageBytes
    limits.maximumVendorAnswerBytes = 256 * 1024
    do {
        let reader = try ReadingFileReader(
            source: MemoryByteSource(bytes, chunkSize: 1 + Int(data[0]) % 97), name: name, sourceSystem: source, organizationID: 42,
            limits: limits, transforms: transforms, now: 1_800_000_000, ingestedAt: 0)
        var rows = 0
        while let batch = try reader.nextBatch(maximumRows: 7) {
            precondition(batch.readings.count + batch.rowsRejected == batch.rowsProcessed, "rows lost in a batch")
            precondition(batch.pendingDuplicateChecks.allSatisfy { $0.index < batch.readings.count }, "a pending check past the batch")
            for violation in batch.violations {
                precondition(violation.value.count <= 101 && violation.column.count <= 101, "an uncut violation")
            }
            rows += batch.rowsProcessed
        }
        _ = rows
    } catch {
        _ = error.description
    }
    return 0
}
