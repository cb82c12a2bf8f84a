"""Unit-test fixtures: settings from a fixed environment, moto's in-process S3, API Gateway events."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from lambda_fakes import FakeContext
from moto import mock_aws
from moto.core import request as moto_request

from local.registry_table import create_registry_table
from local.template import load_yaml

TEMPLATE = load_yaml((Path(__file__).resolve().parents[2] / "template.yaml").read_text())

UNIT_ENV = {
    "BUCKET_NAME": "unit-uploads",
    "AWS_REGION": "us-east-1",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "UPLOAD_PREFIX": "uploads",
    "MAX_UPLOAD_BYTES": str(100 * 1024 * 1024),
    "MAX_FORM_UPLOAD_BYTES": str(10 * 1024 * 1024),
    "ALLOWED_CONTENT_TYPES": "image/jpeg,image/png,image/gif,image/webp,image/avif",
    "URL_EXPIRY_SECONDS": "600",
    "REGISTRY_TABLE": "unit-registry",
    "POWERTOOLS_TRACE_DISABLED": "true",
    "POWERTOOLS_METRICS_NAMESPACE": "UnitTests",
    "POWERTOOLS_SERVICE_NAME": "uploads",
    "POWERTOOLS_DEV": "false",
}
# Settings are read once per process, like once per Lambda container: set them before any import.
for _name, _value in UNIT_ENV.items():
    os.environ[_name] = _value
os.environ.pop("S3_ENDPOINT_URL", None)

# botocore sends a bytearray body as it is (urllib3 writes any buffer to the socket, and the
# importer's part buffers are bytearrays). moto's in-process stub hands the body to werkzeug,
# which takes anything but str and bytes for form fields and fails. On the wire a body is bytes:
# moto gets bytes too.
_moto_from_primitives = moto_request.Request.from_primitives.__func__  # type: ignore[attr-defined]


def _from_primitives_with_bytes(cls: Any, method: str, url: str, headers: Any, body: Any = None) -> Any:
    if isinstance(body, bytearray | memoryview):
        body = bytes(body)
    return _moto_from_primitives(cls, method, url, headers, body)


moto_request.Request.from_primitives = classmethod(_from_primitives_with_bytes)  # type: ignore[method-assign,assignment]


@pytest.fixture
def s3_client() -> Iterator[Any]:
    """moto's S3 with the upload bucket, and its DynamoDB with the registry table (the upload
    service needs both)."""
    # moto resets boto3's default session on every start by default, and a fresh session loads
    # S3's service model again (about half a second per test); moto's state is reset either way.
    with mock_aws(config={"core": {"reset_boto3_session": False}}):
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=UNIT_ENV["BUCKET_NAME"])
        create_registry_table(boto3.client("dynamodb", region_name="us-east-1"), TEMPLATE, UNIT_ENV["REGISTRY_TABLE"])
        yield client


@pytest.fixture
def bucket(s3_client: Any) -> Any:
    """The upload bucket, versioned as the template makes it (the validator acts on versions)."""
    s3_client.put_bucket_versioning(Bucket=UNIT_ENV["BUCKET_NAME"], VersioningConfiguration={"Status": "Enabled"})
    return s3_client


@pytest.fixture
def lambda_context() -> FakeContext:
    return FakeContext(aws_request_id=str(uuid.uuid4()))
