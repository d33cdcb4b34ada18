import Core
/// An S3 ObjectCreated notification (only the members the validator reads).
public struct S3Event: Decodable, Sendable {
    public struct Record: Decodable, Sendable {
        public struct S3: Decodable, Sendable {
            public struct Bucket: Decodable, Sendable { public var name: String }
            public struct Object: Decodable, Sendable {
                /// Form-URL-encoded: `+` for a space, `%2B` for a plus.
                public var key: String
                public var size: Int64?
                public var eTag: String?
            }
            public var bucket: Bucket
            public var object: Object
        }
        public var eventName: String?
        public var s3: S3
    }
    public var Records: [Record]

    /// Decodes an event key: `+` becomes a space, then percent-escapes are decoded, once.
    public static func decodeKey(_ encoded: String) -> String? { PercentEncoding.decodeForm(encoded) }
}
