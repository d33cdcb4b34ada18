// The SMA fetcher: EventBridge schedules and backfills → Monitoring API answers in raw/sma/.
import Fetching
import Lake
import LambdaRuntime

Lambda.main(name: "fetcher-sma") { environment, _ in
    // Secrets given as *_SECRET_ARN are read from Secrets Manager once, at cold start.
    let environment = try RuntimeSecrets.resolve(environment)
    let base = environment["SMA_API_BASE_URL"] ?? "https://monitoring.smaapis.de/v1/"
    return Fetcher(
        driver: SMADriver(
            baseURL: base, authBaseURL: try environment.url("SMA_AUTH_BASE_URL", default: "https://auth.smaapis.de/"),
            clientID: try environment.require("SMA_CLIENT_ID"), clientSecret: try environment.require("SMA_CLIENT_SECRET")),
        configuration: try FetcherConfiguration(environment: environment, baseURLVariable: "SMA_API_BASE_URL", defaultBaseURL: base),
        stores: { try ObjectStores.make(environment: environment) })
}
