// libFuzzer target for S3 event keys: form decoding, then the lake key checks. Any input must be
// refused or give a key whose invariants hold. Built and run by Tests/Fuzz/run.sh.
import Core
import Lake

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let text = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
    guard let key = S3Event.decodeKey(text) else { return 0 }
    guard let lakeKey = try? LakeKey(key) else { return 0 }
    precondition(lakeKey.key == key && "raw/" + lakeKey.rest == key, "the key's tail is not lossless")
    precondition(lakeKey.organizationID > 0, "a non-positive organisation")
    precondition(key.utf8.count <= LakeKey.maximumBytes, "a key too long for its destinations")
    precondition(LakeKey.controlCharacter(in: key) == nil, "a control character accepted")
    precondition(!key.split(separator: "/", omittingEmptySubsequences: false).contains { $0.isEmpty || $0 == "." || $0 == ".." },
                 "a dot or empty segment accepted")
    let destination = LakeKey.destination(.quarantine, day: "2026-12-04", rawKey: key) + ".report.json"
    precondition(destination.utf8.count <= 1024, "a destination S3 cannot hold")
    return 0
}
