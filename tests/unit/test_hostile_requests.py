"""Requests built to hurt the API functions (issue 11's attacks), on every route of both, in process.

A body nested 100,000 levels deep, a 5,000-digit number, a body over 1 MiB and a token whose `sub`
cannot fit in an S3 key each get a clean 4xx `{code, message}`, never a 500.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from lambda_fakes import FakeContext, http_event

import imports_handler
import uploads_handler
from local.template import load_yaml
from service_factory import upload_service
from tests.hostile_bodies import (
    HOSTILE,
    LONGEST_OIDC_SUBJECT,
    OVERLONG_SUBJECT,
    QUERY,
    VALID_BODIES,
    concrete,
    path_params,
)
from upload_core import keys
from upload_core.s3 import S3Gateway
from upload_core.uploads import UploadService
from upload_edge.identity import MAX_OWNER_SEGMENT_BYTES
from upload_edge.request_body import MAX_BODY_BYTES

ROOT = Path(__file__).resolve().parents[2]
HANDLERS: dict[str, Callable[[dict[str, Any], Any], dict[str, Any]]] = {
    "UploadsFunction": uploads_handler.lambda_handler,
    "ImportsFunction": imports_handler.lambda_handler,
}


def template_routes() -> list[tuple[str, str, str]]:
    """(function, method, path) of every HTTP route of the API functions, from template.yaml."""
    resources = load_yaml((ROOT / "template.yaml").read_text())["Resources"]
    return [
        (function, event["Properties"]["Method"], event["Properties"]["Path"])
        for function in HANDLERS
        for event in resources[function]["Properties"]["Events"].values()
        if event["Type"] == "HttpApi"
    ]


ROUTES = template_routes()
ROUTE_IDS = [f"{method} {path}" for _, method, path in ROUTES]


@pytest.fixture
def services(s3_client: Any) -> Iterator[None]:
    # The uploads service on moto's S3, for the requests that are served.
    settings = uploads_handler.settings
    service = UploadService(settings, S3Gateway(settings, client=s3_client))
    uploads_handler.app.dependency_overrides[upload_service] = lambda: service
    yield
    uploads_handler.app.dependency_overrides.clear()


def call(function: str, method: str, route: str, *, raw_body: str | None = None, sub: str | None = "alice") -> Any:
    event = http_event(
        method,
        concrete(route),
        route=route,
        path_params=path_params(route) or None,
        query=QUERY,
        raw_body=raw_body,
        sub=sub,
    )
    response = HANDLERS[function](event, FakeContext(function_name=function))
    return response["statusCode"], json.loads(response.get("body") or "null")


def assert_clean_error(status: int, body: Any, expected: tuple[int, str]) -> None:
    assert (status, body.get("code") if isinstance(body, dict) else body) == expected
    assert set(body) == {"code", "message"}
    assert body["message"]


@pytest.mark.parametrize(("function", "method", "route"), ROUTES, ids=ROUTE_IDS)
@pytest.mark.parametrize("attack", list(HOSTILE))
def test_a_hostile_body_gets_a_clean_4xx_on_every_route(function: str, method: str, route: str, attack: str) -> None:
    # Given a body built to exhaust the parser / When any route of either function receives it
    raw_body, expected_status, expected_code = HOSTILE[attack]
    status, body = call(function, method, route, raw_body=raw_body)
    # Then it is refused with a JSON error, before any route code runs
    assert_clean_error(status, body, (expected_status, expected_code))


def test_a_long_number_the_parser_can_read_is_refused_by_the_limits() -> None:
    # Given a 4,000-digit size (under Python's 4,300-digit conversion limit)
    body = '{"filename": "a.png", "contentType": "image/png", "size": ' + "9" * 4_000 + "}"
    # Then the size limit refuses it, as any other oversize
    status, payload = call("UploadsFunction", "POST", "/uploads", raw_body=body)
    assert_clean_error(status, payload, (413, "UploadTooLarge"))


@pytest.mark.usefixtures("services")
def test_a_body_just_under_the_limit_is_read() -> None:
    # Given a valid request padded with spaces to just under 1 MiB
    text = json.dumps({"filename": "a.png", "contentType": "image/png", "size": 10})
    status, payload = call("UploadsFunction", "POST", "/uploads", raw_body=text + " " * (MAX_BODY_BYTES - len(text)))
    # Then it is served
    assert status == 201, payload


@pytest.mark.parametrize(("function", "method", "route"), ROUTES, ids=ROUTE_IDS)
def test_a_subject_too_long_for_a_key_is_refused_on_every_route(function: str, method: str, route: str) -> None:
    # Given a token whose `sub` would not fit in a 1,024-byte key
    sub = OVERLONG_SUBJECT
    # When any route that acts for a caller is called with it
    body_text = json.dumps(VALID_BODIES[route]) if method == "POST" else None
    status, body = call(function, method, route, raw_body=body_text, sub=sub)
    if route == "/openapi.json":  # public: it acts for nobody
        assert status == 200
        return
    # Then it is refused before anything is done for that caller
    assert_clean_error(status, body, (401, "SubjectTooLong"))


@pytest.mark.usefixtures("services")
def test_every_oidc_subject_fits_and_makes_keys_s3_accepts() -> None:
    # Given the longest `sub` OIDC allows (255 ASCII characters), each escaped in the key
    sub = LONGEST_OIDC_SUBJECT
    assert len(keys.owner_segment(sub)) <= MAX_OWNER_SEGMENT_BYTES
    # When it starts an upload with the longest filename
    body = json.dumps({"filename": "n" * 1000 + ".png", "contentType": "image/png", "size": 10})
    status, payload = call("UploadsFunction", "POST", "/uploads", raw_body=body, sub=sub)
    # Then the key is within S3's 1,024 bytes, as is any key of the longest allowed segment
    assert status == 201, payload
    assert len(payload["key"].encode()) <= 1024
    template_prefix = "uploads"
    longest = len(template_prefix) + 1 + MAX_OWNER_SEGMENT_BYTES + 1 + 32 + 1 + keys.MAX_FILENAME_BYTES
    assert longest <= 1024


@pytest.mark.usefixtures("services")
def test_requests_that_publish_no_metric_print_no_warning(capsys: pytest.CaptureFixture[str]) -> None:
    # Given a read (no metric) and a start (one metric)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        status, _ = call("UploadsFunction", "GET", "/uploads")
        assert status == 200
        body = json.dumps({"filename": "a.png", "contentType": "image/png", "size": 10})
        status, _ = call("UploadsFunction", "POST", "/uploads", raw_body=body)
        assert status == 201
    # Then Powertools warned about neither, and the start's metric was still published (EMF)
    assert [str(w.message) for w in caught if "metrics" in str(w.message)] == []
    assert '"UploadsStarted"' in capsys.readouterr().out


def test_the_openapi_document_is_built_once_per_container(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given the document was served once
    status, first = call("UploadsFunction", "GET", "/openapi.json", sub=None)
    assert status == 200

    # When building it again would fail
    def no_rebuild(*_: Any, **__: Any) -> str:
        raise AssertionError("the document was rebuilt")

    monkeypatch.setattr(uploads_handler.app, "get_openapi_json_schema", no_rebuild)
    # Then later requests are still served the same document
    status, again = call("UploadsFunction", "GET", "/openapi.json", sub=None)
    assert (status, again) == (200, first)
