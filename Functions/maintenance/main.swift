// The maintenance function: aggregates, partitions and retention, the credential watch (every 15 minutes).
import LambdaRuntime

Lambda.main(name: "maintenance") { environment, _ in
    try Maintenance(environment: environment)
}
