"""Requests built to hurt the API, over real HTTP on every route of the uploads and imports functions.

A body nested 100,000 levels deep, a 5,000-digit number, a body over 1 MiB (under API Gateway's
10 MB, so the function must refuse it) and a token whose `sub` no S3 key can hold: each gets a
clean 4xx `{code, message}` through the local gateway, never a 5xx.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from api_client import ApiClient

from tests.hostile_bodies import HOSTILE, LONGEST_OIDC_SUBJECT, OVERLONG_SUBJECT, QUERY, VALID_BODIES, concrete

pytestmark = pytest.mark.integration

JSON = {"Content-Type": "application/json"}


def api_routes(api: ApiClient) -> list[tuple[str, str]]:
    return [
        (route.method, route.path)
        for route in api.stack.template.routes()
        if route.function_logical_id in ("UploadsFunction", "ImportsFunction")
    ]


def test_hostile_bodies_get_a_clean_4xx_on_every_route(api: ApiClient) -> None:
    routes = api_routes(api)
    assert len(routes) >= 16
    failures = []
    # When every route of both functions receives each hostile body
    for method, path in routes:
        for name, (body, status, code) in HOSTILE.items():
            response = api.request(method, concrete(path), params=QUERY, data=body, headers=JSON)
            got: Any = response.json() if response.headers.get("content-type") == "application/json" else None
            # Then each is refused with its JSON error
            if (response.status_code, got) != (status, {"code": code, "message": got and got.get("message")}):
                failures.append(f"{method} {path} [{name}]: {response.status_code} {response.text[:200]}")
            elif not got["message"]:
                failures.append(f"{method} {path} [{name}]: empty message")
    assert failures == []


def test_a_subject_no_key_can_hold_is_refused_on_every_route(api: ApiClient) -> None:
    # Given a token whose `sub` would make keys longer than S3's 1,024 bytes
    token = api.stack.token_for(OVERLONG_SUBJECT)
    failures = []
    for method, path in api_routes(api):
        if path == "/openapi.json":
            continue  # public: it acts for nobody
        body = json.dumps(VALID_BODIES[path]) if method == "POST" else None
        # When any route is called with it
        response = api.request(method, concrete(path), params=QUERY, data=body, headers=JSON, token=token)
        # Then it is refused before anything is done for that caller
        if response.status_code != 401 or response.json().get("code") != "SubjectTooLong":
            failures.append(f"{method} {path}: {response.status_code} {response.text[:200]}")
    assert failures == []


def test_the_longest_oidc_subject_still_uploads(api: ApiClient) -> None:
    # Given a 255-character `sub` (OIDC's longest) that every character of escapes in the key
    token = api.stack.token_for(LONGEST_OIDC_SUBJECT)
    body = {"filename": "n" * 1000 + ".png", "contentType": "image/png", "size": 10}
    # When it starts an upload with the longest filename / Then S3 takes the key
    response = api.request("POST", "/uploads", json=body, token=token)
    assert response.status_code == 201, response.text
    assert len(response.json()["key"].encode()) <= 1024
