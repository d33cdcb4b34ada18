internal import CZlib
internal import CZstd

/// Whole-buffer decompression into an output of a size the caller already knows (a Parquet page
/// declares its uncompressed size). Output that would be larger or smaller than declared is an
/// error, so a page can never allocate more than its declared, already capped, size.
public enum BlockDecompression {
    /// Decompresses gzip member(s) (RFC 1952) into exactly `size` bytes.
    public static func gunzip(_ input: UnsafeRawBufferPointer, size: Int) throws(CompressionError) -> [UInt8] {
        guard size >= 0 else { throw .corrupt("negative output size") }
        // One byte of room beyond the declared size shows overlong data instead of hiding it.
        let capacity = size + 1
        var output = [UInt8](repeating: 0, count: capacity)
        var stream = z_stream()
        guard czlib_inflate_init_gzip(&stream) == Z_OK else { throw .library("inflateInit2 failed") }
        defer { inflateEnd(&stream) }
        var consumed = 0
        var produced = 0
        while consumed < input.count {
            var result: Int32 = Z_OK
            output.withUnsafeMutableBytes { out in
                stream.next_in = UnsafeMutablePointer(mutating: input.baseAddress!.assumingMemoryBound(to: UInt8.self) + consumed)
                stream.avail_in = UInt32(clamping: input.count - consumed)
                stream.next_out = out.baseAddress!.assumingMemoryBound(to: UInt8.self) + produced
                stream.avail_out = UInt32(clamping: capacity - produced)
                let before = (input: Int(stream.avail_in), output: Int(stream.avail_out))
                result = inflate(&stream, Z_NO_FLUSH)
                consumed += before.input - Int(stream.avail_in)
                produced += before.output - Int(stream.avail_out)
                stream.next_in = nil
                stream.next_out = nil
            }
            if produced > size { throw .corrupt("more than the declared \(size) bytes") }
            switch result {
            case Z_STREAM_END:
                guard inflateReset(&stream) == Z_OK else { throw .library("inflateReset failed") }
            case Z_OK:
                continue
            case Z_BUF_ERROR:
                throw .truncated
            case Z_DATA_ERROR, Z_NEED_DICT:
                throw .corrupt(stream.msg.map { String(cString: $0) } ?? "invalid data")
            case Z_MEM_ERROR:
                throw .library("out of memory")
            default:
                throw .library("inflate returned \(result)")
            }
        }
        guard produced == size else { throw .corrupt("\(produced) bytes instead of the declared \(size)") }
        output.removeLast()
        return output
    }

    /// Decompresses zstd frame(s) into exactly `size` bytes (a frame need not declare its size).
    public static func unzstd(_ input: UnsafeRawBufferPointer, size: Int) throws(ZstdError) -> [UInt8] {
        guard size >= 0 else { throw ZstdError(reason: "negative output size") }
        guard let context = ZSTD_createDCtx() else { throw ZstdError(reason: "out of memory") }
        defer { ZSTD_freeDCtx(context) }
        // One byte of room beyond the declared size, so an overlong frame is an error, not a truncation.
        let capacity = size + 1
        var output = [UInt8](repeating: 0, count: capacity)
        let result = output.withUnsafeMutableBytes { out in
            ZSTD_decompressDCtx(context, out.baseAddress, capacity, input.baseAddress, input.count)
        }
        if ZSTD_isError(result) != 0 {
            throw ZstdError(reason: String(cString: ZSTD_getErrorName(result)))
        }
        guard result == size else { throw ZstdError(reason: "\(result) bytes instead of the declared \(size)") }
        output.removeLast()
        return output
    }
}

/// Why zstd decompression failed (libzstd's error name, or a size mismatch).
public struct ZstdError: Error, Equatable, Sendable, CustomStringConvertible {
    public var reason: String
    public var description: String { "corrupt zstd data: \(reason)" }
}
