"""Creates the template's storage resources on the embedded S3/SQS: the bucket and the queues.

The bucket gets the template's versioning, CORS, lifecycle, default encryption (SSE-S3),
public access block and ownership controls. Its bucket policy is not applied: the TLS-only
statement would deny every plain-http request to the local endpoint.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from typing import Any

from botocore.exceptions import ClientError

from local.registry_table import create_table
from local.template import HTTP_API_TYPE, QUEUE_TYPE, TABLE_TYPE, Template

QUEUE_ATTRIBUTES = ("DelaySeconds", "MaximumMessageSize", "MessageRetentionPeriod", "VisibilityTimeout")
# CloudFormation's CorsRule names -> S3 API's.
CORS_NAMES = {
    "Id": "ID",
    "AllowedHeaders": "AllowedHeaders",
    "AllowedMethods": "AllowedMethods",
    "AllowedOrigins": "AllowedOrigins",
    "ExposedHeaders": "ExposeHeaders",
    "MaxAge": "MaxAgeSeconds",
}


def warn(text: str) -> None:
    print(f"local stack: {text}", file=sys.stderr)


def create_queues(sqs: Any, template: Template, parameter_overrides: Mapping[str, str] | None = None) -> dict[str, str]:
    """Every AWS::SQS::Queue of the template; returns their Ref / GetAtt values for resolution."""
    values: dict[str, str] = {}
    resolver = template.resolver({}, parameter_overrides)
    queues = template.resources_of_type(QUEUE_TYPE)
    for logical_id in queues:
        name = str(resolver.get_att(logical_id, "QueueName", logical_id))
        url = sqs.create_queue(QueueName=name)["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        values.update(
            {logical_id: url, f"{logical_id}.Arn": arn, f"{logical_id}.QueueName": name, f"{logical_id}.QueueUrl": url}
        )
    # Attributes second: a RedrivePolicy names another queue, which must exist by then.
    resolver = template.resolver(values, parameter_overrides)
    for logical_id, resource in queues.items():
        properties = resolver.resolve(resource.get("Properties") or {}, logical_id)
        attributes = {key: str(properties[key]) for key in QUEUE_ATTRIBUTES if key in properties}
        if "RedrivePolicy" in properties:
            attributes["RedrivePolicy"] = json.dumps(properties["RedrivePolicy"])
        if attributes:
            sqs.set_queue_attributes(QueueUrl=values[logical_id], Attributes=attributes)
    return values


def create_bucket(
    s3: Any,
    template: Template,
    bucket: str,
    resource_values: Mapping[str, str],
    parameter_overrides: Mapping[str, str] | None = None,
) -> None:
    """The upload bucket with the template's own settings (re-applied to a persisted bucket)."""
    try:
        s3.create_bucket(Bucket=bucket)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") != "BucketAlreadyOwnedByYou":
            raise
    properties = template.bucket_properties(resource_values, parameter_overrides)
    if (properties.get("VersioningConfiguration") or {}).get("Status") == "Enabled":
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    cors_rules = (properties.get("CorsConfiguration") or {}).get("CorsRules") or []
    if cors_rules:
        rules = [{CORS_NAMES[key]: value for key, value in rule.items() if key in CORS_NAMES} for rule in cors_rules]
        s3.put_bucket_cors(Bucket=bucket, CORSConfiguration={"CORSRules": rules})
    lifecycle_rules = (properties.get("LifecycleConfiguration") or {}).get("Rules") or []
    if lifecycle_rules:
        rules = [lifecycle_rule(rule) for rule in lifecycle_rules]
        s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": rules})
    _apply_encryption(s3, bucket, properties.get("BucketEncryption"))
    if "PublicAccessBlockConfiguration" in properties:
        s3.put_public_access_block(
            Bucket=bucket, PublicAccessBlockConfiguration=properties["PublicAccessBlockConfiguration"]
        )
    ownership = properties.get("OwnershipControls")
    if ownership:
        s3.put_bucket_ownership_controls(Bucket=bucket, OwnershipControls=ownership)


def lifecycle_rule(rule: Mapping[str, Any]) -> dict[str, Any]:
    """One CloudFormation lifecycle rule in S3 API shape (the kinds of rule the template uses)."""
    result: dict[str, Any] = {"Status": rule.get("Status", "Enabled"), "Filter": {"Prefix": rule.get("Prefix", "")}}
    if "Id" in rule:
        result["ID"] = rule["Id"]
    expiration = {
        name: value
        for name, value in (
            # A Parameter resolves to a string; S3's API wants a number.
            ("Days", int(rule["ExpirationInDays"]) if "ExpirationInDays" in rule else None),
            ("ExpiredObjectDeleteMarker", rule.get("ExpiredObjectDeleteMarker")),
        )
        if value is not None
    }
    if expiration:
        result["Expiration"] = expiration
    for name in ("AbortIncompleteMultipartUpload", "NoncurrentVersionExpiration"):
        if name in rule:
            result[name] = {key: int(value) for key, value in rule[name].items()}
    return result


def _apply_encryption(s3: Any, bucket: str, encryption: Mapping[str, Any] | None) -> None:
    rules = [
        {"ApplyServerSideEncryptionByDefault": rule["ServerSideEncryptionByDefault"]}
        | ({"BucketKeyEnabled": bool(rule["BucketKeyEnabled"])} if "BucketKeyEnabled" in rule else {})
        for rule in (encryption or {}).get("ServerSideEncryptionConfiguration") or []
    ]
    if rules:
        try:
            s3.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration={"Rules": rules})
        except ClientError as error:
            warn(f"default encryption not applied: {error}")


def create_tables(dynamodb: Any, template: Template, parameter_overrides: Mapping[str, str] | None = None) -> None:
    """Every AWS::DynamoDB::Table of the template (the registry), under its local name."""
    resolver = template.resolver({}, parameter_overrides)
    for logical_id, resource in template.resources_of_type(TABLE_TYPE).items():
        properties = resolver.resolve(resource.get("Properties") or {}, logical_id)
        create_table(dynamodb, properties, str(resolver.resolve({"Ref": logical_id}, logical_id)))


def provision(
    s3: Any, sqs: Any, dynamodb: Any, template: Template, parameter_overrides: Mapping[str, str] | None = None
) -> tuple[str, dict[str, str]]:
    """Creates the template's tables, queues and bucket (or re-applies their settings: it is
    idempotent); returns the bucket name and the values that resolve Ref/GetAtt of them and of
    the HTTP API."""
    bucket = template.bucket_name(parameter_overrides)
    create_tables(dynamodb, template, parameter_overrides)
    values = {
        template.bucket_logical_id(): bucket,
        **{logical_id: "local" for logical_id in template.resources_of_type(HTTP_API_TYPE)},
        **create_queues(sqs, template, parameter_overrides),
    }
    create_bucket(s3, template, bucket, values, parameter_overrides)
    return bucket, values
