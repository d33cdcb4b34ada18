// GET of a large object to a file through S3ObjectStore (libcurl + SigV4), beside the curl
// command fetching the same object from the same server in the same run.
//
//   Benchmarks/run.sh   (starts moto and sets MOTO_S3_ENDPOINT)
import BenchmarkSupport
import Core
import Lake
import HTTPClient

#if canImport(Glibc)
import Glibc
#endif

let megabytes = CommandLine.arguments.count > 1 ? Int(CommandLine.arguments[1]) ?? 200 : 200
guard let endpoint = getenv("MOTO_S3_ENDPOINT").map({ String(cString: $0) }) else {
    fatalError("MOTO_S3_ENDPOINT is not set: run Benchmarks/run.sh")
}


let directory = "/tmp/meterlake-s3bench-\(getpid())"
mkdir(directory, 0o755)
defer { _ = system("rm -rf '\(directory)'") }
let source = directory + "/object.bin"
// A file of pseudo-random bytes (not compressible, not all zeros).
let file = fopen(source, "w")!
var state: UInt64 = 0x9E3779B97F4A7C15
var chunk = [UInt8](repeating: 0, count: 1 << 20)
for _ in 0..<megabytes {
    for index in chunk.indices {
        state = state &* 6364136223846793005 &+ 1442695040888963407
        chunk[index] = UInt8(truncatingIfNeeded: state >> 33)
    }
    fwrite(chunk, 1, chunk.count, file)
}
fclose(file)

let store = try S3ObjectStore(configuration: S3Configuration(
    bucket: "bench-\(getpid())", region: "us-east-1", credentials: AWSCredentials(accessKeyID: "bench", secretAccessKey: "bench"),
    endpoint: endpoint))
try store.createBucket()
_ = try store.put("bench/object.bin", body: .file(path: source), contentType: nil)
let url = try store.presignedURL(method: "GET", key: "bench/object.bin", expires: 3600, now: WallClock.milliseconds() / 1000)

print("meterlake S3 GET benchmark: \(megabytes) MB object from moto on loopback, alternating runs, best of 3 each")
var ours = Double.infinity
var curl = Double.infinity
var plain = Double.infinity
let client = try HTTPClient()
for round in 0..<3 {
    ours = min(ours, try seconds { _ = try store.get("bench/object.bin", to: directory + "/ours-\(round).bin") })
    plain = min(plain, try seconds { _ = try client.send(HTTPRequest(url: url), into: .file(path: directory + "/plain-\(round).bin")).requireSuccess() })
    curl = min(curl, seconds { precondition(system("curl -sf -o '\(directory)/curl-\(round).bin' '\(url)'") == 0) })
}
let oursRate = Double(megabytes) / ours
let curlRate = Double(megabytes) / curl
print("S3ObjectStore.get   \(Int(oursRate)) MB/s")
print("curl                \(Int(curlRate)) MB/s")
print("HTTPClient, same URL as curl  \(Int(Double(megabytes) / plain)) MB/s")
print("ours/curl           \(Double(Int(oursRate / curlRate * 1000)) / 1000)")
precondition(system("cmp -s '\(source)' '\(directory)/ours-0.bin'") == 0, "the downloaded object differs")
