import Compression

#if canImport(Glibc)
import Glibc
#endif

/// A stream of bytes read in chunks: a file, memory, or a decompressor over either.
public protocol ByteSource: AnyObject {
    /// The next chunk; empty at the end.
    func read() throws(FileFormatError) -> [UInt8]
}

/// A file read in 256 KiB chunks. Owned by one thread at a time.
public final class FileByteSource: ByteSource {
    private let descriptor: Int32
    private let chunkSize: Int
    /// Bytes read so far.
    public private(set) var bytesRead: Int64 = 0

    public init(path: String, chunkSize: Int = 256 * 1024) throws(FileFormatError) {
        descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { throw .unreadable(reason: "cannot open: \(String(cString: strerror(errno)))") }
        self.chunkSize = chunkSize
    }

    deinit { close(descriptor) }

    public func read() throws(FileFormatError) -> [UInt8] {
        var chunk = [UInt8](repeating: 0, count: chunkSize)
        while true {
            let count = Glibc.read(descriptor, &chunk, chunkSize)
            if count >= 0 {
                chunk.removeLast(chunkSize - count)
                bytesRead += Int64(count)
                return chunk
            }
            if errno != EINTR { throw .unreadable(reason: "read failed: \(String(cString: strerror(errno)))") }
        }
    }
}

/// Bytes in memory, handed out in chunks of `chunkSize` (tests use odd sizes to cross every boundary).
public final class MemoryByteSource: ByteSource {
    private let bytes: [UInt8]
    private let chunkSize: Int
    private var offset = 0

    public init(_ bytes: [UInt8], chunkSize: Int = 256 * 1024) {
        self.bytes = bytes
        self.chunkSize = max(1, chunkSize)
    }

    public func read() throws(FileFormatError) -> [UInt8] {
        let end = min(bytes.count, offset + chunkSize)
        defer { offset = end }
        return Array(bytes[offset..<end])
    }
}

/// Decompresses gzip from another source, counting bytes as they come out: a file that expands
/// past the size limit, or by more than the ratio limit, fails as it streams, whatever its header
/// claims.
public final class GzipByteSource: ByteSource {
    private let source: any ByteSource
    private let inflater: Inflater
    private let limits: ValidationLimits
    private var compressed: Int64 = 0
    private var decompressed: Int64 = 0
    private var sourceEnded = false

    public init(_ source: any ByteSource, limits: ValidationLimits) throws(FileFormatError) {
        self.source = source
        self.limits = limits
        do { inflater = try Inflater() } catch { throw .corruptCompression(reason: error.description) }
    }

    public func read() throws(FileFormatError) -> [UInt8] {
        while true {
            if inflater.needsInput {
                if sourceEnded {
                    guard inflater.isComplete else { throw .corruptCompression(reason: "the data ends early (truncated file)") }
                    return []
                }
                let chunk = try source.read()
                if chunk.isEmpty { sourceEnded = true; continue }
                compressed += Int64(chunk.count)
                inflater.feed(chunk)
            }
            let output: [UInt8]
            do { output = try inflater.drain(maximum: 256 * 1024) } catch { throw .corruptCompression(reason: error.description) }
            guard !output.isEmpty else { continue }
            decompressed += Int64(output.count)
            if decompressed > limits.maximumDecompressedBytes { throw .decompressedTooLarge(limit: limits.maximumDecompressedBytes) }
            if decompressed > 1024 * 1024, decompressed / max(compressed, 1) > limits.maximumCompressionRatio {
                throw .compressionRatio(limit: limits.maximumCompressionRatio)
            }
            return output
        }
    }
}
