// The maintenance function: aggregates, partitions and retention, the credential watch (every 15 minutes).
import Lake
import LambdaRuntime

Lambda.main(name: "maintenance") { environment, _ in
    // Secrets given as *_SECRET_ARN are read from Secrets Manager once, at cold start.
    let environment = try RuntimeSecrets.resolve(environment)
    return try Maintenance(environment: environment)
}
