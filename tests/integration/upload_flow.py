"""Drives the native upload API the way a client does, with a plain HTTP client for the bytes."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import requests

MIB = 1024 * 1024


def pattern(size: int, seed: int = 7) -> bytes:
    """Deterministic bytes where a misplaced or duplicated part changes the content."""
    block = hashlib.sha256(str(seed).encode()).digest() * 2048  # 64 KiB of varied bytes
    repeats, rest = divmod(size, len(block))
    data = bytearray()
    for index in range(repeats):
        data += bytes((b + index) % 256 for b in block[:16]) + block[16:]
    return bytes(data + block[:rest])


def md5_b64(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data).digest()).decode()  # noqa: S324 - S3's Content-MD5


def sha256_b64(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def create(api: Any, data: bytes, *, user: str = "alice", **extra: Any) -> dict[str, Any]:
    body = {"filename": "photo.jpg", "contentType": "image/jpeg", "size": len(data), **extra}
    response = api.request("POST", "/uploads", user=user, json=body)
    assert response.status_code == 201, response.text
    return dict(response.json())


def sign(api: Any, upload: dict[str, Any], numbers: list[int], *, user: str = "alice", **extra: Any) -> dict[int, Any]:
    response = api.request(
        "POST",
        f"/uploads/{upload['uploadId']}/parts",
        user=user,
        json={"key": upload["key"], "partNumbers": numbers, **extra},
    )
    assert response.status_code == 200, response.text
    return {part["partNumber"]: part for part in response.json()["parts"]}


def chunk(data: bytes, upload: dict[str, Any], number: int) -> bytes:
    size = upload["partSize"]
    return data[(number - 1) * size : number * size]


def put_part(part: dict[str, Any], body: bytes) -> requests.Response:
    return requests.put(part["url"], data=body, headers=part.get("headers") or {}, timeout=60)


def upload_all(api: Any, data: bytes, *, user: str = "alice") -> tuple[dict[str, Any], dict[str, Any]]:
    upload = create(api, data, user=user)
    numbers = list(range(1, upload["partCount"] + 1))
    signed = sign(api, upload, numbers, user=user)
    parts = []
    for number in numbers:
        response = put_part(signed[number], chunk(data, upload, number))
        assert response.status_code == 200, response.text
        parts.append({"partNumber": number, "etag": response.headers["ETag"]})
    response = api.request(
        "POST", f"/uploads/{upload['uploadId']}/complete", user=user, json={"key": upload["key"], "parts": parts}
    )
    assert response.status_code == 200, response.text
    return upload, response.json()
