// The GoodWe fetcher: EventBridge schedules and backfills → SEMS answers in raw/goodwe/.
import Fetching
import Lake
import LambdaRuntime

Lambda.main(name: "fetcher-goodwe") { environment, _ in
    // Secrets given as *_SECRET_ARN are read from Secrets Manager once, at cold start.
    let environment = try RuntimeSecrets.resolve(environment)
    return Fetcher(
        driver: GoodWeDriver(baseURL: environment["GOODWE_API_BASE_URL"] ?? "https://www.semsportal.com/api/"),
        configuration: try FetcherConfiguration(environment: environment, baseURLVariable: "GOODWE_API_BASE_URL",
                                                defaultBaseURL: "https://www.semsportal.com/api/"),
        stores: { try ObjectStores.make(environment: environment) })
}
