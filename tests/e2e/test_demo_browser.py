"""The demo page in a real browser: Uppy (from npm) uploads through this API, straight to S3.

The whole local stack runs with its validator loop (template.yaml's bucket, CORS, routes, JWT
authorizer, functions and S3 → queue → validator wiring). Headless Debian Chromium opens the page
at http://localhost:<port>/demo/ while the page calls the API at http://127.0.0.1:<port>: a
different origin, so the API's CORS is exercised as a deployed web app would, and so is the
bucket's (part PUTs and form POSTs go to the embedded S3 on its own port; Uppy must read each
part's ETag from the response, which only an exposed ETag allows).

Files: a 64x48 PNG (one presigned POST form), a 2000x2000 noise PNG saved without compression
(about 11.4 MiB: multipart, parts of 5 + 5 + 1.4 MiB, over the page's 8 MiB threshold), a "PNG"
that is text (accepted by the API on its declared type, then rejected and quarantined by the
validator), and an image imported from a source server on 127.0.0.1 through the page's URL box.
"""

from __future__ import annotations

import io
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from PIL import Image
from playwright.sync_api import Locator, Page, expect

from local.demo_site import DEMO_USER, uppy_installed
from local.stack import LocalStack
from tests.e2e.browser_support import CheckedPage
from tests.import_support import Reply, SourceServer
from tests.stack_limits import GENEROUS_LIMITS

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

VERDICT_TIMEOUT_MS = 60_000
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


def open_demo(tab: CheckedPage, stack: LocalStack) -> Page:
    page = tab.page
    page.goto(page_url(stack))
    expect(page.locator("body")).to_have_attribute("data-ready", "true")
    return page


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


def test_the_stack_serves_the_page_and_a_token_the_api_accepts(stack: LocalStack) -> None:
    # Given the running local stack
    # When the page and its local configuration are fetched over HTTP
    page = requests.get(stack.demo_url, timeout=10)
    config = requests.get(f"{stack.demo_url}config.json", timeout=10).json()
    listing = requests.get(
        f"{config['apiUrl']}/uploads", headers={"authorization": f"Bearer {config['token']}"}, timeout=10
    )

    # Then the page loads Uppy's bundle, and the token is demo-user's and works against the API
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert 'src="demo.js"' in page.text
    assert requests.get(f"{stack.demo_url}vendor/uppy.min.mjs", timeout=10).status_code == 200
    assert config["apiUrl"] == stack.api_url
    assert config["user"] == DEMO_USER
    assert listing.status_code == 200, listing.text


def test_the_page_runs_the_uppy_release_whose_endpoint_takes_headers(tab: CheckedPage, stack: LocalStack) -> None:
    # Given the page open in Chromium
    page = open_demo(tab, stack)

    # Then its S3 plugin is @uppy/aws-s3 5.1.0, configured with the local API and token
    assert page.locator("body").get_attribute("data-aws-s3-version") == "5.1.0"
    assert page.locator("#api-url").input_value() == stack.api_url
    assert page.locator("#token-user").text_content() == f"(user “{DEMO_USER}”)"
    assert page.evaluate("window.location.origin") != stack.api_url  # the API is cross-origin
    assert tab.problems == []


def test_uppy_uploads_a_small_image_and_a_multipart_image_straight_to_s3(
    tab: CheckedPage, stack: LocalStack, s3: Any, tmp_path: Path
) -> None:
    # Given a small PNG and a ~11.4 MiB PNG (over the page's 8 MiB multipart threshold)
    small, large = small_png(), noise_png()
    assert len(large) > 11 * 1024 * 1024
    (tmp_path / "small.png").write_bytes(small)
    (tmp_path / "large.png").write_bytes(large)
    page = open_demo(tab, stack)

    # When both are added through the Dashboard's file input and uploaded
    add_files(page, [tmp_path / "small.png", tmp_path / "large.png"])
    page.locator(".uppy-StatusBar-actionBtn--upload").click()

    # Then the page shows each object as valid, with the validator's tags
    small_key = wait_for_verdict(tab, "small.png", "valid")
    large_key = wait_for_verdict(tab, "large.png", "valid")
    assert row(page, "small.png").locator(".via").text_content() == "POST form"
    assert row(page, "large.png").locator(".via").text_content() == "multipart"
    assert shown_tags(page, "large.png") == {
        "upload-status": "valid",
        "upload-reason": "ok",
        "upload-type": "image/png",
        "upload-width": "2000",
        "upload-height": "2000",
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
    assert large_tags == shown_tags(page, "large.png")
    # A multipart object's ETag counts its parts: 5 MiB + 5 MiB + the rest; a POST form's does not.
    assert re.fullmatch(r"[0-9a-f]{32}-3", large_etag), large_etag
    assert re.fullmatch(r"[0-9a-f]{32}", small_etag), small_etag
    listed = {item["Key"] for item in s3.list_objects_v2(Bucket=stack.bucket, Prefix=USER_PREFIX)["Contents"]}
    assert {small_key, large_key} <= listed
    assert s3.list_multipart_uploads(Bucket=stack.bucket, Prefix=USER_PREFIX).get("Uploads", []) == []

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
    assert [problem for problem in tab.problems if "404" not in problem] == []
