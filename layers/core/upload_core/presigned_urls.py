"""Presigned S3 URLs in batches: botocore's pipeline once per batch, its SigV4 signer per URL.

One signer for every batch of URLs the API hands out: the UploadPart URLs of one multipart upload
(``presign_parts``) and the PutObject URLs of a batch of small files (``presign_puts``).

`generate_presigned_url` repeats, for every URL, what is the same for every request of one shape:
parameter validation, serialization, endpoint-ruleset resolution and the client's event hooks;
together about two thirds of its time here (bench/control_plane.py). Here the first request of a
batch (and of each distinct shape: operation, signed header names, query parameter names) goes
through `generate_presigned_url` unchanged; its URL is the template that gives the endpoint, the
path up to the key, the order of the operation's query parameters, the signing region and
service, and the headers botocore signs. Every other request is the same request with its own
key, query values and headers, signed by the auth class botocore itself picks for a presigned S3
URL (`S3SigV4QueryAuth`, from the client's request signer, so with the client's credentials,
their session token and the expiry). The URLs are the ones `generate_presigned_url` returns, byte
for byte (tests/unit/test_presigned_urls.py compares them at a frozen time).

A template is used only when its own request, signed here, gives botocore's URL but for the
signing time. When it is not plain SigV4 (S3 Express session auth, SigV4a, an unknown parameter),
or botocore signs something else (another header, another scope, a query parameter hoisted by a
hook that this request did not name), every request of that shape goes through
`generate_presigned_url`: never a URL that differs from botocore's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from botocore.awsrequest import AWSRequest
from botocore.utils import percent_encode

_ALGORITHM = "AWS4-HMAC-SHA256"
# The query parameters SigV4 adds to a presigned URL (X-Amz-Security-Token when the credentials
# carry a session token); any other X-Amz-* parameter means a signer this module does not redo.
_AUTH_PARAMS = frozenset(
    {
        "X-Amz-Algorithm",
        "X-Amz-Credential",
        "X-Amz-Date",
        "X-Amz-Expires",
        "X-Amz-SignedHeaders",
        "X-Amz-Security-Token",
        "X-Amz-Signature",
    }
)
# The UploadPart and PutObject parameters that botocore serializes as these headers, exactly.
_HEADER_PARAMS = {
    "content-md5": "ContentMD5",
    "content-type": "ContentType",
    "if-none-match": "IfNoneMatch",
}
_CHECKSUM_PREFIX = "x-amz-checksum-"
_META_PREFIX = "x-amz-meta-"


@dataclass(frozen=True, slots=True)
class PartToPresign:
    part_number: int
    # Signed headers, e.g. Content-Length, Content-MD5, x-amz-checksum-crc32: S3 then refuses a
    # request whose headers differ.
    headers: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class PutToPresign:
    """A PutObject of one whole file. ``headers`` are signed (S3 refuses a request whose headers
    differ): e.g. Content-Length, Content-Type, x-amz-checksum-crc32, If-None-Match, x-amz-meta-*,
    x-amz-tagging. Sign them on a client without the query hoisting of upload_core.s3, or a
    client's hook moves x-amz-* into the query (then every URL goes through botocore)."""

    key: str
    headers: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class _Request:
    """One URL to sign: botocore's parameters for the first of its shape, the rest for the others."""

    operation: str
    key: str
    params: Mapping[str, Any]  # botocore's operation parameters, but Bucket and Key
    query: Mapping[str, str]  # the query parameters this request's URL carries, by name
    headers: Mapping[str, str]  # the headers it signs

    @property
    def shape(self) -> tuple[str, frozenset[str], frozenset[str]]:
        return self.operation, frozenset(name.lower() for name in self.headers), frozenset(self.query)


@dataclass(frozen=True, slots=True)
class _Template:
    prefix: str  # scheme://host/path up to the key, which follows percent-encoded as botocore does
    order: list[str]  # the query parameters' names, in botocore's order
    auth: Any  # a botocore S3SigV4QueryAuth for the template's region, service and expiry
    host: str  # the host header botocore signed


class UrlSigner:
    """Presigns batches of S3 URLs on one boto3 S3 client (see the module's docstring)."""

    def __init__(self, client: Any) -> None:
        self._client = client

    def presign_parts(
        self, bucket: str, key: str, upload_id: str, parts: Sequence[PartToPresign], *, expires_in: int
    ) -> list[str]:
        """One UploadPart URL per part, in the order given."""
        return self._presign(bucket, [_part_request(key, upload_id, part) for part in parts], expires_in)

    def presign_puts(self, bucket: str, puts: Sequence[PutToPresign], *, expires_in: int) -> list[str]:
        """One PutObject URL per file, in the order given."""
        return self._presign(bucket, [_put_request(put) for put in puts], expires_in)

    def _presign(self, bucket: str, requests: Sequence[_Request], expires_in: int) -> list[str]:
        # The first request of each shape goes through botocore; its URL becomes that shape's
        # template once a second request needs one (a batch of one costs what it always did).
        firsts: dict[tuple[str, frozenset[str], frozenset[str]], tuple[str, _Request]] = {}
        templates: dict[tuple[str, frozenset[str], frozenset[str]], _Template | None] = {}
        urls: list[str] = []
        for request in requests:
            shape = request.shape
            first = firsts.get(shape)
            if first is None:
                url = self._botocore_url(bucket, request, expires_in)
                firsts[shape] = (url, request)
                urls.append(url)
                continue
            if shape not in templates:
                templates[shape] = self._template(*first, expires_in)
            template = templates[shape]
            urls.append(
                self._sign(template, request)
                if template is not None
                else self._botocore_url(bucket, request, expires_in)
            )
        return urls

    def _botocore_url(self, bucket: str, request: _Request, expires_in: int) -> str:
        params = {"Bucket": bucket, "Key": request.key, **request.params}
        return str(self._client.generate_presigned_url(request.operation, Params=params, ExpiresIn=expires_in))

    def _template(self, url: str, request: _Request, expires_in: int) -> _Template | None:
        """What signing another request of this shape needs from botocore's URL for `request`;
        None when another could not be signed exactly as botocore signs it."""
        split = urlsplit(url)
        query = parse_qsl(split.query, keep_blank_values=True)
        auth_params = {name: value for name, value in query if name.startswith("X-Amz-")}
        order = [name for name, _ in query if not name.startswith("X-Amz-")]
        encoded_key = percent_encode(request.key, safe="/~")
        if (
            not set(auth_params) <= _AUTH_PARAMS
            or auth_params.get("X-Amz-Algorithm") != _ALGORITHM
            or auth_params.get("X-Amz-Expires") != str(expires_in)
            or len(order) != len(set(order))
            or set(order) != set(request.query)
            or not split.path.endswith(encoded_key)
            or split.fragment
        ):
            return None
        scope = auth_params.get("X-Amz-Credential", "").split("/")
        if len(scope) < 5 or scope[-1] != "aws4_request":
            return None
        region, service = scope[-3], scope[-2]
        # The client's own request signer picks the auth class and freezes its credentials (with
        # their session token), exactly as it does for generate_presigned_url.
        auth = self._client._request_signer.get_auth_instance(
            signing_name=service, region_name=region, signature_version="s3v4-query", expires=expires_in
        )
        base = f"{split.scheme}://{split.netloc}{split.path}"
        host = str(auth.headers_to_sign(AWSRequest(method="PUT", url=base))["host"])
        prefix = base[: len(base) - len(encoded_key)]
        template = _Template(prefix=prefix, order=order, auth=auth, host=host)
        # The template's own request signed here must give botocore's URL: the same endpoint,
        # path, query, credential scope, signed headers, expiry and token; only the time may
        # differ (and so the signature). Anything else and this shape is left to botocore.
        probe = self._request(template, request)
        auth.add_auth(probe)
        return template if _timeless(str(probe.url)) == _timeless(url) else None

    @staticmethod
    def _request(template: _Template, request: _Request) -> AWSRequest:
        params = {name: request.query[name] for name in template.order}
        # Host given as botocore derives it from the URL, so it is not parsed again for every URL.
        headers = {**request.headers, "host": template.host}
        url = template.prefix + percent_encode(request.key, safe="/~")
        return AWSRequest(method="PUT", url=url, headers=headers, params=params)

    def _sign(self, template: _Template, request: _Request) -> str:
        signed = self._request(template, request)
        template.auth.add_auth(signed)
        return str(signed.url)


def _part_request(key: str, upload_id: str, part: PartToPresign) -> _Request:
    params: dict[str, Any] = {"UploadId": upload_id, "PartNumber": part.part_number}
    for header, value in part.headers.items():
        name = header.lower()
        if name not in ("content-length", "content-md5") and not name.startswith(_CHECKSUM_PREFIX):
            raise ValueError(f"{header} is not an UploadPart header this signer knows")
        params.update(_header_param(header, value))
    query = {"partNumber": str(part.part_number), "uploadId": upload_id}
    return _Request("upload_part", key, params, query, part.headers)


def _put_request(put: PutToPresign) -> _Request:
    params: dict[str, Any] = {}
    metadata: dict[str, str] = {}
    for header, value in put.headers.items():
        name = header.lower()
        if name.startswith(_META_PREFIX):
            metadata[name.removeprefix(_META_PREFIX)] = value
        elif name == "x-amz-tagging":
            params["Tagging"] = value
        else:
            params.update(_header_param(header, value))
    if metadata:
        params["Metadata"] = metadata
    return _Request("put_object", put.key, params, {}, put.headers)


def _header_param(header: str, value: str) -> dict[str, Any]:
    """The botocore parameter that botocore serializes as this header."""
    name = header.lower()
    if name == "content-length":
        return {"ContentLength": int(value)}
    if name in _HEADER_PARAMS:
        return {_HEADER_PARAMS[name]: value}
    if name.startswith(_CHECKSUM_PREFIX):
        return {f"Checksum{name.removeprefix(_CHECKSUM_PREFIX).upper()}": value}
    raise ValueError(f"{header} is not a header this signer knows")


def _timeless(url: str) -> list[str]:
    """A presigned URL's parts but its signing time and signature."""
    return [piece for piece in url.split("&") if not piece.startswith(("X-Amz-Date=", "X-Amz-Signature="))]
