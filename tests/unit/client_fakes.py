"""An in-memory upload API and S3 behind a requests transport adapter, for the client's unit tests.

``FakeBackend`` answers the native upload routes at http://api.test and part PUTs at
http://s3.test the way the real ones do (Content-MD5 and checksum headers checked against the
body, ETag = MD5 of the part, multipart ETag = MD5 of the MD5s + "-N"), and can be told to fail:
``part_faults[n]`` is a list of failures for part n's next PUTs ("500", "slowdown", "drop",
"expired", "corrupt": stored with a different ETag, "fatal": 403 SignatureDoesNotMatch);
``api_faults`` a list of statuses for the next API calls. No network, no sleeping.

Small files go as forms: ``POST /uploads/form`` (refused with 413 over ``form_max_size``) and a
multipart/form-data POST to http://s3.test/bucket, answered with the body's MD5 as ETag;
``on_form(key)`` is called before a form POST is answered.

With ``batch_route`` on, ``POST /uploads/batch`` signs whole-file PUTs to http://s3.test/bucket/<key>
(CRC32 checked against the body, a second PUT at a key refused with 412, ``put_faults`` for the next
PUTs: "500", "drop", "lost": stored but the answer lost); ``batch_slots`` is the upload slots free
(beyond them: 429 TooManyUploads with the usage). Off, the route answers 404 as an older API would.

A part body that is a file (the client streams its parts) is read ``read_block`` bytes at a time,
as urllib3 does with 16 KiB, and ``on_block(part, bytes_read)`` is called after each block.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import threading
import uuid
import zlib
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from email import policy
from email.parser import BytesParser
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

import requests
from requests.adapters import BaseAdapter
from requests.structures import CaseInsensitiveDict

API = "http://api.test"
S3 = "http://s3.test"
TOKEN = "token-for-tests"


@dataclass
class FakeUpload:
    upload_id: str
    key: str
    content_type: str
    checksum_algorithm: str | None
    parts: dict[int, tuple[str, bytes, str | None]] = field(default_factory=dict)  # number -> (etag, data, checksum)


# What S3 computes for each additional checksum (base64), by the header's algorithm name.
CHECKSUM_OF: dict[str, Callable[[bytes], str]] = {
    "sha256": lambda body: base64.b64encode(hashlib.sha256(body).digest()).decode(),
    "crc32": lambda body: base64.b64encode(zlib.crc32(body).to_bytes(4, "big")).decode(),
}


def md5_hex(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()  # noqa: S324 - S3's ETag


class FakeBackend(BaseAdapter):
    def __init__(self, *, min_part_size: int = 5, default_part_size: int = 8) -> None:
        super().__init__()
        self.min_part_size = min_part_size
        self.default_part_size = default_part_size
        self.uploads: dict[str, FakeUpload] = {}
        self.objects: dict[str, bytes] = {}
        self.part_faults: dict[int, list[str]] = defaultdict(list)
        self.api_faults: list[int] = []
        self.put_log: list[tuple[int, str]] = []  # (part number, outcome)
        self.api_log: list[tuple[str, str]] = []
        self.signed: list[int] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.complete_etag_override: str | None = None
        # The validator's verdict per key (status, reason); a stored object without one is valid.
        self.verdicts: dict[str, tuple[str, str | None]] = {}
        self.deleted: list[str] = []
        self.kms = False
        self.on_put: Any = None  # called with the part number before a PUT is answered
        self.on_form: Any = None  # called with the key before a form POST is answered
        self.form_max_size = 1 << 30
        self.form_posts: list[str] = []  # keys stored by form POSTs
        self.batch_route = False
        self.batch_slots: int | None = None
        self.batches: list[int] = []  # files per POST /uploads/batch answered
        self.whole_puts: list[str] = []  # keys stored by batch PUTs
        self.put_faults: list[str] = []
        self.read_block = 2
        self.on_block: Any = None  # called with (part number, bytes read so far) while a body is read
        self._lock = threading.Lock()

    # ---- transport

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        url = urlsplit(request.url or "")
        if f"{url.scheme}://{url.netloc}" == S3:
            return self._s3(request, url)
        body = request.body if isinstance(request.body, bytes) else (request.body or "").encode()
        return self._api(request, url, body)

    def close(self) -> None:
        pass

    # ---- S3

    def _s3(self, request: requests.PreparedRequest, url: Any) -> requests.Response:
        query = {name: values[0] for name, values in parse_qs(url.query).items()}
        if "download" in query:  # a download link of GET /files/{fileId}
            key = unquote(url.path.split("/", 2)[2])
            data = self.objects.get(key)
            if data is None:
                return xml_error(404, "NoSuchKey", "gone")
            streamed = response(200, b"", {"ETag": f'"{md5_hex(data)}"', "Content-Length": str(len(data))})
            streamed._content = False  # read from raw, as a streamed download is
            streamed.raw = io.BytesIO(data)
            return streamed
        if request.method == "POST":
            return self._s3_form(request)
        if "put" in query:
            return self._s3_whole_put(request, unquote(url.path.split("/", 2)[2]))
        number = int(query["partNumber"])
        with self._lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            fault = self.part_faults[number].pop(0) if self.part_faults[number] else None
        try:
            if self.on_put is not None:
                self.on_put(number)
            body = self._read_body(request, number)
            return self._s3_put(request, query, number, body, fault)
        finally:
            with self._lock:
                self.in_flight -= 1

    def _s3_form(self, request: requests.PreparedRequest) -> requests.Response:
        body = request.body if isinstance(request.body, bytes) else (request.body or "").encode()
        header = f"Content-Type: {request.headers['Content-Type']}\r\n\r\n".encode()
        message = BytesParser(policy=policy.HTTP).parsebytes(header + body)
        fields: dict[str, bytes] = {}
        for part in message.iter_parts():
            fields[str(part.get_param("name", header="content-disposition"))] = part.get_payload(decode=True)  # type: ignore[attr-defined]
        key = fields["key"].decode()
        with self._lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.on_form is not None:
                self.on_form(key)
        finally:
            with self._lock:
                self.in_flight -= 1
        data = fields["file"]
        with self._lock:
            self.objects[key] = data
            self.form_posts.append(key)
        return response(204, b"", {"ETag": f'"{md5_hex(data)}"', "Location": f"{S3}/bucket/{quote(key)}"})

    def _s3_whole_put(self, request: requests.PreparedRequest, key: str) -> requests.Response:
        body = request.body if isinstance(request.body, bytes) else (request.body or "").encode()
        headers = CaseInsensitiveDict(request.headers)
        with self._lock:
            fault = self.put_faults.pop(0) if self.put_faults else None
        if fault == "drop":
            raise requests.exceptions.ConnectionError("connection dropped (fake)")
        if fault == "500":
            return xml_error(500, "InternalError", "We encountered an internal error.")
        if headers.get("x-amz-checksum-crc32") != CHECKSUM_OF["crc32"](body):
            return xml_error(400, "BadDigest", "The CRC32 you specified did not match.")
        with self._lock:
            if headers.get("If-None-Match") == "*" and key in self.objects:
                return xml_error(412, "PreconditionFailed", "At least one of the pre-conditions did not hold")
            self.objects[key] = body
            self.whole_puts.append(key)
        if fault == "lost":
            raise requests.exceptions.ReadTimeout("the answer was lost (fake)")
        return response(200, b"", {"ETag": f'"{md5_hex(body)}"'})

    def _batch(self, data: Mapping[str, Any]) -> requests.Response:
        if not self.batch_route:
            return json_response(404, {"message": "Not Found"})
        files = data["files"]
        for file in files:
            refused = self._refuse_type(file)
            if refused is not None:
                return refused
            if file["size"] > self.form_max_size:
                return json_response(413, {"code": "UploadTooLarge", "message": "too large for one request"})
        if self.batch_slots is not None and len(files) > self.batch_slots:
            usage = {"uploadsInFlight": 10 - self.batch_slots, "maxUploads": 10}
            return json_response(429, {"code": "TooManyUploads", "message": "too many", "usage": usage})
        if self.batch_slots is not None:
            self.batch_slots -= len(files)
        self.batches.append(len(files))
        signed = []
        for file in files:
            key = f"uploads/tester/{uuid.uuid4().hex}/{file['filename']}"
            headers = {
                "Content-Type": file["contentType"],
                "x-amz-checksum-crc32": file["checksumCrc32"],
                "If-None-Match": "*",
            }
            signed.append(
                {
                    "fileId": key.split("/")[-2],
                    "key": key,
                    "url": f"{S3}/bucket/{quote(key)}?put=1&X-Amz-Signature=s",
                    "headers": headers,
                    "size": file["size"],
                }
            )
        return json_response(201, {"files": signed, "expiresAt": "2026-01-01T00:15:00Z"})

    def _read_body(self, request: requests.PreparedRequest, number: int) -> bytes:
        body: Any = request.body
        if not hasattr(body, "read"):
            return body if isinstance(body, bytes) else (body or "").encode()
        assert request.headers.get("Content-Length") == str(len(body)), "a streamed part needs its Content-Length"
        blocks: list[bytes] = []
        while block := body.read(self.read_block):
            blocks.append(block)
            if self.on_block is not None:
                self.on_block(number, sum(map(len, blocks)))
        return b"".join(blocks)

    def _s3_put(
        self, request: requests.PreparedRequest, query: dict[str, str], number: int, body: bytes, fault: str | None
    ) -> requests.Response:
        self.put_log.append((number, fault or "ok"))
        if fault == "drop":
            raise requests.exceptions.ConnectionError("connection dropped (fake)")
        if fault == "500":
            return xml_error(500, "InternalError", "We encountered an internal error.")
        if fault == "slowdown":
            return xml_error(503, "SlowDown", "Please reduce your request rate.", {"Retry-After": "1"})
        if fault == "expired":
            return xml_error(403, "AccessDenied", "Request has expired")
        if fault == "fatal":
            return xml_error(403, "SignatureDoesNotMatch", "The request signature we calculated does not match")
        upload = self.uploads.get(query["uploadId"])
        if upload is None:
            return xml_error(404, "NoSuchUpload", "The specified upload does not exist.")
        headers = CaseInsensitiveDict(request.headers)
        if "Content-MD5" in headers and headers["Content-MD5"] != base64.b64encode(hashlib.md5(body).digest()).decode():  # noqa: S324
            return xml_error(400, "BadDigest", "The Content-MD5 you specified did not match what we received.")
        name, checksum = next(
            ((name, headers[f"x-amz-checksum-{name}"]) for name in CHECKSUM_OF if f"x-amz-checksum-{name}" in headers),
            ("", None),
        )
        if checksum is not None and checksum != CHECKSUM_OF[name](body):
            return xml_error(400, "BadDigest", f"The {name.upper()} you specified did not match.")
        if upload.checksum_algorithm and checksum is None:
            return xml_error(400, "InvalidRequest", "checksum required")
        etag = md5_hex(body) if not self.kms else uuid.uuid4().hex
        if fault == "corrupt":
            etag = md5_hex(body + b"!")
        upload.parts[number] = (f'"{etag}"', body, checksum)
        answer = {"ETag": f'"{etag}"'}
        if self.kms:
            answer["x-amz-server-side-encryption"] = "aws:kms"
        if checksum is not None:
            answer[f"x-amz-checksum-{name}"] = checksum
        return response(200, b"", answer)

    # ---- API

    def _api(self, request: requests.PreparedRequest, url: Any, body: bytes) -> requests.Response:
        method, path = request.method or "GET", url.path
        self.api_log.append((method, path))
        if request.headers.get("Authorization") != f"Bearer {TOKEN}":
            return response(401, json.dumps({"message": "Unauthorized"}).encode())
        if self.api_faults:
            status = self.api_faults.pop(0)
            return response(status, json.dumps({"message": "Service Unavailable"}).encode())
        data: Any = json.loads(body) if body else {}
        query = {name: values[0] for name, values in parse_qs(url.query).items()}
        segments = [unquote(segment) for segment in path.strip("/").split("/")]
        if method == "POST" and segments == ["uploads"]:
            return self._create(data)
        if method == "POST" and segments == ["uploads", "form"]:
            return self._form(data)
        if method == "POST" and segments == ["uploads", "batch"]:
            return self._batch(data)
        if method == "GET" and segments == ["uploads"]:
            pending = [
                {"uploadId": u.upload_id, "key": u.key, "initiated": f"2026-01-01T00:00:{i:02d}Z"}
                for i, u in enumerate(self.uploads.values())
            ]
            return json_response(200, {"uploads": pending})
        if segments[0] == "files":
            return self._files(method, segments[1:], query)
        upload = self.uploads.get(segments[1]) if len(segments) > 1 else None
        key = data.get("key") or query.get("key")
        if upload is None or upload.key != key:
            if method == "DELETE":
                return response(204, b"")
            return json_response(404, {"code": "NoSuchUpload", "message": "upload not found"})
        if method == "POST" and segments[2:] == ["parts"]:
            return self._sign(upload, data)
        if method == "GET" and segments[2:] == ["parts"]:
            listed = []
            for number, (etag, part, checksum) in sorted(upload.parts.items()):
                item: dict[str, Any] = {"partNumber": number, "etag": etag, "size": len(part)}
                if checksum:
                    item["checksum"] = checksum
                listed.append(item)
            return json_response(200, {"parts": listed})
        if method == "POST" and segments[2:] == ["complete"]:
            return self._complete(upload, data)
        if method == "DELETE":
            del self.uploads[upload.upload_id]
            return response(204, b"")
        return json_response(404, {"code": "NotFound", "message": "no such route"})

    def _file(self, key: str) -> dict[str, Any]:
        status, reason = self.verdicts.get(key, ("valid", None))
        return {
            "fileId": key.split("/")[-2],
            "key": key,
            "name": key.rsplit("/", 1)[-1],
            "size": len(self.objects[key]),
            "contentType": "image/jpeg",
            "status": status,
            "reason": reason,
            "createdAt": "2026-01-01T00:00:00Z",
        }

    def _files(self, method: str, segments: list[str], query: Mapping[str, str]) -> requests.Response:
        if not segments:
            listed = [self._file(key) for key in reversed(self.objects)]
            return json_response(200, {"files": [f for f in listed if f["status"] == query.get("status", f["status"])]})
        key = next((key for key in self.objects if key.split("/")[-2] == segments[0]), None)
        if key is None:
            return json_response(404, {"code": "NoSuchFile", "message": "no such file"})
        if method == "DELETE":
            self.deleted.append(key)
            del self.objects[key]
            return response(204, b"")
        body = self._file(key)
        if segments[1:] == ["status"]:
            return json_response(200, body)
        if body["status"] != "valid":
            return json_response(409 if body["status"] == "pending" else 410, {"code": "No", "message": "no link"})
        body["download"] = {"url": f"{S3}/bucket/{quote(key)}?download=1", "expiresAt": "2026-01-01T00:05:00Z"}
        return json_response(200, body)

    def _form(self, data: Mapping[str, Any]) -> requests.Response:
        refused = self._refuse_type(data)
        if refused is not None:
            return refused
        if data["size"] > self.form_max_size:
            return json_response(413, {"code": "TooLarge", "message": "too large for a form"})
        key = f"uploads/tester/{uuid.uuid4().hex}/{data['filename']}"
        return json_response(201, {"url": f"{S3}/bucket", "fields": {"key": key, "policy": "signed"}, "key": key})

    def _refuse_type(self, data: Mapping[str, Any]) -> requests.Response | None:
        if str(data["contentType"]).startswith("image/"):
            return None
        return json_response(
            415, {"code": "UnsupportedContentType", "message": f"content type {data['contentType']!r} is not allowed"}
        )

    def _create(self, data: Mapping[str, Any]) -> requests.Response:
        refused = self._refuse_type(data)
        if refused is not None:
            return refused
        part_size = data.get("partSize") or self.default_part_size
        if part_size < self.min_part_size:
            return json_response(400, {"code": "InvalidPartSize", "message": "partSize too small"})
        upload_id = uuid.uuid4().hex + "/+="  # characters that must be escaped in a path
        key = f"uploads/tester/{uuid.uuid4().hex}/{data['filename']}"
        self.uploads[upload_id] = FakeUpload(upload_id, key, data["contentType"], data.get("checksumAlgorithm"))
        count = max(1, -(-data["size"] // part_size))
        body = {"uploadId": upload_id, "key": key, "partSize": part_size, "partCount": count}
        if data.get("checksumAlgorithm"):
            body["checksumAlgorithm"] = data["checksumAlgorithm"]
        return json_response(201, body)

    def _sign(self, upload: FakeUpload, data: Mapping[str, Any]) -> requests.Response:
        parts = []
        for item in data.get("parts") or [{"partNumber": n} for n in data.get("partNumbers") or []]:
            number = item["partNumber"]
            self.signed.append(number)
            headers = {}
            if item.get("contentMd5"):
                headers["Content-MD5"] = item["contentMd5"]
            if item.get("checksum"):
                headers[f"x-amz-checksum-{str(upload.checksum_algorithm).lower()}"] = item["checksum"]
            url = f"{S3}/bucket/{quote(upload.key)}?uploadId={quote(upload.upload_id, safe='')}&partNumber={number}"
            parts.append({"partNumber": number, "url": url, "headers": headers})
        return json_response(200, {"parts": parts, "expiresAt": "2026-01-01T00:15:00Z"})

    def _complete(self, upload: FakeUpload, data: Mapping[str, Any]) -> requests.Response:
        chosen = sorted(data["parts"], key=lambda part: part["partNumber"])
        blob = b"".join(upload.parts[part["partNumber"]][1] for part in chosen)
        digests = b"".join(hashlib.md5(upload.parts[part["partNumber"]][1]).digest() for part in chosen)  # noqa: S324
        etag = self.complete_etag_override or f"{md5_hex(digests)}-{len(chosen)}"
        self.objects[upload.key] = blob
        del self.uploads[upload.upload_id]
        return json_response(
            200, {"key": upload.key, "etag": f'"{etag}"', "size": len(blob), "location": f"{S3}/bucket/{upload.key}"}
        )

    # ---- helpers for tests

    def session(self) -> requests.Session:
        session = requests.Session()
        session.trust_env = False
        session.mount(API, self)
        session.mount(S3, self)
        return session

    def puts_of(self, number: int) -> list[str]:
        return [outcome for part, outcome in self.put_log if part == number]


def response(status: int, body: bytes, headers: Mapping[str, str] | None = None) -> requests.Response:
    answer = requests.Response()
    answer.status_code = status
    answer._content = body
    answer.headers = CaseInsensitiveDict(headers or {})
    answer.reason = {200: "OK", 201: "Created", 204: "No Content", 401: "Unauthorized"}.get(status, "Error")
    return answer


def json_response(status: int, body: Any) -> requests.Response:
    return response(status, json.dumps(body).encode(), {"Content-Type": "application/json"})


def xml_error(status: int, code: str, message: str, headers: Mapping[str, str] | None = None) -> requests.Response:
    xml = f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code><Message>{message}</Message></Error>'
    return response(status, xml.encode(), {"Content-Type": "application/xml", **(headers or {})})
