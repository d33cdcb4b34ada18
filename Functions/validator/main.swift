// The validator function: S3 ObjectCreated events on raw/ → checked, loaded, moved.
import Lake
import LambdaRuntime
import Validation

Lambda.main(name: "validator", typed: { environment, _ in
    // Secrets given as *_SECRET_ARN are read from Secrets Manager once, at cold start.
    let environment = try RuntimeSecrets.resolve(environment)
    return Validator(configuration: try ValidatorConfiguration(environment: environment), store: try ObjectStores.make(environment: environment))
})
