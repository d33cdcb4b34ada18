// The ingest-api function (a function URL): uploads, status, dry runs, credentials, health.
import LambdaRuntime

Lambda.main(name: "ingest-api") { environment, _ in
    try IngestAPI(environment: environment).function
}
