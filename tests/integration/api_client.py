"""A requests-based client for the local HTTP API that signs in as a given user."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import requests

from local.stack import LocalStack

REQUEST_TIMEOUT_SECONDS = 60


class ApiClient:
    """Calls the local HTTP API as a given user (a local token with that ``sub``, signed with the stack's key)."""

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
