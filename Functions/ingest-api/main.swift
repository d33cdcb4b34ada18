// The ingest-api function (a function URL): uploads, status, dry runs, credentials, health.
import Lake
import LambdaRuntime

Lambda.main(name: "ingest-api") { environment, _ in
    // Secrets given as *_SECRET_ARN are read from Secrets Manager once, at cold start.
    let environment = try RuntimeSecrets.resolve(environment)
    return try IngestAPI(environment: environment).function
}
