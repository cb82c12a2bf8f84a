"""An HTTP forward proxy on 127.0.0.1 that counts, fails or holds S3 part PUTs.

A client reaches it through the standard ``HTTP_PROXY`` variable, so the presigned URLs stay
untouched (the Host header and the signature are the original ones) and the client under test
runs exactly as it would against S3; the proxy only decides, per part PUT, whether to forward it,
to answer it with a failure S3 can give, or to hold it. Everything else is forwarded as is.

    with FaultProxy() as proxy:
        proxy.fail_every = 5          # every 5th part PUT fails (500, dropped connection, SlowDown, expiry)
        proxy.pass_limit = 3          # or: forward 3 part PUTs, then hold the next ones, never forwarding them
        proxy.delay_first_put = 4.0   # or: forward the first part PUT only after 4 s (its URL expires)
"""

from __future__ import annotations

import http.client
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

# The failures injected, in turn: all of them are ones S3 really answers with.
FAILURES = ("internal-error", "drop", "slow-down", "expired")
_XML = '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code><Message>{message}</Message></Error>'
_HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "proxy-authorization", "te", "trailer", "upgrade"}


@dataclass(frozen=True)
class PartPut:
    part_number: int
    status: int | None  # None: the connection was dropped without an answer
    injected: str | None  # the failure the proxy made up, or None when S3 answered


class FaultProxy:
    def __init__(self) -> None:
        self.fail_every: int | None = None
        self.pass_limit: int | None = None
        self.delay_first_put: float = 0.0  # seconds the first part PUT waits before it is forwarded
        self.puts: list[PartPut] = []
        self.held = threading.Event()  # set once a PUT past pass_limit is being held
        self._release = threading.Event()
        self._lock = threading.Lock()
        self._seen = 0
        self._forwarded = 0
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                proxy._relay(self)

            do_POST = do_PUT = do_DELETE = do_HEAD = do_GET

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def __enter__(self) -> FaultProxy:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._release.set()
        self._httpd.shutdown()
        self._httpd.server_close()

    # ---- what tests read and change

    def reset(
        self, *, fail_every: int | None = None, pass_limit: int | None = None, delay_first_put: float = 0.0
    ) -> None:
        with self._lock:
            self.fail_every, self.pass_limit, self.delay_first_put = fail_every, pass_limit, delay_first_put
            self.puts = []
            self._seen = self._forwarded = 0
            self.held.clear()
            self._release = threading.Event()

    def release(self) -> None:
        """Let held PUTs go: they are dropped, never forwarded."""
        self._release.set()

    def stored_parts(self) -> list[int]:
        """Part numbers of the PUTs S3 answered with 200."""
        return [put.part_number for put in self.puts if put.status == 200]

    def injected(self) -> Iterator[str]:
        return (put.injected for put in self.puts if put.injected)

    # ---- the proxy

    def _decide(self, is_part_put: bool) -> str:
        with self._lock:
            if not is_part_put:
                return "forward"
            self._seen += 1
            if self.pass_limit is not None and self._forwarded >= self.pass_limit:
                return "hold"
            if self.fail_every and self._seen % self.fail_every == 0:
                return FAILURES[(self._seen // self.fail_every - 1) % len(FAILURES)]
            self._forwarded += 1
            return "delay" if self._seen == 1 and self.delay_first_put else "forward"

    def _relay(self, handler: BaseHTTPRequestHandler) -> None:
        target = urlsplit(handler.path)
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else b""
        query = parse_qs(target.query)
        part = int(query["partNumber"][0]) if handler.command == "PUT" and "partNumber" in query else None
        decision = self._decide(part is not None)
        if decision == "delay":
            threading.Event().wait(self.delay_first_put)  # long enough for its URL to expire
        if decision == "hold":
            self.held.set()
            self._release.wait(60)
            decision = "drop"
        if decision == "drop":
            self._record(part, None, "drop")
            handler.close_connection = True  # no answer at all: the client sees the connection die
            return
        if decision == "internal-error":
            self._record(part, 500, decision)
            self._answer(handler, 500, _XML.format(code="InternalError", message="We encountered an internal error."))
            return
        if decision == "slow-down":
            self._record(part, 503, decision)
            self._answer(handler, 503, _XML.format(code="SlowDown", message="Please reduce your request rate."))
            return
        if decision == "expired":
            self._record(part, 403, decision)
            self._answer(handler, 403, _XML.format(code="AccessDenied", message="Request has expired"))
            return
        status, reason, headers, payload = self._forward(
            handler, target.hostname or "127.0.0.1", target.port or 80, body
        )
        # Recorded before answering: S3 has the part even if the client is gone by now.
        if part is not None:
            self._record(part, status, None)
        try:
            handler.send_response(status, reason)
            for name, value in headers:
                handler.send_header(name, value)
            handler.send_header("Content-Length", str(len(payload)))
            handler.end_headers()
            if handler.command != "HEAD":
                handler.wfile.write(payload)
        except OSError:
            handler.close_connection = True  # the client hung up (a test interrupted it)

    @staticmethod
    def _forward(
        handler: BaseHTTPRequestHandler, host: str, port: int, body: bytes
    ) -> tuple[int, str, list[tuple[str, str]], bytes]:
        target = urlsplit(handler.path)
        path = target.path + (f"?{target.query}" if target.query else "")
        headers = {name: value for name, value in handler.headers.items() if name.lower() not in _HOP_BY_HOP}
        connection = http.client.HTTPConnection(host, port, timeout=60)
        try:
            connection.request(handler.command, path, body=body or None, headers=headers)
            response = connection.getresponse()
            payload = response.read()
            kept = [
                (name, value)
                for name, value in response.getheaders()
                if name.lower() not in _HOP_BY_HOP and name.lower() not in ("transfer-encoding", "content-length")
            ]
            return response.status, response.reason, kept, payload
        finally:
            connection.close()

    @staticmethod
    def _answer(handler: BaseHTTPRequestHandler, status: int, xml: str) -> None:
        payload = xml.encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/xml")
        handler.send_header("Content-Length", str(len(payload)))
        handler.end_headers()
        handler.wfile.write(payload)

    def _record(self, part: int | None, status: int | None, injected: str | None) -> None:
        if part is None:
            return
        with self._lock:
            self.puts.append(PartPut(part, status, injected))
