internal import CZlib

/// Why decompression failed.
public enum CompressionError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The data is not gzip, or is damaged (zlib's message).
    case corrupt(String)
    /// The input ended inside a gzip member.
    case truncated
    case library(String)

    public var description: String {
        switch self {
        case .corrupt(let reason): "corrupt gzip data: \(reason)"
        case .truncated: "the gzip data ends early (truncated file)"
        case .library(let reason): "zlib failed: \(reason)"
        }
    }
}

/// Streaming gzip decompression with zlib, member after member (`cat a.gz b.gz` is valid gzip).
///
/// Feed compressed bytes with ``feed(_:)``, take output with ``drain(maximum:)`` until it returns
/// nothing, and feed again. Output per call is bounded, so a small input that expands enormously
/// never lands in memory at once. Owned by one thread at a time.
public final class Inflater {
    private let stream: UnsafeMutablePointer<z_stream>
    private var input: [UInt8] = []
    private var inputOffset = 0
    /// True between the end of one member and the first byte of the next.
    public private(set) var atMemberBoundary = false
    private var startedMember = false

    public init() throws(CompressionError) {
        stream = .allocate(capacity: 1)
        stream.initialize(to: z_stream())
        guard czlib_inflate_init_gzip(stream) == Z_OK else {
            stream.deallocate()
            throw .library("inflateInit2 failed")
        }
    }

    deinit {
        inflateEnd(stream)
        stream.deallocate()
    }

    /// Whether all fed input has been consumed.
    public var needsInput: Bool { inputOffset >= input.count }

    /// Whether the data so far ends cleanly at the end of a member (a valid place for EOF).
    public var isComplete: Bool { atMemberBoundary || !startedMember }

    public func feed(_ bytes: [UInt8]) {
        input = Array(input[inputOffset...]) + bytes
        inputOffset = 0
    }

    /// Decompresses up to `maximum` bytes from the input fed so far.
    public func drain(maximum: Int) throws(CompressionError) -> [UInt8] {
        guard !needsInput else { return [] }
        if atMemberBoundary {
            guard inflateReset(stream) == Z_OK else { throw .library("inflateReset failed") }
            atMemberBoundary = false
        }
        startedMember = true
        var output = [UInt8](repeating: 0, count: maximum)
        var produced = 0
        var result: Int32 = Z_OK
        input.withUnsafeMutableBufferPointer { inputBuffer in
            output.withUnsafeMutableBufferPointer { outputBuffer in
                stream.pointee.next_in = inputBuffer.baseAddress! + inputOffset
                stream.pointee.avail_in = UInt32(inputBuffer.count - inputOffset)
                stream.pointee.next_out = outputBuffer.baseAddress
                stream.pointee.avail_out = UInt32(maximum)
                result = inflate(stream, Z_NO_FLUSH)
                produced = maximum - Int(stream.pointee.avail_out)
                inputOffset = inputBuffer.count - Int(stream.pointee.avail_in)
                stream.pointee.next_in = nil
                stream.pointee.next_out = nil
            }
        }
        switch result {
        case Z_OK, Z_BUF_ERROR:
            break
        case Z_STREAM_END:
            atMemberBoundary = true
        case Z_DATA_ERROR, Z_NEED_DICT:
            let message = stream.pointee.msg.map { String(cString: $0) } ?? "invalid data"
            throw .corrupt(message)
        case Z_MEM_ERROR:
            throw .library("out of memory")
        default:
            throw .library("inflate returned \(result)")
        }
        output.removeLast(maximum - produced)
        return output
    }
}

@available(*, unavailable)
extension Inflater: Sendable {}

extension Inflater {
    /// A whole gzip stream (member after member) decompressed, at most `limit` bytes.
    /// - Throws: ``CompressionError/truncated`` when the data ends inside a member,
    ///   ``CompressionError/corrupt(_:)`` when it decompresses to more than `limit`.
    public static func gunzip(_ compressed: [UInt8], limit: Int) throws(CompressionError) -> [UInt8] {
        let inflater = try Inflater()
        inflater.feed(compressed)
        var output: [UInt8] = []
        while true {
            let piece = try inflater.drain(maximum: 1 << 20)
            if piece.isEmpty { break }
            output += piece
            guard output.count <= limit else { throw .corrupt("more than \(limit) bytes once decompressed") }
        }
        guard inflater.isComplete else { throw .truncated }
        return output
    }
}
