"""Integration fixtures: one local stack per test session, real HTTP on 127.0.0.1.

Fixtures (all session-scoped; the stack is shared, so tests use their own keys/users):
- ``stack``: a started ``local.stack.LocalStack`` on free ports, built from template.yaml
  (embedded S3 = MiniStack with signature checks, the template's bucket, function workers,
  the gateway with the emulated JWT authorizer). Attributes: ``api_url``, ``s3_endpoint``,
  ``bucket``, ``region``, ``template``; methods ``s3_client()``, ``token_for(sub)``.
- ``s3``: a boto3 S3 client for the embedded S3 (path style, SigV4, credentials test/test).
- ``bucket``: the upload bucket's name (the one the functions' BUCKET_NAME names).
- ``api``: an ``ApiClient``; ``api.request(method, path, *, user="alice", json=None,
  params=None, headers=None, data=None, token=None)`` returns a ``requests.Response``.
  It sends ``Authorization: Bearer <local token for user>``; ``user=None`` sends no token and
  ``token="..."`` sends that exact token instead. ``api.url(path)`` is the absolute URL.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from api_client import ApiClient

from local.stack import LocalStack
from tests.stack_limits import GENEROUS_LIMITS


@pytest.fixture(scope="session")
def stack() -> Iterator[LocalStack]:
    with LocalStack(s3_port=0, api_port=0, parameter_overrides=GENEROUS_LIMITS) as running:
        yield running


@pytest.fixture(scope="session")
def s3(stack: LocalStack) -> Any:
    return stack.s3_client()


@pytest.fixture(scope="session")
def bucket(stack: LocalStack) -> str:
    return stack.bucket


@pytest.fixture(scope="session")
def api(stack: LocalStack) -> ApiClient:
    return ApiClient(stack)


@pytest.fixture(scope="session")
def upload_stack() -> Iterator[LocalStack]:
    """A second stack without the S3 event loop, for tests of the upload path itself: their
    synthetic payloads are not images, and the validator would quarantine them mid-test."""
    with LocalStack(s3_port=0, api_port=0, s3_events=False, parameter_overrides=GENEROUS_LIMITS) as running:
        yield running
