"""The library's many-files path against the local stack: small files as forms (two calls each),
a larger one as a multipart upload, each stored intact; a failure of one file does not stop the
others."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from client import Uploader
from local.stack import LocalStack
from tests.stack_limits import GENEROUS_LIMITS

pytestmark = pytest.mark.integration
MIB = 1024 * 1024


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    with LocalStack(s3_port=0, api_port=0, s3_events=False, parameter_overrides=GENEROUS_LIMITS) as running:
        yield running


def stored(stack: LocalStack, key: str) -> bytes:
    s3: Any = stack.s3_client()
    return bytes(s3.get_object(Bucket=stack.bucket, Key=key)["Body"].read())


def test_small_files_go_as_forms_and_a_large_one_as_multipart(stack: LocalStack, tmp_path: Path) -> None:
    # Given 12 small images and one 6 MiB image
    files = []
    for index in range(12):
        path = tmp_path / f"small-{index}.png"
        path.write_bytes(os.urandom(1000 + index))
        files.append(path)
    large = tmp_path / "large.png"
    large.write_bytes(os.urandom(6 * MIB))
    files.append(large)
    uploader = Uploader(stack.api_url, stack.token_for("many"), concurrency=4, state_files=False)
    ended: list[str] = []
    # When they are uploaded together, with forms up to 1 MiB
    outcomes = uploader.upload_many(files, form_max_bytes=MIB, on_file=lambda outcome: ended.append(outcome.path))
    # Then every file is stored intact, in order, the small ones without a multipart upload
    assert [outcome.path for outcome in outcomes] == [str(path) for path in files]
    assert sorted(ended) == sorted(str(path) for path in files)
    for path, outcome in zip(files, outcomes, strict=True):
        assert outcome.error is None, outcome.error
        assert outcome.result is not None
        assert stored(stack, outcome.result.key) == path.read_bytes()
        assert outcome.result.size == path.stat().st_size
        assert (outcome.result.upload_id == "") == (path != large)


def test_a_file_that_cannot_be_read_fails_alone(stack: LocalStack, tmp_path: Path) -> None:
    # Given one good image and one path that does not exist
    good = tmp_path / "good.png"
    good.write_bytes(os.urandom(2000))
    missing = tmp_path / "missing.png"
    uploader = Uploader(stack.api_url, stack.token_for("many-fail"), concurrency=2, state_files=False)
    # When both are uploaded / Then the missing one has an error and the good one is stored
    bad_outcome, good_outcome = uploader.upload_many([missing, good])
    assert bad_outcome.result is None and bad_outcome.error is not None
    assert "missing.png" in str(bad_outcome.error)
    assert good_outcome.result is not None and stored(stack, good_outcome.result.key) == good.read_bytes()
