"""The SAM-*translated* template, as CloudFormation will deploy it: roles, stage, event source mapping.

SAM generates resources cfn-lint never sees in template.yaml (each function's role and its managed
policies, the API's stage, the SQS event source mapping), so these checks run on the output of
SAM's own translator (aws-sam-cli's environment, .venv-sam):
- no Allow statement anywhere grants a wildcard action or resource, except the documented
  exceptions below, and no role gets AWSLambdaSQSQueueExecutionRole (any queue in the account);
- alarms are wired to real resources and to the alarm topic; the stage throttles every route;
- tracing does not record responses; timeouts stay under the gateway's 30 s;
- the translated template is cfn-lint clean with every condition both ways.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from local.template import load_yaml

ROOT = Path(__file__).resolve().parents[2]
SAM_VENV = ROOT / ".venv-sam" / "bin"
SAM_PYTHON = SAM_VENV / "python"
CFN_LINT = SAM_VENV / "cfn-lint"
REGION = "us-east-1"
API_GATEWAY_TIMEOUT_SECONDS = 30

pytestmark = pytest.mark.skipif(
    not (SAM_PYTHON.exists() and CFN_LINT.exists()),
    reason=".venv-sam (aws-sam-cli, cfn-lint) is missing: run scripts/bootstrap.sh (make test does)",
)

# Documented exceptions to "no wildcard resource": X-Ray's trace APIs take no resource ARNs.
WILDCARD_RESOURCE_ACTIONS = {"xray:PutTraceSegments", "xray:PutTelemetryRecords"}
# AWS-managed policies SAM attaches to the roles it generates. Both have "*" resources that AWS
# defines (logs:CreateLogGroup and friends, X-Ray): documented exceptions, never a queue or a bucket.
ALLOWED_MANAGED_POLICIES = {
    "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole",
    "arn:aws:iam::aws:policy/AWSXrayWriteOnlyAccess",
}

# Runs inside .venv-sam: SAM's translator, offline (local code paths become placeholder S3 URIs,
# which the translator insists on), with the managed policies SAM would look up.
TRANSLATE = """
import json, sys
from samtranslator.translator.transform import transform

class ManagedPolicies:
    def load(self):
        return {
            "AWSLambdaBasicExecutionRole": "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole",
            "AWSXrayWriteOnlyAccess": "arn:aws:iam::aws:policy/AWSXrayWriteOnlyAccess",
            "AWSLambdaSQSQueueExecutionRole": "arn:aws:iam::aws:policy/service-role/AWSLambdaSQSQueueExecutionRole",
        }

source, target = sys.argv[1], sys.argv[2]
with open(source, encoding="utf-8") as handle:
    template = json.load(handle)
for resource in (template.get("Resources") or {}).values():
    properties = resource.get("Properties") or {}
    for key in ("CodeUri", "ContentUri"):
        value = properties.get(key)
        if isinstance(value, str) and not value.startswith("s3://"):
            properties[key] = "s3://offline-artifacts/" + value.strip("/")
with open(target, "w", encoding="utf-8") as handle:
    json.dump(transform(template, {}, ManagedPolicies()), handle, indent=1)
"""


def run(command: list[str]) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SAM_CLI_TELEMETRY": "0", "AWS_DEFAULT_REGION": REGION, "AWS_REGION": REGION}
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False)


def translate(document: dict[str, Any], directory: Path) -> dict[str, Any]:
    source, target, script = directory / "template.json", directory / "translated.json", directory / "translate.py"
    source.write_text(json.dumps(document), encoding="utf-8")
    script.write_text(TRANSLATE, encoding="utf-8")
    result = run([str(SAM_PYTHON), str(script), str(source), str(target)])
    assert result.returncode == 0, f"SAM translation failed:\n{result.stdout}\n{result.stderr}"
    return json.loads(target.read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def cfn_lint(document: dict[str, Any], directory: Path) -> list[str]:
    path = directory / "lint.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    result = run([str(CFN_LINT), "--format", "json", "--regions", REGION, "--", str(path)])
    findings = json.loads(result.stdout or "[]")
    return [f"{f['Rule']['Id']} {'/'.join(map(str, f['Location']['Path']))}: {f['Message']}" for f in findings]


@pytest.fixture(scope="module")
def source_template() -> dict[str, Any]:
    return load_yaml((ROOT / "template.yaml").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def translated(source_template: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return translate(source_template, tmp_path_factory.mktemp("translated"))


@pytest.fixture(scope="module")
def resources(translated: dict[str, Any]) -> dict[str, Any]:
    return translated["Resources"]  # type: ignore[no-any-return]


def of_type(resources: dict[str, Any], resource_type: str) -> dict[str, dict[str, Any]]:
    return {name: res for name, res in resources.items() if res["Type"] == resource_type}


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def policy_documents(resources: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """Every identity and resource policy document of the stack, named by where it lives."""
    documents: list[tuple[str, dict[str, Any]]] = []
    for name, resource in resources.items():
        properties = resource.get("Properties") or {}
        if resource["Type"] == "AWS::IAM::Role":
            documents += [(f"{name}/{p['PolicyName']}", p["PolicyDocument"]) for p in properties.get("Policies", [])]
        elif resource["Type"] in ("AWS::IAM::Policy", "AWS::S3::BucketPolicy", "AWS::SQS::QueuePolicy"):
            documents.append((name, properties["PolicyDocument"]))
    return documents


# --------------------------------------------------------------------------- least privilege


def test_no_allow_statement_grants_a_wildcard_outside_the_documented_exceptions(resources: dict[str, Any]) -> None:
    problems: list[str] = []
    documents = policy_documents(resources)
    assert len(documents) >= 6  # three roles' policies, two bucket policies, the queue policy
    for where, document in documents:
        for statement in document["Statement"]:
            if statement["Effect"] != "Allow":
                continue  # Deny statements may be as broad as they like
            actions = as_list(statement["Action"])
            wild_actions = [action for action in actions if "*" in action]
            if wild_actions:
                problems.append(f"{where} {statement.get('Sid')}: actions {wild_actions}")
            if "*" in as_list(statement.get("Resource")) and not set(actions) <= WILDCARD_RESOURCE_ACTIONS:
                problems.append(f"{where} {statement.get('Sid')}: Resource * for {actions}")
    assert problems == []


def test_roles_get_no_managed_policy_beyond_logs_and_traces(resources: dict[str, Any]) -> None:
    roles = of_type(resources, "AWS::IAM::Role")
    assert {"UploadsFunctionRole", "ImportsFunctionRole", "ValidatorFunctionRole", "FilesFunctionRole"} <= set(roles)
    for name, role in roles.items():
        attached = set(role["Properties"].get("ManagedPolicyArns", []))
        assert attached <= ALLOWED_MANAGED_POLICIES, (name, attached)
    # The validator's role is the stack's own: no managed policy at all, SQS only on its queue.
    assert "ManagedPolicyArns" not in roles["ValidatorFunctionRole"]["Properties"]


def test_the_validator_consumes_only_the_validation_queue(resources: dict[str, Any]) -> None:
    statements = [
        statement
        for policy in resources["ValidatorFunctionRole"]["Properties"]["Policies"]
        for statement in policy["PolicyDocument"]["Statement"]
    ]
    sqs = [statement for statement in statements if any(a.startswith("sqs:") for a in as_list(statement["Action"]))]
    assert len(sqs) == 1
    assert sqs[0]["Resource"] == {"Fn::GetAtt": ["ValidationQueue", "Arn"]}
    assert {"sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"} <= set(sqs[0]["Action"])
    (mapping,) = of_type(resources, "AWS::Lambda::EventSourceMapping").values()
    assert mapping["Properties"]["EventSourceArn"] == {"Fn::GetAtt": ["ValidationQueue", "Arn"]}
    # The queue feeds the published alias, not $LATEST (what SnapStart restores)
    assert mapping["Properties"]["FunctionName"] == {"Ref": "ValidatorFunctionAliaslive"}
    assert mapping["Properties"]["BatchSize"] == {"Ref": "ValidatorBatchSize"}
    assert mapping["Properties"]["ScalingConfig"] == {"MaximumConcurrency": {"Ref": "ValidatorMaxConcurrency"}}
    function = resources["ValidatorFunction"]["Properties"]
    assert function["Role"] == {"Fn::GetAtt": ["ValidatorFunctionRole", "Arn"]}


def test_every_function_is_invoked_through_its_published_alias_with_snapstart_as_the_parameter_says(
    resources: dict[str, Any],
) -> None:
    functions = of_type(resources, "AWS::Lambda::Function")
    aliases = of_type(resources, "AWS::Lambda::Alias")
    assert len(functions) >= 5
    for name, function in functions.items():
        # SnapStart follows the parameter (None by default); a version and the alias exist either way
        assert function["Properties"]["SnapStart"] == {"ApplyOn": {"Ref": "SnapStart"}}, name
        alias = aliases[f"{name}Aliaslive"]["Properties"]
        assert alias["FunctionName"] == {"Ref": name}
        version = alias["FunctionVersion"]["Fn::GetAtt"][0]
        assert resources[version]["Properties"]["FunctionName"] == {"Ref": name}
    # Every invoker (API routes, the schedule, the queue) targets an alias, never the bare function
    for name, permission in of_type(resources, "AWS::Lambda::Permission").items():
        assert permission["Properties"]["FunctionName"]["Ref"] in aliases, name
    (api,) = of_type(resources, "AWS::ApiGatewayV2::Api").values()
    uris = [
        json.dumps(operation["x-amazon-apigateway-integration"]["uri"])
        for path in api["Properties"]["Body"]["paths"].values()
        for operation in path.values()
        if isinstance(operation, dict) and "x-amazon-apigateway-integration" in operation
    ]
    assert uris
    assert all("Aliaslive}" in uri for uri in uris), uris


# --------------------------------------------------------------------------- the API's stage and authorizer


def test_the_stage_throttles_every_route_and_the_public_document_hardest(resources: dict[str, Any]) -> None:
    (stage,) = of_type(resources, "AWS::ApiGatewayV2::Stage").values()
    defaults = stage["Properties"]["DefaultRouteSettings"]
    assert defaults["ThrottlingRateLimit"] == {"Ref": "ApiThrottlingRateLimit"}
    assert defaults["ThrottlingBurstLimit"] == {"Ref": "ApiThrottlingBurstLimit"}
    assert defaults["DetailedMetricsEnabled"] is True
    openapi = stage["Properties"]["RouteSettings"]["GET /openapi.json"]
    assert openapi["ThrottlingRateLimit"] <= 5
    # The route the setting names exists in the API the stage belongs to (else the stage fails).
    (api,) = of_type(resources, "AWS::ApiGatewayV2::Api").values()
    assert "get" in api["Properties"]["Body"]["paths"]["/openapi.json"]


def test_the_authorizer_trusts_the_stacks_pool_unless_an_issuer_is_given(
    translated: dict[str, Any], resources: dict[str, Any]
) -> None:
    (api,) = of_type(resources, "AWS::ApiGatewayV2::Api").values()
    schemes = api["Properties"]["Body"]["components"]["securitySchemes"]
    jwt = schemes["JwtAuthorizer"]["x-amazon-apigateway-authorizer"]["jwtConfiguration"]
    assert jwt["issuer"]["Fn::If"][0] == "CreateUserPool"
    assert jwt["audience"]["Fn::If"][0] == "CreateUserPool"
    assert resources["UserPool"]["Condition"] == "CreateUserPool"
    assert "ExternalIssuerNeedsAudience" in translated["Rules"]


# --------------------------------------------------------------------------- alarms


def test_every_alarm_watches_a_resource_of_this_stack_and_notifies_the_topic(resources: dict[str, Any]) -> None:
    expected_types = {
        "FunctionName": "AWS::Lambda::Function",
        "QueueName": "AWS::SQS::Queue",
        "ApiId": "AWS::ApiGatewayV2::Api",
    }
    found = of_type(resources, "AWS::CloudWatch::Alarm")
    watched: set[tuple[str, str]] = set()
    for name, alarm in found.items():
        properties = alarm["Properties"]
        assert properties["AlarmActions"] == [
            {"Fn::If": ["CreateAlarmTopic", {"Ref": "AlarmTopic"}, {"Ref": "AlarmTopicArn"}]}
        ], name
        for dimension in properties["Dimensions"]:
            if dimension["Name"] not in expected_types:
                continue
            value = dimension["Value"]
            target = value["Ref"] if "Ref" in value else value["Fn::GetAtt"][0]
            assert resources[target]["Type"] == expected_types[dimension["Name"]], name
            watched.add((properties["MetricName"], target))
    functions = of_type(resources, "AWS::Lambda::Function")
    for function in functions:
        assert ("Errors", function) in watched and ("Throttles", function) in watched, function
    assert ("ApproximateNumberOfMessagesVisible", "FailureQueue") in watched
    assert ("ApproximateAgeOfOldestMessage", "ValidationQueue") in watched
    assert ("5xx", "HttpApi") in watched
    assert any(alarm["Properties"]["MetricName"] == "ObjectsUntaggable" for alarm in found.values())


# --------------------------------------------------------------------------- functions


def test_functions_never_trace_responses_and_answer_within_the_gateways_time(resources: dict[str, Any]) -> None:
    permissions = of_type(resources, "AWS::Lambda::Permission")
    aliases = of_type(resources, "AWS::Lambda::Alias")
    behind_api = {
        aliases[permission["Properties"]["FunctionName"]["Ref"]]["Properties"]["FunctionName"]["Ref"]
        for permission in permissions.values()
        if permission["Properties"]["Principal"] == "apigateway.amazonaws.com"
    }
    assert behind_api == {"UploadsFunction", "ImportsFunction", "FilesFunction"}
    for name, function in of_type(resources, "AWS::Lambda::Function").items():
        properties = function["Properties"]
        variables = properties["Environment"]["Variables"]
        assert variables["POWERTOOLS_TRACER_CAPTURE_RESPONSE"] == "false", name
        assert properties["TracingConfig"] == {"Mode": "Active"}, name
        assert properties["Architectures"] == ["arm64"], name
        if name in behind_api:
            assert properties["Timeout"] < API_GATEWAY_TIMEOUT_SECONDS, name


# --------------------------------------------------------------------------- cfn-lint, every condition both ways


@pytest.mark.parametrize(
    "defaults",
    [
        {},
        {
            "JwtIssuer": "https://login.example.org/",
            "JwtAudience": "api",
            "AlarmTopicArn": "arn:aws:sns:us-east-1:123456789012:ops",
            "AccessLogging": "Disabled",
            "BucketKmsKeyArn": "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
            "UploadsReservedConcurrency": 50,
            "ImportsReservedConcurrency": 10,
            "ValidatorReservedConcurrency": 20,
            "AlarmEmail": "ops@example.org",
            "SnapStart": "PublishedVersions",
        },
    ],
    ids=["built-in-pool-created-topic", "external-issuer-given-topic-kms-snapstart"],
)
def test_the_translated_template_is_cfn_lint_clean(
    source_template: dict[str, Any], tmp_path: Path, defaults: dict[str, Any]
) -> None:
    # Given the template with its Parameters' defaults flipped so every Condition takes each branch
    document = json.loads(json.dumps(source_template))
    for name, value in defaults.items():
        document["Parameters"][name]["Default"] = value
    # When SAM translates it and cfn-lint checks the result / Then there is nothing to report
    assert cfn_lint(translate(document, tmp_path), tmp_path) == []
