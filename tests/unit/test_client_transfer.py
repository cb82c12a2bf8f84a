"""What an S3 answer to a part PUT means to the uploader."""

from __future__ import annotations

import pytest
from client_fakes import S3, FakeBackend, FakeUpload

from client.api import SignedPart
from client.cancellation import Cancellation, TransferCancelled
from client.transfer import Outcome, PartBody, classify, put_part


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


# ------------------------------------------------------------------------------------------ the streamed body


def test_a_part_body_reports_each_read_and_gives_its_length() -> None:
    # Given a 10-byte body
    reads: list[int] = []
    body = PartBody(b"0123456789", reads.append, Cancellation())
    # When the HTTP library reads it in 4-byte blocks
    blocks = [body.read(4), body.read(4), body.read(4), body.read(4)]
    # Then it gets the bytes in order, and each read reported the bytes handed out so far
    assert len(body) == 10
    assert blocks == [b"0123", b"4567", b"89", b""]
    assert reads == [4, 8, 10]


def test_a_part_body_stops_mid_part_once_the_transfer_is_cancelled() -> None:
    cancellation = Cancellation()
    body = PartBody(b"0123456789", lambda _done: None, cancellation)
    assert body.read(4) == b"0123"
    cancellation.cancel()
    with pytest.raises(TransferCancelled):
        body.read(4)


def test_a_body_is_sent_with_its_content_length_and_read_in_blocks() -> None:
    # Given an S3 stand-in that reads the body 3 bytes at a time
    backend = FakeBackend()
    backend.read_block = 3
    upload_id = "u"
    backend.uploads[upload_id] = FakeUpload(upload_id, "k", "image/png", None)
    signed = SignedPart(1, f"{S3}/bucket/k?uploadId={upload_id}&partNumber=1", {})
    reads: list[int] = []
    # When a part is PUT as a PartBody
    result = put_part(backend.session(), signed, PartBody(b"abcdefgh", reads.append, Cancellation()))
    # Then S3 stored exactly the bytes, and progress was reported per block
    assert result.outcome is Outcome.STORED
    assert backend.uploads[upload_id].parts[1][1] == b"abcdefgh"
    assert reads == [3, 6, 8]
