// The validator function: S3 ObjectCreated events on raw/ → checked, loaded, moved.
import Lake
import LambdaRuntime
import Validation

Lambda.main(name: "validator", typed: { environment, _ in
    Validator(configuration: try ValidatorConfiguration(environment: environment), store: try ObjectStores.make(environment: environment))
})
