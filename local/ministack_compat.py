"""Brings the embedded S3 (MiniStack 1.5.33) closer to real S3 where this project depends on it.

- Real S3 applies the `x-amz-tagging` header of CreateMultipartUpload to the completed object and
  the `tagging` field (an XML tag set) of a browser POST form to the new object; MiniStack ignores
  both, so every new object would miss its `upload-status=pending` tag locally.
- Real S3 honours `Range` on a GET of a specific version; MiniStack returns the whole version, so
  the validator's bounded reads would transfer whole objects locally.
- Real S3 refuses a presigned request carrying an `x-amz-*` header the URL did not sign (403,
  HeadersNotSigned); MiniStack accepts it, so a part URL plus `x-amz-copy-source` would copy any
  object locally, and a test could pass on what AWS refuses.
- Real S3 answers a GET with the `response-content-disposition` / `response-content-type` (and
  the other `response-*`) query parameters as the headers they name; MiniStack ignores them, so a
  download link could not be shown to force an attachment locally.
- The bucket policy's read gate (DenyReadsOfUnvalidatedUploads) is not evaluated by MiniStack;
  a presigned GET (the only reads the files function hands out) of an object under `uploads/`
  whose version is not tagged `upload-status=valid` is refused here as AWS refuses it.

This module is executed inside the MiniStack process, before it starts, and wraps those handlers.
It changes nothing else, and nothing in the deployed application depends on it.

With LOCAL_REQUEST_LOG set to a file path (the benchmarks do, bench/aws_usage.py reads it), every
HTTP request is also appended to that file as one JSON line: method, path, query parameter names,
the caller (User-Agent), the headers that tell an operation apart, status, bytes, milliseconds to
answer, and the first 16 KiB of JSON-protocol bodies (DynamoDB, SQS, EventBridge), so requests
can be counted and priced. Unset (the default), nothing is wrapped.
"""

from __future__ import annotations

import json
import os
import threading
import time
from typing import Any
from urllib.parse import parse_qsl
from xml.etree import ElementTree

from ministack.services import s3  # type: ignore[import-untyped]

_PENDING_TAGS_KEY = "_compat_tags"
_MAX_TAGS = 10

_original_create = s3._create_multipart_upload
_original_complete = s3._complete_multipart_upload
_original_post = s3._post_object
_original_get = s3._get_object
_original_verify_presigned = s3._verify_presigned_sigv4


def _upload_id_of(body: Any) -> str | None:
    try:
        root = ElementTree.fromstring(body)  # noqa: S314 - the emulator's own response
    except (ElementTree.ParseError, TypeError):
        return None
    for element in root.iter():
        if element.tag.endswith("UploadId"):
            return element.text
    return None


def _create_multipart_upload(bucket_name: str, key: str, headers: dict[str, str]) -> Any:
    result = _original_create(bucket_name, key, headers)
    tagging = headers.get("x-amz-tagging", "")
    if result[0] == 200 and tagging:
        tags = dict(parse_qsl(tagging, keep_blank_values=True))
        upload = s3._multipart_uploads.get(_upload_id_of(result[2]) or "")
        if upload is not None and len(tags) <= _MAX_TAGS:
            upload[_PENDING_TAGS_KEY] = tags
    return result


def _complete_multipart_upload(
    bucket_name: str, key: str, body: bytes, query_params: dict[str, Any], headers: dict[str, str] | None = None
) -> Any:
    upload = s3._multipart_uploads.get(s3._qp(query_params, "uploadId")) or {}
    tags = upload.get(_PENDING_TAGS_KEY)
    result = _original_complete(bucket_name, key, body, query_params, headers)
    if tags and result[0] == 200:
        s3._object_tags[(bucket_name, key, result[1].get("x-amz-version-id"))] = dict(tags)
    return result


def _form_tags(headers: dict[str, str], body: bytes) -> tuple[str, dict[str, str]] | None:
    fields = {
        str(name).lower(): value
        for name, _filename, _headers, value in s3._parse_multipart_form(headers.get("content-type", ""), body)
    }
    tagging, key = fields.get("tagging"), fields.get("key")
    if not tagging or not key:
        return None
    try:
        root = ElementTree.fromstring(tagging)  # noqa: S314 - local emulator only; expat limits entity expansion
    except ElementTree.ParseError:
        return None
    tags = {}
    for tag in root.iter():
        if tag.tag.endswith("Tag"):
            name = next((child.text for child in tag if child.tag.endswith("Key")), None)
            value = next((child.text for child in tag if child.tag.endswith("Value")), "")
            if name:
                tags[name] = value or ""
    return (key.decode() if isinstance(key, bytes) else str(key)), tags


def _post_object(bucket_name: str, body: bytes, headers: dict[str, str]) -> Any:
    result = _original_post(bucket_name, body, headers)
    if 200 <= result[0] < 300:
        found = _form_tags(headers, body)
        if found and found[1] and len(found[1]) <= _MAX_TAGS:
            key, tags = found
            s3._object_tags[(bucket_name, key, result[1].get("x-amz-version-id"))] = tags
    return result


_RESPONSE_OVERRIDES = {
    "response-content-type": "Content-Type",
    "response-content-disposition": "Content-Disposition",
    "response-content-language": "Content-Language",
    "response-content-encoding": "Content-Encoding",
    "response-cache-control": "Cache-Control",
    "response-expires": "Expires",
}


def _get_object(bucket_name: str, key: str, headers: dict[str, str], query_params: dict[str, Any] | None = None) -> Any:
    result = _range_get(bucket_name, key, headers, query_params)
    query = query_params or {}
    if result[0] not in (200, 206) or not s3._qp(query, "X-Amz-Signature", ""):
        return result
    version = s3._qp(query, "versionId", "") or result[1].get("x-amz-version-id")
    tags = s3._object_tags.get((bucket_name, key, version)) or s3._object_tags.get((bucket_name, key, None)) or {}
    if key.startswith("uploads/") and tags.get("upload-status") != "valid":
        return s3._error("AccessDenied", "Access Denied", 403, f"/{bucket_name}/{key}")
    overridden = dict(result[1])
    for parameter, header in _RESPONSE_OVERRIDES.items():
        value = s3._qp(query, parameter, "")
        if value:
            overridden = {name: text for name, text in overridden.items() if name.lower() != header.lower()}
            overridden[header] = value
    return (result[0], overridden, result[2])


def _range_get(bucket_name: str, key: str, headers: dict[str, str], query_params: dict[str, Any] | None) -> Any:
    result = _original_get(bucket_name, key, headers, query_params)
    range_header = headers.get("range", "")
    if result[0] != 200 or not range_header or not s3._qp(query_params or {}, "versionId", ""):
        return result
    response_headers, body = result[1], result[2]
    if not isinstance(body, bytes | bytearray):
        return result
    span = s3._parse_range(range_header, len(body))
    if span is None:
        return (416, {"Content-Type": "application/xml", "Content-Range": f"bytes */{len(body)}"}, b"")
    start, end = span
    sliced = bytes(body[start : end + 1])
    # Whole-object checksums do not describe a slice (S3 omits them on 206 replies).
    kept = {name: value for name, value in response_headers.items() if not name.lower().startswith("x-amz-checksum")}
    kept["Content-Length"] = str(len(sliced))
    kept["Content-Range"] = f"bytes {start}-{end}/{len(body)}"
    return (206, kept, sliced)


def _verify_presigned_sigv4(method: str, path: str, headers: dict[str, str], query_params: dict[str, Any]) -> Any:
    error = _original_verify_presigned(method, path, headers, query_params)
    if error is not None or not s3._qp(query_params, "X-Amz-Signature", ""):
        return error
    signed = set(s3._qp(query_params, "X-Amz-SignedHeaders", "").lower().split(";"))
    unsigned = sorted(name for name in map(str.lower, headers) if name.startswith("x-amz-") and name not in signed)
    if not unsigned:
        return None
    return s3._error(
        "AccessDenied",
        "There were headers present in the request which were not signed",
        403,
        path,
        extra={"HeadersNotSigned": ", ".join(unsigned)},
    )


s3._verify_presigned_sigv4 = _verify_presigned_sigv4
s3._create_multipart_upload = _create_multipart_upload
s3._complete_multipart_upload = _complete_multipart_upload
s3._post_object = _post_object
s3._get_object = _get_object


# ---- request log (benchmarks only; off unless LOCAL_REQUEST_LOG is set)

_LOGGED_HEADERS = ("x-amz-target", "x-amz-copy-source", "content-type", "range")
_JSON_BODY_BYTES = 16384


def _credential_service(headers: dict[str, str], query: str) -> str:
    """The service a SigV4 request is signed for (``.../us-east-1/s3/aws4_request``); "" if unsigned."""
    scope = headers.get("authorization", "")
    if "Credential=" in scope:
        scope = scope.split("Credential=", 1)[1].split(",", 1)[0]
    else:
        found = dict(parse_qsl(query)).get("X-Amz-Credential", "")
        scope = found
    parts = scope.split("/")
    return parts[3] if len(parts) >= 5 else ""


def _agent(user_agent: str) -> str:
    """Who sent it: a function's logical id (``app/<id>``, see local/functions.py), else the
    User-Agent's first product (``python-requests``, ``Boto3``...)."""
    for token in user_agent.split():
        if token.startswith("app/"):
            return token[4:]
    return user_agent.split("/", 1)[0] if user_agent else ""


def _request_log(path: str) -> Any:
    # Imported here: only a benchmark's stack wraps the app (it is imported at start anyway).
    import ministack.app as ministack_app  # type: ignore[import-untyped]  # noqa: PLC0415

    original_app = ministack_app.app
    lock = threading.Lock()
    out = open(path, "a", encoding="utf-8", buffering=1)  # noqa: SIM115 - open for the process's life

    async def logged_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope.get("type") != "http":
            await original_app(scope, receive, send)
            return
        headers = {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in scope["headers"]}
        query = scope.get("query_string", b"").decode("latin-1")
        json_protocol = "x-amz-target" in headers
        record: dict[str, Any] = {
            "method": scope["method"],
            "path": scope["path"],
            "query": sorted({name for name, _ in parse_qsl(query, keep_blank_values=True)}),
            "service": _credential_service(headers, query),
            "agent": _agent(headers.get("user-agent", "")),
            "headers": {name: headers[name][:200] for name in _LOGGED_HEADERS if name in headers},
            "bytesIn": 0,
            "bytesOut": 0,
            "status": 0,
        }
        captured = bytearray()

        async def counting_receive() -> Any:
            message = await receive()
            chunk = message.get("body", b"")
            record["bytesIn"] += len(chunk)
            if json_protocol and len(captured) < _JSON_BODY_BYTES:
                captured.extend(chunk[: _JSON_BODY_BYTES - len(captured)])
            return message

        async def counting_send(message: Any) -> None:
            if message.get("type") == "http.response.start":
                record["status"] = message.get("status", 0)
            elif message.get("type") == "http.response.body":
                record["bytesOut"] += len(message.get("body", b""))
            await send(message)

        started = time.perf_counter()
        try:
            await original_app(scope, counting_receive, counting_send)
        finally:
            record["ms"] = round((time.perf_counter() - started) * 1000, 3)
            if json_protocol:
                record["body"] = captured.decode("utf-8", "replace")
            with lock:
                out.write(json.dumps(record, separators=(",", ":")) + "\n")

    ministack_app.app = logged_app
    return logged_app


if os.environ.get("LOCAL_REQUEST_LOG"):
    _request_log(os.environ["LOCAL_REQUEST_LOG"])
