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
