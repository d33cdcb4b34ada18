import Foundation

/// Files under `Tests/CoreTests/Fixtures` (and the repository's `docs/`), found from this source
/// file's path so that tests run the same from any working directory.
enum Fixture {
    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures")
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    static func data(_ path: String) throws -> Data { try Data(contentsOf: directory.appendingPathComponent(path)) }
    static func text(_ path: String) throws -> String { String(decoding: try data(path), as: UTF8.self) }
    static func json(_ path: String) throws -> [String: Any] {
        try JSONSerialization.jsonObject(with: try data(path)) as! [String: Any]
    }
    static func path(_ path: String) -> String { directory.appendingPathComponent(path).path }
}

func hex(_ text: String) -> [UInt8] {
    var bytes: [UInt8] = []
    var index = text.startIndex
    while index < text.endIndex {
        let next = text.index(index, offsetBy: 2)
        bytes.append(UInt8(text[index..<next], radix: 16)!)
        index = next
    }
    return bytes
}
