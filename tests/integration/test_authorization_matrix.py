"""Every route of template.yaml, for each of {owner, another user, no token, malformed token}, over real HTTP.

The route list is read from the template itself, so a route added there without an entry in
EXPECTATIONS fails this module (and an entry for a route the template no longer has fails too).
Each case builds a fresh resource for the owner (an upload, a Companion upload, an imported
object), then calls the route as the given identity and checks the status, the error's shape
and, for refusals, that the owner's resource was left alone.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import pytest
import requests

from local.stack import LocalStack
from local.template import load_template
from tests.import_support import Reply, SourceServer, image_bytes
from tests.registry_support import registry_of
from tests.stack_limits import GENEROUS_LIMITS
from upload_core.registry import FileRecord, FileStatus

pytestmark = pytest.mark.integration

OWNER = "matrix-owner"
OTHER = "matrix-other"
IDENTITIES = ("owner", "other", "no-token", "malformed-token")
MALFORMED_TOKENS = {"malformed-token": "Bearer not-a-jwt"}
PART_BYTES = b"matrix part bytes" * 64
TIMEOUT = 30


@dataclass
class Call:
    """A request for one route, with the owner's resource it acts on (if any)."""

    path: str
    params: dict[str, str] = field(default_factory=dict)
    json: Any = None
    upload: dict[str, str] | None = None  # {"uploadId", "key"} of the owner's upload


@dataclass(frozen=True)
class Expectation:
    """Statuses by identity; `prepare` builds the call against a fresh resource of the owner."""

    prepare: Callable[[Matrix], Call]
    owner: int
    other: int
    anonymous: int = 401  # no token and a malformed token: refused by the JWT authorizer
    check: Callable[[requests.Response, Call, str], None] | None = None  # more about a success


class Matrix:
    """Talks to the stack as the owner to build resources, and as anyone to run a case."""

    def __init__(self, stack: LocalStack, source: SourceServer) -> None:
        self.stack = stack
        self.source = source
        self.tokens = {OWNER: stack.token_for(OWNER), OTHER: stack.token_for(OTHER)}

    def call(self, method: str, call: Call, identity: str) -> requests.Response:
        headers = {}
        if identity in ("owner", "other"):
            headers["Authorization"] = f"Bearer {self.tokens[OWNER if identity == 'owner' else OTHER]}"
        elif identity in MALFORMED_TOKENS:
            headers["Authorization"] = MALFORMED_TOKENS[identity]
        return requests.request(
            method, self.stack.api_url + call.path, params=call.params, json=call.json, headers=headers, timeout=TIMEOUT
        )

    def as_owner(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        response = self.call(method, Call(path, params=kwargs.get("params") or {}, json=kwargs.get("json")), "owner")
        assert response.status_code < 300, f"{method} {path}: {response.status_code} {response.text}"
        return response

    def upload(self, *, with_part: bool = False) -> dict[str, str]:
        """A native upload of the owner; with one part PUT when it is to be completed."""
        body = {"filename": "matrix.png", "contentType": "image/png", "size": len(PART_BYTES)}
        created = self.as_owner("POST", "/uploads", json=body).json()
        upload = {"uploadId": created["uploadId"], "key": created["key"]}
        if with_part:
            self.put_part(upload)
        return upload

    def companion_upload(self, *, with_part: bool = False) -> dict[str, str]:
        created = self.as_owner("POST", "/s3/multipart", json={"filename": "matrix.png", "type": "image/png"}).json()
        upload = {"uploadId": created["uploadId"], "key": created["key"]}
        if with_part:
            upload["etag"] = self.put_part(upload)
        return upload

    def browser_upload(self) -> dict[str, str]:
        """A multipart upload the owner's browser created in S3 with a URL from POST /s3/sign (Uppy 6)."""
        body = {"method": "POST", "key": "u-matrix.png", "size": 10, "name": "matrix.png", "type": "image/png"}
        signed = self.as_owner("POST", "/s3/sign", json=body).json()
        created = requests.post(signed["url"], headers=signed["headers"], timeout=TIMEOUT)
        assert created.status_code == 200, created.text
        upload_id = created.text.split("<UploadId>", 1)[1].split("</UploadId>", 1)[0]
        return {"uploadId": upload_id, "key": signed["key"]}

    def put_part(self, upload: dict[str, str]) -> str:
        signed = self.as_owner(
            "POST", f"/uploads/{upload['uploadId']}/parts", json={"key": upload["key"], "partNumbers": [1]}
        ).json()["parts"][0]
        put = requests.put(signed["url"], data=PART_BYTES, headers=signed["headers"], timeout=TIMEOUT)
        assert put.status_code == 200, put.text
        return str(put.headers["ETag"])

    def imported_key(self) -> str:
        """An object of the owner's, stored through POST /imports."""
        imported = self.as_owner("POST", "/imports", json={"url": self.source.url("/matrix.png")}).json()
        return str(imported["key"])

    def pending_keys(self, user: str) -> set[str]:
        listed = requests.get(
            self.stack.api_url + "/uploads", headers={"Authorization": f"Bearer {self.tokens[user]}"}, timeout=TIMEOUT
        )
        assert listed.status_code == 200, listed.text
        return {item["key"] for item in listed.json()["uploads"]}


def upload_path(upload: dict[str, str], suffix: str = "") -> str:
    return f"/uploads/{quote(upload['uploadId'], safe='')}{suffix}"


def companion_path(upload: dict[str, str], suffix: str = "") -> str:
    return f"/s3/multipart/{quote(upload['uploadId'], safe='')}{suffix}"


def _native(
    suffix: str, *, json: Callable[[dict[str, str]], Any] | None = None, query: bool = False, with_part: bool = False
) -> Callable[[Matrix], Call]:
    def prepare(matrix: Matrix) -> Call:
        upload = matrix.upload(with_part=with_part)
        return Call(
            upload_path(upload, suffix),
            params={"key": upload["key"]} if query else {},
            json=json(upload) if json else None,
            upload=upload,
        )

    return prepare


def _companion(
    suffix: str,
    *,
    params: dict[str, str] | None = None,
    with_part: bool = False,
    json: Callable[[dict[str, str]], Any] | None = None,
) -> Callable[[Matrix], Call]:
    def prepare(matrix: Matrix) -> Call:
        upload = matrix.companion_upload(with_part=with_part)
        return Call(
            companion_path(upload, suffix),
            params={"key": upload["key"], **(params or {})},
            json=json(upload) if json else None,
            upload=upload,
        )

    return prepare


def _uppy_sign_part(matrix: Matrix) -> Call:
    upload = matrix.browser_upload()
    return Call("/s3/sign", json={"method": "PUT", "partNumber": 1, **upload}, upload=upload)


def _fixed(path: str, *, json: Any = None, params: dict[str, str] | None = None) -> Callable[[Matrix], Call]:
    return lambda matrix: Call(path, params=dict(params or {}), json=json)


def _object_status(matrix: Matrix) -> Call:
    return Call("/objects/status", params={"key": matrix.imported_key()})


def _listing(matrix: Matrix) -> Call:
    return Call("/uploads", upload=matrix.upload())


def _lists_only_own_uploads(response: requests.Response, call: Call, identity: str) -> None:
    assert call.upload is not None
    listed = {item["key"] for item in response.json()["uploads"]}
    assert (call.upload["key"] in listed) == (identity == "owner")


def _owner_file(suffix: str = "") -> Callable[[Matrix], Call]:
    """A file of the owner's as the validator records it when its object arrives (pending)."""

    def prepare(matrix: Matrix) -> Call:
        file_id = uuid.uuid4().hex
        registry_of(matrix.stack).record_file(
            FileRecord(
                OWNER, file_id, f"uploads/{OWNER}/{file_id}/m.png", "m.png", 1, "image/png", "v1", FileStatus.PENDING, 1
            )
        )
        return Call(f"/files/{file_id}{suffix}")

    return prepare


def _import(matrix: Matrix) -> Call:
    return Call("/imports", json={"url": matrix.source.url("/matrix.png")})


# Another user acting on the owner's key is refused before S3 is asked (403); routes that create
# something act for the caller, so another user simply gets their own resource.
EXPECTATIONS: dict[str, Expectation] = {
    "POST /uploads": Expectation(
        _fixed("/uploads", json={"filename": "a.png", "contentType": "image/png", "size": 10}), owner=201, other=201
    ),
    "GET /uploads": Expectation(_listing, owner=200, other=200, check=_lists_only_own_uploads),
    "POST /uploads/{uploadId}/parts": Expectation(
        _native("/parts", json=lambda up: {"key": up["key"], "partNumbers": [1]}), owner=200, other=403
    ),
    "GET /uploads/{uploadId}/parts": Expectation(_native("/parts", query=True), owner=200, other=403),
    "POST /uploads/{uploadId}/complete": Expectation(
        _native("/complete", json=lambda up: {"key": up["key"]}, with_part=True), owner=200, other=403
    ),
    "DELETE /uploads/{uploadId}": Expectation(_native("", query=True), owner=204, other=403),
    "POST /uploads/form": Expectation(
        _fixed("/uploads/form", json={"filename": "f.png", "contentType": "image/png", "size": 10}),
        owner=201,
        other=201,
    ),
    "POST /uploads/batch": Expectation(
        _fixed(
            "/uploads/batch",
            json={
                "files": [{"filename": "f.png", "contentType": "image/png", "size": 10, "checksumCrc32": "AAAAAA=="}]
            },
        ),
        owner=201,
        other=201,
    ),
    "GET /objects/status": Expectation(_object_status, owner=200, other=403),
    "GET /s3/params": Expectation(_fixed("/s3/params", params={"filename": "p.png", "type": "image/png"}), 200, 200),
    "POST /s3/multipart": Expectation(
        _fixed("/s3/multipart", json={"filename": "c.png", "type": "image/png"}), owner=200, other=200
    ),
    "GET /s3/multipart/{uploadId}/{partNumber}": Expectation(_companion("/1"), owner=200, other=403),
    "GET /s3/multipart/{uploadId}/batch": Expectation(
        _companion("/batch", params={"partNumbers": "1,2"}), owner=200, other=403
    ),
    "GET /s3/multipart/{uploadId}": Expectation(_companion(""), owner=200, other=403),
    "POST /s3/multipart/{uploadId}/complete": Expectation(
        _companion("/complete", with_part=True, json=lambda up: {"parts": [{"PartNumber": 1, "ETag": up["etag"]}]}),
        owner=200,
        other=403,
    ),
    "DELETE /s3/multipart/{uploadId}": Expectation(_companion(""), owner=200, other=403),
    "POST /s3/sign": Expectation(_uppy_sign_part, owner=200, other=403),
    "GET /openapi.json": Expectation(_fixed("/openapi.json"), owner=200, other=200, anonymous=200),
    "POST /imports": Expectation(_import, owner=201, other=201),
    # Another owner's file is not in the caller's partition: 404, never 403.
    "GET /files": Expectation(_fixed("/files"), owner=200, other=200),
    "GET /files/{fileId}": Expectation(_owner_file(), owner=409, other=404),  # pending: NotValidated
    "GET /files/{fileId}/status": Expectation(_owner_file("/status"), owner=200, other=404),
    "DELETE /files/{fileId}": Expectation(_owner_file(), owner=204, other=404),
}

ROUTES = sorted(route.route_key for route in load_template().routes())


@pytest.fixture(scope="module")
def source() -> Iterator[SourceServer]:
    with SourceServer() as server:
        server.routes["/matrix.png"] = Reply(headers=[("Content-Type", "image/png")], body=[image_bytes("PNG")])
        yield server


@pytest.fixture(scope="module")
def matrix(source: SourceServer) -> Iterator[Matrix]:
    overrides = {"IMPORT_ALLOWED_DESTINATIONS": source.authority}
    with LocalStack(
        s3_port=0, api_port=0, env_overrides=overrides, s3_events=False, parameter_overrides=GENEROUS_LIMITS
    ) as running:
        yield Matrix(running, source)


def test_every_expectation_names_a_route_of_the_template() -> None:
    # Given the expectations / Then none of them is for a route the template has dropped
    assert sorted(set(EXPECTATIONS) - set(ROUTES)) == []


@pytest.mark.parametrize("identity", IDENTITIES)
@pytest.mark.parametrize("route_key", ROUTES)
def test_route_answers_each_identity_as_expected(matrix: Matrix, route_key: str, identity: str) -> None:
    expectation = EXPECTATIONS.get(route_key)
    if expectation is None:
        pytest.fail(f"{route_key} is a route of template.yaml without an entry in EXPECTATIONS: add one")
    method = route_key.split(" ", 1)[0]
    # Given a fresh resource of the owner's
    call = expectation.prepare(matrix)
    # When the route is called as `identity`
    response = matrix.call(method, call, identity)
    # Then the status is the expected one, and every refusal is JSON
    expected = {"owner": expectation.owner, "other": expectation.other}.get(identity, expectation.anonymous)
    assert response.status_code == expected, f"{route_key} as {identity}: {response.status_code} {response.text}"
    if expected == 401:
        assert response.json() == {"message": "Unauthorized"}  # API Gateway's own answer
    elif expected >= 400:
        assert set(response.json()) == {"code", "message"}
    elif expectation.check is not None:
        expectation.check(response, call, identity)
    if expected in (401, 403) and call.upload is not None:
        # And a refused caller changed nothing: the owner's upload is still there
        assert call.upload["key"] in matrix.pending_keys(OWNER)


def test_another_user_never_sees_the_owners_uploads(matrix: Matrix) -> None:
    # Given an upload of the owner's
    upload = matrix.upload()
    # When both list their unfinished uploads / Then only the owner sees it
    assert upload["key"] in matrix.pending_keys(OWNER)
    assert upload["key"] not in matrix.pending_keys(OTHER)


def test_another_users_own_key_with_the_owners_upload_id_is_unknown(matrix: Matrix) -> None:
    # Given the owner's upload and a key of the other user's own
    upload = matrix.upload()
    theirs = matrix.call(
        "POST", Call("/uploads", json={"filename": "x.png", "contentType": "image/png", "size": 10}), "other"
    ).json()
    # When the other user signs parts for the owner's upload id under their own key
    call = Call(upload_path(upload, "/parts"), json={"key": theirs["key"], "partNumbers": [1]})
    response = matrix.call("POST", call, "other")
    # Then the pair is unknown (S3 binds an upload id to its key): nothing is signed
    assert response.status_code == 404, response.text
    assert "url" not in response.text
