import Core
import Cryptography
import HTTPClient

/// Reads secrets from AWS Secrets Manager (`GetSecretValue`, signed with SigV4 by the function's
/// role credentials, over the project's HTTP client).
public struct SecretsManagerClient {
    public let region: String
    public let credentials: AWSCredentials
    /// `scheme://host[:port]`; `nil` means `https://secretsmanager.{region}.amazonaws.com`.
    public let endpoint: String?
    public let caBundlePath: String?

    public init(region: String, credentials: AWSCredentials, endpoint: String?, caBundlePath: String?) {
        self.region = region
        self.credentials = credentials
        self.endpoint = endpoint.map { $0.hasSuffix("/") ? String($0.dropLast()) : $0 }
        self.caBundlePath = caBundlePath
    }

    /// One Secrets Manager action (`GetSecretValue`, `CreateSecret`, …): its status and JSON answer.
    public func call(_ action: String, _ parameters: JSONValue, now: Int64 = WallClock.milliseconds() / 1000) throws(HTTPClientError) -> (status: Int, answer: JSONValue?) {
        let base = endpoint ?? "https://secretsmanager.\(region).amazonaws.com"
        let host = String(base.split(separator: "/", maxSplits: 3).dropFirst(1).first ?? "")
        let body = Array(parameters.serialized.utf8)
        let signer = SigV4Signer(credentials: credentials, region: region, service: "secretsmanager")
        let headers: [(name: String, value: String)] = [
            ("Host", host), ("Content-Type", "application/x-amz-json-1.1"), ("X-Amz-Target", "secretsmanager." + action),
        ]
        let signature = signer.sign(SigV4Signer.Request(method: "POST", encodedPath: "/", headers: headers, payloadHash: Hex.encode(SHA256.hash(body))),
                                    amzDate: SigV4Signer.amzDate(epochSeconds: now), contentHashHeader: false)
        let sent = HTTPHeaders((headers + signature.headers).filter { $0.name != "Host" }.map { HTTPHeaders.Field(name: $0.name, value: $0.value) })
        let response = try HTTPClient(configuration: .init(connectTimeout: .seconds(5), caBundlePath: caBundlePath))
            .send(HTTPRequest(method: .post, url: base + "/", headers: sent, body: .bytes(body), timeout: .seconds(10)))
        return (response.status, try? JSONParser.parse(response.body))
    }

    /// The secret's `SecretString`.
    /// - Throws: ``ConfigurationError`` naming the ARN's variable and the service's error code
    ///   (never the secret).
    public func secretString(_ id: String, variable: String) throws(ConfigurationError) -> String {
        // Up to three tries for what passes (a dropped connection, a 5xx, throttling); never for a refusal.
        var result: (status: Int, answer: JSONValue?) = (0, nil)
        for attempt in 1...3 {
            do {
                result = try call("GetSecretValue", .object([JSONMember("SecretId", .string(id))]))
            } catch {
                guard attempt < 3 else { throw .invalid(name: variable, reason: "Secrets Manager did not answer: \(error)") }
                WallClock.sleep(for: .milliseconds(200 * attempt))
                continue
            }
            let throttled = result.answer?["__type"]?.text?.hasSuffix("ThrottlingException") == true
            guard result.status >= 500 || throttled, attempt < 3 else { break }
            WallClock.sleep(for: .milliseconds(200 * attempt))
        }
        guard result.status == 200, case .string(let secret)? = result.answer?["SecretString"] else {
            let code = result.answer?["__type"]?.text.map { String($0.split(separator: "#").last ?? "") } ?? "HTTP \(result.status)"
            throw .invalid(name: variable, reason: "Secrets Manager refused GetSecretValue (\(code.prefix(80))); check the ARN and the function's policy")
        }
        return secret
    }
}

/// Secrets read at run time instead of deploy time: for each variable below, `NAME_SECRET_ARN`
/// (optionally `ARN#member` for one member of a JSON secret) is resolved once, at cold start, and
/// the value is used as `NAME` for the life of the environment. A plain `NAME` stays the local and
/// development path; when both are set the ARN wins.
public enum RuntimeSecrets {
    public static let variables = [
        "DATABASE_URL", "METERLAKE_ENCRYPTION_KEY", "METERLAKE_ENCRYPTION_KEY_PREVIOUS", "METERLAKE_STATE_SECRET", "METERLAKE_JWT_SECRET",
        "ENPHASE_API_KEY", "ENPHASE_CLIENT_ID", "ENPHASE_CLIENT_SECRET", "SMA_CLIENT_ID", "SMA_CLIENT_SECRET",
    ]

    /// `environment` with every `NAME_SECRET_ARN` resolved into `NAME`; unchanged when none is set.
    public static func resolve(_ environment: Environment) throws(ConfigurationError) -> Environment {
        let wanted = variables.compactMap { name in environment[name + "_SECRET_ARN"].map { (name, $0) } }
        guard !wanted.isEmpty else { return environment }
        let client = SecretsManagerClient(
            region: environment["AWS_REGION"] ?? environment["AWS_DEFAULT_REGION"] ?? "us-east-1",
            credentials: try AWSCredentials(environment: environment),
            endpoint: environment["AWS_ENDPOINT_URL_SECRETS_MANAGER"] ?? environment["AWS_ENDPOINT_URL"],
            caBundlePath: S3Configuration.caBundle(environment: environment))
        var values = environment.values
        var fetched: [String: String] = [:]
        for (name, reference) in wanted {
            let parts = reference.split(separator: "#", maxSplits: 1).map(String.init)
            let arn = parts[0]
            let secret: String
            if let cached = fetched[arn] {
                secret = cached
            } else {
                secret = try client.secretString(arn, variable: name + "_SECRET_ARN")
                fetched[arn] = secret
            }
            if parts.count == 2 {
                guard let document = try? JSONParser.parse(Array(secret.utf8)), case .string(let member)? = document[parts[1]] else {
                    throw .invalid(name: name + "_SECRET_ARN", reason: "the secret is not a JSON object with a string member \(parts[1].prefix(40))")
                }
                values[name] = member
            } else {
                values[name] = secret
            }
        }
        return Environment(values)
    }
}
