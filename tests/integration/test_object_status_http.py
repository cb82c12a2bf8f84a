"""GET /objects/status over real HTTP, with the validator fed by the local S3 event loop."""

from __future__ import annotations

from typing import Any

import pytest
import requests
from api_client import ApiClient

from local.stack import LocalStack
from tests.image_corpus import png

pytestmark = pytest.mark.integration


def form_upload(api: ApiClient, filename: str, content_type: str, data: bytes) -> str:
    created = api.request(
        "POST", "/uploads/form", json={"filename": filename, "contentType": content_type, "size": len(data)}
    )
    assert created.status_code == 201, created.text
    form = created.json()
    posted = requests.post(form["url"], data=form["fields"], files={"file": (filename, data)}, timeout=30)
    assert posted.status_code == 201, posted.text
    return str(form["key"])


def status_of(api: ApiClient, key: str, user: str = "alice") -> requests.Response:
    return api.request("GET", "/objects/status", params={"key": key}, user=user)


def test_a_valid_image_reports_valid_with_its_details(api: ApiClient, stack: LocalStack) -> None:
    key = form_upload(api, "dot.png", "image/png", png(40, 30))
    assert stack.events is not None
    assert stack.events.drain(30)
    response = status_of(api, key)
    assert response.status_code == 200
    body = response.json()
    assert (body["status"], body["quarantined"]) == ("valid", False)
    assert body["tags"]["upload-width"] == "40"
    assert body["tags"]["upload-height"] == "30"


def test_a_rejected_file_reports_its_reason_after_quarantine(api: ApiClient, stack: LocalStack, s3: Any) -> None:
    svg = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'
    key = form_upload(api, "evil.png", "image/png", svg)
    assert stack.events is not None
    assert stack.events.drain(30)
    body = status_of(api, key).json()
    assert (body["status"], body["quarantined"]) == ("rejected", True)
    assert body["reason"]
    assert s3.list_objects_v2(Bucket=stack.bucket, Prefix=key).get("KeyCount", 0) == 0
    assert status_of(api, key, user="mallory").status_code == 403
