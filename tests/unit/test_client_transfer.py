"""What an S3 answer to a part PUT means to the uploader."""

from __future__ import annotations

import pytest

from client.transfer import Outcome, classify


def xml(code: str, message: str) -> str:
    return f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code><Message>{message}</Message></Error>'


def test_a_stored_part_gives_its_etag_and_echoed_checksums() -> None:
    result = classify(
        200, {"ETag": '"abc"', "x-amz-checksum-sha256": "c2hh", "x-amz-server-side-encryption": "AES256"}, ""
    )
    assert result.outcome is Outcome.STORED
    assert result.etag == '"abc"' and result.etag_is_md5
    assert result.checksums == {"x-amz-checksum-sha256": "c2hh"}


@pytest.mark.parametrize(
    "headers",
    [
        {"ETag": '"abc"', "x-amz-server-side-encryption": "aws:kms"},
        {"ETag": '"abc"', "x-amz-server-side-encryption": "aws:kms:dsse"},
        {"ETag": '"abc"', "x-amz-server-side-encryption-customer-algorithm": "AES256"},
    ],
)
def test_kms_and_customer_keys_make_etags_that_are_not_md5s(headers: dict[str, str]) -> None:
    assert classify(200, headers, "").etag_is_md5 is False


def test_a_200_without_an_etag_is_retried() -> None:
    assert classify(200, {}, "").outcome is Outcome.TRANSIENT


@pytest.mark.parametrize(
    ("status", "code", "message", "outcome"),
    [
        (403, "AccessDenied", "Request has expired", Outcome.EXPIRED),
        (403, "SignatureDoesNotMatch", "The request signature we calculated does not match", Outcome.FATAL),
        (403, "AccessDenied", "Access Denied", Outcome.FATAL),
        (400, "BadDigest", "The Content-MD5 you specified did not match what we received.", Outcome.BAD_DIGEST),
        (400, "XAmzContentSHA256Mismatch", "mismatch", Outcome.BAD_DIGEST),
        (500, "InternalError", "We encountered an internal error.", Outcome.TRANSIENT),
        (503, "SlowDown", "Please reduce your request rate.", Outcome.TRANSIENT),
        (429, "", "", Outcome.TRANSIENT),
        (
            400,
            "RequestTimeout",
            "Your socket connection to the server was not read from or written to",
            Outcome.TRANSIENT,
        ),
        (404, "NoSuchUpload", "The specified upload does not exist.", Outcome.FATAL),
        (400, "EntityTooLarge", "too large", Outcome.FATAL),
    ],
)
def test_errors_are_classified(status: int, code: str, message: str, outcome: Outcome) -> None:
    result = classify(status, {"Content-Type": "application/xml"}, xml(code, message) if code else "")
    assert result.outcome is outcome
    assert result.code == code


def test_a_slow_down_carries_retry_after() -> None:
    result = classify(503, {"Retry-After": "2"}, xml("SlowDown", "Please reduce your request rate."))
    assert result.retry_after == 2.0
    assert result.describe() == "503 SlowDown: Please reduce your request rate"
