"""A local API Gateway HTTP API: the template's routes, its JWT authorizer and CORS, payload 2.0.

``Gateway.dispatch`` turns one HTTP request into an API Gateway 2.0 event, invokes the route's
function and shapes its answer the way API Gateway does; ``GatewayServer`` serves it on 127.0.0.1
with Hypercorn (HTTP/1.1 keep-alive, TCP_NODELAY), the ASGI server MiniStack runs on too.

The JWT authorizer checks what API Gateway checks: the signature against a JWKS (the local
issuer's, local/tokens.py), ``iss``, ``aud`` (or ``client_id``) against the template's audiences,
``exp``, ``nbf`` and the route's scopes. The handlers also need ``sub``, so a token without it is
refused too. The gateway's own answers are API Gateway's: ``{"message": "Unauthorized"}`` and so on.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import os
import secrets
import socket
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, unquote

import jwt
from hypercorn.asyncio import serve
from hypercorn.config import Config

from local.functions import Invocation
from local.template import LOCAL_ACCOUNT_ID, JwtAuthorizer, Route
from local.tokens import ALGORITHM, LOCAL_ISSUER, default_key

# API Gateway's request payload limit.
MAX_BODY_BYTES = 10 * 1024 * 1024
API_ID = "local"
JWKS_PATH = "/.well-known/jwks.json"
TEXT_MEDIA_TYPES = (
    "application/json",
    "application/xml",
    "application/javascript",
    "application/x-www-form-urlencoded",
)

Invoker = Callable[[str, dict[str, Any]], Invocation]


@dataclass(slots=True)
class GatewayResponse:
    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value
        return None


def json_response(status: int, document: Any) -> GatewayResponse:
    return GatewayResponse(status, [("content-type", "application/json")], json.dumps(document).encode())


def message(status: int, text: str) -> GatewayResponse:
    """API Gateway's own error shape: {"message": "..."}."""
    return json_response(status, {"message": text})


# --------------------------------------------------------------------------- routing


@dataclass(frozen=True, slots=True)
class RouteMatch:
    route: Route
    path_parameters: dict[str, str]


class RouteTable:
    """HTTP API route selection: full matches beat path variables, which beat greedy ones.

    A method must match (ANY matches any method, but a route with the exact method wins);
    anything else is 404, as in API Gateway.
    """

    def __init__(self, routes: Sequence[Route]) -> None:
        self.routes = list(routes)
        self._segments = {route.route_key: _segments(route.path) for route in self.routes}

    def match(self, method: str, raw_path: str) -> RouteMatch | None:
        request_segments = raw_path.split("/")[1:] if raw_path.startswith("/") else [raw_path]
        best: tuple[tuple[tuple[int, ...], int], RouteMatch] | None = None
        for route in self.routes:
            if route.method not in (method, "ANY"):
                continue
            if route.path == "$default":
                parameters: dict[str, str] | None = {}
                ranks: tuple[int, ...] = (3,)
            else:
                parameters, ranks = _match_segments(self._segments[route.route_key], request_segments)
            if parameters is None:
                continue
            key = (ranks, 0 if route.method == method else 1)
            if best is None or key < best[0]:
                best = (key, RouteMatch(route, parameters))
        return None if best is None else best[1]


def _segments(path: str) -> list[str]:
    return path.split("/")[1:] if path.startswith("/") else [path]


def _match_segments(pattern: list[str], request: list[str]) -> tuple[dict[str, str] | None, tuple[int, ...]]:
    parameters: dict[str, str] = {}
    ranks: list[int] = []
    for index, segment in enumerate(pattern):
        if segment.startswith("{") and segment.endswith("+}"):
            rest = request[index:]
            if not rest or not "/".join(rest):
                return None, ()
            parameters[segment[1:-2]] = unquote("/".join(rest))
            ranks.append(2)
            return parameters, tuple(ranks)
        if index >= len(request):
            return None, ()
        value = unquote(request[index])
        if segment.startswith("{") and segment.endswith("}"):
            if not value:
                return None, ()
            parameters[segment[1:-1]] = value
            ranks.append(1)
        elif segment == value:
            ranks.append(0)
        else:
            return None, ()
    if len(request) != len(pattern):
        return None, ()
    return parameters, tuple(ranks)


# --------------------------------------------------------------------------- JWT authorizer


class Unauthorized(Exception):
    """The token is missing or unacceptable: 401 {"message": "Unauthorized"}."""


@dataclass(frozen=True, slots=True)
class Principal:
    claims: dict[str, str]
    scopes: list[str] | None


class JwksVerifier:
    """Verifies RS256 tokens of one issuer against its JWKS, as API Gateway's JWT authorizer does."""

    def __init__(self, jwks: Mapping[str, Any], issuer: str = LOCAL_ISSUER) -> None:
        self.jwks = dict(jwks)
        self.issuer = issuer
        self._keys = jwt.PyJWKSet.from_dict(self.jwks)

    @classmethod
    def local(cls) -> JwksVerifier:
        return cls(default_key().jwks())

    def claims(self, token: str) -> dict[str, Any]:
        try:
            key = self._keys[str(jwt.get_unverified_header(token).get("kid"))]
            claims: dict[str, Any] = jwt.decode(
                token,
                key.key,
                algorithms=[ALGORITHM],
                issuer=self.issuer,
                options={"require": ["exp", "iss", "sub"], "verify_aud": False},
            )
        except (jwt.PyJWTError, KeyError):
            raise Unauthorized("invalid token") from None
        return claims


def authorize(
    authorization: str | None, authorizer: JwtAuthorizer | None, verifier: JwksVerifier | None = None
) -> Principal:
    """The caller of a bearer token that the verifier and the authorizer's audiences accept."""
    token = (authorization or "").strip()
    if token[:7].lower() == "bearer ":
        token = token[7:].strip()
    if not token:
        raise Unauthorized("no token")
    payload = (verifier or JwksVerifier.local()).claims(token)
    if not isinstance(payload.get("sub"), str) or not payload["sub"]:
        raise Unauthorized("no sub")
    # API Gateway accepts a token whose aud, or else client_id (Cognito access tokens), is listed.
    audience = payload.get("aud", payload.get("client_id"))
    audiences = set(audience) if isinstance(audience, list) else {audience}
    if authorizer is not None and authorizer.audience and not audiences & set(authorizer.audience):
        raise Unauthorized("wrong audience")
    scopes: list[str] | None = None
    if isinstance(payload.get("scope"), str):
        scopes = payload["scope"].split()
    elif isinstance(payload.get("scp"), list):
        scopes = [str(item) for item in payload["scp"]]
    return Principal({key: _claim_text(value) for key, value in payload.items()}, scopes)


def _claim_text(value: Any) -> str:
    """Claims reach the function as strings, as API Gateway passes them."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + " ".join(_claim_text(item) for item in value) + "]"
    if isinstance(value, dict):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


# --------------------------------------------------------------------------- CORS


class Cors:
    """API Gateway's CORS for an HTTP API, from its CorsConfiguration."""

    def __init__(self, configuration: Mapping[str, Any]) -> None:
        self.enabled = bool(configuration)
        self.origins = [str(item) for item in configuration.get("AllowOrigins") or []]
        self.methods = [str(item).upper() for item in configuration.get("AllowMethods") or []]
        self.headers = [str(item).lower() for item in configuration.get("AllowHeaders") or []]
        self.expose = [str(item).lower() for item in configuration.get("ExposeHeaders") or []]
        self.max_age = configuration.get("MaxAge")
        self.credentials = bool(configuration.get("AllowCredentials"))

    def allowed_origin(self, origin: str | None) -> str | None:
        if not self.enabled or not origin:
            return None
        if "*" in self.origins:
            return origin if self.credentials else "*"
        return origin if origin.lower() in (item.lower() for item in self.origins) else None

    def preflight(self, headers: Mapping[str, str]) -> GatewayResponse:
        response = GatewayResponse(204)
        origin = self.allowed_origin(headers.get("origin"))
        if origin is None:
            return response
        requested_method = headers.get("access-control-request-method", "").upper()
        requested_headers = headers.get("access-control-request-headers", "")
        methods = requested_method if "*" in self.methods else ",".join(self.methods)
        allow_headers = requested_headers if "*" in self.headers else ",".join(self.headers)
        response.headers.append(("access-control-allow-origin", origin))
        if methods:
            response.headers.append(("access-control-allow-methods", methods))
        if allow_headers:
            response.headers.append(("access-control-allow-headers", allow_headers))
        if self.max_age is not None:
            response.headers.append(("access-control-max-age", str(self.max_age)))
        if self.credentials:
            response.headers.append(("access-control-allow-credentials", "true"))
        if origin != "*":
            response.headers.append(("vary", "origin"))
        return response

    def decorate(self, response: GatewayResponse, origin_header: str | None) -> None:
        if not self.enabled:
            return
        # With a CorsConfiguration, API Gateway replaces whatever CORS headers the function sent.
        response.headers = [(k, v) for k, v in response.headers if not k.lower().startswith("access-control-")]
        origin = self.allowed_origin(origin_header)
        if origin is None:
            return
        response.headers.append(("access-control-allow-origin", origin))
        if self.expose:
            response.headers.append(("access-control-expose-headers", ",".join(self.expose)))
        if self.credentials:
            response.headers.append(("access-control-allow-credentials", "true"))
        if origin != "*":
            response.headers.append(("vary", "origin"))


# --------------------------------------------------------------------------- the gateway


@dataclass(slots=True)
class Request:
    method: str
    raw_path: str
    raw_query: str
    headers: list[tuple[str, str]]
    body: bytes
    source_ip: str = "127.0.0.1"
    protocol: str = "HTTP/1.1"


# Local-only pages (the demo page), asked only for requests that no template route matches.
LocalPages = Callable[[Request], GatewayResponse | None]


class Gateway:
    """Routes, authorizes and invokes; everything API Gateway does between client and function."""

    def __init__(
        self,
        routes: Sequence[Route],
        invoke: Invoker,
        *,
        cors: Mapping[str, Any] | None = None,
        authorizers: Mapping[str, JwtAuthorizer] | None = None,
        local_pages: LocalPages | None = None,
        verifier: JwksVerifier | None = None,
    ) -> None:
        self.table = RouteTable(routes)
        self._invoke = invoke
        self.cors = Cors(cors or {})
        self._authorizers = dict(authorizers or {})
        self._local_pages = local_pages
        self.verifier = verifier or JwksVerifier.local()

    def dispatch(self, request: Request) -> GatewayResponse:
        request_id = _request_id()
        headers = _merge_headers(request.headers)
        response = self._dispatch(request, headers)
        if request.method != "OPTIONS":
            self.cors.decorate(response, headers.get("origin"))
        response.headers.append(("apigw-requestid", request_id))
        return response

    def _dispatch(self, request: Request, headers: dict[str, str]) -> GatewayResponse:
        if request.method == "OPTIONS" and self.cors.enabled:
            return self.cors.preflight(headers)
        if len(request.body) > MAX_BODY_BYTES:
            return message(413, "Request Entity Too Large")
        found = self.table.match(request.method, request.raw_path)
        if found is None:
            # Template routes always win: a local page can never shadow or change the API.
            if request.method == "GET" and request.raw_path == JWKS_PATH:
                return json_response(200, self.verifier.jwks)
            page = self._local_pages(request) if self._local_pages is not None else None
            return page if page is not None else message(404, "Not Found")
        route = found.route
        authorizer_context: dict[str, Any] | None = None
        if route.authorized:
            authorizer = self._authorizers.get(route.authorizer or "")
            source = (authorizer.identity_source if authorizer else "$request.header.Authorization").rsplit(".", 1)
            try:
                principal = authorize(headers.get(source[-1].lower()), authorizer, self.verifier)
            except Unauthorized:
                return message(401, "Unauthorized")
            if route.scopes and not set(route.scopes) & set(principal.scopes or []):
                return message(403, "Forbidden")
            authorizer_context = {"jwt": {"claims": principal.claims, "scopes": principal.scopes}}
        event = build_event(request, headers, found, authorizer_context)
        invocation = self._invoke(route.function_logical_id, event)
        if not invocation.ok:
            return message(502, "Internal Server Error")
        return shape_response(invocation.result)


def _request_id() -> str:
    return base64.b64encode(secrets.token_bytes(10)).decode().rstrip("=") + "="


def _merge_headers(pairs: Sequence[tuple[str, str]]) -> dict[str, str]:
    merged: dict[str, str] = {}
    for name, value in pairs:
        key = name.lower()
        merged[key] = f"{merged[key]},{value}" if key in merged else value
    return merged


def _is_text(content_type: str | None) -> bool:
    if not content_type:
        return True
    media_type = content_type.split(";", 1)[0].strip().lower()
    return media_type.startswith("text/") or media_type in TEXT_MEDIA_TYPES or media_type.endswith(("+json", "+xml"))


def build_event(
    request: Request,
    headers: Mapping[str, str],
    found: RouteMatch,
    authorizer: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """An API Gateway HTTP API payload format 2.0 event."""
    now = time.time()
    event_headers = {key: value for key, value in headers.items() if key != "cookie"}
    event_headers.setdefault("x-forwarded-for", request.source_ip)
    event_headers.setdefault("x-forwarded-proto", "http")
    host = headers.get("host", "127.0.0.1")
    event_headers.setdefault("x-forwarded-port", host.rsplit(":", 1)[1] if ":" in host else "80")
    route_key = found.route.route_key if found.route.path != "$default" else "$default"
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": request.raw_path,
        "rawQueryString": request.raw_query,
        "headers": event_headers,
    }
    if "cookie" in headers:
        event["cookies"] = [item.strip() for item in headers["cookie"].replace(",", ";").split(";") if item.strip()]
    query: dict[str, str] = {}
    for key, value in parse_qsl(request.raw_query, keep_blank_values=True):
        query[key] = f"{query[key]},{value}" if key in query else value
    if query:
        event["queryStringParameters"] = query
    context: dict[str, Any] = {
        "accountId": LOCAL_ACCOUNT_ID,
        "apiId": API_ID,
        "domainName": host,
        "domainPrefix": host.split(".", 1)[0],
        "http": {
            "method": request.method,
            "path": request.raw_path,
            "protocol": request.protocol,
            "sourceIp": request.source_ip,
            "userAgent": headers.get("user-agent", ""),
        },
        "requestId": _request_id(),
        "routeKey": route_key,
        "stage": "$default",
        "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
        "timeEpoch": int(now * 1000),
    }
    if authorizer is not None:
        context["authorizer"] = dict(authorizer)
    event["requestContext"] = context
    if found.path_parameters:
        event["pathParameters"] = dict(found.path_parameters)
    if request.body:
        if _is_text(headers.get("content-type")):
            try:
                event["body"] = request.body.decode("utf-8")
                event["isBase64Encoded"] = False
            except UnicodeDecodeError:
                event["body"] = base64.b64encode(request.body).decode()
                event["isBase64Encoded"] = True
        else:
            event["body"] = base64.b64encode(request.body).decode()
            event["isBase64Encoded"] = True
    else:
        event["isBase64Encoded"] = False
    return event


def shape_response(result: Any) -> GatewayResponse:
    """A function's result as API Gateway's 2.0 format turns it into an HTTP response."""
    if not (isinstance(result, dict) and "statusCode" in result):
        # No statusCode: API Gateway assumes 200 and a JSON body.
        document = result if isinstance(result, str) else json.dumps(result)
        return GatewayResponse(200, [("content-type", "application/json")], document.encode())
    try:
        status = int(result["statusCode"])
        if not 100 <= status <= 599:
            raise ValueError(status)
        headers = [(str(key).lower(), str(value)) for key, value in (result.get("headers") or {}).items()]
        for key, values in (result.get("multiValueHeaders") or {}).items():
            headers.extend((str(key).lower(), str(value)) for value in values)
        headers.extend(("set-cookie", str(cookie)) for cookie in result.get("cookies") or [])
        raw_body = result.get("body")
        text = "" if raw_body is None else raw_body if isinstance(raw_body, str) else json.dumps(raw_body)
        body = base64.b64decode(text) if result.get("isBase64Encoded") else text.encode("utf-8")
    except (TypeError, ValueError, AttributeError, binascii.Error):
        print(f"local gateway: malformed function response {result!r:.500}", file=sys.stderr)
        return message(502, "Internal Server Error")
    return GatewayResponse(status, headers, body)


# --------------------------------------------------------------------------- HTTP server

AccessLog = Callable[[str, str, int, float], None]


class GatewayServer:
    """The gateway on 127.0.0.1:<port> (0 picks a free port), served by Hypercorn from a thread.

    Handlers block (they wait for a function worker), so each request runs on a thread pool; the
    listening socket is bound here, so a port in use fails at construction, before anything runs.
    ``access_log`` is called with (method, path, status, milliseconds) after every request.
    """

    def __init__(
        self, gateway: Gateway, port: int = 0, *, host: str = "127.0.0.1", access_log: AccessLog | None = None
    ) -> None:
        self._gateway = gateway
        self._access_log = access_log
        self._socket = socket.create_server((host, port), backlog=128)  # parallel signing must not hit the backlog
        # Headers and body leave in separate writes: without TCP_NODELAY, Nagle's algorithm and the
        # client's delayed ACK hold every response on a kept-alive connection for ~40 ms.
        self._socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._config = Config()
        self._config.bind = [f"fd://{os.dup(self._socket.fileno())}"]
        self._config.loglevel = "WARNING"
        self._config.graceful_timeout = 0.5  # idle keep-alive connections must not hold up stop()
        self._config.include_server_header = False
        self._executor = ThreadPoolExecutor(max_workers=64, thread_name_prefix="local-gateway")
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._running = threading.Event()
        self._thread = threading.Thread(target=asyncio.run, args=(self._serve(),), name="local-gateway", daemon=True)

    @property
    def port(self) -> int:
        return int(self._socket.getsockname()[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> GatewayServer:
        self._thread.start()
        self._running.wait(10)
        return self

    def stop(self) -> None:
        if self._loop is not None and self._stopping is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stopping.set)
            self._thread.join(timeout=5)
        self._executor.shutdown(wait=False, cancel_futures=True)
        self._socket.close()

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        self._running.set()
        await serve(self._app, self._config, shutdown_trigger=self._stopping.wait, mode="asgi")  # type: ignore[arg-type]

    async def _app(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        started = time.monotonic()
        body = bytearray()
        more = True
        while more and len(body) <= MAX_BODY_BYTES:
            message_ = await receive()
            body += message_.get("body", b"")
            more = message_.get("more_body", False)
        if len(body) > MAX_BODY_BYTES:
            response = message(413, "Request Entity Too Large")
        else:
            request = Request(
                method=scope["method"],
                raw_path=scope["raw_path"].decode("latin-1") if scope.get("raw_path") else scope["path"],
                raw_query=scope["query_string"].decode("latin-1"),
                headers=[(name.decode("latin-1"), value.decode("latin-1")) for name, value in scope["headers"]],
                body=bytes(body),
                source_ip=(scope.get("client") or ("127.0.0.1",))[0],
                protocol=f"HTTP/{scope['http_version']}",
            )
            response = await asyncio.get_running_loop().run_in_executor(self._executor, self._dispatch, request)
        skipped = ("content-length", "connection", "transfer-encoding", "date")
        headers = [
            (name.encode(), value.encode("latin-1")) for name, value in response.headers if name.lower() not in skipped
        ]
        headers.append((b"content-length", str(len(response.body)).encode()))
        await send({"type": "http.response.start", "status": response.status, "headers": headers})
        await send({"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else response.body})
        if self._access_log is not None:
            path = scope["path"]
            self._access_log(scope["method"], path, response.status, (time.monotonic() - started) * 1000)

    def _dispatch(self, request: Request) -> GatewayResponse:
        try:
            return self._gateway.dispatch(request)
        except Exception as error:  # the gateway never drops a connection without answering
            print(f"local gateway: {type(error).__name__}: {error}", file=sys.stderr)
            return message(500, "Internal Server Error")
