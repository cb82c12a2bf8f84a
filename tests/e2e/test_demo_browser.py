"""The demo pages in a real browser: Uppy (from npm) uploads through this API, straight to S3.

The whole local stack runs with its validator loop (template.yaml's bucket, CORS, routes, JWT
authorizer, functions and S3 → queue → validator wiring). Headless Debian Chromium opens the pages
at http://localhost:<port>/demo/ while they call the API at http://127.0.0.1:<port>: a different
origin, so the API's CORS is exercised as a deployed web app would, and so is the bucket's (every
S3 request goes to the embedded S3 on its own port; Uppy must read each part's ETag from the
response, which only an exposed ETag allows).

/demo/ runs Uppy 6 as `npm install uppy` gives it (the `uppy` 6.0.1 bundle: @uppy/aws-s3 6.1.0,
signRequest against POST /s3/sign, golden retriever): a 64x48 PNG (one presigned PUT), a
4200x4200 noise PNG saved without compression (about 50.5 MiB: multipart in Uppy's 5 MiB parts),
a cancelled upload, an upload resumed after a reload, a "PNG" that is text (accepted on its
declared type, then rejected by the validator), and an image imported through the page's URL box.
/demo/uppy5/ runs Uppy 5 (@uppy/aws-s3 5.1.0) against
the Companion-style routes: one multipart upload.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from PIL import Image
from playwright.sync_api import Locator, Page, Request, Route, expect

from local.demo_site import DEMO_USER, uppy_installed
from local.stack import LocalStack
from tests.e2e.browser_support import CheckedPage
from tests.import_support import Reply, SourceServer
from tests.stack_limits import GENEROUS_LIMITS

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

VERDICT_TIMEOUT_MS = 90_000
MIB = 1024 * 1024
LARGE_SIDE = 4200  # a noise PNG of 4200x4200, uncompressed: about 50.5 MiB
USER_PREFIX = f"uploads/{DEMO_USER}/"


def small_png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 48), (20, 160, 90)).save(out, format="PNG")
    return out.getvalue()


def noise_png(side: int = 2000) -> bytes:
    """Random pixels, stored uncompressed: about 3 bytes per pixel, and a PNG the validator accepts."""
    out = io.BytesIO()
    Image.frombytes("RGB", (side, side), os.urandom(side * side * 3)).save(out, format="PNG", compress_level=0)
    return out.getvalue()


@pytest.fixture(scope="module")
def source() -> Iterator[SourceServer]:
    with SourceServer() as server:
        yield server


@pytest.fixture(scope="module")
def stack(source: SourceServer) -> Iterator[LocalStack]:
    if not uppy_installed():
        pytest.fail("Uppy is not installed for the demo page: run scripts/bootstrap.sh (npm ci in local/demo)")
    # The imports function may fetch from the source server only (a test-only escape hatch).
    overrides = {"IMPORT_ALLOWED_DESTINATIONS": source.authority}
    with LocalStack(s3_port=0, api_port=0, env_overrides=overrides, parameter_overrides=GENEROUS_LIMITS) as running:
        yield running


@pytest.fixture(scope="module")
def s3(stack: LocalStack) -> Any:
    return stack.s3_client()


def page_url(stack: LocalStack) -> str:
    """The page on another origin than the API (localhost vs 127.0.0.1, same server)."""
    return stack.demo_url.replace("://127.0.0.1:", "://localhost:")


FORGET_STORED_UPLOADS = """async () => {
  localStorage.clear()
  for (const { name } of await indexedDB.databases()) indexedDB.deleteDatabase(name)
}"""


def open_demo(tab: CheckedPage, stack: LocalStack, path: str = "") -> Page:
    page = tab.page
    # The golden retriever would restore what an earlier test left in this browser profile
    # (IndexedDB, localStorage): forget it, then load the page afresh.
    page.goto(page_url(stack) + path)
    page.evaluate(FORGET_STORED_UPLOADS)
    page.reload()
    expect(page.locator("body")).to_have_attribute("data-ready", "true")
    return page


def record_signing(page: Page) -> list[dict[str, Any]]:
    """The bodies the page POSTs to /s3/sign, in order."""
    bodies: list[dict[str, Any]] = []

    def seen(request: Request) -> None:
        if request.method == "POST" and request.url.endswith("/s3/sign"):
            bodies.append(json.loads(request.post_data or "{}"))

    page.on("request", seen)
    return bodies


def add_files(page: Page, paths: list[Path]) -> None:
    # The Dashboard's "browse files" input (its sibling input picks folders).
    page.locator("input.uppy-Dashboard-input:not([webkitdirectory])").set_input_files([str(path) for path in paths])


def row(page: Page, filename: str) -> Locator:
    return page.locator(f'tr.object[data-key$="/{filename}"]')


def wait_for_verdict(tab: CheckedPage, filename: str, status: str) -> str:
    """Waits until the page shows `filename`'s verdict; returns its object key."""
    page = tab.page
    found = row(page, filename)
    try:
        expect(found).to_have_attribute("data-status", status, timeout=VERDICT_TIMEOUT_MS)
    except AssertionError as error:
        log = page.locator("#log").text_content()
        raise AssertionError(f"{error}\npage log:\n{log}\nbrowser problems: {tab.problems}") from None
    key = found.get_attribute("data-key")
    assert key is not None
    return key


def shown_tags(page: Page, filename: str) -> dict[str, str]:
    tags = row(page, filename).locator("code.tag").all_text_contents()
    return dict(tag.split("=", 1) for tag in tags)


def stored(s3: Any, bucket: str, key: str) -> tuple[bytes, str, dict[str, str]]:
    """(bytes, ETag, tags) of the object at `key`."""
    obj = s3.get_object(Bucket=bucket, Key=key)
    tags = s3.get_object_tagging(Bucket=bucket, Key=key)["TagSet"]
    return obj["Body"].read(), obj["ETag"].strip('"'), {tag["Key"]: tag["Value"] for tag in tags}


# ------------------------------------------------------------------------------------------ tests


def test_the_stack_serves_the_pages_and_a_token_the_api_accepts(stack: LocalStack) -> None:
    # Given the running local stack
    # When the pages and the local configuration are fetched over HTTP
    page = requests.get(stack.demo_url, timeout=10)
    uppy5 = requests.get(f"{stack.demo_url}uppy5/", timeout=10)
    config = requests.get(f"{stack.demo_url}config.json", timeout=10).json()
    listing = requests.get(
        f"{config['apiUrl']}/uploads", headers={"authorization": f"Bearer {config['token']}"}, timeout=10
    )

    # Then the pages load their Uppy bundles, and the token is demo-user's and works against the API
    assert page.status_code == 200 and uppy5.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert 'src="demo.js"' in page.text and 'src="../uppy5.js"' in uppy5.text
    for bundle in ("vendor/uppy.min.mjs", "vendor/uppy5.min.mjs", "vendor/uppy.min.css", "vendor/uppy5.min.css"):
        assert requests.get(f"{stack.demo_url}{bundle}", timeout=10).status_code == 200, bundle
    assert config["apiUrl"] == stack.api_url
    assert config["user"] == DEMO_USER
    assert listing.status_code == 200, listing.text


@pytest.mark.parametrize(("path", "version"), [("", "6.1.0"), ("uppy5/", "5.1.0")])
def test_each_page_runs_its_uppy_release(tab: CheckedPage, stack: LocalStack, path: str, version: str) -> None:
    # Given a page open in Chromium
    page = open_demo(tab, stack, path)

    # Then its S3 plugin is the pinned release, configured with the local API and token
    assert page.locator("body").get_attribute("data-aws-s3-version") == version
    assert page.locator("#api-url").input_value() == stack.api_url
    assert page.locator("#token-user").text_content() == f"(user “{DEMO_USER}”)"
    assert page.evaluate("window.location.origin") != stack.api_url  # the API is cross-origin
    assert tab.problems == []


def test_uppy_6_from_npm_install_uppy_uploads_a_small_image_whole_and_a_50_mib_image_in_parts(
    tab: CheckedPage, stack: LocalStack, s3: Any, tmp_path: Path
) -> None:
    # Given a small PNG and a ~50.5 MiB PNG (over the page's 8 MiB multipart threshold)
    small, large = small_png(), noise_png(LARGE_SIDE)
    assert len(large) >= 50 * MIB
    (tmp_path / "small.png").write_bytes(small)
    (tmp_path / "large.png").write_bytes(large)
    page = open_demo(tab, stack)
    signed = record_signing(page)

    # When both are added through the Dashboard's file input and uploaded
    add_files(page, [tmp_path / "small.png", tmp_path / "large.png"])
    page.locator(".uppy-StatusBar-actionBtn--upload").click()

    # Then the page shows each object as valid, with the validator's tags
    small_key = wait_for_verdict(tab, "small.png", "valid")
    large_key = wait_for_verdict(tab, "large.png", "valid")
    assert row(page, "small.png").locator(".via").text_content() == "presigned PUT"
    assert row(page, "large.png").locator(".via").text_content() == "multipart"
    assert shown_tags(page, "large.png") == {
        "upload-status": "valid",
        "upload-reason": "ok",
        "upload-type": "image/png",
        "upload-width": str(LARGE_SIDE),
        "upload-height": str(LARGE_SIDE),
        "upload-frames": "1",
    }
    assert shown_tags(page, "small.png")["upload-width"] == "64"
    expect(page.locator(".uppy-StatusBar")).to_contain_text("Complete")

    # And S3 holds both, byte-identical, under the demo user's prefix, tagged valid
    small_bytes, small_etag, small_tags = stored(s3, stack.bucket, small_key)
    large_bytes, large_etag, large_tags = stored(s3, stack.bucket, large_key)
    assert small_key.startswith(USER_PREFIX) and large_key.startswith(USER_PREFIX)
    assert small_bytes == small
    assert large_bytes == large
    assert small_tags["upload-status"] == "valid" and large_tags["upload-status"] == "valid"
    # And the whole-file PUT carried what its URL signed (type, and the owner's metadata from the query)
    small_head = s3.head_object(Bucket=stack.bucket, Key=small_key)
    assert small_head["ContentType"] == "image/png" and small_head["Metadata"]["owner"] == DEMO_USER
    assert large_tags == shown_tags(page, "large.png")
    # A multipart object's ETag counts its parts (Uppy's 5 MiB each); a single PUT's does not.
    assert large_etag.endswith(f"-{-(-len(large) // (5 * MIB))}"), large_etag
    assert re.fullmatch(r"[0-9a-f]{32}", small_etag), small_etag
    assert s3.list_multipart_uploads(Bucket=stack.bucket, Prefix=USER_PREFIX).get("Uploads", []) == []

    # And the page asked POST /s3/sign for exactly Uppy 6's requests: a whole file, then the multipart ones
    assert sorted(r["method"] for r in signed if "uploadId" not in r) == ["POST", "PUT"]  # create, whole file
    assert {r["method"] for r in signed if "uploadId" in r} == {"PUT", "POST"}  # parts, completion

    # And the browser saw no error (Uppy logs one when it cannot read a part's ETag)
    assert tab.problems == []


def test_a_file_that_is_not_what_it_claims_is_shown_rejected_and_quarantined(
    tab: CheckedPage, stack: LocalStack, s3: Any, tmp_path: Path
) -> None:
    # Given a text file named like a PNG (so it is declared image/png)
    fake = tmp_path / "fake.png"
    fake.write_bytes(b"this is not an image\n" * 10)
    page = open_demo(tab, stack)

    # When it is uploaded through the Dashboard
    add_files(page, [fake])
    page.locator(".uppy-StatusBar-actionBtn--upload").click()

    # Then the page shows the validator's rejection, its reason, and the quarantine
    key = wait_for_verdict(tab, "fake.png", "rejected")
    status = row(page, "fake.png").locator(".status").text_content() or ""
    tags = shown_tags(page, "fake.png")
    assert tags["upload-status"] == "rejected"
    assert tags["upload-reason"] in status
    assert "quarantined" in status
    # And Uppy's Dashboard shows the file as failed, with the validator's reason
    failed = page.locator(".uppy-Dashboard-Item.is-error")
    expect(failed).to_have_count(1)
    assert page.evaluate("window.uppy.getFiles()[0].error").startswith("rejected by the validator")

    # And S3 no longer has it at its upload key, only under quarantine/
    assert s3.list_objects_v2(Bucket=stack.bucket, Prefix=key).get("KeyCount", 0) == 0
    quarantined, _, quarantine_tags = stored(s3, stack.bucket, f"quarantine/{key}")
    assert quarantined == fake.read_bytes()
    assert quarantine_tags["upload-status"] == "rejected"
    assert tab.problems == []


def test_the_import_box_imports_an_image_and_shows_its_verdict(
    tab: CheckedPage, stack: LocalStack, s3: Any, source: SourceServer
) -> None:
    # Given an image on a web server the imports function may reach
    picture = small_png()
    source.routes["/photos/imported.png"] = Reply(headers=[("content-type", "image/png")], body=[picture])
    page = open_demo(tab, stack)

    # When its URL is imported through the page's URL box
    page.locator("#import-url").fill(source.url("/photos/imported.png"))
    page.locator("#import-button").click()

    # Then the page reports the import and the validator's verdict
    key = wait_for_verdict(tab, "imported.png", "valid")
    expect(page.locator("#import-message")).to_contain_text(f"as {key}")
    assert row(page, "imported.png").locator(".via").text_content() == "import"
    assert key.startswith(USER_PREFIX)
    body, _, tags = stored(s3, stack.bucket, key)
    assert body == picture
    assert tags["upload-status"] == "valid"
    assert tab.problems == []


def test_the_import_box_shows_why_an_import_was_refused(tab: CheckedPage, stack: LocalStack) -> None:
    # Given the page, and a URL the imports function must refuse (the gateway's own loopback port
    # is not an allowed destination)
    page = open_demo(tab, stack)

    # When it is submitted
    page.locator("#import-url").fill(f"{stack.api_url}/openapi.json")
    page.locator("#import-button").click()

    # Then the API's error code and message are shown, and no object is listed
    message = page.locator("#import-message")
    expect(message).to_contain_text("Import refused: 4")
    expect(message).to_contain_text("ForbiddenDestination")
    assert page.locator("tr.object").count() == 0
    # The refused request is the only thing the browser complains about.
    assert all("status of 4" in problem for problem in tab.problems), tab.problems


class HeldParts:
    """Holds the page's part PUTs from a given part number on (they never reach S3 until released),
    and records every part number the page sends."""

    def __init__(self, page: Page, *, hold_from: int) -> None:
        self.hold_from = hold_from
        self.sent: list[int] = []
        self.held: list[Route] = []
        page.route(re.compile(r".*[?&]partNumber=\d+.*"), self._route)

    def _route(self, route: Route) -> None:
        request = route.request
        match = re.search(r"[?&]partNumber=(\d+)", request.url)
        if request.method != "PUT" or match is None:
            route.continue_()
            return
        number = int(match.group(1))
        self.sent.append(number)
        if number >= self.hold_from:
            self.held.append(route)
        else:
            route.continue_()


def pending_upload(s3: Any, bucket: str) -> tuple[str, str] | None:
    uploads = s3.list_multipart_uploads(Bucket=bucket, Prefix=USER_PREFIX).get("Uploads", [])
    return (uploads[0]["Key"], uploads[0]["UploadId"]) if len(uploads) == 1 else None


def stored_parts(s3: Any, bucket: str, key: str, upload_id: str) -> list[int]:
    return [part["PartNumber"] for part in s3.list_parts(Bucket=bucket, Key=key, UploadId=upload_id).get("Parts", [])]


def wait_until(condition: Any, page: Page, what: str, timeout_s: float = 60) -> Any:
    for _ in range(int(timeout_s * 10)):
        found = condition()
        if found:
            return found
        page.wait_for_timeout(100)
    raise AssertionError(f"timed out waiting for {what}; page log: {page.locator('#log').text_content()}")


def test_cancelling_an_upload_aborts_it_in_s3(tab: CheckedPage, stack: LocalStack, s3: Any, tmp_path: Path) -> None:
    # Given a multipart upload whose third part is held back
    big = tmp_path / "cancelled.png"
    big.write_bytes(noise_png(2000))
    page = open_demo(tab, stack)
    held = HeldParts(page, hold_from=3)
    add_files(page, [big])
    page.locator(".uppy-StatusBar-actionBtn--upload").click()
    key, upload_id = wait_until(lambda: pending_upload(s3, stack.bucket), page, "the multipart upload")
    wait_until(lambda: held.held, page, "part 3 to be sent")
    assert stored_parts(s3, stack.bucket, key, upload_id) == [1, 2]

    # When the upload is cancelled in the page
    page.evaluate("window.uppy.cancelAll()")

    # Then the upload is gone from S3, and no object was made
    wait_until(lambda: pending_upload(s3, stack.bucket) is None, page, "the upload to be aborted")
    assert s3.list_objects_v2(Bucket=stack.bucket, Prefix=key).get("KeyCount", 0) == 0
    for route in held.held:
        route.abort()


def test_reloading_mid_upload_resumes_without_sending_stored_parts_again(
    tab: CheckedPage, stack: LocalStack, s3: Any, tmp_path: Path
) -> None:
    # Given a ~50.5 MiB upload (11 parts) whose parts from the fourth on are held back
    data = noise_png(LARGE_SIDE)
    (tmp_path / "resumed.png").write_bytes(data)
    page = open_demo(tab, stack)
    before = HeldParts(page, hold_from=4)
    add_files(page, [tmp_path / "resumed.png"])
    page.locator(".uppy-StatusBar-actionBtn--upload").click()
    key, upload_id = wait_until(lambda: pending_upload(s3, stack.bucket), page, "the multipart upload")
    wait_until(lambda: before.held, page, "part 4 to be sent")
    assert stored_parts(s3, stack.bucket, key, upload_id) == [1, 2, 3]

    # When the page is reloaded (part 4 still held: it never reaches S3), and the upload resumed
    held, before.held = before.held, []
    before.hold_from = 10_001
    before.sent.clear()
    page.reload()
    after = before
    expect(page.locator("body")).to_have_attribute("data-ready", "true")
    expect(page.locator(".uppy-Dashboard-Item")).to_have_count(1)
    resume = page.locator(".uppy-StatusBar-actionBtn--upload, .uppy-StatusBar-actionBtn--retry")
    if resume.count():
        resume.first.click()

    # Then the same upload completes, byte-identical and valid
    assert wait_for_verdict(tab, "resumed.png", "valid") == key
    body, etag, _ = stored(s3, stack.bucket, key)
    assert body == data
    assert etag.endswith(f"-{-(-len(data) // (5 * MIB))}")
    # And the parts S3 already held were not sent again
    assert sorted(after.sent) == list(range(4, -(-len(data) // (5 * MIB)) + 1)), after.sent
    assert pending_upload(s3, stack.bucket) is None
    for route in held:
        with contextlib.suppress(Exception):  # its request went with the page it came from
            route.abort()


def test_uppy_5_still_uploads_in_parts_through_the_companion_routes(
    tab: CheckedPage, stack: LocalStack, s3: Any, tmp_path: Path
) -> None:
    # Given the Uppy 5 page and a ~11.4 MiB PNG (over its 8 MiB multipart threshold)
    large = noise_png(2000)
    (tmp_path / "uppy5.png").write_bytes(large)
    page = open_demo(tab, stack, "uppy5/")
    companion: list[str] = []
    page.on("request", lambda request: companion.append(request.url) if "/s3/multipart" in request.url else None)

    # When it is uploaded
    add_files(page, [tmp_path / "uppy5.png"])
    page.locator(".uppy-StatusBar-actionBtn--upload").click()

    # Then it went through the Companion-style routes, in 5 MiB parts, and arrived whole and valid
    key = wait_for_verdict(tab, "uppy5.png", "valid")
    assert row(page, "uppy5.png").locator(".via").text_content() == "multipart"
    body, etag, tags = stored(s3, stack.bucket, key)
    assert body == large
    assert re.fullmatch(r"[0-9a-f]{32}-3", etag), etag
    assert tags["upload-status"] == "valid"
    assert any(url.endswith("/s3/multipart") for url in companion)
    assert tab.problems == []


def file_row(page: Page, filename: str) -> Locator:
    return page.locator("#files tbody tr", has_text=filename)


def test_your_files_lists_statuses_downloads_a_valid_file_and_deletes_it(
    tab: CheckedPage, stack: LocalStack, tmp_path: Path
) -> None:
    # Given a valid image and a text file named like a PNG, uploaded through the Dashboard
    good, fake = tmp_path / "listed.png", tmp_path / "listed-fake.png"
    good.write_bytes(small_png())
    fake.write_bytes(b"still not an image\n" * 10)
    page = open_demo(tab, stack)
    add_files(page, [good, fake])
    page.locator(".uppy-StatusBar-actionBtn--upload").click()
    # Then "Your files" shows each with the validator's verdict
    expect(file_row(page, "listed.png")).to_have_attribute("data-status", "valid", timeout=VERDICT_TIMEOUT_MS)
    expect(file_row(page, "listed-fake.png")).to_have_attribute("data-status", "rejected", timeout=VERDICT_TIMEOUT_MS)
    # And the rejected file is failed in Uppy's own list, not checked
    expect(page.locator(".uppy-Dashboard-Item.is-error", has_text="listed-fake")).to_have_count(
        1, timeout=VERDICT_TIMEOUT_MS
    )
    # And only the valid one has a download link, which saves the same bytes as an attachment
    assert file_row(page, "listed-fake.png").locator("a.download").count() == 0
    with page.expect_download() as downloading:
        file_row(page, "listed.png").locator("a.download").click()
    saved = downloading.value
    assert saved.suggested_filename == "listed.png"
    assert Path(saved.path()).read_bytes() == good.read_bytes()
    # When the valid one is deleted, Then it leaves the list
    file_row(page, "listed.png").locator("button.delete").click()
    expect(file_row(page, "listed.png")).to_have_count(0, timeout=10_000)
    # (A navigation that turns into a download is reported as an aborted request: not a problem.)
    assert [problem for problem in tab.problems if "response-content-disposition" not in problem] == []
