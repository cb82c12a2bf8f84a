"""template.yaml and samconfig.toml as an on-call engineer needs them (issue 15, and issue 11's template items).

Plain assertions on the template as written: authentication by default, alarms and their metrics,
throttling, tracing without responses, timeouts inside the gateway's, bounded responses, S3
permissions that let a missing object read as 404, retention and lifecycle, encryption and access
logs. tests/infrastructure/test_translated_operations.py checks the SAM-translated template.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import boto3
import botocore
import pytest

from local.template import load_yaml
from upload_core.remote_import import CLEANUP_RESERVE_SECONDS
from upload_core.settings import MAX_SIGNED_PARTS_PER_RESPONSE
from upload_core.validation import _ACTION_METRICS, EVENTS_FAILED_METRIC, Action

ROOT = Path(__file__).resolve().parents[2]
BUCKET_ARN = "arn:${AWS::Partition}:s3:::${BucketNamePrefix}-${AWS::AccountId}-${AWS::Region}"
API_GATEWAY_TIMEOUT_SECONDS = 30
FUNCTIONS = ("UploadsFunction", "ImportsFunction", "ValidatorFunction", "FilesFunction")
ALARM_TARGET = {"Fn::If": ["CreateAlarmTopic", {"Ref": "AlarmTopic"}, {"Ref": "AlarmTopicArn"}]}
# A third party's tenant, or a placeholder for one, must never be a default.
THIRD_PARTY_ISSUERS = re.compile(r"auth0\.com|okta\.com|REPLACE-ME|example\.auth0", re.IGNORECASE)


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_yaml((ROOT / "template.yaml").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def resources(template: dict[str, Any]) -> dict[str, Any]:
    return template["Resources"]  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def parameters(template: dict[str, Any]) -> dict[str, Any]:
    return template["Parameters"]  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def samconfig() -> dict[str, Any]:
    with (ROOT / "samconfig.toml").open("rb") as handle:
        return tomllib.load(handle)


def overrides(samconfig: dict[str, Any], environment: str) -> dict[str, str]:
    entries = samconfig[environment]["deploy"]["parameters"]["parameter_overrides"]
    return dict(entry.split("=", 1) for entry in entries)


def alarms(resources: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: res["Properties"] for name, res in resources.items() if res["Type"] == "AWS::CloudWatch::Alarm"}


def statements_of(resources: dict[str, Any], function_id: str) -> list[dict[str, Any]]:
    function = resources[function_id]["Properties"]
    if "Policies" in function:
        return [statement for policy in function["Policies"] for statement in policy["Statement"]]
    role = resources[function["Role"]["Fn::GetAtt"][0]]["Properties"]
    return [statement for policy in role["Policies"] for statement in policy["PolicyDocument"]["Statement"]]


# --------------------------------------------------------------------------- auth by default


def test_without_an_issuer_the_stack_creates_and_trusts_its_own_user_pool(
    template: dict[str, Any], resources: dict[str, Any], parameters: dict[str, Any]
) -> None:
    # Given the defaults: no issuer, no audience
    assert parameters["JwtIssuer"]["Default"] == ""
    assert parameters["JwtAudience"]["Default"] == ""
    assert re.fullmatch(parameters["JwtIssuer"]["AllowedPattern"], "")
    assert template["Conditions"]["CreateUserPool"] == {"Fn::Equals": [{"Ref": "JwtIssuer"}, ""]}
    # Then a user pool and a public app client exist exactly then, and users are not self-made
    pool, client = resources["UserPool"], resources["UserPoolClient"]
    assert pool["Condition"] == client["Condition"] == "CreateUserPool"
    assert pool["Properties"]["AdminCreateUserConfig"]["AllowAdminCreateUserOnly"] is True
    assert client["Properties"]["UserPoolId"] == {"Ref": "UserPool"}
    assert client["Properties"]["GenerateSecret"] is False
    assert "ALLOW_USER_SRP_AUTH" in client["Properties"]["ExplicitAuthFlows"]
    # And the Outputs give a client what it needs to get and send tokens
    outputs = template["Outputs"]
    assert {"JwtIssuerUrl", "JwtAudienceValue", "UserPoolId", "UserPoolClientId"} <= set(outputs)
    assert outputs["UserPoolId"]["Condition"] == outputs["UserPoolClientId"]["Condition"] == "CreateUserPool"
    assert outputs["JwtIssuerUrl"]["Value"] == {
        "Fn::If": [
            "CreateUserPool",
            {"Fn::Sub": "https://cognito-idp.${AWS::Region}.${AWS::URLSuffix}/${UserPool}"},
            {"Ref": "JwtIssuer"},
        ]
    }


def test_an_external_issuer_needs_its_audience(template: dict[str, Any]) -> None:
    rule = template["Rules"]["ExternalIssuerNeedsAudience"]
    assert rule["RuleCondition"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "JwtIssuer"}, ""]}]}
    (assertion,) = rule["Assertions"]
    assert assertion["Assert"] == {"Fn::Not": [{"Fn::Contains": [{"Ref": "JwtAudience"}, ""]}]}


@pytest.mark.parametrize("path", ["template.yaml", "samconfig.toml", "README.md", "docs", "events"])
def test_no_default_anywhere_trusts_a_third_partys_tenant(path: str) -> None:
    # Given every file a deployer copies values from
    files = sorted((ROOT / path).rglob("*")) if (ROOT / path).is_dir() else [ROOT / path]
    # Then none names a third party's tenant (or a placeholder for one) as an issuer
    found = [
        f"{file.relative_to(ROOT)}: {match.group(0)}"
        for file in files
        if file.is_file()
        for match in THIRD_PARTY_ISSUERS.finditer(file.read_text(encoding="utf-8", errors="replace"))
    ]
    assert found == []


@pytest.mark.parametrize("environment", ["default", "prod"])
def test_samconfig_environments_use_the_built_in_pool(samconfig: dict[str, Any], environment: str) -> None:
    assert "JwtIssuer" not in overrides(samconfig, environment)


# --------------------------------------------------------------------------- prod fails fast


def test_prod_refuses_any_origin_and_quiet_logs_before_deploying(
    template: dict[str, Any], samconfig: dict[str, Any], parameters: dict[str, Any]
) -> None:
    rules = template["Rules"]
    prod = {"Fn::Equals": [{"Ref": "Environment"}, "prod"]}
    assert rules["ProdOriginsAreExplicit"]["RuleCondition"] == prod
    assert rules["ProdOriginsAreExplicit"]["Assertions"][0]["Assert"] == {
        "Fn::Not": [{"Fn::Contains": [{"Ref": "CorsAllowedOrigins"}, "*"]}]
    }
    assert rules["ProdKeepsInfoLogs"]["RuleCondition"] == prod
    # The prod environment is prod, keeps INFO, and does not deploy "*" (the template's default)
    # or a placeholder origin: CloudFormation refuses it until a real origin is configured.
    prod_overrides = overrides(samconfig, "prod")
    assert prod_overrides["Environment"] == "prod"
    assert prod_overrides["LogLevel"] == "INFO"
    origins = prod_overrides.get("CorsAllowedOrigins")
    if origins is None:
        assert parameters["CorsAllowedOrigins"]["Default"] == "*"  # refused by ProdOriginsAreExplicit
    else:
        assert "*" not in origins.split(",") and "example.com" not in origins
    assert overrides(samconfig, "default")["Environment"] == "dev"


def test_metrics_are_namespaced_per_stack(template: dict[str, Any]) -> None:
    variables = template["Globals"]["Function"]["Environment"]["Variables"]
    assert variables["POWERTOOLS_METRICS_NAMESPACE"] == {"Fn::Sub": "S3DirectUpload/${AWS::StackName}"}


# --------------------------------------------------------------------------- alarms and dashboard


def test_every_alarm_notifies_the_alarm_topic(template: dict[str, Any], resources: dict[str, Any]) -> None:
    assert template["Conditions"]["CreateAlarmTopic"] == {"Fn::Equals": [{"Ref": "AlarmTopicArn"}, ""]}
    assert resources["AlarmTopic"]["Condition"] == "CreateAlarmTopic"
    found = alarms(resources)
    assert len(found) >= 10
    for name, alarm in found.items():
        assert alarm["AlarmActions"] == [ALARM_TARGET], name
        assert alarm["OKActions"] == [ALARM_TARGET], name
        assert alarm["TreatMissingData"] == "notBreaching", name


def _alarm_on(resources: dict[str, Any], namespace: Any, metric: str, dimension: dict[str, Any]) -> dict[str, Any]:
    matches = [
        alarm
        for alarm in alarms(resources).values()
        if alarm["Namespace"] == namespace and alarm["MetricName"] == metric and alarm["Dimensions"] == [dimension]
    ]
    assert len(matches) == 1, (namespace, metric, dimension)
    return matches[0]


def test_a_dead_letter_alarms_at_once_and_is_kept_for_sqs_maximum(resources: dict[str, Any]) -> None:
    alarm = _alarm_on(
        resources,
        "AWS/SQS",
        "ApproximateNumberOfMessagesVisible",
        {"Name": "QueueName", "Value": {"Fn::GetAtt": ["FailureQueue", "QueueName"]}},
    )
    assert (alarm["Threshold"], alarm["ComparisonOperator"]) == (0, "GreaterThanThreshold")
    assert resources["FailureQueue"]["Properties"]["MessageRetentionPeriod"] == 14 * 24 * 3600
    redrive = resources["ValidationQueue"]["Properties"]["RedrivePolicy"]
    assert redrive["deadLetterTargetArn"] == {"Fn::GetAtt": ["FailureQueue", "Arn"]}


def test_a_validation_backlog_alarms(resources: dict[str, Any]) -> None:
    alarm = _alarm_on(
        resources,
        "AWS/SQS",
        "ApproximateAgeOfOldestMessage",
        {"Name": "QueueName", "Value": {"Fn::GetAtt": ["ValidationQueue", "QueueName"]}},
    )
    assert alarm["Threshold"] == {"Ref": "ValidationQueueMaxAgeSeconds"}


@pytest.mark.parametrize("function_id", FUNCTIONS)
@pytest.mark.parametrize("metric", ["Errors", "Throttles"])
def test_each_function_alarms_on_errors_and_throttles(resources: dict[str, Any], function_id: str, metric: str) -> None:
    alarm = _alarm_on(resources, "AWS/Lambda", metric, {"Name": "FunctionName", "Value": {"Ref": function_id}})
    assert (alarm["Statistic"], alarm["Threshold"]) == ("Sum", 0)


def test_the_api_alarms_on_5xx(resources: dict[str, Any]) -> None:
    alarm = _alarm_on(resources, "AWS/ApiGateway", "5xx", {"Name": "ApiId", "Value": {"Ref": "HttpApi"}})
    assert alarm["Statistic"] == "Sum"


def test_objects_the_validator_could_not_tag_alarm_on_the_metric_it_emits(
    template: dict[str, Any], resources: dict[str, Any]
) -> None:
    # Given the metric the validator emits for a valid object it could not tag, in the namespace and
    # with the service dimension Powertools gives it
    variables = template["Globals"]["Function"]["Environment"]["Variables"]
    service = resources["ValidatorFunction"]["Properties"]["Environment"]["Variables"]["POWERTOOLS_SERVICE_NAME"]
    metric = _ACTION_METRICS[Action.UNTAGGABLE]
    # Then exactly that metric is alarmed on
    alarm = _alarm_on(
        resources, variables["POWERTOOLS_METRICS_NAMESPACE"], metric, {"Name": "service", "Value": service}
    )
    assert metric == "ObjectsUntaggable"
    assert (alarm["Statistic"], alarm["Threshold"]) == ("Sum", 0)


def test_verdict_events_the_bus_keeps_refusing_alarm_on_the_metric_the_validator_emits(
    template: dict[str, Any], resources: dict[str, Any]
) -> None:
    variables = template["Globals"]["Function"]["Environment"]["Variables"]
    service = resources["ValidatorFunction"]["Properties"]["Environment"]["Variables"]["POWERTOOLS_SERVICE_NAME"]
    alarm = _alarm_on(
        resources,
        variables["POWERTOOLS_METRICS_NAMESPACE"],
        EVENTS_FAILED_METRIC,
        {"Name": "service", "Value": service},
    )
    # Persistent, not one refusal the 60-second redelivery fixes: three 5-minute periods in a row
    assert (alarm["Statistic"], alarm["Threshold"], alarm["Period"]) == ("Sum", 0, 300)
    assert alarm["EvaluationPeriods"] == alarm["DatapointsToAlarm"] == 3


def test_one_dashboard_shows_api_functions_and_queues(resources: dict[str, Any]) -> None:
    (dashboard,) = [res for res in resources.values() if res["Type"] == "AWS::CloudWatch::Dashboard"]
    body, variables = dashboard["Properties"]["DashboardBody"]["Fn::Sub"]
    for reference in ("${HttpApi}", *(f"${{{function}}}" for function in FUNCTIONS)):
        assert reference in body
    assert {"ValidationQueueName", "FailureQueueName", "Namespace"} <= set(variables)


# --------------------------------------------------------------------------- API throttling


def test_every_route_is_throttled_and_the_public_document_much_more(
    resources: dict[str, Any], parameters: dict[str, Any]
) -> None:
    api = resources["HttpApi"]["Properties"]
    assert api["DefaultRouteSettings"] == {
        "ThrottlingRateLimit": {"Ref": "ApiThrottlingRateLimit"},
        "ThrottlingBurstLimit": {"Ref": "ApiThrottlingBurstLimit"},
        "DetailedMetricsEnabled": True,
    }
    openapi = api["RouteSettings"]["GET /openapi.json"]
    assert openapi["ThrottlingRateLimit"] * 10 <= parameters["ApiThrottlingRateLimit"]["Default"]
    assert openapi["ThrottlingBurstLimit"] * 10 <= parameters["ApiThrottlingBurstLimit"]["Default"]
    assert openapi["DetailedMetricsEnabled"] is True


# --------------------------------------------------------------------------- traces and timeouts


def test_traces_never_record_responses(template: dict[str, Any], resources: dict[str, Any]) -> None:
    variables = template["Globals"]["Function"]["Environment"]["Variables"]
    assert variables["POWERTOOLS_TRACER_CAPTURE_RESPONSE"] == "false"
    assert template["Globals"]["Function"]["Tracing"] == "Active"
    for function_id in FUNCTIONS:
        own = resources[function_id]["Properties"].get("Environment", {}).get("Variables", {})
        assert "POWERTOOLS_TRACER_CAPTURE_RESPONSE" not in own, function_id
        # Logging the whole event would log the caller's Authorization header.
        assert str(own.get("POWERTOOLS_LOGGER_LOG_EVENT", "false")).lower() == "false", function_id
    assert "POWERTOOLS_LOGGER_LOG_EVENT" not in variables


def test_functions_behind_the_api_answer_before_the_gateway_gives_up(
    template: dict[str, Any], resources: dict[str, Any], parameters: dict[str, Any]
) -> None:
    for function_id in FUNCTIONS:
        properties = resources[function_id]["Properties"]
        if any(event["Type"] == "HttpApi" for event in properties["Events"].values()):
            assert properties.get("Timeout", template["Globals"]["Function"]["Timeout"]) < API_GATEWAY_TIMEOUT_SECONDS
    imports_timeout = resources["ImportsFunction"]["Properties"]["Timeout"]
    # The longest fetch the Parameter allows, plus the time kept for cleanup, fits the function.
    assert parameters["ImportTimeoutSeconds"]["MaxValue"] + CLEANUP_RESERVE_SECONDS < imports_timeout
    assert parameters["ImportTimeoutSeconds"]["Default"] <= parameters["ImportTimeoutSeconds"]["MaxValue"]


def test_signing_requests_cannot_ask_for_a_response_over_the_limit(parameters: dict[str, Any]) -> None:
    spec = parameters["MaxPartsPerRequest"]
    assert spec["MaxValue"] <= MAX_SIGNED_PARTS_PER_RESPONSE
    assert spec["Default"] <= spec["MaxValue"]


def test_validator_batches_fit_the_timeout_and_never_outrun_their_concurrency(
    resources: dict[str, Any], parameters: dict[str, Any]
) -> None:
    function = resources["ValidatorFunction"]["Properties"]
    (event,) = function["Events"].values()
    assert event["Properties"]["BatchSize"] == {"Ref": "ValidatorBatchSize"}
    assert event["Properties"]["ScalingConfig"] == {"MaximumConcurrency": {"Ref": "ValidatorMaxConcurrency"}}
    # With the default batch each record has two minutes: a 5 GiB quarantine copy at 45 MB/s.
    per_record = function["Timeout"] / parameters["ValidatorBatchSize"]["Default"]
    assert per_record >= 5 * 1024**3 / (45 * 1000**2)
    assert resources["ValidationQueue"]["Properties"]["VisibilityTimeout"] >= 6 * function["Timeout"]
    assert parameters["ValidatorMaxConcurrency"]["MinValue"] >= 2  # Lambda's minimum for ScalingConfig


@pytest.mark.parametrize(
    ("function_id", "parameter"),
    [
        ("UploadsFunction", "UploadsReservedConcurrency"),
        ("ImportsFunction", "ImportsReservedConcurrency"),
        ("ValidatorFunction", "ValidatorReservedConcurrency"),
    ],
)
def test_reserved_concurrency_is_a_parameter_per_function(
    template: dict[str, Any], resources: dict[str, Any], parameters: dict[str, Any], function_id: str, parameter: str
) -> None:
    reserved = resources[function_id]["Properties"]["ReservedConcurrentExecutions"]
    condition, then, otherwise = reserved["Fn::If"]
    assert (then, otherwise) == ({"Ref": parameter}, {"Ref": "AWS::NoValue"})
    # 0 (the default) reserves nothing, rather than throttling the function to zero.
    assert parameters[parameter]["Default"] == 0
    assert template["Conditions"][condition] == {"Fn::Not": [{"Fn::Equals": [{"Ref": parameter}, 0]}]}


# --------------------------------------------------------------------------- S3 permissions


@pytest.mark.parametrize(
    ("function_id", "actions", "prefixes"),
    [
        ("UploadsFunction", {"s3:ListBucket"}, {"uploads/*", "quarantine/uploads/*"}),
        ("ImportsFunction", {"s3:ListBucket"}, {"uploads/*"}),
        ("ValidatorFunction", {"s3:ListBucket", "s3:ListBucketVersions"}, {"uploads/*"}),
    ],
)
def test_missing_objects_read_as_404_but_listing_stays_within_the_functions_prefixes(
    resources: dict[str, Any], function_id: str, actions: set[str], prefixes: set[str]
) -> None:
    listing = [
        statement
        for statement in statements_of(resources, function_id)
        if {"s3:ListBucket", "s3:ListBucketVersions"} & set(statement["Action"])
    ]
    assert len(listing) == 1, function_id
    (statement,) = listing
    assert set(statement["Action"]) == actions
    assert statement["Resource"] == {"Fn::Sub": BUCKET_ARN}
    (operator, condition) = next(iter(statement["Condition"].items()))
    assert operator == "StringLike" and set(condition) == {"s3:prefix"}
    granted = condition["s3:prefix"] if isinstance(condition["s3:prefix"], list) else [condition["s3:prefix"]]
    assert set(granted) == prefixes


def test_the_bucket_policy_stays_with_the_retained_bucket(resources: dict[str, Any]) -> None:
    for logical_id in ("UploadBucket", "UploadBucketPolicy"):
        assert resources[logical_id]["DeletionPolicy"] == "Retain", logical_id
        assert resources[logical_id]["UpdateReplacePolicy"] == "Retain", logical_id


def test_quarantined_objects_and_their_versions_expire(resources: dict[str, Any]) -> None:
    rules = resources["UploadBucket"]["Properties"]["LifecycleConfiguration"]["Rules"]
    (quarantine,) = [rule for rule in rules if rule.get("Prefix") == "quarantine/"]
    assert quarantine["Status"] == "Enabled"
    assert quarantine["ExpirationInDays"] == {"Ref": "QuarantineRetentionDays"}
    assert "NoncurrentDays" in quarantine["NoncurrentVersionExpiration"]


# --------------------------------------------------------------------------- encryption and access logs


def test_bucket_encryption_is_sse_s3_or_the_given_kms_key(template: dict[str, Any], resources: dict[str, Any]) -> None:
    (rule,) = resources["UploadBucket"]["Properties"]["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rule["ServerSideEncryptionByDefault"] == {
        "SSEAlgorithm": {"Fn::If": ["UseBucketKmsKey", "aws:kms", "AES256"]},
        "KMSMasterKeyID": {"Fn::If": ["UseBucketKmsKey", {"Ref": "BucketKmsKeyArn"}, {"Ref": "AWS::NoValue"}]},
    }
    assert template["Conditions"]["UseBucketKmsKey"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "BucketKmsKeyArn"}, ""]}]}
    access = resources["BucketKmsKeyAccess"]
    assert access["Condition"] == "UseBucketKmsKey"
    assert {role["Ref"] for role in access["Properties"]["Roles"]} == {f"{f}Role" for f in FUNCTIONS}
    (statement,) = access["Properties"]["PolicyDocument"]["Statement"]
    assert set(statement["Action"]) == {"kms:GenerateDataKey", "kms:Decrypt"}
    assert statement["Resource"] == {"Ref": "BucketKmsKeyArn"}


def test_server_access_logs_go_to_a_private_log_bucket_unless_disabled(
    template: dict[str, Any], resources: dict[str, Any], parameters: dict[str, Any]
) -> None:
    assert parameters["AccessLogging"]["AllowedValues"] == ["Enabled", "Disabled"]
    assert template["Conditions"]["LogBucketAccess"] == {"Fn::Equals": [{"Ref": "AccessLogging"}, "Enabled"]}
    logging = resources["UploadBucket"]["Properties"]["LoggingConfiguration"]["Fn::If"]
    assert logging[0] == "LogBucketAccess" and logging[2] == {"Ref": "AWS::NoValue"}
    assert logging[1]["DestinationBucketName"] == {"Ref": "AccessLogBucket"}
    log_bucket = resources["AccessLogBucket"]
    assert log_bucket["Condition"] == resources["AccessLogBucketPolicy"]["Condition"] == "LogBucketAccess"
    properties = log_bucket["Properties"]
    assert set(properties["PublicAccessBlockConfiguration"].values()) == {True}
    (encryption,) = properties["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert encryption["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"  # all S3 logging accepts
    statements = resources["AccessLogBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    (allow,) = [statement for statement in statements if statement["Effect"] == "Allow"]
    assert allow["Principal"] == {"Service": "logging.s3.amazonaws.com"}
    assert allow["Action"] == "s3:PutObject"
    assert allow["Condition"]["ArnLike"]["aws:SourceArn"] == {"Fn::Sub": BUCKET_ARN}
    assert allow["Condition"]["StringEquals"]["aws:SourceAccount"] == {"Ref": "AWS::AccountId"}


def test_functions_run_on_arm64_with_the_matching_layers(template: dict[str, Any], resources: dict[str, Any]) -> None:
    assert template["Globals"]["Function"]["Architectures"] == ["arm64"]
    layer = resources["CoreLayer"]
    assert layer["Properties"]["CompatibleArchitectures"] == ["arm64"]
    assert layer["Metadata"]["BuildArchitecture"] == "arm64"
    assert "-arm64:" in template["Globals"]["Function"]["Layers"][1]["Fn::Sub"]


def test_the_layer_pins_the_boto3_the_tests_run() -> None:
    pins = dict(
        line.split("==", 1)
        for line in (ROOT / "layers/core/requirements.txt").read_text(encoding="utf-8").splitlines()
        if "==" in line and not line.startswith("#")
    )
    assert pins["boto3"] == boto3.__version__
    assert pins["botocore"] == botocore.__version__
