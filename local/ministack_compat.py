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
"""

from __future__ import annotations

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
