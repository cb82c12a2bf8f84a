"""Faults in the embedded S3 while the API creates, signs, completes and imports.

A reverse proxy on 127.0.0.1 stands in front of MiniStack, and the functions' S3 endpoint is
pointed at it (so are the part URLs they sign; the proxy forwards the Host header untouched, so
signatures still verify). Per S3 operation it can answer with S3's own errors (500
InternalError, 503 SlowDown), reset the connection, or stall past the client's read timeout;
before forwarding the request, or after S3 has acted on it (a lost answer).

Every outcome must be a clean JSON error (502, 503, 504) or a retried success, with no
multipart upload left behind for nobody to finish, and no object that is not the whole file.
The functions get short S3 timeouts here (S3_READ_TIMEOUT_SECONDS=1, two attempts), as a
deployment sets them to fit the function's Timeout, so that a stall costs seconds.
"""

from __future__ import annotations

import http.client
import socket
import struct
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from local.stack import LocalStack
from tests.import_support import Reply, SourceServer, png_of_size
from tests.stack_limits import GENEROUS_LIMITS

pytestmark = pytest.mark.integration

MIB = 1024 * 1024
READ_TIMEOUT_SECONDS = 1.0
STALL_SECONDS = 3.0  # longer than the read timeout: the client gives up first
TIMEOUT = 60
FAULT_ENV = {
    "S3_CONNECT_TIMEOUT_SECONDS": "1",
    "S3_READ_TIMEOUT_SECONDS": str(READ_TIMEOUT_SECONDS),
    "S3_MAX_ATTEMPTS": "2",
}
_S3_ERRORS = {
    500: ("InternalError", "We encountered an internal error. Please try again."),
    503: ("SlowDown", "Please reduce your request rate."),
}
_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "proxy-connection"}


# --------------------------------------------------------------------------- the fault proxy


def s3_operation(method: str, target: str) -> str:
    """The S3 API operation of a path-style request."""
    query = parse_qs(urlsplit(target).query, keep_blank_values=True)
    has_key = urlsplit(target).path.strip("/").count("/") >= 1
    if "uploadId" in query:
        return {
            "PUT": "UploadPart",
            "GET": "ListParts",
            "POST": "CompleteMultipartUpload",
            "DELETE": "AbortMultipartUpload",
        }.get(method, "Other")
    if "uploads" in query:
        return "CreateMultipartUpload" if has_key and method == "POST" else "ListMultipartUploads"
    if "tagging" in query:
        return "Tagging"
    if method == "PUT" and has_key:
        return "PutObject"
    if method == "HEAD":
        return "HeadObject"
    return "Other"


@dataclass
class Fault:
    """What to do to requests of one S3 operation.

    kind: "500" or "503" (S3's error document), "reset" (the connection is reset, no answer),
    "stall" (no answer for STALL_SECONDS, then the connection is closed). after: forward the
    request to S3 first, so S3 acts on it and only its answer is lost. times: how many matching
    requests to hit (None: all of them).
    """

    operation: str
    kind: str
    after: bool = False
    times: int | None = None
    hits: int = 0


@dataclass
class Seen:
    operation: str
    injected: str | None


@dataclass
class FaultProxy:
    upstream: str
    faults: list[Fault] = field(default_factory=list)
    seen: list[Seen] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        upstream = urlsplit(self.upstream)
        self._upstream = (upstream.hostname or "127.0.0.1", upstream.port or 80)
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def handle_one(self) -> None:
                proxy._serve(self)

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = handle_one

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def __enter__(self) -> FaultProxy:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def inject(self, *faults: Fault) -> None:
        with self._lock:
            self.faults = list(faults)
            self.seen = []

    def clear(self) -> None:
        self.inject()

    def injected(self, operation: str) -> int:
        with self._lock:
            return sum(1 for seen in self.seen if seen.operation == operation and seen.injected)

    def _choose(self, operation: str) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if fault.operation == operation and (fault.times is None or fault.hits < fault.times):
                    fault.hits += 1
                    self.seen.append(Seen(operation, fault.kind))
                    return fault
            self.seen.append(Seen(operation, None))
            return None

    def _serve(self, handler: BaseHTTPRequestHandler) -> None:
        body = _read_body(handler)
        fault = self._choose(s3_operation(handler.command, handler.path))
        if fault is None or fault.after:
            status, headers, payload = self._forward(handler, body)
            if fault is None:
                _answer(handler, status, headers, payload)
                return
        assert fault is not None
        if fault.kind in ("500", "503"):
            code, message = _S3_ERRORS[int(fault.kind)]
            document = (
                f'<?xml version="1.0" encoding="UTF-8"?><Error><Code>{code}</Code><Message>{message}</Message></Error>'
            )
            _answer(handler, int(fault.kind), [("Content-Type", "application/xml")], document.encode())
        elif fault.kind == "reset":
            _reset(handler)
        elif fault.kind == "stall":
            time.sleep(STALL_SECONDS)
            _reset(handler)
        else:  # pragma: no cover - a typo in a test
            raise ValueError(fault.kind)

    def _forward(self, handler: BaseHTTPRequestHandler, body: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
        connection = http.client.HTTPConnection(*self._upstream, timeout=TIMEOUT)
        try:
            # The Host header is forwarded as the client sent it: it is part of the signature.
            connection.putrequest(handler.command, handler.path, skip_host=True, skip_accept_encoding=True)
            for name, value in handler.headers.items():
                if name.lower() not in _HOP_BY_HOP and name.lower() != "content-length":
                    connection.putheader(name, value)
            if body or handler.command in ("PUT", "POST"):
                connection.putheader("Content-Length", str(len(body)))
            connection.endheaders(body)
            response = connection.getresponse()
            payload = response.read()
            headers = [(k, v) for k, v in response.getheaders() if k.lower() not in _HOP_BY_HOP]
            return response.status, headers, payload
        finally:
            connection.close()


def _read_body(handler: BaseHTTPRequestHandler) -> bytes:
    if handler.headers.get("transfer-encoding", "").lower() == "chunked":
        chunks = []
        while size := int(handler.rfile.readline().split(b";")[0].strip() or b"0", 16):
            chunks.append(handler.rfile.read(size))
            handler.rfile.readline()
        while handler.rfile.readline() not in (b"\r\n", b"\n", b""):
            pass
        return b"".join(chunks)
    length = int(handler.headers.get("content-length") or 0)
    return handler.rfile.read(length) if length else b""


def _answer(handler: BaseHTTPRequestHandler, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
    handler.send_response_only(status)
    has_length = False
    for name, value in headers:
        has_length = has_length or name.lower() == "content-length"
        if handler.command == "HEAD" or name.lower() != "content-length":
            handler.send_header(name, value)
    if handler.command != "HEAD":
        handler.send_header("Content-Length", str(len(body)))
    elif not has_length:
        handler.send_header("Content-Length", "0")
    handler.end_headers()
    if handler.command != "HEAD":
        handler.wfile.write(body)


def _reset(handler: BaseHTTPRequestHandler) -> None:
    """Close with a TCP reset: linger on, zero seconds."""
    handler.close_connection = True
    handler.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    handler.connection.close()


# --------------------------------------------------------------------------- the stack behind it


@dataclass
class FaultyWorld:
    stack: LocalStack
    proxy: FaultProxy
    source: SourceServer
    s3: Any
    user: str = "nobody"

    def call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        headers = {"Authorization": f"Bearer {self.stack.token_for(self.user)}"}
        return requests.request(method, self.stack.api_url + path, headers=headers, timeout=TIMEOUT, **kwargs)

    def pending(self) -> list[dict[str, Any]]:
        """Unfinished multipart uploads under the user's prefix, asked of MiniStack directly."""
        listed = self.s3.list_multipart_uploads(Bucket=self.stack.bucket, Prefix=f"uploads/{self.user}/")
        return list(listed.get("Uploads", []))

    def objects(self) -> dict[str, bytes]:
        prefix = f"uploads/{self.user}/"
        listed = self.s3.list_objects_v2(Bucket=self.stack.bucket, Prefix=prefix).get("Contents", [])
        return {
            item["Key"]: self.s3.get_object(Bucket=self.stack.bucket, Key=item["Key"])["Body"].read() for item in listed
        }


@pytest.fixture(scope="module")
def world() -> Iterator[FaultyWorld]:
    with SourceServer() as source:
        overrides = {"IMPORT_ALLOWED_DESTINATIONS": source.authority, "IMPORT_TIMEOUT_SECONDS": "20"}
        with (
            LocalStack(
                s3_port=0, api_port=0, env_overrides=overrides, s3_events=False, parameter_overrides=GENEROUS_LIMITS
            ) as stack,
            FaultProxy(stack.s3_endpoint) as proxy,
        ):
            assert stack.functions is not None
            for function in ("UploadsFunction", "ImportsFunction"):
                # Workers start on the first request, with the pool's environment as it is then.
                environment = stack.functions.pool(function).environment
                environment.update({"S3_ENDPOINT_URL": proxy.url, "AWS_ENDPOINT_URL_S3": proxy.url, **FAULT_ENV})
            yield FaultyWorld(stack, proxy, source, stack.s3_client())


@pytest.fixture
def faulty(world: FaultyWorld) -> Iterator[FaultyWorld]:
    """The world with no fault injected yet, and a user of the test's own (leftovers are its)."""
    world.proxy.clear()
    world.user = f"f-{uuid.uuid4().hex[:16]}"
    yield world
    world.proxy.clear()


def assert_clean_error(response: requests.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert response.json() == {"code": code, "message": response.json()["message"]}
    assert "Traceback" not in response.text


PAYLOAD = png_of_size(6 * MIB + 123)  # two parts of 5 MiB: the last one short


def create(world: FaultyWorld) -> requests.Response:
    body = {"filename": "f.png", "contentType": "image/png", "size": len(PAYLOAD), "partSize": 5 * MIB}
    return world.call("POST", "/uploads", json=body)


def send_parts(world: FaultyWorld, upload: dict[str, Any]) -> None:
    signed = world.call(
        "POST", f"/uploads/{upload['uploadId']}/parts", json={"key": upload["key"], "partNumbers": [1, 2]}
    )
    assert signed.status_code == 200, signed.text
    for part in signed.json()["parts"]:
        start = (part["partNumber"] - 1) * 5 * MIB
        put = requests.put(part["url"], data=PAYLOAD[start : start + 5 * MIB], headers=part["headers"], timeout=TIMEOUT)
        assert put.status_code == 200, put.text


def complete(world: FaultyWorld, upload: dict[str, Any]) -> requests.Response:
    return world.call("POST", f"/uploads/{upload['uploadId']}/complete", json={"key": upload["key"]})


# --------------------------------------------------------------------------- create


@pytest.mark.parametrize(
    "fault",
    [
        Fault("CreateMultipartUpload", "500", times=1),
        Fault("CreateMultipartUpload", "503", times=1),
        Fault("CreateMultipartUpload", "reset", times=1),
        Fault("CreateMultipartUpload", "reset", after=True, times=1),
        Fault("CreateMultipartUpload", "stall", after=True, times=1),
    ],
    ids=["500-once", "slowdown-once", "reset-once", "answer-lost-once", "stalled-after-creating-once"],
)
def test_create_survives_one_failure_and_leaves_one_upload(faulty: FaultyWorld, fault: Fault) -> None:
    world, proxy = faulty, faulty.proxy
    # Given S3 fails the first CreateMultipartUpload
    proxy.inject(fault)
    # When a client starts an upload
    response = create(world)
    # Then the client's retry succeeded, and the only upload at S3 is the one the caller got
    assert response.status_code == 201, response.text
    assert proxy.injected("CreateMultipartUpload") == 1
    assert [u["UploadId"] for u in world.pending()] == [response.json()["uploadId"]]
    # And that upload works to the end
    proxy.clear()
    send_parts(world, response.json())
    assert complete(world, response.json()).status_code == 200
    assert world.objects() == {response.json()["key"]: PAYLOAD}


@pytest.mark.parametrize(
    ("fault", "status", "code"),
    [
        (Fault("CreateMultipartUpload", "500"), 502, "StorageError"),
        (Fault("CreateMultipartUpload", "503"), 503, "StorageBusy"),
        (Fault("CreateMultipartUpload", "reset"), 502, "StorageUnavailable"),
        (Fault("CreateMultipartUpload", "reset", after=True), 502, "StorageUnavailable"),
        (Fault("CreateMultipartUpload", "stall"), 504, "StorageTimeout"),
        (Fault("CreateMultipartUpload", "stall", after=True), 504, "StorageTimeout"),
    ],
    ids=["500", "slowdown", "reset", "answers-lost", "stalled", "stalled-after-creating"],
)
def test_create_failing_for_good_is_a_clean_error_and_leaves_no_upload(
    faulty: FaultyWorld, fault: Fault, status: int, code: str
) -> None:
    world, proxy = faulty, faulty.proxy
    # Given S3 fails every CreateMultipartUpload (after creating the upload, in the *after* cases)
    proxy.inject(fault)
    # When a client starts an upload
    response = create(world)
    # Then it gets a clean JSON error, after the client's retries
    assert_clean_error(response, status, code)
    assert proxy.injected("CreateMultipartUpload") == int(FAULT_ENV["S3_MAX_ATTEMPTS"])
    # And nothing is left at S3: uploads created by attempts whose answer was lost were aborted
    assert world.pending() == []
    assert world.objects() == {}


# --------------------------------------------------------------------------- sign


@pytest.mark.parametrize(
    "fault",
    [Fault("ListParts", "500"), Fault("ListParts", "503"), Fault("ListParts", "reset"), Fault("ListParts", "stall")],
    ids=["500", "slowdown", "reset", "stalled"],
)
def test_signing_needs_no_s3_call_so_it_works_while_s3_fails(faulty: FaultyWorld, fault: Fault) -> None:
    world, proxy = faulty, faulty.proxy
    # Given an upload, and S3 failing every request of the kind signing used to make (ListParts)
    upload = create(world).json()
    proxy.inject(fault)
    # When the client asks for part URLs / Then it gets them: the registry's plan proves the
    # upload is the caller's, and presigning is local computation
    response = world.call(
        "POST", f"/uploads/{upload['uploadId']}/parts", json={"key": upload["key"], "partNumbers": [1, 2]}
    )
    assert response.status_code == 200, response.text
    assert [part["partNumber"] for part in response.json()["parts"]] == [1, 2]
    assert proxy.injected("ListParts") == 0
    # And once S3 recovers, the same upload completes with the whole file
    proxy.clear()
    send_parts(world, upload)
    assert complete(world, upload).status_code == 200
    assert world.objects() == {upload["key"]: PAYLOAD}
    assert world.pending() == []


# --------------------------------------------------------------------------- complete


@pytest.mark.parametrize(
    "fault",
    [
        Fault("CompleteMultipartUpload", "500", times=1),
        Fault("CompleteMultipartUpload", "reset", times=1),
        Fault("CompleteMultipartUpload", "reset", after=True, times=1),
        Fault("CompleteMultipartUpload", "reset", after=True),
        Fault("CompleteMultipartUpload", "stall", after=True, times=1),
        Fault("ListParts", "500", times=1),
    ],
    ids=["500-once", "reset-once", "answer-lost-once", "answers-lost", "stalled-after-completing", "listing-500-once"],
)
def test_complete_survives_failures_s3_recovers_from(faulty: FaultyWorld, fault: Fault) -> None:
    world, proxy = faulty, faulty.proxy
    # Given an upload with every part sent, and S3 failing while completing it
    upload = create(world).json()
    send_parts(world, upload)
    proxy.inject(fault)
    # When the client completes it
    response = complete(world, upload)
    # Then it is completed (retried, or found complete when only S3's answer was lost)
    assert response.status_code == 200, response.text
    assert response.json()["size"] == len(PAYLOAD)
    assert proxy.injected(fault.operation) >= 1
    # And the object is the whole file, and no upload is left
    assert world.objects() == {upload["key"]: PAYLOAD}
    assert world.pending() == []


@pytest.mark.parametrize(
    ("fault", "status", "code"),
    [
        (Fault("CompleteMultipartUpload", "500"), 502, "StorageError"),
        (Fault("CompleteMultipartUpload", "503"), 503, "StorageBusy"),
        (Fault("CompleteMultipartUpload", "reset"), 502, "StorageUnavailable"),
        (Fault("CompleteMultipartUpload", "stall"), 504, "StorageTimeout"),
        (Fault("ListParts", "stall"), 504, "StorageTimeout"),
    ],
    ids=["500", "slowdown", "reset", "stalled", "listing-stalled"],
)
def test_complete_failing_for_good_is_a_clean_error_with_no_half_object_and_can_be_retried(
    faulty: FaultyWorld,
    fault: Fault,
    status: int,
    code: str,
) -> None:
    world, proxy = faulty, faulty.proxy
    # Given an upload with every part sent, and S3 failing every attempt to complete it
    upload = create(world).json()
    send_parts(world, upload)
    proxy.inject(fault)
    # When the client completes it
    response = complete(world, upload)
    # Then it gets a clean error, and there is no object yet (not a part of one either)
    assert_clean_error(response, status, code)
    assert world.objects() == {}
    # And the upload is still the caller's to finish: completing again once S3 recovers works
    assert [u["UploadId"] for u in world.pending()] == [upload["uploadId"]]
    proxy.clear()
    assert complete(world, upload).status_code == 200
    assert world.objects() == {upload["key"]: PAYLOAD}
    assert world.pending() == []


# --------------------------------------------------------------------------- import

IMPORTED = png_of_size(12 * MIB + 5)  # more than one import part (8 MiB): a multipart upload
SMALL_IMPORT = png_of_size(64 * 1024)  # one PutObject


@pytest.mark.parametrize(
    ("fault", "size"),
    [
        (Fault("UploadPart", "500", times=1), "large"),
        (Fault("UploadPart", "reset", times=1), "large"),
        (Fault("CreateMultipartUpload", "reset", after=True, times=1), "large"),
        (Fault("CompleteMultipartUpload", "500", times=1), "large"),
        (Fault("PutObject", "500", times=1), "small"),
        (Fault("PutObject", "reset", times=1), "small"),
    ],
    ids=["part-500-once", "part-reset-once", "create-answer-lost-once", "complete-500-once", "put-500", "put-reset"],
)
def test_import_survives_one_failure(faulty: FaultyWorld, fault: Fault, size: str) -> None:
    world, proxy = faulty, faulty.proxy
    data = IMPORTED if size == "large" else SMALL_IMPORT
    path = f"/{world.user}.png"
    world.source.routes[path] = Reply(headers=[("Content-Type", "image/png")], body=[data])
    # Given S3 fails one request of the import
    proxy.inject(fault)
    # When the image is imported
    response = world.call("POST", "/imports", json={"url": world.source.url(path)})
    # Then the client's retry saved it: the object is the whole file, and no upload is left
    assert response.status_code == 201, response.text
    assert proxy.injected(fault.operation) == 1
    assert world.objects() == {response.json()["key"]: data}
    assert world.pending() == []


@pytest.mark.parametrize(
    ("fault", "size", "status", "code"),
    [
        (Fault("UploadPart", "500"), "large", 502, "StorageError"),
        (Fault("UploadPart", "stall"), "large", 504, "StorageTimeout"),
        (Fault("UploadPart", "reset"), "large", 502, "StorageUnavailable"),
        (Fault("CreateMultipartUpload", "reset", after=True), "large", 502, "StorageUnavailable"),
        (Fault("CompleteMultipartUpload", "500"), "large", 502, "StorageError"),
        (Fault("CompleteMultipartUpload", "stall"), "large", 504, "StorageTimeout"),
        (Fault("PutObject", "503"), "small", 503, "StorageBusy"),
        (Fault("PutObject", "stall"), "small", 504, "StorageTimeout"),
    ],
    ids=[
        "part-500",
        "part-stalled",
        "part-reset",
        "create-answers-lost",
        "complete-500",
        "complete-stalled",
        "put-slowdown",
        "put-stalled",
    ],
)
def test_import_failing_for_good_is_a_clean_error_and_leaves_nothing(
    faulty: FaultyWorld,
    fault: Fault,
    size: str,
    status: int,
    code: str,
) -> None:
    world, proxy = faulty, faulty.proxy
    data = IMPORTED if size == "large" else SMALL_IMPORT
    path = f"/{world.user}.png"
    world.source.routes[path] = Reply(headers=[("Content-Type", "image/png")], body=[data])
    # Given S3 fails every request of one kind
    proxy.inject(fault)
    # When the image is imported
    response = world.call("POST", "/imports", json={"url": world.source.url(path)})
    # Then a clean error, no object (whole or partial) and no upload left behind
    assert_clean_error(response, status, code)
    assert world.objects() == {}
    assert world.pending() == []
