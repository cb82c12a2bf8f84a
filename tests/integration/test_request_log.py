"""The benchmarks' recorders (bench/cost.py, bench/load.py): the emulator's request log names who
made each AWS call, and every invocation reaches the observer with the handler's own time.
Off by default: the shared stack of the other tests has neither."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import requests

from local.functions import Invocation
from local.stack import LocalStack
from tests.stack_limits import GENEROUS_LIMITS


def test_the_request_log_names_each_functions_calls_and_the_observer_sees_each_invocation(tmp_path: Path) -> None:
    log = tmp_path / "requests.jsonl"
    seen: list[tuple[str, Any, Invocation]] = []
    with LocalStack(
        s3_port=0, api_port=0, s3_events=False, demo_page=False, parameter_overrides=GENEROUS_LIMITS, request_log=log
    ) as stack:
        assert stack.functions is not None
        stack.functions.observer = lambda function, event, invocation: seen.append((function, event, invocation))
        # When a form upload is created through the API and its file posted to S3 with the form
        created = requests.post(
            f"{stack.api_url}/uploads/form",
            json={"filename": "a.png", "contentType": "image/png", "size": 3},
            headers={"Authorization": f"Bearer {stack.token_for('recorder')}"},
            timeout=30,
        )
        assert created.status_code == 201, created.text
        form = created.json()
        posted = requests.post(form["url"], data=form["fields"], files={"file": ("a.png", b"abc")}, timeout=30)
        assert posted.status_code < 300, posted.text
    # Then the invocation was observed with its route and the time its handler took
    ((function, event, invocation),) = seen
    assert function == "UploadsFunction" and event["routeKey"] == "POST /uploads/form"
    assert invocation.ok and invocation.duration_ms is not None and invocation.duration_ms > 0
    # And the log names the function's own AWS calls and the client's POST to S3
    records = [json.loads(line) for line in log.read_text().splitlines()]
    by_uploads = [record for record in records if record["agent"] == "UploadsFunction"]
    assert by_uploads and {record["service"] for record in by_uploads} <= {"s3", "dynamodb"}
    assert any(record["service"] == "dynamodb" and "body" in record for record in by_uploads)
    (form_post,) = [record for record in records if record["agent"] == "python-requests"]
    assert form_post["method"] == "POST" and 200 <= form_post["status"] < 300
    assert form_post["bytesIn"] > 3 and form_post["ms"] > 0


@pytest.mark.parametrize("logged", [False, True])
def test_functions_are_tagged_only_when_the_requests_are_logged(tmp_path: Path, logged: bool) -> None:
    with LocalStack(
        s3_port=0,
        api_port=0,
        s3_events=False,
        demo_page=False,
        request_log=tmp_path / "requests.jsonl" if logged else None,
    ) as stack:
        assert stack.functions is not None
        environment = stack.functions.pool("FilesFunction").environment
    assert ("AWS_SDK_UA_APP_ID" in environment) is logged
    assert (tmp_path / "requests.jsonl").exists() is logged
