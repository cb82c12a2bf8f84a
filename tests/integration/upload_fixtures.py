"""Fixtures that point `api`, `s3` and `bucket` at the stack without the validator loop.

Import them into a test module (`from upload_fixtures import api, bucket, s3`) to override
the session-wide ones for that module.
"""

from __future__ import annotations

from typing import Any

import pytest
from api_client import ApiClient

from local.stack import LocalStack


@pytest.fixture
def api(upload_stack: LocalStack) -> ApiClient:
    return ApiClient(upload_stack)


@pytest.fixture
def s3(upload_stack: LocalStack) -> Any:
    return upload_stack.s3_client()


@pytest.fixture
def bucket(upload_stack: LocalStack) -> str:
    return upload_stack.bucket
