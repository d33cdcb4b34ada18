internal import CCurl

#if canImport(Glibc)
import Glibc
#endif

/// libcurl's process-wide set-up, done once before the first handle (thread-safe lazy global).
private let curlGlobalInit: Void = { _ = curl_global_init(Int(CURL_GLOBAL_ALL)) }()

/// A blocking HTTP/1.1 and HTTPS client over one libcurl easy handle.
///
/// Connections stay open between requests, so a warm Lambda environment reuses them; libcurl
/// notices one that died while the environment was frozen and reconnects (rewinding an upload
/// if it must). TLS peers are always verified.
///
/// Owned by one thread at a time: libcurl forbids concurrent use of an easy handle, so the
/// type is deliberately not `Sendable`. Each runtime loop or function owns its own client.
public final class HTTPClient {
    /// Settings that hold for every request of one client.
    public struct Configuration: Sendable {
        /// Limit for establishing a connection (TCP and TLS).
        public var connectTimeout: Duration = .seconds(5)
        /// How much of a non-2xx body is kept for error messages and error documents.
        public var errorBodyLimit: Int = 64 * 1024
        /// A PEM bundle of trusted CA certificates; `nil` uses libcurl's built-in default.
        public var caBundlePath: String?
        public var userAgent: String = "meterlake/1"

        public init(connectTimeout: Duration = .seconds(5), caBundlePath: String? = nil) {
            self.connectTimeout = connectTimeout
            self.caBundlePath = caBundlePath
        }
    }

    public let configuration: Configuration
    private let handle: UnsafeMutableRawPointer
    /// libcurl writes its detailed message here; it must outlive every transfer.
    private let errorBuffer: UnsafeMutablePointer<CChar>

    /// - Throws: ``HTTPClientError/transport(url:code:reason:)`` if libcurl cannot make a handle.
    public init(configuration: Configuration = Configuration()) throws(HTTPClientError) {
        _ = curlGlobalInit
        guard let handle = curl_easy_init() else {
            throw .transport(url: "", code: -1, reason: "curl_easy_init failed")
        }
        self.configuration = configuration
        self.handle = handle
        self.errorBuffer = .allocate(capacity: Int(CURL_ERROR_SIZE) + 1)
        self.errorBuffer.initialize(repeating: 0, count: Int(CURL_ERROR_SIZE) + 1)
    }

    deinit {
        curl_easy_cleanup(handle)
        errorBuffer.deallocate()
    }

    /// Sends one request and waits for the whole response.
    ///
    /// Any status is returned as a response (call ``HTTPResponse/requireSuccess()`` to insist on 2xx);
    /// only transport-level failures throw.
    /// - Parameters:
    ///   - request: What to send.
    ///   - sink: Where a 2xx body goes; defaults to memory with an 8 MiB cap.
    /// - Throws: ``HTTPClientError`` describing the failure, never with credentials or query strings.
    public func send(
        _ request: HTTPRequest, into sink: HTTPResponseSink = .memory(limit: 8 * 1024 * 1024)
    ) throws(HTTPClientError) -> HTTPResponse {
        let redacted = redact(url: request.url)
        let transfer = try Transfer(request: request, sink: sink, errorBodyLimit: configuration.errorBodyLimit)
        defer { transfer.finish() }

        curl_easy_reset(handle)
        errorBuffer[0] = 0
        var headerList: UnsafeMutablePointer<curl_slist>?
        defer { curl_slist_free_all(headerList) }

        let context = Unmanaged.passUnretained(transfer).toOpaque()
        var failed: CURLcode = CURLE_OK
        func set(_ code: CURLcode) { if failed == CURLE_OK && code != CURLE_OK { failed = code } }

        set(ccurl_setopt_pointer(handle, CURLOPT_ERRORBUFFER, errorBuffer))
        set(ccurl_setopt_string(handle, CURLOPT_URL, request.url))
        set(ccurl_setopt_long(handle, CURLOPT_NOSIGNAL, 1))
        // Send the path exactly as given: libcurl would otherwise squash "/../" and "/./", and an
        // S3 key such as "raw/a/../b" would be signed as one path and sent as another.
        set(ccurl_setopt_long(handle, CURLOPT_PATH_AS_IS, 1))
        set(ccurl_setopt_string(handle, CURLOPT_PROTOCOLS_STR, "http,https"))
        set(ccurl_setopt_long(handle, CURLOPT_SSL_VERIFYPEER, 1))
        set(ccurl_setopt_long(handle, CURLOPT_SSL_VERIFYHOST, 2))
        if let path = configuration.caBundlePath { set(ccurl_setopt_string(handle, CURLOPT_CAINFO, path)) }
        set(ccurl_setopt_long(handle, CURLOPT_TCP_KEEPALIVE, 1))
        set(ccurl_setopt_string(handle, CURLOPT_USERAGENT, configuration.userAgent))
        set(ccurl_setopt_long(handle, CURLOPT_CONNECTTIMEOUT_MS, milliseconds(configuration.connectTimeout)))
        set(ccurl_setopt_long(handle, CURLOPT_TIMEOUT_MS, request.timeout.map(milliseconds) ?? 0))
        if request.followRedirects {
            set(ccurl_setopt_long(handle, CURLOPT_FOLLOWLOCATION, 1))
            set(ccurl_setopt_long(handle, CURLOPT_MAXREDIRS, 5))
            set(ccurl_setopt_string(handle, CURLOPT_REDIR_PROTOCOLS_STR, "http,https"))
        }

        // Larger receive buffers: fewer callbacks and writes for big objects (libcurl's default is 16 KiB).
        set(ccurl_setopt_long(handle, CURLOPT_BUFFERSIZE, 256 * 1024))
        set(ccurl_setopt_callback(handle, CURLOPT_WRITEFUNCTION, transferWrite))
        set(ccurl_setopt_pointer(handle, CURLOPT_WRITEDATA, context))
        set(ccurl_setopt_callback(handle, CURLOPT_HEADERFUNCTION, transferHeader))
        set(ccurl_setopt_pointer(handle, CURLOPT_HEADERDATA, context))

        switch (request.method, transfer.uploadSize) {
        case (.head, _):
            set(ccurl_setopt_long(handle, CURLOPT_NOBODY, 1))
        case (.get, nil):
            set(ccurl_setopt_long(handle, CURLOPT_HTTPGET, 1))
        case (let method, nil):
            set(ccurl_setopt_string(handle, CURLOPT_CUSTOMREQUEST, method.rawValue))
        case (let method, let size?):
            set(ccurl_setopt_callback(handle, CURLOPT_READFUNCTION, transferRead))
            set(ccurl_setopt_pointer(handle, CURLOPT_READDATA, context))
            set(ccurl_setopt_seek(handle, transferSeek))
            set(ccurl_setopt_pointer(handle, CURLOPT_SEEKDATA, context))
            if method == .put {
                set(ccurl_setopt_long(handle, CURLOPT_UPLOAD, 1))
                set(ccurl_setopt_offset(handle, CURLOPT_INFILESIZE_LARGE, curl_off_t(size)))
            } else {
                set(ccurl_setopt_long(handle, CURLOPT_POST, 1))
                set(ccurl_setopt_offset(handle, CURLOPT_POSTFIELDSIZE_LARGE, curl_off_t(size)))
                if method != .post { set(ccurl_setopt_string(handle, CURLOPT_CUSTOMREQUEST, method.rawValue)) }
            }
        }

        // "Expect:" with no value stops libcurl's 100-continue round trip on uploads.
        var lines = request.headers.map { $0.value.isEmpty ? "\($0.name);" : "\($0.name): \($0.value)" }
        if request.headers["Expect"] == nil { lines.append("Expect:") }
        for line in lines {
            guard let appended = curl_slist_append(headerList, line) else {
                throw .transport(url: redacted, code: -1, reason: "out of memory building headers")
            }
            headerList = appended
        }
        set(ccurl_setopt_slist(handle, CURLOPT_HTTPHEADER, headerList))
        if failed != CURLE_OK {
            throw .invalidRequest(url: redacted, reason: message(for: failed))
        }

        let code = curl_easy_perform(handle)
        if let error = transfer.error { throw error.with(url: redacted) }
        guard code == CURLE_OK else { throw classify(code, url: redacted) }

        var status = 0
        _ = ccurl_getinfo_long(handle, CURLINFO_RESPONSE_CODE, &status)
        var connects = 0
        _ = ccurl_getinfo_long(handle, CURLINFO_NUM_CONNECTS, &connects)
        transfer.keepFile = (200..<300).contains(status)
        return HTTPResponse(
            status: status, headers: transfer.headers, body: transfer.memory,
            bodyByteCount: transfer.received, redactedURL: redacted, newConnections: connects)
    }

    // MARK: - Errors

    private func message(for code: CURLcode) -> String {
        let detail = String(cString: errorBuffer)
        return detail.isEmpty ? String(cString: curl_easy_strerror(code)) : detail
    }

    /// The one place where a `CURLcode` becomes an ``HTTPClientError``.
    private func classify(_ code: CURLcode, url: String) -> HTTPClientError {
        let reason = message(for: code)
        switch code {
        case CURLE_COULDNT_RESOLVE_HOST, CURLE_COULDNT_RESOLVE_PROXY:
            return .resolve(url: url, reason: reason)
        case CURLE_COULDNT_CONNECT:
            return .connect(url: url, reason: reason)
        case CURLE_OPERATION_TIMEDOUT:
            return .timeout(url: url, reason: reason)
        case CURLE_SSL_CONNECT_ERROR, CURLE_PEER_FAILED_VERIFICATION, CURLE_SSL_CERTPROBLEM,
            CURLE_SSL_CIPHER, CURLE_SSL_CACERT_BADFILE, CURLE_SSL_ISSUER_ERROR, CURLE_SSL_CRL_BADFILE,
            CURLE_SSL_PINNEDPUBKEYNOTMATCH, CURLE_SSL_ENGINE_NOTFOUND, CURLE_SSL_ENGINE_SETFAILED,
            CURLE_SSL_ENGINE_INITFAILED, CURLE_SSL_SHUTDOWN_FAILED, CURLE_SSL_INVALIDCERTSTATUS:
            return .tls(url: url, reason: reason)
        case CURLE_GOT_NOTHING, CURLE_RECV_ERROR, CURLE_SEND_ERROR, CURLE_PARTIAL_FILE,
            CURLE_SEND_FAIL_REWIND, CURLE_HTTP2, CURLE_HTTP2_STREAM:
            return .connectionClosed(url: url, reason: reason)
        case CURLE_URL_MALFORMAT, CURLE_UNSUPPORTED_PROTOCOL, CURLE_BAD_FUNCTION_ARGUMENT:
            return .invalidRequest(url: url, reason: reason)
        default:
            return .transport(url: url, code: Int(code.rawValue), reason: reason)
        }
    }
}

@available(*, unavailable)
extension HTTPClient: Sendable {}

private func milliseconds(_ duration: Duration) -> Int {
    let (seconds, attoseconds) = duration.components
    return max(1, Int(seconds) * 1000 + Int(attoseconds / 1_000_000_000_000_000))
}

// MARK: - One exchange's state, reached from libcurl's callbacks

/// The state of one exchange: the upload source, the response headers and the body sink.
/// libcurl calls back into it on the sending thread, through an unretained pointer that lives
/// for the duration of `curl_easy_perform`.
private final class Transfer {
    private enum Upload {
        case none
        case bytes([UInt8], offset: Int)
        case file(descriptor: Int32)
    }

    private enum Destination {
        case memory(limit: Int)
        case file(path: String, descriptor: Int32)
        case stream((UnsafeRawBufferPointer) throws -> Void)
    }

    private var upload: Upload
    private let destination: Destination
    private let errorBodyLimit: Int
    let uploadSize: Int?

    var headers = HTTPHeaders()
    var status = 0
    var memory: [UInt8] = []
    var received = 0
    /// The first failure raised inside a callback; libcurl only sees "abort".
    var error: HTTPClientError?
    /// Set once a 2xx exchange completed, so `finish` keeps the downloaded file.
    var keepFile = false

    init(request: HTTPRequest, sink: HTTPResponseSink, errorBodyLimit: Int) throws(HTTPClientError) {
        self.errorBodyLimit = errorBodyLimit
        let redacted = redact(url: request.url)
        switch request.body {
        case .empty:
            upload = .none
            uploadSize = nil
        case .bytes(let bytes):
            upload = .bytes(bytes, offset: 0)
            uploadSize = bytes.count
        case .file(let path):
            let descriptor = open(path, O_RDONLY | O_CLOEXEC)
            guard descriptor >= 0 else {
                throw .invalidRequest(url: redacted, reason: "cannot open body file \(path): \(errnoText())")
            }
            var info = stat()
            guard fstat(descriptor, &info) == 0 else {
                close(descriptor)
                throw .invalidRequest(url: redacted, reason: "cannot stat body file \(path): \(errnoText())")
            }
            upload = .file(descriptor: descriptor)
            uploadSize = Int(info.st_size)
        }
        switch sink {
        case .memory(let limit):
            destination = .memory(limit: limit)
        case .file(let path):
            let descriptor = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
            guard descriptor >= 0 else {
                if case .file(let input) = upload { close(input) }
                throw .sink(url: redacted, reason: "cannot create \(path): \(errnoText())")
            }
            destination = .file(path: path, descriptor: descriptor)
        case .stream(let closure):
            destination = .stream(closure)
        }
    }

    /// A header line, status lines included. A new status line (after a 100 Continue or a
    /// redirect) starts a fresh set of headers.
    func header(_ line: UnsafeRawBufferPointer) {
        var text = String(decoding: line, as: UTF8.self)
        while let last = text.last, last.isNewline { text.removeLast() }
        if text.hasPrefix("HTTP/") {
            headers = HTTPHeaders()
            let parts = text.split(separator: " ", maxSplits: 2)
            status = parts.count > 1 ? Int(parts[1]) ?? 0 : 0
        } else if let colon = text.firstIndex(of: ":") {
            let name = String(text[..<colon])
            let value = text[text.index(after: colon)...].drop { $0 == " " || $0 == "\t" }
            headers.add(name, String(value))
        }
    }

    /// A chunk of the body. Returns false to make libcurl abort.
    func write(_ chunk: UnsafeRawBufferPointer) -> Bool {
        received += chunk.count
        guard (200..<300).contains(status) else {
            let room = max(0, errorBodyLimit - memory.count)
            memory.append(contentsOf: chunk.prefix(room))
            return true
        }
        switch destination {
        case .memory(let limit):
            guard memory.count + chunk.count <= limit else {
                error = .bodyTooLarge(url: "", limit: limit)
                return false
            }
            memory.append(contentsOf: chunk)
        case .file(_, let descriptor):
            var offset = 0
            while offset < chunk.count {
                let written = Glibc.write(descriptor, chunk.baseAddress! + offset, chunk.count - offset)
                if written < 0 {
                    if errno == EINTR { continue }
                    error = .sink(url: "", reason: "write failed: \(errnoText())")
                    return false
                }
                offset += written
            }
        case .stream(let closure):
            do {
                try closure(chunk)
            } catch {
                self.error = .sink(url: "", reason: String(describing: error))
                return false
            }
        }
        return true
    }

    /// Fills `buffer` with the next part of the upload; 0 ends it.
    func read(into buffer: UnsafeMutableRawBufferPointer) -> Int? {
        switch upload {
        case .none:
            return 0
        case .bytes(let bytes, let offset):
            let count = min(buffer.count, bytes.count - offset)
            bytes.withUnsafeBytes { source in
                buffer.baseAddress!.copyMemory(from: source.baseAddress! + offset, byteCount: count)
            }
            upload = .bytes(bytes, offset: offset + count)
            return count
        case .file(let descriptor):
            while true {
                let count = Glibc.read(descriptor, buffer.baseAddress, buffer.count)
                if count >= 0 { return count }
                if errno != EINTR {
                    error = .invalidRequest(url: "", reason: "reading the body file failed: \(errnoText())")
                    return nil
                }
            }
        }
    }

    /// Rewinds the upload to `offset` (libcurl resends on a fresh connection). Returns success.
    func seek(to offset: Int) -> Bool {
        received = 0
        memory = []
        switch upload {
        case .none: return offset == 0
        case .bytes(let bytes, _):
            guard offset <= bytes.count else { return false }
            upload = .bytes(bytes, offset: offset)
            return true
        case .file(let descriptor):
            return lseek(descriptor, off_t(offset), SEEK_SET) == off_t(offset)
        }
    }

    /// Releases descriptors; removes a partly written file unless the exchange succeeded.
    func finish() {
        if case .file(let descriptor) = upload { close(descriptor) }
        if case .file(let path, let descriptor) = destination {
            close(descriptor)
            if !keepFile { unlink(path) }
        }
    }
}

extension HTTPClientError {
    /// The same error with the URL filled in (callbacks do not know it).
    fileprivate func with(url: String) -> HTTPClientError {
        switch self {
        case .bodyTooLarge(_, let limit): .bodyTooLarge(url: url, limit: limit)
        case .sink(_, let reason): .sink(url: url, reason: reason)
        case .invalidRequest(_, let reason): .invalidRequest(url: url, reason: reason)
        default: self
        }
    }
}

private func errnoText() -> String { String(cString: strerror(errno)) }

// MARK: - C callbacks (no captures: the exchange comes through the user-data pointer)

private let transferWrite: ccurl_io_callback = { buffer, size, count, context in
    let transfer = Unmanaged<Transfer>.fromOpaque(context!).takeUnretainedValue()
    let length = size * count
    return transfer.write(UnsafeRawBufferPointer(start: buffer, count: length)) ? length : 0
}

private let transferHeader: ccurl_io_callback = { buffer, size, count, context in
    let transfer = Unmanaged<Transfer>.fromOpaque(context!).takeUnretainedValue()
    let length = size * count
    transfer.header(UnsafeRawBufferPointer(start: buffer, count: length))
    return length
}

private let transferRead: ccurl_io_callback = { buffer, size, count, context in
    let transfer = Unmanaged<Transfer>.fromOpaque(context!).takeUnretainedValue()
    return transfer.read(into: UnsafeMutableRawBufferPointer(start: buffer, count: size * count))
        ?? ccurl_read_abort()
}

private let transferSeek: ccurl_seek_callback = { context, offset, origin in
    let transfer = Unmanaged<Transfer>.fromOpaque(context!).takeUnretainedValue()
    guard origin == SEEK_SET else { return 2 }  // CURL_SEEKFUNC_CANTSEEK
    return transfer.seek(to: Int(offset)) ? 0 : 1  // CURL_SEEKFUNC_OK : CURL_SEEKFUNC_FAIL
}
