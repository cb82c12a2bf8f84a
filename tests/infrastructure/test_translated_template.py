"""cfn-lint on the CloudFormation that SAM translates template.yaml into, and proof that its cycle check works."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
from sam_tools import TEMPLATE, cfn_lint_findings, describe, lint_translated, requires_sam, rule_ids, translate

pytestmark = requires_sam

# How this template names its bucket wherever a function could depend on it (template.yaml
# explains why: a function that depends on the bucket resource forms a cycle with the bucket's
# notification to that function).
BUCKET_ARN_EXPR = "arn:${AWS::Partition}:s3:::${BucketNamePrefix}-${AWS::AccountId}-${AWS::Region}"
OBJECTS_ARN_EXPR = f"{BUCKET_ARN_EXPR}/uploads/*"


def test_translated_template_has_no_cfn_lint_findings(tmp_path: Path) -> None:
    # Given the template translated by SAM into the CloudFormation it deploys
    translated = translate(TEMPLATE, tmp_path / "translated.json")
    # When cfn-lint checks that (roles, permissions and stages included)
    findings = cfn_lint_findings(translated)
    # Then it finds nothing, in particular no circular dependency (E3004)
    assert findings == [], describe(findings)


def _wire_function_to_bucket(document: dict[str, Any], object_arn: Any) -> None:
    """Add what the validator will add: a function the bucket notifies, allowed to read objects."""
    resources = document["Resources"]
    resources["NotifiedFunction"] = {
        "Type": "AWS::Serverless::Function",
        "Properties": {
            "CodeUri": "functions/validator/",
            "Handler": "validator_handler.lambda_handler",
            "Policies": [
                {
                    "Version": "2012-10-17",
                    "Statement": [{"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": object_arn}],
                }
            ],
        },
    }
    resources["NotifiedFunctionPermission"] = {
        "Type": "AWS::Lambda::Permission",
        "Properties": {
            "Action": "lambda:InvokeFunction",
            "FunctionName": {"Ref": "NotifiedFunction"},
            "Principal": "s3.amazonaws.com",
            "SourceAccount": {"Ref": "AWS::AccountId"},
            "SourceArn": {"Fn::Sub": BUCKET_ARN_EXPR},
        },
    }
    bucket = resources["UploadBucket"]
    # S3 checks the destination when the notification is set, so the permission must exist first.
    bucket["DependsOn"] = ["NotifiedFunctionPermission"]
    bucket["Properties"]["NotificationConfiguration"] = {
        "LambdaConfigurations": [
            {"Event": "s3:ObjectCreated:*", "Function": {"Fn::GetAtt": ["NotifiedFunction", "Arn"]}}
        ]
    }


def test_bucket_can_notify_a_function_without_a_cycle(template: dict[str, Any], tmp_path: Path) -> None:
    # Given the template plus a function the bucket notifies, whose policy names the bucket the
    # way this template does (by its computed name) and which inherits the Globals environment
    document = copy.deepcopy(template)
    _wire_function_to_bucket(document, {"Fn::Sub": OBJECTS_ARN_EXPR})
    # When the translated result is linted
    findings = lint_translated(document, tmp_path)
    # Then there is no circular dependency (nor anything else)
    assert findings == [], describe(findings)


@pytest.mark.parametrize("mistake", ["policy uses the bucket's Arn attribute", "Globals env uses Ref to the bucket"])
def test_cycle_check_reports_a_circular_dependency(template: dict[str, Any], tmp_path: Path, mistake: str) -> None:
    # Given the same wiring, but with the function's role or environment depending on the bucket
    # resource itself
    document = copy.deepcopy(template)
    if mistake.startswith("policy"):
        _wire_function_to_bucket(document, {"Fn::Sub": "${UploadBucket.Arn}/*"})
    else:
        _wire_function_to_bucket(document, {"Fn::Sub": OBJECTS_ARN_EXPR})
        document["Globals"]["Function"]["Environment"]["Variables"]["BUCKET_NAME"] = {"Ref": "UploadBucket"}
    # When the translated result is linted
    findings = lint_translated(document, tmp_path)
    # Then cfn-lint reports the cycle: this check would catch the mistake
    assert "E3004" in rule_ids(findings), describe(findings)
