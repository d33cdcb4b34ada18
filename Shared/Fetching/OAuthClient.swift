import Core
import Cryptography
import HTTPClient

/// A vendor's OAuth 2.0 authorization server, as our confidential client: where the owner
/// consents, how the token endpoint wants the client to authenticate, and the grants we use.
public struct OAuthClient: Sendable {
    /// How the client authenticates and where the grant's parameters go.
    public enum Style: Sendable {
        /// HTTP Basic `client_id:client_secret`, parameters in the query (Enphase's examples).
        case basicWithQuery
        /// Parameters and client credentials in a form body (SMA's Keycloak).
        case formBody
    }

    public var vendor: String
    public var tokenURL: String
    /// The browser's consent page (`response_type=code`).
    public var authorizeURL: String
    public var clientID: String
    public var clientSecret: String
    public var style: Style
    /// The scope asked for at consent (SMA: `offline_access`, for a refresh token).
    public var scope: String?

    public init(vendor: String, tokenURL: String, authorizeURL: String = "", clientID: String, clientSecret: String, style: Style,
                scope: String? = nil) {
        self.vendor = vendor
        self.tokenURL = tokenURL
        self.authorizeURL = authorizeURL
        self.clientID = clientID
        self.clientSecret = clientSecret
        self.style = style
        self.scope = scope
    }

    /// The consent page's URL for one flow: our client, the exact registered `redirect_uri`, the
    /// signed `state`, and the PKCE S256 challenge (sent to every vendor: RFC 9700 asks for it and
    /// servers ignore parameters they do not know).
    public func authorizationURL(redirectURI: String, state: String, codeChallenge: String) -> String {
        var parameters = [("response_type", "code"), ("client_id", clientID), ("redirect_uri", redirectURI)]
        if let scope { parameters.append(("scope", scope)) }
        parameters += [("state", state), ("code_challenge", codeChallenge), ("code_challenge_method", "S256")]
        return authorizeURL + (authorizeURL.contains("?") ? "&" : "?") + Self.form(parameters)
    }

    /// `a=1&b=2`, every value percent-encoded.
    static func form(_ parameters: [(String, String)]) -> String {
        parameters.map { $0.0 + "=" + PercentEncoding.encode($0.1) }.joined(separator: "&")
    }

    /// A token request for a grant's parameters, with the client authenticated the vendor's way.
    func tokenRequest(_ parameters: [(String, String)], timeout: Duration = .seconds(10)) -> HTTPRequest {
        switch style {
        case .basicWithQuery:
            let credentials = Base64.encode(Array("\(clientID):\(clientSecret)".utf8))
            return HTTPRequest(method: .post, url: tokenURL + "?" + Self.form(parameters),
                               headers: ["Authorization": "Basic " + credentials, "Accept": "application/json"], body: .bytes([]), timeout: timeout)
        case .formBody:
            let form = Self.form(parameters + [("client_id", clientID), ("client_secret", clientSecret)])
            return HTTPRequest(method: .post, url: tokenURL,
                               headers: ["Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"],
                               body: .bytes(Array(form.utf8)), timeout: timeout)
        }
    }

    /// Reads a token endpoint's answer: the tokens, or the OAuth `error` code (`HTTP n` without one,
    /// `no access_token` for a 200 without a token). `expires_in` is capped at a year.
    func grant(from response: HTTPResponse, now: Int64) -> Result<OAuthGrant, OAuthGrantFailure> {
        let answer = try? JSONParser.parse(response.body)
        guard response.status == 200 else {
            if response.status == 400 || response.status == 401, case .string(let error)? = answer?["error"] {
                return .failure(OAuthGrantFailure(String(error.prefix(64).filter { $0.isASCII && !$0.isWhitespace })))
            }
            return .failure(OAuthGrantFailure("HTTP \(response.status)"))
        }
        guard case .string(let access)? = answer?["access_token"], !access.isEmpty else { return .failure(OAuthGrantFailure("no access_token")) }
        var refresh: String?
        if case .string(let rotated)? = answer?["refresh_token"], !rotated.isEmpty { refresh = rotated }
        // A vendor's number, however large or odd, becomes 0 s…366 days before any integer arithmetic.
        let lifetime = answer?["expires_in"].flatMap { value -> Int64? in
            guard case .number(let literal) = value, let seconds = Double(literal), seconds.isFinite else { return nil }
            return Int64(min(max(seconds, 0), 366 * 86_400))
        }
        return .success(OAuthGrant(access: access, refresh: refresh, expiresAt: lifetime.map { now + $0 }))
    }

    /// Redeems an authorization code, once: a code is single-use (RFC 6749 4.1.2), so a failed or
    /// timed-out exchange is never retried — a second try could revoke what the first obtained.
    /// - Throws: ``VendorError/credentialRefused(_:)`` when the vendor refuses the code (used,
    ///   expired, another redirect URI or PKCE verifier), ``VendorError/failed(_:)`` otherwise.
    public func exchange(code: String, redirectURI: String, codeVerifier: String, caBundlePath: String?, now: Int64) throws(VendorError) -> OAuthGrant {
        let redact = Redactor(secrets: [code, codeVerifier, clientSecret])
        let request = tokenRequest([("grant_type", "authorization_code"), ("code", code), ("redirect_uri", redirectURI),
                                    ("code_verifier", codeVerifier)])
        let response: HTTPResponse
        do {
            response = try HTTPClient(configuration: .init(connectTimeout: .seconds(5), caBundlePath: caBundlePath)).send(request)
        } catch {
            throw .failed(redact("\(vendor) did not answer the code exchange: \(error)"))
        }
        switch grant(from: response, now: now) {
        case .success(let grant):
            guard grant.refresh != nil else { throw .failed("\(vendor) issued no refresh token: the connection could not be kept beyond one token") }
            return grant
        case .failure(let failure) where failure.code == "invalid_grant":
            throw .credentialRefused("\(vendor) refused the authorization code (invalid_grant): it was used already, expired, or was issued for another redirect URI or PKCE challenge")
        case .failure(let failure) where failure.code == "invalid_client" || failure.code == "unauthorized_client":
            throw .failed("\(vendor) refused our client (\(failure.code)): check the application's client id and secret")
        case .failure(let failure):
            throw .failed(redact("\(vendor) refused the code exchange (\(failure.code))"))
        }
    }
}

/// Tokens a grant issued; `refresh` is nil when the answer carried none (then the old one stays).
public struct OAuthGrant: Sendable, Equatable {
    public var access: String
    public var refresh: String?
    /// Unix seconds, from `expires_in`.
    public var expiresAt: Int64?

    /// The stored credential's plaintext (interfaces.md): access and refresh token and their expiry.
    public var plaintext: [UInt8] {
        var members = [JSONMember("access_token", .string(access)), JSONMember("refresh_token", .string(refresh ?? ""))]
        if let expiresAt { members.append(JSONMember("expires_at", .string(Timestamp.rfc3339(seconds: expiresAt, nanoseconds: 0, zoned: true)))) }
        return Array(JSONValue.object(members).serialized.utf8)
    }
}

/// A token endpoint's refusal: its OAuth `error` code (ASCII, at most 64 characters), or `HTTP n`.
struct OAuthGrantFailure: Error, Equatable {
    var code: String
    init(_ code: String) { self.code = code }
}

/// PKCE (RFC 7636) with S256.
public enum PKCE {
    /// 32 random bytes, URL-safe Base64: 43 characters of the unreserved set.
    public static func verifier() -> String { Base64.encodeURLSafe(SecureRandom.bytes(32)) }
    /// base64url(SHA-256(verifier)).
    public static func challenge(for verifier: String) -> String { Base64.encodeURLSafe(SHA256.hash(Array(verifier.utf8))) }
}
