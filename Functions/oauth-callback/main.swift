// The oauth-callback function (a function URL): POST /oauth/state and GET /oauth/callback.
import LambdaRuntime

Lambda.main(name: "oauth-callback") { environment, _ in
    try OAuthCallback(environment: environment).function
}
