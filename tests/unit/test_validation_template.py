"""The validator's part of template.yaml: queue, notification, permissions, fail-closed reads, settings."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pytest

import redelivery
from local.template import load_yaml
from upload_core.settings import Settings
from upload_core.validator_settings import QuarantineAction, ValidatorSettings

ROOT = Path(__file__).resolve().parents[2]
BUCKET_NAME_EXPR = "${BucketNamePrefix}-${AWS::AccountId}-${AWS::Region}"
BUCKET_ARN_EXPR = f"arn:${{AWS::Partition}}:s3:::{BUCKET_NAME_EXPR}"
ACCOUNT = {"AWS::AccountId": "123456789012", "AWS::Region": "us-east-1", "AWS::Partition": "aws"}


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_yaml((ROOT / "template.yaml").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def resources(template: dict[str, Any]) -> dict[str, Any]:
    return template["Resources"]  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def function(resources: dict[str, Any]) -> dict[str, Any]:
    return resources["ValidatorFunction"]["Properties"]  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def environment(template: dict[str, Any], function: dict[str, Any]) -> dict[str, str]:
    """The validator's environment as deployed with default parameters (Globals, then its own)."""
    defaults = {name: str(spec["Default"]) for name, spec in template["Parameters"].items() if "Default" in spec}

    def resolve(value: Any) -> str:
        if isinstance(value, dict) and "Ref" in value:
            name = value["Ref"]
            # A resource's name (the registry table) is CloudFormation's to choose.
            return ACCOUNT.get(name) or defaults.get(name) or f"stack-{name}-ABC123"
        if isinstance(value, dict) and "Fn::Sub" in value:
            text = value["Fn::Sub"]
            for name, replacement in {**defaults, **ACCOUNT}.items():
                text = text.replace("${" + name + "}", replacement)
            return str(text)
        return str(value)

    variables = {**template["Globals"]["Function"]["Environment"]["Variables"], **function["Environment"]["Variables"]}
    return {name: resolve(value) for name, value in variables.items()}


def test_handler_exists_where_the_template_says(function: dict[str, Any]) -> None:
    module, _, attribute = function["Handler"].rpartition(".")
    source = ROOT / function["CodeUri"] / f"{module}.py"
    assert source.is_file()
    assert f"def {attribute}(" in source.read_text(encoding="utf-8")


def test_default_parameters_give_valid_validator_settings(environment: dict[str, str]) -> None:
    # Given the environment the template gives the function with default parameters
    settings = Settings.from_env(environment)
    # When the validator reads its settings / Then they parse, and the limits are the parameters'
    config = ValidatorSettings.from_env(settings, environment)
    assert config.quarantine_action is QuarantineAction.MOVE
    assert config.limits.max_pixels == 89_478_485
    assert config.limits.max_frames == 1000
    assert config.limits.max_total_pixels == 1_000_000_000
    assert config.limits.max_metadata_bytes == 16 * 1024 * 1024
    assert config.limits.allow_indexed_jpeg_trailers is False
    assert config.validated_prefixes == (f"{settings.upload_prefix}/",)


def test_every_validator_variable_is_set_from_a_parameter(function: dict[str, Any]) -> None:
    variables = function["Environment"]["Variables"]
    assert variables["QUARANTINE_ACTION"] == {"Ref": "QuarantineAction"}
    assert variables["MAX_IMAGE_PIXELS"] == {"Ref": "MaxImagePixels"}
    assert variables["MAX_IMAGE_WIDTH"] == {"Ref": "MaxImageWidth"}
    assert variables["MAX_IMAGE_HEIGHT"] == {"Ref": "MaxImageHeight"}
    assert variables["MAX_FRAMES"] == {"Ref": "MaxImageFrames"}
    assert variables["MAX_TOTAL_PIXELS"] == {"Ref": "MaxTotalPixels"}
    assert variables["MAX_METADATA_BYTES"] == {"Ref": "MaxMetadataBytes"}
    assert variables["ALLOW_INDEXED_JPEG_TRAILERS"] == {"Ref": "AllowIndexedJpegTrailers"}


def test_trailer_parameter_allows_only_true_or_false(template: dict[str, Any]) -> None:
    parameter = template["Parameters"]["AllowIndexedJpegTrailers"]
    assert (parameter["Default"], parameter["AllowedValues"]) == ("false", ["true", "false"])


# S3 serves one GET stream to Lambda at roughly 90 MiB/s; the walk itself is faster (BENCHMARKS.md).
SLOWEST_STREAM_BYTES_PER_SECOND = 90 * 1024 * 1024
# A rejected object's server-side copy to the quarantine (up to 5 GiB) and the tagging calls.
QUARANTINE_SECONDS = 300


def test_the_validator_can_stream_the_largest_allowed_object_within_its_timeout(
    function: dict[str, Any], environment: dict[str, str]
) -> None:
    # Given the largest object the validator accepts with default parameters
    settings = Settings.from_env(environment)
    config = ValidatorSettings.from_env(settings, environment)
    largest = config.limits.max_object_bytes
    # Then reading it whole at S3's single-stream pace, and quarantining it, fits in the timeout
    assert largest / SLOWEST_STREAM_BYTES_PER_SECOND + QUARANTINE_SECONDS < function["Timeout"] <= 900
    # And the memory buys a full vCPU for the walk (memory growth itself is under 32 MiB)
    assert function["MemorySize"] >= 1769


def test_queue_feeds_the_function_in_batches_with_partial_failures(
    resources: dict[str, Any], function: dict[str, Any]
) -> None:
    (event,) = function["Events"].values()
    assert event["Type"] == "SQS"
    assert event["Properties"]["Queue"] == {"Fn::GetAtt": ["ValidationQueue", "Arn"]}
    # Sized by Parameters so that a batch cannot outlast the Timeout (see the template).
    assert event["Properties"]["BatchSize"] == {"Ref": "ValidatorBatchSize"}
    assert event["Properties"]["ScalingConfig"] == {"MaximumConcurrency": {"Ref": "ValidatorMaxConcurrency"}}
    assert event["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    queue = resources["ValidationQueue"]["Properties"]
    assert queue["SqsManagedSseEnabled"] is True
    # A batch in progress must never reappear to another invocation.
    assert queue["VisibilityTimeout"] >= 6 * function["Timeout"]
    assert queue["RedrivePolicy"] == {
        "deadLetterTargetArn": {"Fn::GetAtt": ["FailureQueue", "Arn"]},
        "maxReceiveCount": 5,
    }


def test_only_this_bucket_in_this_account_may_send_to_the_queue(resources: dict[str, Any]) -> None:
    policy = resources["ValidationQueuePolicy"]["Properties"]
    assert policy["Queues"] == [{"Ref": "ValidationQueue"}]
    (statement,) = policy["PolicyDocument"]["Statement"]
    assert statement["Principal"] == {"Service": "s3.amazonaws.com"}
    assert statement["Action"] == "sqs:SendMessage"
    assert statement["Condition"] == {
        "ArnEquals": {"aws:SourceArn": {"Fn::Sub": BUCKET_ARN_EXPR}},
        "StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}},
    }


def test_bucket_notifies_the_queue_for_the_validated_prefix_only(
    resources: dict[str, Any], environment: dict[str, str]
) -> None:
    bucket = resources["UploadBucket"]
    assert "ValidationQueuePolicy" in (
        [bucket["DependsOn"]] if isinstance(bucket["DependsOn"], str) else bucket["DependsOn"]
    )
    (configuration,) = bucket["Properties"]["NotificationConfiguration"]["QueueConfigurations"]
    assert configuration["Event"] == "s3:ObjectCreated:*"
    assert configuration["Queue"] == {"Fn::GetAtt": ["ValidationQueue", "Arn"]}
    (rule,) = configuration["Filter"]["S3Key"]["Rules"]
    # The filter is exactly what the function validates, and the quarantine lies outside it, so a
    # moved reject does not notify the validator again.
    assert rule == {"Name": "prefix", "Value": environment["VALIDATED_PREFIXES"]}
    assert environment["VALIDATED_PREFIXES"] == f"{environment['UPLOAD_PREFIX']}/"
    assert not environment["QUARANTINE_PREFIX"].startswith(environment["VALIDATED_PREFIXES"])


def test_validator_policy_is_least_privilege(
    resources: dict[str, Any], function: dict[str, Any], environment: dict[str, str]
) -> None:
    # The validator has its own role (SAM would add a managed SQS policy for every queue).
    assert "Policies" not in function
    assert function["Role"] == {"Fn::GetAtt": ["ValidatorFunctionRole", "Arn"]}
    granted: dict[str, set[str]] = {}
    for policy in resources["ValidatorFunctionRole"]["Properties"]["Policies"]:
        for statement in policy["PolicyDocument"]["Statement"]:
            assert statement["Effect"] == "Allow"
            if not (isinstance(statement["Resource"], dict) and "Fn::Sub" in statement["Resource"]):
                continue  # the queue, the log group and X-Ray: tests/infrastructure checks them
            granted.setdefault(statement["Resource"]["Fn::Sub"], set()).update(statement["Action"])
    uploads = f"{BUCKET_ARN_EXPR}/{environment['VALIDATED_PREFIXES']}*"
    quarantine = f"{BUCKET_ARN_EXPR}/{environment['QUARANTINE_PREFIX']}*"
    assert granted == {
        uploads: {
            "s3:GetObject",
            "s3:GetObjectVersion",
            "s3:GetObjectTagging",
            "s3:GetObjectVersionTagging",
            "s3:PutObjectTagging",
            "s3:PutObjectVersionTagging",
            "s3:DeleteObject",
            "s3:DeleteObjectVersion",
        },
        quarantine: {"s3:PutObject", "s3:PutObjectTagging"},
        # Each key's first version and verdict, the plan and usage a verdict settles, and the
        # owner's file item (PutItem: written once when the object arrives).
        "${RegistryTable.Arn}": {"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"},
        # The verdict events, to the configured bus only.
        "arn:${AWS::Partition}:events:${AWS::Region}:${AWS::AccountId}:event-bus/${EventBusName}": {"events:PutEvents"},
        # Limited by an s3:prefix condition: a 404 (not a 403) for a version already gone.
        BUCKET_ARN_EXPR: {"s3:ListBucket", "s3:ListBucketVersions"},
    }


def test_bucket_policy_denies_reads_of_unvalidated_uploads_except_to_the_three_roles(resources: dict[str, Any]) -> None:
    statements = resources["UploadBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    (deny,) = [statement for statement in statements if statement.get("Sid") == "DenyReadsOfUnvalidatedUploads"]
    assert deny["Effect"] == "Deny"
    assert deny["Principal"] == "*"
    assert set(deny["Action"]) == {"s3:GetObject", "s3:GetObjectVersion"}
    assert deny["Resource"] == [
        {"Fn::Sub": "arn:${AWS::Partition}:s3:::${UploadBucket}/uploads/*"},
        {"Fn::Sub": "arn:${AWS::Partition}:s3:::${UploadBucket}/quarantine/*"},
    ]
    assert deny["Condition"] == {
        "StringNotEquals": {"s3:ExistingObjectTag/upload-status": "valid"},
        "ArnNotLike": {
            "aws:PrincipalArn": [
                {"Fn::GetAtt": ["ValidatorFunctionRole", "Arn"]},
                {"Fn::GetAtt": ["UploadsFunctionRole", "Arn"]},
                {"Fn::GetAtt": ["ImportsFunctionRole", "Arn"]},
            ]
        },
    }


def test_bucket_policy_lets_only_the_validator_read_the_quarantine(resources: dict[str, Any]) -> None:
    # Fail closed: a quarantined object is unreadable to everyone but the validator, whatever its tags
    statements = resources["UploadBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    (deny,) = [statement for statement in statements if statement.get("Sid") == "OnlyTheValidatorReadsQuarantine"]
    assert (deny["Effect"], deny["Principal"]) == ("Deny", "*")
    assert set(deny["Action"]) == {"s3:GetObject", "s3:GetObjectVersion"}
    assert deny["Resource"] == {"Fn::Sub": "arn:${AWS::Partition}:s3:::${UploadBucket}/quarantine/*"}
    assert deny["Condition"] == {"ArnNotLike": {"aws:PrincipalArn": {"Fn::GetAtt": ["ValidatorFunctionRole", "Arn"]}}}
    # And no statement of the bucket policy allows anything under the quarantine
    assert not [
        statement
        for statement in statements
        if statement["Effect"] == "Allow" and "quarantine" in str(statement.get("Resource"))
    ]


def test_bucket_policy_lets_only_the_validator_write_the_valid_tag(resources: dict[str, Any]) -> None:
    statements = resources["UploadBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    (deny,) = [statement for statement in statements if statement.get("Sid") == "OnlyTheValidatorTagsUploadsValid"]
    assert (deny["Effect"], deny["Principal"]) == ("Deny", "*")
    assert set(deny["Action"]) == {"s3:PutObject", "s3:PutObjectTagging", "s3:PutObjectVersionTagging"}
    assert deny["Resource"] == {"Fn::Sub": "arn:${AWS::Partition}:s3:::${UploadBucket}/uploads/*"}
    assert deny["Condition"] == {
        "StringEquals": {"s3:RequestObjectTag/upload-status": "valid"},
        "ArnNotLike": {"aws:PrincipalArn": {"Fn::GetAtt": ["ValidatorFunctionRole", "Arn"]}},
    }


def test_outputs_name_the_validator_pieces(template: dict[str, Any]) -> None:
    outputs = template["Outputs"]
    assert outputs["ValidatorFunctionName"]["Value"] == {"Ref": "ValidatorFunction"}
    assert outputs["ValidationQueueUrl"]["Value"] == {"Ref": "ValidationQueue"}
    assert outputs["QuarantinePrefix"]["Value"] == "quarantine/"


def test_refused_events_are_retried_sooner_first_and_never_later_than_the_queue_would(
    resources: dict[str, Any],
) -> None:
    # Given the validation queue's visibility timeout and its dead-letter threshold in the template
    queue = resources["ValidationQueue"]["Properties"]
    max_receives = queue["RedrivePolicy"]["maxReceiveCount"]
    delays = [redelivery.retry_delay(count) for count in range(1, max_receives + 1)]
    # Then the first retry comes in a minute, each waits longer than the one before up to the
    # queue's own timeout, and a bus outage takes over an hour to dead-letter a message
    assert delays[0] == 60
    assert all(earlier <= later for earlier, later in itertools.pairwise(delays))
    assert max(delays) == redelivery.LONGEST_RETRY_SECONDS == queue["VisibilityTimeout"]
    assert sum(delays[:-1]) >= 3600
