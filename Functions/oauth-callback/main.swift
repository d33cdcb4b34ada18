// The oauth-callback function (a function URL): POST /oauth/state and GET /oauth/callback.
import Lake
import LambdaRuntime

Lambda.main(name: "oauth-callback") { environment, _ in
    // Secrets given as *_SECRET_ARN are read from Secrets Manager once, at cold start.
    let environment = try RuntimeSecrets.resolve(environment)
    return try OAuthCallback(environment: environment).function
}
