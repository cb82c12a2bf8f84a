"""The local API Gateway emulation without sockets: routing, JWT checks, 2.0 events, responses, CORS."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import pytest

from local.functions import Invocation
from local.gateway import (
    JWKS_PATH,
    MAX_BODY_BYTES,
    Gateway,
    JwksVerifier,
    Request,
    RouteTable,
    Unauthorized,
    authorize,
    shape_response,
)
from local.template import JwtAuthorizer, Route
from local.tokens import LOCAL_ISSUER, SigningKey, make_token

AUDIENCE = "app"
AUTHORIZER = JwtAuthorizer("Jwt", (AUDIENCE,))
KEY = SigningKey.generate()
OTHER_KEY = SigningKey.generate()
VERIFIER = JwksVerifier(KEY.jwks())
ROUTES = [
    Route("POST", "/uploads", "Uploads", True, "Jwt"),
    Route("GET", "/uploads/{uploadId}/parts", "Uploads", True, "Jwt"),
    Route("GET", "/s3/multipart/{uploadId}/{partNumber}", "Uploads", True, "Jwt"),
    Route("GET", "/s3/multipart/{uploadId}/batch", "Uploads", True, "Jwt"),
    Route("ANY", "/files/{proxy+}", "Files", False),
    Route("GET", "/files/{proxy+}", "FilesGet", False),
    Route("GET", "/health", "Health", False),
    Route("GET", "/scoped", "Scoped", True, "Jwt", ("uploads:write",)),
]
CORS = {
    "AllowOrigins": ["https://app.example"],
    "AllowHeaders": ["authorization", "content-type"],
    "AllowMethods": ["GET", "POST"],
    "ExposeHeaders": ["etag"],
    "MaxAge": 600,
}


def token(key: SigningKey = KEY, **claims: Any) -> str:
    return make_token("alice", audience=AUDIENCE, key=key, claims=claims)


def b64url(document: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(document).encode()).rstrip(b"=").decode()


def unsigned(**claims: Any) -> str:
    """The same claims with alg "none" and no signature, which API Gateway refuses."""
    payload = {"sub": "alice", "iss": LOCAL_ISSUER, "aud": AUDIENCE, "exp": int(time.time()) + 600, **claims}
    return f"{b64url({'alg': 'none', 'typ': 'JWT', 'kid': KEY.key_id})}.{b64url(payload)}."


def tampered() -> str:
    """A signed token whose payload was changed afterwards (another sub)."""
    header, _, signature = token().split(".")
    payload = {"sub": "mallory", "iss": LOCAL_ISSUER, "aud": AUDIENCE, "exp": int(time.time()) + 600}
    return f"{header}.{b64url(payload)}.{signature}"


class Recorder:
    """A stand-in for the function workers: records events and answers with ``result``."""

    def __init__(self, result: Any = None, ok: bool = True) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []
        self.result = {"statusCode": 200, "body": "{}"} if result is None else result
        self.ok = ok

    def __call__(self, logical_id: str, event: dict[str, Any]) -> Invocation:
        self.events.append((logical_id, event))
        return Invocation(self.ok, "request-id", result=self.result, error={} if self.ok else {"errorType": "X"})


def gateway(recorder: Recorder, cors: dict[str, Any] | None = None) -> Gateway:
    return Gateway(
        ROUTES, recorder, cors=CORS if cors is None else cors, authorizers={"Jwt": AUTHORIZER}, verifier=VERIFIER
    )


def request(method: str, path: str, *, headers: list[tuple[str, str]] | None = None, body: bytes = b"") -> Request:
    raw_path, _, query = path.partition("?")
    default = [("Authorization", f"Bearer {token()}")]
    return Request(method, raw_path, query, default if headers is None else headers, body)


# --- routing ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "route_key", "parameters"),
    [
        ("POST", "/uploads", "POST /uploads", {}),
        ("GET", "/uploads/u1/parts", "GET /uploads/{uploadId}/parts", {"uploadId": "u1"}),
        ("GET", "/s3/multipart/u1/batch", "GET /s3/multipart/{uploadId}/batch", {"uploadId": "u1"}),
        (
            "GET",
            "/s3/multipart/u1/7",
            "GET /s3/multipart/{uploadId}/{partNumber}",
            {"uploadId": "u1", "partNumber": "7"},
        ),
        ("GET", "/uploads/a%2Fb/parts", "GET /uploads/{uploadId}/parts", {"uploadId": "a/b"}),
        ("GET", "/files/a/b/c.txt", "GET /files/{proxy+}", {"proxy": "a/b/c.txt"}),
        ("DELETE", "/files/a", "ANY /files/{proxy+}", {"proxy": "a"}),
    ],
)
def test_routes_match_like_http_api(method: str, path: str, route_key: str, parameters: dict[str, str]) -> None:
    # When a request is matched / Then static segments beat variables, exact methods beat ANY
    found = RouteTable(ROUTES).match(method, path)
    assert found is not None
    assert found.route.route_key == route_key
    assert found.path_parameters == parameters


@pytest.mark.parametrize(
    ("method", "path"),
    [("PUT", "/uploads"), ("GET", "/nowhere"), ("GET", "/uploads//parts"), ("GET", "/files/"), ("GET", "/health/x")],
)
def test_unmatched_requests_are_not_found(method: str, path: str) -> None:
    assert RouteTable(ROUTES).match(method, path) is None
    response = gateway(Recorder()).dispatch(request(method, path))
    assert response.status == 404
    assert json.loads(response.body) == {"message": "Not Found"}


# --- the JWT authorizer ----------------------------------------------------------------------


def test_a_valid_token_yields_string_claims_and_scopes() -> None:
    raw = token(scope="a b", groups=["x", "y"], admin=False, extra={"k": 1})
    principal = authorize(f"Bearer {raw}", AUTHORIZER, VERIFIER)
    assert principal.claims["sub"] == "alice"
    assert principal.claims["groups"] == "[x y]"
    assert principal.claims["admin"] == "false"
    assert principal.claims["extra"] == '{"k":1}'
    assert isinstance(principal.claims["exp"], str)
    assert principal.scopes == ["a", "b"]


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "",
        "Bearer",
        "Bearer not-a-jwt",
        "Bearer a.b.c",
        "Basic dXNlcjpwYXNz",
        f"Bearer {token(sub=None)}",
        f"Bearer {token(sub='')}",
        f"Bearer {token(exp=int(time.time()) - 1)}",
        f"Bearer {token(exp=None)}",
        f"Bearer {token(nbf=int(time.time()) + 600)}",
        f"Bearer {token(iss='https://elsewhere.example/')}",
        f"Bearer {token(aud='other-app')}",
        "Bearer " + b64url([1]) + "." + b64url([2]) + ".",
        f"Bearer {unsigned()}",
        f"Bearer {tampered()}",
        f"Bearer {token(key=OTHER_KEY)}",
        f"Bearer {make_token('alice', audience=AUDIENCE, key=SigningKey(OTHER_KEY.private_key, 'other'))}",
    ],
    ids=[
        "missing",
        "empty",
        "bearer-only",
        "not-jwt",
        "undecodable",
        "basic",
        "no-sub",
        "empty-sub",
        "expired",
        "no-exp",
        "not-yet-valid",
        "wrong-issuer",
        "wrong-audience",
        "not-objects",
        "unsigned",
        "tampered",
        "wrong-key",
        "unknown-key-id",
    ],
)
def test_unacceptable_tokens_are_unauthorized(authorization: str | None) -> None:
    with pytest.raises(Unauthorized):
        authorize(authorization, AUTHORIZER, VERIFIER)
    headers = [("Authorization", authorization)] if authorization is not None else []
    recorder = Recorder()
    response = gateway(recorder).dispatch(request("POST", "/uploads", headers=headers))
    assert response.status == 401
    assert json.loads(response.body) == {"message": "Unauthorized"}
    assert recorder.events == []  # the function is never invoked


def test_audience_may_be_a_list_and_bearer_prefix_is_optional() -> None:
    raw = make_token("bob", audience=["other", AUDIENCE], key=KEY)
    assert authorize(raw, AUTHORIZER, VERIFIER).claims["sub"] == "bob"


def test_a_cognito_access_token_is_matched_on_client_id() -> None:
    raw = token(aud=None, client_id=AUDIENCE)
    assert authorize(raw, AUTHORIZER, VERIFIER).claims["client_id"] == AUDIENCE


def test_the_jwks_is_served_outside_the_template_routes() -> None:
    response = gateway(Recorder()).dispatch(request("GET", JWKS_PATH, headers=[]))
    assert response.status == 200
    (key,) = json.loads(response.body)["keys"]
    assert (key["kty"], key["alg"], key["kid"]) == ("RSA", "RS256", KEY.key_id)
    assert "d" not in key  # the public half only


def test_routes_without_auth_need_no_token() -> None:
    recorder = Recorder()
    response = gateway(recorder).dispatch(request("GET", "/health", headers=[]))
    assert response.status == 200
    assert "authorizer" not in recorder.events[0][1]["requestContext"]


def test_missing_scope_is_forbidden() -> None:
    response = gateway(Recorder()).dispatch(request("GET", "/scoped"))
    assert response.status == 403
    scoped = [("Authorization", f"Bearer {token(scope='uploads:write')}")]
    assert gateway(Recorder()).dispatch(request("GET", "/scoped", headers=scoped)).status == 200


# --- the 2.0 event -----------------------------------------------------------------------------


def test_event_has_the_payload_2_0_shape() -> None:
    # Given a request with repeated headers, cookies, a query string and a JSON body
    recorder = Recorder()
    bearer = token()
    headers = [
        ("Authorization", f"Bearer {bearer}"),
        ("X-Multi", "a"),
        ("x-multi", "b"),
        ("Cookie", "c1=v1; c2=v2"),
        ("Content-Type", "application/json"),
        ("Host", "127.0.0.1:3000"),
        ("User-Agent", "tests"),
    ]
    # When it goes through the gateway
    gateway(recorder).dispatch(request("GET", "/uploads/u%201/parts?key=a%2Fb&x=1&x=2&empty=", headers=headers))
    logical_id, event = recorder.events[0]
    # Then the function gets an API Gateway HTTP API 2.0 event
    assert logical_id == "Uploads"
    assert event["version"] == "2.0"
    assert event["routeKey"] == "GET /uploads/{uploadId}/parts"
    assert event["rawPath"] == "/uploads/u%201/parts"
    assert event["rawQueryString"] == "key=a%2Fb&x=1&x=2&empty="
    assert event["queryStringParameters"] == {"key": "a/b", "x": "1,2", "empty": ""}
    assert event["pathParameters"] == {"uploadId": "u 1"}
    assert event["headers"]["x-multi"] == "a,b"
    assert event["headers"]["authorization"] == f"Bearer {bearer}"
    assert "cookie" not in event["headers"]
    assert event["cookies"] == ["c1=v1", "c2=v2"]
    assert event["isBase64Encoded"] is False
    assert "body" not in event
    context = event["requestContext"]
    assert context["http"] == {
        "method": "GET",
        "path": "/uploads/u%201/parts",
        "protocol": "HTTP/1.1",
        "sourceIp": "127.0.0.1",
        "userAgent": "tests",
    }
    assert context["routeKey"] == event["routeKey"]
    assert context["stage"] == "$default"
    assert context["domainName"] == "127.0.0.1:3000"
    assert context["accountId"] == "000000000000"
    assert isinstance(context["timeEpoch"], int)
    assert context["authorizer"]["jwt"]["claims"]["sub"] == "alice"
    assert context["authorizer"]["jwt"]["scopes"] is None


@pytest.mark.parametrize(
    ("content_type", "body", "encoded"),
    [
        ("application/json", b'{"a": 1}', False),
        ("text/plain; charset=utf-8", "héllo".encode(), False),
        ("application/octet-stream", b"\x00\xff", True),
        ("image/png", b"\x89PNG", True),
    ],
)
def test_binary_bodies_are_base64_encoded(content_type: str, body: bytes, encoded: bool) -> None:
    recorder = Recorder()
    headers = [("Authorization", f"Bearer {token()}"), ("Content-Type", content_type)]
    gateway(recorder).dispatch(request("POST", "/uploads", headers=headers, body=body))
    event = recorder.events[0][1]
    assert event["isBase64Encoded"] is encoded
    assert (base64.b64decode(event["body"]) if encoded else event["body"].encode()) == body


def test_bodies_over_the_payload_limit_are_refused() -> None:
    recorder = Recorder()
    response = gateway(recorder).dispatch(request("POST", "/uploads", body=b"x" * (MAX_BODY_BYTES + 1)))
    assert response.status == 413
    assert recorder.events == []


# --- responses ---------------------------------------------------------------------------------


def test_structured_response_is_passed_through() -> None:
    response = shape_response(
        {
            "statusCode": 201,
            "headers": {"Content-Type": "application/json", "X-Id": "1"},
            "cookies": ["a=1", "b=2"],
            "body": '{"ok": true}',
        }
    )
    assert response.status == 201
    assert response.header("x-id") == "1"
    assert [value for name, value in response.headers if name == "set-cookie"] == ["a=1", "b=2"]
    assert response.body == b'{"ok": true}'


def test_base64_response_body_is_decoded() -> None:
    response = shape_response(
        {"statusCode": 200, "body": base64.b64encode(b"\x00\x01").decode(), "isBase64Encoded": True}
    )
    assert response.body == b"\x00\x01"


@pytest.mark.parametrize("result", [{"a": 1}, [1, 2], 3, None])
def test_results_without_status_code_become_200_json(result: Any) -> None:
    response = shape_response(result)
    assert response.status == 200
    assert response.header("content-type") == "application/json"
    assert json.loads(response.body) == result


@pytest.mark.parametrize("result", [{"statusCode": "abc"}, {"statusCode": 99}, {"statusCode": 200, "headers": 3}])
def test_malformed_responses_are_bad_gateway(result: Any) -> None:
    response = shape_response(result)
    assert response.status == 502
    assert json.loads(response.body) == {"message": "Internal Server Error"}


def test_a_function_error_is_a_502_without_details() -> None:
    response = gateway(Recorder(ok=False)).dispatch(request("POST", "/uploads"))
    assert response.status == 502
    assert json.loads(response.body) == {"message": "Internal Server Error"}


# --- CORS ----------------------------------------------------------------------------------------


def test_preflight_is_answered_without_a_token_or_an_invocation() -> None:
    recorder = Recorder()
    headers = [
        ("Origin", "https://app.example"),
        ("Access-Control-Request-Method", "POST"),
        ("Access-Control-Request-Headers", "authorization,content-type"),
    ]
    response = gateway(recorder).dispatch(request("OPTIONS", "/uploads", headers=headers))
    assert response.status == 204
    assert response.header("access-control-allow-origin") == "https://app.example"
    assert response.header("access-control-allow-methods") == "GET,POST"
    assert response.header("access-control-allow-headers") == "authorization,content-type"
    assert response.header("access-control-max-age") == "600"
    assert recorder.events == []


def test_preflight_from_another_origin_gets_no_cors_headers() -> None:
    headers = [("Origin", "https://evil.example"), ("Access-Control-Request-Method", "POST")]
    response = gateway(Recorder()).dispatch(request("OPTIONS", "/uploads", headers=headers))
    assert response.header("access-control-allow-origin") is None


def test_responses_carry_cors_headers_and_the_functions_own_are_replaced() -> None:
    recorder = Recorder({"statusCode": 200, "headers": {"Access-Control-Allow-Origin": "*"}, "body": ""})
    headers = [("Authorization", f"Bearer {token()}"), ("Origin", "https://app.example")]
    response = gateway(recorder).dispatch(request("POST", "/uploads", headers=headers))
    assert [value for name, value in response.headers if name == "access-control-allow-origin"] == [
        "https://app.example"
    ]
    assert response.header("access-control-expose-headers") == "etag"
    # Errors produced by the gateway itself carry them too, so browsers can read the 401
    unauthorized = gateway(Recorder()).dispatch(
        request("POST", "/uploads", headers=[("Origin", "https://app.example")])
    )
    assert unauthorized.status == 401
    assert unauthorized.header("access-control-allow-origin") == "https://app.example"


def test_without_cors_configuration_options_is_routed_like_any_method() -> None:
    response = gateway(Recorder(), cors={}).dispatch(request("OPTIONS", "/uploads", headers=[]))
    assert response.status == 404
