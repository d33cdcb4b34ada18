internal import CZlib

/// gzip compression in one call (evidence archives: small, written once).
public enum Deflater {
    /// A gzip member holding `bytes` (no file name, no time stamp: the same input gives the same output).
    public static func gzip(_ bytes: [UInt8]) throws(CompressionError) -> [UInt8] {
        var stream = z_stream()
        guard czlib_deflate_init_gzip(&stream) == Z_OK else { throw .corrupt("deflateInit2 failed") }
        defer { deflateEnd(&stream) }
        var output = [UInt8](repeating: 0, count: Int(deflateBound(&stream, uLong(bytes.count))) + 64)
        var input = bytes
        let status = input.withUnsafeMutableBufferPointer { inputBuffer in
            output.withUnsafeMutableBufferPointer { outputBuffer -> Int32 in
                stream.next_in = inputBuffer.baseAddress
                stream.avail_in = uInt(inputBuffer.count)
                stream.next_out = outputBuffer.baseAddress
                stream.avail_out = uInt(outputBuffer.count)
                return deflate(&stream, Z_FINISH)
            }
        }
        guard status == Z_STREAM_END else { throw .corrupt("deflate did not finish (\(status))") }
        return Array(output[0..<Int(stream.total_out)])
    }
}
