// The Enphase fetcher: EventBridge schedules and backfills → API v4 answers in raw/enphase/.
import Fetching
import Lake
import LambdaRuntime

Lambda.main(name: "fetcher-enphase") { environment, _ in
    // Secrets given as *_SECRET_ARN are read from Secrets Manager once, at cold start.
    let environment = try RuntimeSecrets.resolve(environment)
    let base = environment["ENPHASE_API_BASE_URL"] ?? "https://api.enphaseenergy.com/api/v4/"
    return Fetcher(
        driver: EnphaseDriver(
            baseURL: base, authBaseURL: try environment.url("ENPHASE_AUTH_BASE_URL", default: "https://api.enphaseenergy.com/"),
            apiKey: try environment.require("ENPHASE_API_KEY"), clientID: try environment.require("ENPHASE_CLIENT_ID"),
            clientSecret: try environment.require("ENPHASE_CLIENT_SECRET"),
            monthlyCalls: try environment.get("ENPHASE_MONTHLY_CALLS", as: Int.self) ?? 1000,
            callsPerMinute: try environment.get("ENPHASE_CALLS_PER_MINUTE", as: Int.self) ?? 10),
        configuration: try FetcherConfiguration(environment: environment, baseURLVariable: "ENPHASE_API_BASE_URL", defaultBaseURL: base),
        stores: { try ObjectStores.make(environment: environment) })
}
