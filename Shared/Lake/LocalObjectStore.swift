import Core
import Cryptography

#if canImport(Glibc)
import Glibc
#endif

/// A local directory used as the bucket (`METERLAKE_LAKE_DIR`): the embedded default for running
/// on one machine, with S3's semantics.
///
/// A key is never joined onto a path as it is. In each `/`-separated segment `%` and control
/// characters are percent-encoded, a segment of only dots is encoded whole, and an empty segment
/// becomes `%`; so `raw/../x` and `a//b` are files inside the directory that list back as the same
/// keys, while `raw/manual/42/2026-03-01/site 7.csv` stays readable (and can be dropped in by hand). Writes go to a temporary file first and are renamed into place:
/// no reader ever sees half an object.
public final class LocalObjectStore: ObjectStore {
    public let directory: String
    private static let temporary = "%tmp"

    public init(directory: String) throws(ObjectStoreError) {
        var directory = directory
        while directory.count > 1, directory.hasSuffix("/") { directory.removeLast() }
        self.directory = directory
        try Self.makeDirectories(directory + "/" + Self.temporary, key: "")
    }

    public var location: String { "file://\(directory)" }

    // MARK: - Key ↔ path

    static func encode(segment: String) -> String {
        if segment.isEmpty { return "%" }
        if segment.allSatisfy({ $0 == "." }) { return String(repeating: "%2E", count: segment.count) }
        let hex = Array("0123456789ABCDEF".utf8)
        var bytes: [UInt8] = []
        for byte in segment.utf8 {
            if byte == UInt8(ascii: "%") || byte < 0x20 || byte == 0x7F {
                bytes += [UInt8(ascii: "%"), hex[Int(byte >> 4)], hex[Int(byte & 15)]]
            } else {
                bytes.append(byte)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    static func decode(segment: String) -> String? {
        if segment == "%" { return "" }
        var bytes: [UInt8] = []
        var utf8 = Array(segment.utf8)[...]
        while let byte = utf8.popFirst() {
            if byte == UInt8(ascii: "%") {
                guard utf8.count >= 2, let value = UInt8(String(decoding: utf8.prefix(2), as: UTF8.self), radix: 16) else { return nil }
                bytes.append(value)
                utf8 = utf8.dropFirst(2)
            } else {
                bytes.append(byte)
            }
        }
        return String(validating: bytes, as: UTF8.self)
    }

    func path(for key: String) throws(ObjectStoreError) -> String {
        guard !key.isEmpty else { throw .invalidKey(key: key, reason: "empty") }
        guard key.utf8.count <= 1024 else { throw .invalidKey(key: key, reason: "longer than 1024 bytes") }
        return directory + "/" + key.split(separator: "/", omittingEmptySubsequences: false).map { Self.encode(segment: String($0)) }.joined(separator: "/")
    }

    // MARK: - Operations

    /// The destination is always a new file: one already there is removed first (never written
    /// into: it could be a link to a file of the lake, or a symbolic link to anything).
    ///
    /// A whole object the process owns is handed over as a second hard link to its file where it
    /// can be (the destination on the lake's file system), which takes no time whatever the size:
    /// the store never writes into an existing file, so the link is a snapshot. The caller reads
    /// the destination and removes it; it must not write into it. A file owned by someone else is
    /// copied: its owner could otherwise replace the caller's scratch entry (sticky `/tmp` lets an
    /// owner do that) with a link to a file the caller may read. A range, or another file system,
    /// is copied too.
    public func get(_ key: String, to destination: String, range: ClosedRange<Int64>?) throws(ObjectStoreError) -> ObjectInfo {
        let input = try openObject(key)
        defer { close(input) }
        guard unlink(destination) == 0 || errno == ENOENT else {
            throw .local(key: key, reason: "cannot replace \(destination): \(Self.errorText())")
        }
        if range == nil, try linkWhole(key, opened: input, to: destination) {
            var info = stat()
            guard fstat(input, &info) == 0 else { throw .local(key: key, reason: Self.errorText()) }
            return ObjectInfo(key: key, size: Int64(info.st_size), etag: Self.etag(of: input))
        }
        // O_EXCL | O_NOFOLLOW: a file or link that appeared there since is refused, not followed.
        let output = open(destination, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard output >= 0 else { throw .local(key: key, reason: "cannot create \(destination): \(Self.errorText())") }
        defer { close(output) }
        var remaining = Int64.max
        if let range {
            guard lseek(input, off_t(range.lowerBound), SEEK_SET) >= 0 else { throw .local(key: key, reason: Self.errorText()) }
            remaining = range.upperBound - range.lowerBound + 1
        }
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        var copied: Int64 = 0
        while remaining > 0 {
            let count = read(input, &buffer, Int(min(Int64(buffer.count), remaining)))
            if count == 0 { break }
            guard count > 0 else { throw .local(key: key, reason: Self.errorText()) }
            try Self.writeAll(output, buffer, count: count, key: key)
            copied += Int64(count)
            remaining -= Int64(count)
        }
        return ObjectInfo(key: key, size: copied, etag: Self.etag(of: input))
    }

    /// Links the object's file at `destination`; true only when the link is the very file opened
    /// as `input` and this process owns it (a key replaced or turned into a link in between is
    /// undone, and copied instead).
    private func linkWhole(_ key: String, opened input: Int32, to destination: String) throws(ObjectStoreError) -> Bool {
        var opened = stat()
        guard fstat(input, &opened) == 0, opened.st_uid == geteuid() else { return false }
        guard let (parent, name) = try? openParent(key, create: false) else { return false }
        defer { close(parent) }
        // Without AT_SYMLINK_FOLLOW: the entry itself, never a link's target.
        guard linkat(parent, name, AT_FDCWD, destination, 0) == 0 else { return false }
        var linked = stat()
        guard lstat(destination, &linked) == 0, (linked.st_mode & S_IFMT) == S_IFREG,
            linked.st_dev == opened.st_dev, linked.st_ino == opened.st_ino
        else {
            guard unlink(destination) == 0 else {
                throw .local(key: key, reason: "cannot remove \(destination), linked to another file: \(Self.errorText())")
            }
            return false
        }
        return true
    }

    public func head(_ key: String) throws(ObjectStoreError) -> ObjectInfo? {
        let descriptor: Int32
        do {
            descriptor = try openObject(key)
        } catch .noSuchKey {
            return nil
        } catch .invalidKey(_, let reason) where reason == Self.linkRefusal {
            return nil
        }
        defer { close(descriptor) }
        var info = stat()
        guard fstat(descriptor, &info) == 0 else { return nil }
        return ObjectInfo(key: key, size: Int64(info.st_size), etag: Self.etag(of: descriptor))
    }

    /// Why a symbolic link is no object: it could point anywhere outside the lake.
    public static let linkRefusal = "a symbolic link: the local lake holds regular files only and never follows links"

    /// Opens the directory that holds `key`'s file without following a symbolic link anywhere on
    /// the way: each directory is opened beneath the previous one with `O_NOFOLLOW` (and created
    /// with `mkdirat` when `create` and missing). Returns its descriptor (the caller closes it)
    /// and the file's name in it. Every read, write, link, rename and unlink of the store goes
    /// through here, so a link planted anywhere in the lake is never followed.
    private func openParent(_ key: String, create: Bool) throws(ObjectStoreError) -> (directory: Int32, name: String) {
        let relative = String(try path(for: key).dropFirst(directory.count + 1))
        var segments = relative.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        let name = segments.removeLast()
        var parent = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard parent >= 0 else { throw .local(key: key, reason: Self.errorText()) }
        for segment in segments {
            var next = openat(parent, segment, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            if next < 0, errno == ENOENT, create {
                if mkdirat(parent, segment, 0o755) != 0, errno != EEXIST {
                    let reason = Self.errorText()
                    close(parent)
                    throw .local(key: key, reason: "cannot create a directory for it: \(reason)")
                }
                next = openat(parent, segment, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            }
            guard next >= 0 else {
                let failure = errno
                let isLink = Self.isLink(parent, segment)
                close(parent)
                if isLink { throw .invalidKey(key: key, reason: Self.linkRefusal) }
                switch failure {
                case ENOENT, ENOTDIR: throw .noSuchKey(key: key)
                default: throw .local(key: key, reason: String(cString: strerror(failure)))
                }
            }
            close(parent)
            parent = next
        }
        return (parent, name)
    }

    private static func isLink(_ directory: Int32, _ name: String) -> Bool {
        var info = stat()
        return fstatat(directory, name, &info, AT_SYMLINK_NOFOLLOW) == 0 && (info.st_mode & S_IFMT) == S_IFLNK
    }

    /// Opens a key's file for reading (see ``openParent(_:create:)``); a link, or anything but a
    /// regular file, is refused as an untrusted object.
    private func openObject(_ key: String) throws(ObjectStoreError) -> Int32 {
        let (parent, name) = try openParent(key, create: false)
        defer { close(parent) }
        let file = openat(parent, name, O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC)
        guard file >= 0 else {
            let failure = errno
            if Self.isLink(parent, name) { throw .invalidKey(key: key, reason: Self.linkRefusal) }
            switch failure {
            case ENOENT, ENOTDIR: throw .noSuchKey(key: key)
            default: throw .local(key: key, reason: String(cString: strerror(failure)))
            }
        }
        var info = stat()
        guard fstat(file, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else {
            close(file)
            throw .noSuchKey(key: key)
        }
        return file
    }

    /// The staging directory, opened without following a link.
    private func openStaging(key: String) throws(ObjectStoreError) -> Int32 {
        let root = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard root >= 0 else { throw .local(key: key, reason: Self.errorText()) }
        defer { close(root) }
        let staging = openat(root, Self.temporary, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard staging >= 0 else {
            if Self.isLink(root, Self.temporary) { throw .invalidKey(key: key, reason: Self.linkRefusal) }
            throw .local(key: key, reason: "cannot open \(Self.temporary): \(Self.errorText())")
        }
        return staging
    }

    private static func etag(of descriptor: Int32) -> String? {
        var info = stat()
        guard fstat(descriptor, &info) == 0 else { return nil }
        return "\(info.st_size)-\(info.st_mtim.tv_sec)\(info.st_mtim.tv_nsec)"
    }

    public func put(_ key: String, body: ObjectBody, contentType: String?) throws(ObjectStoreError) -> ObjectInfo {
        let input: Int32?
        switch body {
        case .bytes: input = nil
        case .file(let path):
            // The caller's own file (a download in the scratch directory), not a lake key.
            let descriptor = open(path, O_RDONLY | O_CLOEXEC)
            guard descriptor >= 0 else { throw .local(key: key, reason: "cannot read \(path): \(Self.errorText())") }
            input = descriptor
        }
        defer { if let input { close(input) } }
        if case .bytes(let bytes) = body {
            try write(key) { output throws(ObjectStoreError) in try Self.writeAll(output, bytes, count: bytes.count, key: key) }
        } else if let input {
            try write(key) { output throws(ObjectStoreError) in try Self.copyAll(from: input, to: output, key: key) }
        }
        return try head(key) ?? ObjectInfo(key: key, size: 0, etag: nil)
    }

    /// Writes a new file in the staging directory with `body`, then renames it over `key`: no
    /// reader sees half an object, and nothing is written through a link.
    private func write(_ key: String, _ body: (Int32) throws(ObjectStoreError) -> Void) throws(ObjectStoreError) {
        let (parent, name) = try openParent(key, create: true)
        defer { close(parent) }
        let staging = try openStaging(key: key)
        defer { close(staging) }
        let staged = Hex.encode(SecureRandom.bytes(12))
        let output = openat(staging, staged, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o644)
        guard output >= 0 else { throw .local(key: key, reason: Self.errorText()) }
        var succeeded = false
        defer {
            close(output)
            if !succeeded { unlinkat(staging, staged, 0) }
        }
        try body(output)
        guard fsync(output) == 0, renameat(staging, staged, parent, name) == 0 else { throw .local(key: key, reason: Self.errorText()) }
        succeeded = true
    }

    private static func copyAll(from input: Int32, to output: Int32, key: String) throws(ObjectStoreError) {
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        while true {
            let count = read(input, &buffer, buffer.count)
            if count == 0 { return }
            guard count > 0 else {
                if errno == EINTR { continue }
                throw .local(key: key, reason: errorText())
            }
            try writeAll(output, buffer, count: count, key: key)
        }
    }

    /// Like S3's server-side copy, takes no time whatever the size: the destination becomes a
    /// second hard link to the source's file (staged, then renamed into place). Sharing is safe
    /// because the store never writes into an existing file: every write is a new file renamed
    /// over the key. (Overwriting a key in place by hand, `cp` onto an existing file, would change
    /// its copies too; drop new files in instead.) Falls back to copying the bytes where links
    /// are not possible.
    public func copy(from source: String, to destination: String) throws(ObjectStoreError) {
        let input = try openObject(source)  // a regular file reached without a link, or no such key
        defer { close(input) }
        let (sourceParent, sourceName) = try openParent(source, create: false)
        defer { close(sourceParent) }
        let (parent, name) = try openParent(destination, create: true)
        defer { close(parent) }
        let staging = try openStaging(key: destination)
        defer { close(staging) }
        let staged = Hex.encode(SecureRandom.bytes(12))
        // `linkat` without AT_SYMLINK_FOLLOW links the entry itself, never a link's target.
        if linkat(sourceParent, sourceName, staging, staged, 0) == 0 {
            guard renameat(staging, staged, parent, name) == 0 else {
                let reason = Self.errorText()
                unlinkat(staging, staged, 0)
                throw .local(key: destination, reason: reason)
            }
            return
        }
        try write(destination) { output throws(ObjectStoreError) in try Self.copyAll(from: input, to: output, key: destination) }
    }

    public func delete(_ key: String) throws(ObjectStoreError) {
        let parent: Int32
        let name: String
        do {
            (parent, name) = try openParent(key, create: false)
        } catch .noSuchKey {
            return  // as S3: deleting what is not there succeeds
        }
        defer { close(parent) }
        guard unlinkat(parent, name, 0) == 0 || errno == ENOENT else {
            throw .local(key: key, reason: Self.errorText())
        }
    }

    public func list(prefix: String) throws(ObjectStoreError) -> [ObjectInfo] {
        var keys: [String] = []
        walk(directory, keyPrefix: nil, into: &keys)
        var objects: [ObjectInfo] = []
        for key in keys.filter({ $0.hasPrefix(prefix) }).sorted(by: { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }) {
            if let info = try head(key) { objects.append(info) }
        }
        return objects
    }

    private func walk(_ path: String, keyPrefix: String?, into keys: inout [String]) {
        guard let handle = opendir(path) else { return }
        defer { closedir(handle) }
        while let entry = readdir(handle) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            if name == "." || name == ".." || (keyPrefix == nil && name == Self.temporary) { continue }
            guard let segment = Self.decode(segment: name) else { continue }
            let key = keyPrefix.map { $0 + "/" + segment } ?? segment
            var info = stat()
            guard lstat(path + "/" + name, &info) == 0 else { continue }  // links are listed as nothing
            if (info.st_mode & S_IFMT) == S_IFDIR {
                walk(path + "/" + name, keyPrefix: key, into: &keys)
            } else if (info.st_mode & S_IFMT) == S_IFREG {
                keys.append(key)
            }
        }
    }

    /// A `file://` URL: the local store has no credentials to sign with, and the directory is
    /// already readable by whoever holds the URL.
    public func presignedURL(method: String, key: String, expires: Int, now: Int64, headers: [(name: String, value: String)]) throws(ObjectStoreError) -> String {
        "file://" + SigV4Signer.encodePath(try path(for: key))
    }

    // MARK: - Files

    private static func makeDirectories(_ path: String, key: String) throws(ObjectStoreError) {
        var current = path.hasPrefix("/") ? "" : "."
        for component in path.split(separator: "/") {
            current += "/" + component
            if mkdir(current, 0o755) != 0, errno != EEXIST {
                throw .local(key: key, reason: "cannot create \(current): \(errorText())")
            }
        }
    }

    private static func writeAll(_ descriptor: Int32, _ bytes: [UInt8], count: Int, key: String) throws(ObjectStoreError) {
        var offset = 0
        while offset < count {
            let written = bytes.withUnsafeBytes { Glibc.write(descriptor, $0.baseAddress! + offset, count - offset) }
            if written < 0 {
                if errno == EINTR { continue }
                throw .local(key: key, reason: errorText())
            }
            offset += written
        }
    }

    private static func errorText() -> String { String(cString: strerror(errno)) }
}

@available(*, unavailable)
extension LocalObjectStore: Sendable {}
