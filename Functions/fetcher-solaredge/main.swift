// The SolarEdge fetcher: EventBridge schedules and backfills → vendor answers in raw/solaredge/.
import Fetching
import Lake
import LambdaRuntime

Lambda.main(name: "fetcher-solaredge") { environment, _ in
    // Secrets given as *_SECRET_ARN are read from Secrets Manager once, at cold start.
    let environment = try RuntimeSecrets.resolve(environment)
    return Fetcher(
        driver: SolarEdgeDriver(baseURL: environment["SOLAREDGE_API_BASE_URL"] ?? "https://monitoringapi.solaredge.com/"),
        configuration: try FetcherConfiguration(environment: environment, baseURLVariable: "SOLAREDGE_API_BASE_URL",
                                                defaultBaseURL: "https://monitoringapi.solaredge.com/"),
        stores: { try ObjectStores.make(environment: environment) })
}
