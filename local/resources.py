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

from local.template import HTTP_API_TYPE, LOCAL_ACCOUNT_ID, QUEUE_TYPE, Template, TemplateError

DEFAULT_BUCKET_NAME = "local-uploads"
QUEUE_ATTRIBUTES = ("DelaySeconds", "MaximumMessageSize", "MessageRetentionPeriod", "VisibilityTimeout")


def warn(text: str) -> None:
    print(f"local stack: {text}", file=sys.stderr)


def local_bucket_name(template: Template, parameter_overrides: Mapping[str, str] | None = None) -> str:
    """The template's own bucket name, or "local-uploads" when the template leaves it to CloudFormation."""
    try:
        return template.bucket_name(parameter_overrides)
    except TemplateError:
        return DEFAULT_BUCKET_NAME


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
    if template.bucket_versioning(parameter_overrides):
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    cors = template.bucket_cors(resource_values, parameter_overrides)
    if cors:
        s3.put_bucket_cors(Bucket=bucket, CORSConfiguration=cors)
    lifecycle = template.bucket_lifecycle(resource_values, parameter_overrides)
    if lifecycle:
        s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration=lifecycle)
    properties = template.bucket_properties(resource_values, parameter_overrides)
    _apply_encryption(s3, bucket, properties.get("BucketEncryption"))
    if "PublicAccessBlockConfiguration" in properties:
        s3.put_public_access_block(
            Bucket=bucket, PublicAccessBlockConfiguration=properties["PublicAccessBlockConfiguration"]
        )
    ownership = properties.get("OwnershipControls")
    if ownership:
        s3.put_bucket_ownership_controls(Bucket=bucket, OwnershipControls=ownership)


def _apply_encryption(s3: Any, bucket: str, encryption: Mapping[str, Any] | None) -> None:
    if not encryption:
        return
    rules = []
    for rule in encryption.get("ServerSideEncryptionConfiguration") or []:
        default = dict(rule.get("ServerSideEncryptionByDefault") or {})
        if default.get("SSEAlgorithm") != "AES256":
            warn(f"bucket encryption {default.get('SSEAlgorithm')} is not emulated; objects use SSE-S3")
            default = {"SSEAlgorithm": "AES256"}
        converted: dict[str, Any] = {"ApplyServerSideEncryptionByDefault": default}
        if "BucketKeyEnabled" in rule:
            converted["BucketKeyEnabled"] = bool(rule["BucketKeyEnabled"])
        rules.append(converted)
    if rules:
        try:
            s3.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration={"Rules": rules})
        except ClientError as error:
            warn(f"default encryption not applied: {error}")


def provision(
    s3: Any, sqs: Any, template: Template, parameter_overrides: Mapping[str, str] | None = None
) -> tuple[str, dict[str, str]]:
    """Creates the template's queues and bucket; returns the bucket name and the values that
    resolve Ref/GetAtt of local resources (the bucket, the queues, the HTTP API)."""
    bucket = local_bucket_name(template, parameter_overrides)
    values = {
        template.bucket_logical_id(): bucket,
        **{logical_id: "local" for logical_id in template.resources_of_type(HTTP_API_TYPE)},
        **create_queues(sqs, template, parameter_overrides),
    }
    create_bucket(s3, template, bucket, values, parameter_overrides)
    return bucket, values


def existing_resource_values(
    endpoint_url: str, template: Template, parameter_overrides: Mapping[str, str] | None = None
) -> tuple[str, dict[str, str]]:
    """What ``provision`` returns, for resources an already running local stack has created."""
    bucket = local_bucket_name(template, parameter_overrides)
    values = {
        template.bucket_logical_id(): bucket,
        **{logical_id: "local" for logical_id in template.resources_of_type(HTTP_API_TYPE)},
    }
    resolver = template.resolver({}, parameter_overrides)
    for logical_id in template.resources_of_type(QUEUE_TYPE):
        name = str(resolver.get_att(logical_id, "QueueName", logical_id))
        url = f"{endpoint_url.rstrip('/')}/{LOCAL_ACCOUNT_ID}/{name}"
        values.update(
            {
                logical_id: url,
                f"{logical_id}.Arn": str(resolver.get_att(logical_id, "Arn", logical_id)),
                f"{logical_id}.QueueName": name,
                f"{logical_id}.QueueUrl": url,
            }
        )
    return bucket, values
