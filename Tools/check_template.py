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

# What each function may put into the lake: nothing else.
PUT_PREFIXES = {
    "ValidatorFunction": {"/validated/*", "/quarantine/*"},
    "FetcherSolarEdgeFunction": {"/raw/solaredge/*"}, "FetcherGoodWeFunction": {"/raw/goodwe/*"},
    "FetcherEnphaseFunction": {"/raw/enphase/*"}, "FetcherSMAFunction": {"/raw/sma/*"},
    "MaintenanceFunction": {"/archive/evidence/*"}, "IngestApiFunction": {"/raw/manual/*"}, "OAuthCallbackFunction": set(),
}
ONE_AT_A_TIME = ["FetcherSolarEdgeFunction", "FetcherGoodWeFunction", "FetcherEnphaseFunction", "FetcherSMAFunction", "MaintenanceFunction"]


def statements(properties):
    for policy in properties.get("Policies", []):
        if isinstance(policy, dict):
            for statement in policy.get("Statement", []):
                yield statement


def problems(source):
    """Everything wrong with a parsed template, in words (empty when it holds)."""
    found = []
    functions = {name: r["Properties"] for name, r in source["Resources"].items() if r["Type"] == "AWS::Serverless::Function"}
    bundles = sorted(p["CodeUri"] for p in functions.values())
    if bundles != sorted(f"dist/{name}.zip" for name in folders):
        found.append(f"bundles {bundles} are not the function folders {folders}")
    # Secrets are read at run time: no {{resolve:…}} anywhere, no secret as a plain variable.
    if "resolve:secretsmanager" in json.dumps(functions):
        found.append("a secret is resolved at deploy time")
    for name, properties in functions.items():
        variables = properties.get("Environment", {}).get("Variables", {})
        for variable in ("DATABASE_URL", "METERLAKE_ENCRYPTION_KEY", "METERLAKE_ENCRYPTION_KEY_PREVIOUS", "METERLAKE_STATE_SECRET",
                         "METERLAKE_JWT_SECRET", "ENPHASE_API_KEY", "ENPHASE_CLIENT_SECRET", "SMA_CLIENT_SECRET"):
            if variable in variables:
                found.append(f"{name} gets {variable} in plain text")
    if "METERLAKE_ENCRYPTION_KEY_SECRET_ARN" in functions.get("ValidatorFunction", {}).get("Environment", {}).get("Variables", {}):
        found.append("the validator needs no credential key")
    # Least privilege: no bucket-wide CRUD, no lifecycle, ACL or policy rights.
    policies = json.dumps({name: p.get("Policies", []) for name, p in functions.items()})
    if "S3CrudPolicy" in policies or "S3FullAccess" in policies:
        found.append("bucket-wide CRUD")
    for forbidden in ("PutLifecycleConfiguration", "PutObjectAcl", "PutBucketPolicy", "PutBucketAcl", '"s3:*"'):
        if forbidden in policies:
            found.append(f"a function may {forbidden}")
    # Every PutObject resource is on the function's allow-list.
    for name, properties in functions.items():
        allowed = PUT_PREFIXES.get(name)
        for statement in statements(properties):
            if statement.get("Effect") == "Allow" and "s3:PutObject" in json.dumps(statement.get("Action")):
                resources = statement.get("Resource")
                for resource in resources if isinstance(resources, list) else [resources]:
                    text = json.dumps(resource)
                    if allowed is None or not any(text.endswith(prefix + '"}') or text.endswith(prefix + '"') for prefix in allowed):
                        found.append(f"{name} may put to {text}")
    for name in ONE_AT_A_TIME:
        if functions.get(name, {}).get("ReservedConcurrentExecutions") != 1:
            found.append(f"{name} must run one at a time")
    deleting = [name for name, p in functions.items() if "s3:DeleteObject" in json.dumps(p.get("Policies", []))]
    if deleting != ["ValidatorFunction"]:
        found.append(f"only the validator may delete from raw/: {deleting}")
    tls = [r for r in source["Resources"].values() if r["Type"] == "AWS::S3::BucketPolicy"
           for s in r["Properties"]["PolicyDocument"]["Statement"]
           if s.get("Effect") == "Deny" and json.dumps(s.get("Condition", {})).find('"aws:SecureTransport": "false"') >= 0]
    if not tls:
        found.append("no bucket policy denies requests without TLS")
    return found


broken = problems(source)
assert not broken, "\n".join(broken)

# The checks can fail: each deliberate defect below must be found.
import copy
def defective(change):
    template = copy.deepcopy(source)
    change(template["Resources"])
    return problems(template)

defects = {
    "a plain DATABASE_URL": lambda r: r["MaintenanceFunction"]["Properties"]["Environment"]["Variables"].update({"DATABASE_URL": "postgresql://x"}),
    "a fetcher writing all of raw/": lambda r: r["FetcherSolarEdgeFunction"]["Properties"]["Policies"].append(
        {"Statement": [{"Effect": "Allow", "Action": "s3:PutObject", "Resource": "arn:aws:s3:::lake/raw/*"}]}),
    "maintenance writing anywhere": lambda r: r["MaintenanceFunction"]["Properties"]["Policies"].append(
        {"Statement": [{"Effect": "Allow", "Action": ["s3:PutObject"], "Resource": "arn:aws:s3:::lake/*"}]}),
    "bucket CRUD on the validator": lambda r: r["ValidatorFunction"]["Properties"]["Policies"].append({"S3CrudPolicy": {"BucketName": "lake"}}),
    "maintenance without its concurrency cap": lambda r: r["MaintenanceFunction"]["Properties"].pop("ReservedConcurrentExecutions"),
    "the TLS statement allowing": lambda r: [s.update({"Effect": "Allow"}) for s in r["LakeBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"]],
    "another function deleting": lambda r: r["IngestApiFunction"]["Properties"]["Policies"].append(
        {"Statement": [{"Effect": "Allow", "Action": "s3:DeleteObject", "Resource": "arn:aws:s3:::lake/raw/*"}]}),
}
for what, change in defects.items():
    assert defective(change), f"the template checks miss {what}"
print(f"template checks OK: {len(folders)} functions, each with its bundle; secrets by ARN; least-privilege lake access; {len(defects)} planted defects found")
