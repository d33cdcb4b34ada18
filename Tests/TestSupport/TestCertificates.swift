import Foundation

/// A throwaway certificate authority and a server certificate it signed, made with the `openssl`
/// command (a real chain, for real TLS peers on loopback).
public struct TestCertificates: Sendable {
    /// The CA's certificate (PEM): the root a client trusts.
    public let authority: String
    /// The server's certificate (PEM), for `hostname` (subject alternative name).
    public let certificate: String
    /// The server's private key (PEM).
    public let key: String

    public init(hostname: String) throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("meterlake-certs-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let extensions = directory + "/san.cnf"
        try "subjectAltName=DNS:\(hostname)\n".write(toFile: extensions, atomically: true, encoding: .utf8)
        for arguments in [
            ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=meterlake-test-ca",
             "-keyout", directory + "/ca.key", "-out", directory + "/ca.pem"],
            ["req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=\(hostname)", "-keyout", directory + "/server.key",
             "-out", directory + "/server.csr"],
            ["x509", "-req", "-in", directory + "/server.csr", "-CA", directory + "/ca.pem", "-CAkey", directory + "/ca.key",
             "-CAcreateserial", "-days", "1", "-extfile", extensions, "-out", directory + "/server.pem"],
        ] {
            let process = try ChildProcess("/usr/bin/openssl", arguments: arguments, environment: [:])
            guard try process.waitForExit(timeout: 60) == 0 else {
                throw TestServerError.socket("openssl \(arguments[0]) failed: \(process.standardError)")
            }
        }
        authority = try String(contentsOfFile: directory + "/ca.pem", encoding: .utf8)
        certificate = try String(contentsOfFile: directory + "/server.pem", encoding: .utf8)
        key = try String(contentsOfFile: directory + "/server.key", encoding: .utf8)
    }
}
