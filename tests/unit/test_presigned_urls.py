"""The batch URL signer returns, byte for byte, the URL `generate_presigned_url` returns for the
same part (or file) at the same time: same host and path style, query, signed headers, expiry, token."""

from __future__ import annotations

import base64
import datetime
from typing import Any

import boto3
import pytest
from botocore.config import Config

from upload_core.presigned_urls import PartToPresign, PutToPresign, UrlSigner
from upload_core.s3 import S3Gateway, build_s3_client, encode_tag_query
from upload_core.settings import Settings

FROZEN = datetime.datetime(2026, 12, 2, 18, 0, 0)  # botocore signs with a naive UTC datetime
KEY = "uploads/owner/0123456789abcdef/un fichier+é~(1).png"
UPLOAD_ID = "2~aB/c+d=e f.g_h-i"
CRC32 = base64.b64encode(b"\x01\x02\x03\x04").decode()
SHA256 = base64.b64encode(b"\x07" * 32).decode()
MD5 = base64.b64encode(b"\x05" * 16).decode()


@pytest.fixture(autouse=True)
def frozen_time(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("botocore.auth.get_current_datetime", lambda *args, **kwargs: FROZEN)


def client_for(
    settings_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, token: str | None, *, hoist: bool = True
) -> Any:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
    if token:
        monkeypatch.setenv("AWS_SESSION_TOKEN", token)
    else:
        monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)
    return build_s3_client(Settings.from_env(settings_env), hoist=hoist)


def botocore_url(client: Any, bucket: str, part: PartToPresign, *, key: str = KEY, upload_id: str = UPLOAD_ID) -> str:
    """What the API signed before: one generate_presigned_url per part, headers as parameters."""
    params: dict[str, Any] = {"Bucket": bucket, "Key": key, "UploadId": upload_id, "PartNumber": part.part_number}
    names = {
        "content-length": "ContentLength",
        "content-md5": "ContentMD5",
        "x-amz-checksum-crc32": "ChecksumCRC32",
        "x-amz-checksum-sha256": "ChecksumSHA256",
    }
    for header, value in part.headers.items():
        params[names[header.lower()]] = int(value) if header.lower() == "content-length" else value
    return str(client.generate_presigned_url("upload_part", Params=params, ExpiresIn=900))


def spy_on_generate_presigned_url(client: Any, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The part numbers the client's generate_presigned_url is called for, in order."""
    numbers: list[int] = []
    original = client.generate_presigned_url

    def spy(method: str, Params: dict[str, Any], **kwargs: Any) -> Any:
        numbers.append(Params["PartNumber"])
        return original(method, Params=Params, **kwargs)

    monkeypatch.setattr(client, "generate_presigned_url", spy)
    return numbers


def mixed_parts() -> list[PartToPresign]:
    """Parts of one batch with different signed headers: length only, length and CRC32, length and
    Content-MD5, all three, and a last part of another length."""
    parts = []
    for number in range(1, 13):
        headers = {"Content-Length": str(8 * 1024 * 1024)}
        if number % 2:
            headers["x-amz-checksum-crc32"] = CRC32
        if number % 3 == 0:
            headers["Content-MD5"] = MD5
        parts.append(PartToPresign(number, headers))
    parts.append(PartToPresign(13, {"Content-Length": "1234", "x-amz-checksum-crc32": CRC32}))
    return parts


ENVIRONMENTS = {
    # On AWS: virtual-hosted style on the regional endpoint, a role's session token.
    "aws-virtual-hosted": ({"BUCKET_NAME": "uploads-123456789012-eu-west-3", "AWS_REGION": "eu-west-3"}, "IQo" * 300),
    # The local stack: path style on a custom endpoint, no token.
    "local-path-style": (
        {"BUCKET_NAME": "local-bucket", "AWS_REGION": "us-east-1", "S3_ENDPOINT_URL": "http://127.0.0.1:4566"},
        None,
    ),
}


@pytest.mark.parametrize("environment", ENVIRONMENTS.values(), ids=ENVIRONMENTS.keys())
def test_every_url_is_the_one_generate_presigned_url_makes(
    monkeypatch: pytest.MonkeyPatch, environment: tuple[dict[str, str], str | None]
) -> None:
    # Given the API's S3 client and a batch of parts bound to lengths, checksums and MD5s
    settings_env, token = environment
    client = client_for(settings_env, monkeypatch, token)
    bucket = settings_env["BUCKET_NAME"]
    parts = mixed_parts()
    through_botocore = spy_on_generate_presigned_url(client, monkeypatch)
    # When the batch is signed
    urls = UrlSigner(client).presign_parts(bucket, KEY, UPLOAD_ID, parts, expires_in=900)
    # Then only the first part of each set of signed headers went through generate_presigned_url
    assert through_botocore == [1, 2, 3, 6]
    # And each URL is exactly botocore's for the same part at the same time
    assert urls == [botocore_url(client, bucket, part) for part in parts]
    assert "x-amz-checksum-crc32" in urls[0] and "content-md5" in urls[2]
    assert ("X-Amz-Security-Token" in urls[5]) == (token is not None)


def test_the_gateway_signs_a_large_checksum_bound_batch_exactly_as_botocore(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a batch of 1000 parts, each bound to its own SHA-256 and the plan's length
    settings_env = {"BUCKET_NAME": "b-123456789012-us-west-2", "AWS_REGION": "us-west-2"}
    client = client_for(settings_env, monkeypatch, "token")
    gateway = S3Gateway(Settings.from_env(settings_env), client=client)
    parts = [
        PartToPresign(
            n, {"Content-Length": "5242880", "x-amz-checksum-sha256": base64.b64encode(bytes([n % 256]) * 32).decode()}
        )
        for n in range(1, 1001)
    ]
    # When the gateway signs them
    urls = gateway.presign_upload_parts(KEY, UPLOAD_ID, parts, expires_in=900)
    # Then every URL is botocore's, and no two parts share a signature
    assert urls == [botocore_url(client, settings_env["BUCKET_NAME"], part) for part in parts]
    assert len({url.rsplit("X-Amz-Signature=", 1)[1] for url in urls}) == len(parts)


def test_when_botocore_signs_a_header_it_was_not_given_every_part_goes_through_botocore(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a client whose hooks add a signed header of their own to every request
    client = client_for(ENVIRONMENTS["local-path-style"][0], monkeypatch, None)

    def add_header(request: Any, **_: Any) -> None:
        request.headers["x-amz-request-payer"] = "requester"

    client.meta.events.register("before-sign.s3.UploadPart", add_header)
    parts = mixed_parts()
    through_botocore = spy_on_generate_presigned_url(client, monkeypatch)
    # When a batch is signed
    urls = UrlSigner(client).presign_parts("local-bucket", KEY, UPLOAD_ID, parts, expires_in=900)
    # Then every part went through botocore, so the URLs sign what botocore signs
    assert through_botocore == [part.part_number for part in parts]
    assert all("x-amz-request-payer" in url for url in urls)
    assert urls == [botocore_url(client, "local-bucket", part) for part in parts]


def test_a_client_with_another_signer_is_never_signed_here(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a client that presigns with SigV2 (query parameters AWSAccessKeyId, Signature, Expires)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    client = boto3.client("s3", region_name="us-east-1", config=Config(signature_version="s3"))
    parts = [PartToPresign(n, {"Content-MD5": MD5}) for n in range(1, 4)]
    # When a batch is signed, then each URL is botocore's own
    urls = UrlSigner(client).presign_parts("local-bucket", KEY, UPLOAD_ID, parts, expires_in=900)
    assert urls == [botocore_url(client, "local-bucket", part) for part in parts]
    assert "X-Amz-Algorithm" not in urls[1]


def test_a_header_upload_part_does_not_take_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    client = client_for(ENVIRONMENTS["local-path-style"][0], monkeypatch, None)
    with pytest.raises(ValueError, match="x-amz-meta-name"):
        UrlSigner(client).presign_parts(
            "local-bucket", KEY, UPLOAD_ID, [PartToPresign(1, {"x-amz-meta-name": "x"})], expires_in=900
        )


# --- PutObject URLs of a batch of small files ---------------------------------------------------


def small_files() -> list[PutToPresign]:
    """Whole-file PUTs of a batch: each its own key, length, type, CRC32, name and declared size."""
    puts = []
    for n in range(1, 8):
        name = f"photo {n}+é~(x).{'png' if n % 2 else 'jpg'}"
        puts.append(
            PutToPresign(
                key=f"uploads/owner/{n:032x}/{name}",
                headers={
                    "Content-Length": str(1000 * n),
                    "Content-Type": "image/png" if n % 2 else "image/jpeg",
                    "x-amz-checksum-crc32": base64.b64encode(n.to_bytes(4, "big")).decode(),
                    "If-None-Match": "*",
                    "x-amz-meta-owner": "owner",
                    "x-amz-meta-original-filename": name.replace("é", "%C3%A9"),
                    "x-amz-meta-declared-size": str(n),
                    "x-amz-tagging": encode_tag_query({"upload-status": "pending"}),
                },
            )
        )
    return puts


def botocore_put_url(client: Any, bucket: str, put: PutToPresign) -> str:
    """What generate_presigned_url makes for the same PutObject."""
    headers = put.headers
    params: dict[str, Any] = {
        "Bucket": bucket,
        "Key": put.key,
        "ContentLength": int(headers["Content-Length"]),
        "ContentType": headers["Content-Type"],
        "ChecksumCRC32": headers["x-amz-checksum-crc32"],
        "IfNoneMatch": headers["If-None-Match"],
        "Tagging": headers["x-amz-tagging"],
        "Metadata": {
            name.removeprefix("x-amz-meta-"): value for name, value in headers.items() if name.startswith("x-amz-meta-")
        },
    }
    return str(client.generate_presigned_url("put_object", Params=params, ExpiresIn=900))


@pytest.mark.parametrize("environment", ENVIRONMENTS.values(), ids=ENVIRONMENTS.keys())
def test_every_put_url_is_the_one_generate_presigned_url_makes(
    monkeypatch: pytest.MonkeyPatch, environment: tuple[dict[str, str], str | None]
) -> None:
    # Given the API's S3 client for whole-file PUTs (no hoisting: every header stays a header)
    settings_env, token = environment
    client = client_for(settings_env, monkeypatch, token, hoist=False)
    bucket = settings_env["BUCKET_NAME"]
    puts = small_files()
    calls: list[str] = []
    original = client.generate_presigned_url

    def spy(method: str, Params: dict[str, Any], **kwargs: Any) -> Any:
        calls.append(Params["Key"])
        return original(method, Params=Params, **kwargs)

    monkeypatch.setattr(client, "generate_presigned_url", spy)
    # When the batch is signed
    urls = UrlSigner(client).presign_puts(bucket, puts, expires_in=900)
    # Then only the first file went through botocore
    assert calls == [puts[0].key]
    monkeypatch.setattr(client, "generate_presigned_url", original)
    # And each URL is exactly botocore's for the same file at the same time, signing the headers
    assert urls == [botocore_put_url(client, bucket, put) for put in puts]
    signed = urls[3].split("X-Amz-SignedHeaders=", 1)[1].split("&", 1)[0]
    assert signed == (
        "content-length%3Bcontent-type%3Bhost%3Bif-none-match%3Bx-amz-checksum-crc32%3Bx-amz-meta-declared-size"
        "%3Bx-amz-meta-original-filename%3Bx-amz-meta-owner%3Bx-amz-tagging"
    )


def test_with_the_hoisting_client_every_put_goes_through_botocore(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given the client whose hook moves x-amz-* headers into the query: botocore signs them there,
    # not as the headers asked for, so no template matches and each URL is botocore's own
    client = client_for(ENVIRONMENTS["local-path-style"][0], monkeypatch, None)
    puts = small_files()[:3]
    urls = UrlSigner(client).presign_puts("local-bucket", puts, expires_in=900)
    assert urls == [botocore_put_url(client, "local-bucket", put) for put in puts]


def test_a_header_put_object_does_not_take_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    client = client_for(ENVIRONMENTS["local-path-style"][0], monkeypatch, None)
    put = PutToPresign(key="uploads/o/k/a.png", headers={"x-amz-copy-source": "elsewhere"})
    with pytest.raises(ValueError, match="x-amz-copy-source"):
        UrlSigner(client).presign_puts("local-bucket", [put], expires_in=900)
