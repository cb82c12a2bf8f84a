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

from collections.abc import Iterator, Mapping
from typing import Any

import pytest
import requests

from local.stack import LocalStack

REQUEST_TIMEOUT_SECONDS = 60


class ApiClient:
    """Calls the local HTTP API as a given user (a local, unsigned JWT with that ``sub``)."""

    def __init__(self, stack: LocalStack) -> None:
        self.stack = stack
        self.base_url = stack.api_url
        self._tokens: dict[str, str] = {}

    def url(self, path: str) -> str:
        return self.base_url + (path if path.startswith("/") else "/" + path)

    def token(self, user: str) -> str:
        if user not in self._tokens:
            self._tokens[user] = self.stack.token_for(user)
        return self._tokens[user]

    def request(
        self,
        method: str,
        path: str,
        *,
        user: str | None = "alice",
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        data: bytes | str | None = None,
        token: str | None = None,
    ) -> requests.Response:
        sent = dict(headers or {})
        bearer = token if token is not None else (self.token(user) if user is not None else None)
        if bearer is not None:
            sent.setdefault("Authorization", f"Bearer {bearer}")
        return requests.request(
            method,
            self.url(path),
            json=json,
            params=params,
            headers=sent,
            data=data,
            timeout=REQUEST_TIMEOUT_SECONDS,
        )


@pytest.fixture(scope="session")
def stack() -> Iterator[LocalStack]:
    with LocalStack(s3_port=0, api_port=0) as running:
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
