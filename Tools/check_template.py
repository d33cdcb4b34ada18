#!/usr/bin/env python3
"""Runs the SAM transform of template.yaml offline (aws-sam-translator) and checks what it makes:
the S3 notification on raw/, the invoke permission, the on-failure destination and retries.
Local CodeUri values are replaced by an s3:// location first (aws.md 8.2)."""
import json, os, sys
os.environ.setdefault("AWS_DEFAULT_REGION", "eu-central-1")
from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse


class Loader:
    def load(self, names=None):
        return {name: f"arn:aws:iam::aws:policy/{name}" for name in (names or [])}

    def get_policies(self):
        return {}


with open(sys.argv[1] if len(sys.argv) > 1 else "template.yaml") as handle:
    template = yaml_parse(handle.read())
for resource in template["Resources"].values():
    if resource["Type"] == "AWS::Serverless::Function":
        resource["Properties"]["CodeUri"] = "s3://bundles/validator.zip"
output = transform(template, {"DatabaseSecretArn": "arn", "EncryptionKeySecretArn": "arn", "FrontendOrigin": "https://app.example.com"}, Loader())
resources = output["Resources"]
kinds = sorted({resource["Type"] for resource in resources.values()})
bucket = resources["LakeBucket"]["Properties"]
notification = bucket["NotificationConfiguration"]["LambdaConfigurations"][0]
assert notification["Event"] == "s3:ObjectCreated:*", notification
assert notification["Filter"]["S3Key"]["Rules"] == [{"Name": "prefix", "Value": "raw/"}], notification
invoke_config = next(r for r in resources.values() if r["Type"] == "AWS::Lambda::EventInvokeConfig")["Properties"]
assert invoke_config["MaximumRetryAttempts"] == 2 and invoke_config["DestinationConfig"]["OnFailure"]["Destination"], invoke_config
assert any(r["Type"] == "AWS::Lambda::Permission" for r in resources.values())
function = next(r for r in resources.values() if r["Type"] == "AWS::Lambda::Function")["Properties"]
assert function["Runtime"] == "provided.al2023" and function["Handler"] == "bootstrap", function
urls = {name: r["Properties"] for name, r in resources.items() if r["Type"] == "AWS::Lambda::Url"}
assert urls.get("OAuthCallbackFunctionUrl", {}).get("AuthType") == "NONE", urls
for name in ("OAuthCallbackFunctionUrl", "IngestApiFunctionUrl"):
    assert urls.get(name, {}).get("AuthType") == "NONE", (name, urls)
    assert "Cors" not in urls[name], "CORS is answered by the function, for the front end's origin only"
print("SAM transform OK:", ", ".join(kinds))
with open("/tmp/meterlake-template-transformed.json", "w") as handle:
    json.dump(output, handle)

# Every function folder has exactly one template function whose CodeUri is its bundle, and the reverse.
root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
folders = sorted(name for name in os.listdir(os.path.join(root, "Functions")) if os.path.isdir(os.path.join(root, "Functions", name)))
with open(sys.argv[1] if len(sys.argv) > 1 else "template.yaml") as handle:
    source = yaml_parse(handle.read())
functions = {name: r["Properties"] for name, r in source["Resources"].items() if r["Type"] == "AWS::Serverless::Function"}
bundles = sorted(p["CodeUri"] for p in functions.values())
assert bundles == sorted(f"dist/{name}.zip" for name in folders), (bundles, folders)

# Secrets are read at run time: no {{resolve:…}} in any function's configuration, only *_SECRET_ARN.
text = json.dumps(functions)
assert "resolve:secretsmanager" not in text, "a secret is resolved at deploy time"
for name, properties in functions.items():
    variables = properties.get("Environment", {}).get("Variables", {})
    for variable in ("DATABASE_URL", "METERLAKE_ENCRYPTION_KEY", "METERLAKE_STATE_SECRET", "METERLAKE_JWT_SECRET", "ENPHASE_CLIENT_SECRET", "SMA_CLIENT_SECRET"):
        assert variable not in variables, f"{name} gets {variable} in plain text"
assert "METERLAKE_ENCRYPTION_KEY_SECRET_ARN" not in functions["ValidatorFunction"]["Environment"]["Variables"], "the validator needs no credential key"

# Least privilege: no bucket-wide CRUD; no function may touch lifecycle, ACLs or the bucket policy.
policies = json.dumps({name: p.get("Policies", []) for name, p in functions.items()})
assert "S3CrudPolicy" not in policies and "S3FullAccess" not in policies, "bucket-wide CRUD"
for forbidden in ("PutLifecycleConfiguration", "PutObjectAcl", "PutBucketPolicy", "PutBucketAcl", '"s3:*"'):
    assert forbidden not in policies, forbidden
for vendor, function in (("solaredge", "FetcherSolarEdgeFunction"), ("goodwe", "FetcherGoodWeFunction"), ("enphase", "FetcherEnphaseFunction"), ("sma", "FetcherSMAFunction")):
    written = [json.dumps(s.get("Resource")) for p in functions[function]["Policies"] if isinstance(p, dict) for s in p.get("Statement", [])
               if "s3:PutObject" in json.dumps(s.get("Action"))]
    assert written and all(f"/raw/{vendor}/*" in w for w in written), (function, written)
    assert functions[function].get("ReservedConcurrentExecutions") == 1, f"{function}: one run at a time"
deleting = [name for name, p in functions.items() if "s3:DeleteObject" in json.dumps(p.get("Policies", []))]
assert deleting == ["ValidatorFunction"], f"only the validator may delete from raw/: {deleting}"
ingest = json.dumps(functions["IngestApiFunction"]["Policies"])
assert "s3:PutObject" in ingest and ingest.count("/raw/manual/*") >= 1 and "/validated/" not in ingest, "ingest-api presigns only under raw/manual/"
assert any(r["Type"] == "AWS::S3::BucketPolicy" and "aws:SecureTransport" in json.dumps(r) for r in source["Resources"].values()), "TLS-only bucket policy"
print(f"template checks OK: {len(folders)} functions, each with its bundle; secrets by ARN; least-privilege lake access")
