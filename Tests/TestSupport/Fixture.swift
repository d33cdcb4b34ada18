import Foundation

/// Files under `Tests/Fixtures` (and the repository's `docs/`), found from this source file's
/// path so that tests run the same from any working directory.
public enum Fixture {
    /// `Tests/Fixtures`.
    public static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures")
    /// The repository's root.
    public static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    public static func data(_ path: String) throws -> Data { try Data(contentsOf: directory.appendingPathComponent(path)) }
    public static func text(_ path: String) throws -> String { String(decoding: try data(path), as: UTF8.self) }
    public static func json(_ path: String) throws -> [String: Any] {
        try JSONSerialization.jsonObject(with: try data(path)) as! [String: Any]
    }
    public static func path(_ path: String) -> String { directory.appendingPathComponent(path).path }
}

/// The bytes a hex string spells (test vectors).
public func hex(_ text: String) -> [UInt8] {
    var bytes: [UInt8] = []
    var index = text.startIndex
    while index < text.endIndex {
        let next = text.index(index, offsetBy: 2)
        bytes.append(UInt8(text[index..<next], radix: 16)!)
        index = next
    }
    return bytes
}
