"""The files API and verdict events over real HTTP through the local stack (validator running):
upload -> pending -> valid -> listed -> downloaded as an attachment; rejected; deleted; paged;
invisible to others; one EventBridge event per version even when S3 notifies twice."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import requests
from api_client import ApiClient

from local.stack import LocalStack
from local.template import REPO_ROOT
from tests import big_images
from tests import image_corpus as corpus
from tests.registry_support import registry_of
from upload_core.registry import FileRecord, FileStatus

TIMEOUT = 30
BAD_PNG = corpus.png() + b"<script>alert(1)</script>"


def form_upload(api: ApiClient, user: str, name: str, body: bytes) -> str:
    """A form upload of ``body``; its key."""
    form = api.request(
        "POST", "/uploads/form", user=user, json={"filename": name, "contentType": "image/png", "size": len(body)}
    )
    assert form.status_code == 201, form.text
    created = form.json()
    posted = requests.post(
        created["url"], data=created["fields"], files={"file": (name, body, "image/png")}, timeout=TIMEOUT
    )
    assert posted.status_code < 300, posted.text
    return str(created["key"])


def file_id(key: str) -> str:
    return key.split("/")[-2]


def wait_for_verdict(api: ApiClient, user: str, key: str, timeout: float = 30.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        reply = api.request("GET", f"/files/{file_id(key)}/status", user=user)
        if reply.status_code == 200 and reply.json()["status"] != "pending":
            return dict(reply.json())
        assert time.monotonic() < deadline, f"no verdict for {key}: {reply.status_code} {reply.text}"
        time.sleep(0.2)


def user() -> str:
    return f"files-{uuid.uuid4().hex[:8]}"


def test_a_valid_file_is_listed_and_downloads_identical_as_an_attachment(api: ApiClient) -> None:
    owner = user()
    body = corpus.png()
    key = form_upload(api, owner, "holiday photo.png", body)
    assert wait_for_verdict(api, owner, key)["status"] == "valid"
    # Listed, newest first
    listed = api.request("GET", "/files", user=owner).json()["files"]
    assert [(item["key"], item["status"], item["size"]) for item in listed] == [(key, "valid", len(body))]
    # Fetched with a link that downloads the same bytes as an attachment of the detected type
    got = api.request("GET", f"/files/{file_id(key)}", user=owner)
    assert got.status_code == 200, got.text
    download = requests.get(got.json()["download"]["url"], timeout=TIMEOUT)
    assert download.status_code == 200 and download.content == body
    assert download.headers["Content-Disposition"].startswith('attachment; filename="holiday photo.png"')
    assert download.headers["Content-Type"] == "image/png"


def test_a_rejected_file_is_listed_as_rejected_without_a_link(api: ApiClient) -> None:
    owner = user()
    key = form_upload(api, owner, "bad.png", BAD_PNG)
    verdict = wait_for_verdict(api, owner, key)
    assert (verdict["status"], verdict["reason"]) == ("rejected", "trailing-data")
    [listed] = api.request("GET", "/files", user=owner, params={"status": "rejected"}).json()["files"]
    assert listed["key"] == key
    got = api.request("GET", f"/files/{file_id(key)}", user=owner)
    assert (got.status_code, got.json()["code"]) == (410, "Rejected")


def test_delete_removes_every_version_and_releases_usage(api: ApiClient, stack: LocalStack) -> None:
    owner = user()
    body = corpus.png()
    key = form_upload(api, owner, "gone.png", body)
    wait_for_verdict(api, owner, key)
    registry = registry_of(stack)
    assert registry.usage(owner).stored_bytes == len(body)
    assert api.request("DELETE", f"/files/{file_id(key)}", user=owner).status_code == 204
    assert api.request("DELETE", f"/files/{file_id(key)}", user=owner).status_code == 204
    versions = stack.s3_client().list_object_versions(Bucket=stack.bucket, Prefix=key)
    assert versions.get("Versions", []) == [] and versions.get("DeleteMarkers", []) == []
    assert registry.usage(owner).used_bytes == 0
    assert api.request("GET", "/files", user=owner).json()["files"] == []


def test_another_user_gets_404_and_never_sees_the_file(api: ApiClient) -> None:
    owner, other = user(), user()
    key = form_upload(api, owner, "mine.png", corpus.png())
    wait_for_verdict(api, owner, key)
    for method, path in (("GET", ""), ("GET", "/status"), ("DELETE", "")):
        reply = api.request(method, f"/files/{file_id(key)}{path}", user=other)
        assert (reply.status_code, reply.json()["code"]) == (404, "NoSuchFile")
    assert api.request("GET", "/files", user=other).json()["files"] == []
    assert api.request("GET", f"/files/{file_id(key)}", user=owner).status_code == 200


def test_pagination_over_120_files_sees_each_once_newest_first(api: ApiClient, stack: LocalStack) -> None:
    # Given 120 file records of one owner (as the validator writes them), one millisecond apart
    owner = user()
    registry = registry_of(stack)
    ids = [uuid.uuid4().hex for _ in range(120)]
    for n, fid in enumerate(ids):
        status = FileStatus.VALID if n % 3 else FileStatus.REJECTED
        registry.record_file(
            FileRecord(owner, fid, f"uploads/{owner}/{fid}/f.png", "f.png", 1, "image/png", "v", status, 10_000 + n)
        )
    # When they are listed 50 at a time over HTTP
    seen: list[str] = []
    params: dict[str, Any] = {"limit": 50}
    while True:
        page = api.request("GET", "/files", user=owner, params=params).json()
        seen += [item["fileId"] for item in page["files"]]
        if not page.get("nextCursor"):
            break
        params["cursor"] = page["nextCursor"]
    # Then each appears once, newest first
    assert seen == ids[::-1]
    # And a forged cursor is a clean 400
    forged = api.request("GET", "/files", user=owner, params={"cursor": "T1dORVIjYm9i"})
    assert (forged.status_code, forged.json()["code"]) == (400, "InvalidCursor")


def s3_event(bucket: str, key: str, version_id: str) -> dict[str, Any]:
    return {
        "Records": [
            {
                "eventVersion": "2.1",
                "eventSource": "aws:s3",
                "awsRegion": "us-east-1",
                "eventTime": "2026-12-02T10:00:00.000Z",
                "eventName": "ObjectCreated:Post",
                "s3": {
                    "s3SchemaVersion": "1.0",
                    "configurationId": "ValidateUploads",
                    "bucket": {"name": bucket, "ownerIdentity": {"principalId": "O"}, "arn": f"arn:aws:s3:::{bucket}"},
                    "object": {"key": key, "size": 1, "eTag": "e", "sequencer": "01", "versionId": version_id},
                },
                "userIdentity": {"principalId": "AWS:local"},
                "requestParameters": {"sourceIPAddress": "127.0.0.1"},
                "responseElements": {"x-amz-request-id": "R", "x-amz-id-2": "I"},
            }
        ]
    }


def test_exactly_one_event_per_version_when_s3_notifies_twice(api: ApiClient, stack: LocalStack) -> None:
    owner = user()
    good = form_upload(api, owner, "good.png", corpus.png())
    bad = form_upload(api, owner, "bad.png", BAD_PNG)
    for key in (good, bad):
        wait_for_verdict(api, owner, key)
    assert stack.verdicts is not None and stack.functions is not None
    # When S3 delivers both notifications again
    registry = registry_of(stack)
    for key in (good, bad):
        record = registry.file(owner, file_id(key))
        assert record is not None
        invocation = stack.functions.invoke("ValidatorFunction", s3_event(stack.bucket, key, record.version_id))
        assert invocation.ok, invocation.error
    time.sleep(2)  # time for a second event to arrive, if one were published
    # Then the subscriber received exactly one event per version, through the emulator's EventBridge
    mine = [event for event in stack.verdicts.received if event["detail"]["owner"] == owner]
    assert sorted((event["detail"]["key"], event["detail-type"]) for event in mine) == sorted(
        [(good, "Upload Validated"), (bad, "Upload Rejected")]
    )
    rejected = next(event for event in mine if event["detail"]["key"] == bad)
    assert rejected["detail"]["reason"] == "trailing-data" and rejected["detail"]["fileId"] == file_id(bad)


def run_cli(stack: LocalStack, user: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {name: value for name, value in os.environ.items() if not name.lower().endswith("_proxy")}
    env.update(UPLOAD_API_URL=stack.api_url, UPLOAD_API_TOKEN=stack.token_for(user))
    return subprocess.run(
        [sys.executable, "-m", "client", *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_cli_waits_for_verdicts_exits_10_for_a_rejected_file_and_gets_the_valid_one(
    stack: LocalStack, tmp_path: Path
) -> None:
    # Given a folder with a valid image and one the validator rejects
    owner = user()
    folder = tmp_path / "photos"
    folder.mkdir()
    good = corpus.png()
    (folder / "good.png").write_bytes(good)
    (folder / "bad.png").write_bytes(BAD_PNG)
    # When the CLI puts the folder
    done = run_cli(stack, owner, "--json", "put", str(folder))
    # Then it reports each file's verdict and exits with the rejection's code
    assert done.returncode == 10, done.stderr
    results = {Path(item["path"]).name: item for item in map(json.loads, done.stdout.splitlines())}
    assert (results["good.png"]["verdict"], results["good.png"]["exitCode"]) == ("valid", 0)
    assert (results["bad.png"]["verdict"], results["bad.png"]["reason"]) == ("rejected", "trailing-data")
    # And `get` downloads the valid one byte-identical, `rm` deletes it, `ls` lists what is left
    key = results["good.png"]["key"]
    copy = tmp_path / "copy.png"
    fetched = run_cli(stack, owner, "get", key, "-o", str(copy), "-q")
    assert fetched.returncode == 0, fetched.stderr
    assert copy.read_bytes() == good
    assert run_cli(stack, owner, "rm", key).returncode == 0
    listed = run_cli(stack, owner, "ls", "--json")
    assert [item["status"] for item in json.loads(listed.stdout)["files"]] == ["rejected"]


def test_the_cli_puts_a_folder_several_files_at_once_and_reports_each_verdict(
    stack: LocalStack, tmp_path: Path
) -> None:
    # Given a folder of valid images (small ones, and one larger than a part), and one the
    # validator rejects, in a subfolder
    owner = user()
    folder = tmp_path / "photos"
    (folder / "more").mkdir(parents=True)
    small = {f"small-{index}.png": corpus.png(32 + index, 24) for index in range(4)}
    for name, body in small.items():
        (folder / name).write_bytes(body)
    large = big_images.big_png(12 * 1024 * 1024)
    with (folder / "large.png").open("wb") as out:
        for chunk in large.chunks():
            out.write(chunk)
    (folder / "more" / "bad.png").write_bytes(BAD_PNG)
    # When the CLI puts the folder, three files at a time, 5 MiB parts
    done = run_cli(stack, owner, "--json", "put", str(folder), "--files-at-once", "3", "--part-size", "5MiB")
    # Then each file has its object and its verdict, and the exit code is the rejection's
    assert done.returncode == 10, done.stderr
    results = {Path(item["path"]).name: item for item in map(json.loads, done.stdout.splitlines())}
    assert sorted(results) == sorted([*small, "large.png", "bad.png"])
    verdicts = {name: (item["verdict"], item["exitCode"]) for name, item in results.items()}
    assert verdicts == {
        **{name: ("valid", 0) for name in small},
        "large.png": ("valid", 0),
        "bad.png": ("rejected", 10),
    }
    assert results["bad.png"]["reason"] == "trailing-data"
    # the small files went as one form POST each, the large one as a multipart upload
    assert all(results[name]["uploadId"] == "" and results[name]["partsSent"] == 1 for name in small)
    assert results["large.png"]["uploadId"] and results["large.png"]["partsSent"] == 3
    assert results["large.png"]["size"] == large.size
    # And the listing agrees
    listed = json.loads(run_cli(stack, owner, "ls", "--json").stdout)["files"]
    assert sorted((item["name"], item["status"]) for item in listed) == sorted(
        [(name, "valid") for name in [*small, "large.png"]] + [("bad.png", "rejected")]
    )
