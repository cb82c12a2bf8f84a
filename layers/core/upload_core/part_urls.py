"""Presigned UploadPart URLs in batches: botocore's pipeline once per batch, its SigV4 signer per part.

`generate_presigned_url` repeats, for every URL, what is the same for every part of one upload:
parameter validation, serialization, endpoint-ruleset resolution and the client's event hooks;
together about two thirds of its time here (bench/control_plane.py). Here the first part of a
batch (and of each distinct set of signed headers) goes through `generate_presigned_url`
unchanged; its URL is the template that gives the endpoint, the path, the operation's query
parameters, the signing region and service, and the headers botocore signs. Every other part is
the same request with its own part number and headers, signed by the auth class botocore itself
picks for a presigned S3 URL (`S3SigV4QueryAuth`, from the client's request signer, so with the
client's credentials, their session token and the expiry). The URLs are the ones
`generate_presigned_url` returns, byte for byte (tests/unit/test_part_urls.py compares them at a
frozen time).

A template is used only when its own part, signed here, gives botocore's URL but for the signing
time. When it is not plain SigV4 (S3 Express session auth, SigV4a, an unknown parameter), or
botocore signs something else (another header, another scope), every part goes through
`generate_presigned_url`: never a URL that differs from botocore's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from botocore.awsrequest import AWSRequest

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
# The UploadPart parameters that botocore serializes as these headers, exactly.
_HEADER_PARAMS = {"content-length": "ContentLength", "content-md5": "ContentMD5"}
_CHECKSUM_PREFIX = "x-amz-checksum-"


@dataclass(frozen=True, slots=True)
class PartToPresign:
    part_number: int
    # Signed headers, e.g. Content-Length, Content-MD5, x-amz-checksum-crc32: S3 then refuses a
    # request whose headers differ.
    headers: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class _Template:
    url: str  # scheme://host/path, no query
    params: list[tuple[str, str]]  # the operation's query parameters, in botocore's order
    auth: Any  # a botocore S3SigV4QueryAuth for the template's region, service and expiry
    host: str  # the host header botocore signed


class PartUrlSigner:
    """Presigns UploadPart URLs of one upload on one boto3 S3 client (see the module's docstring)."""

    def __init__(self, client: Any) -> None:
        self._client = client

    def presign(
        self, bucket: str, key: str, upload_id: str, parts: Sequence[PartToPresign], *, expires_in: int
    ) -> list[str]:
        """One URL per part, in the order given."""
        # The first part of each set of header names goes through botocore; its URL becomes that
        # set's template once a second part needs one (a batch of one costs what it always did).
        firsts: dict[frozenset[str], tuple[str, PartToPresign]] = {}
        templates: dict[frozenset[str], _Template | None] = {}
        urls: list[str] = []
        for part in parts:
            names = frozenset(name.lower() for name in part.headers)
            first = firsts.get(names)
            if first is None:
                url = self._botocore_url(bucket, key, upload_id, part, expires_in)
                firsts[names] = (url, part)
                urls.append(url)
                continue
            if names not in templates:
                templates[names] = self._template(*first, expires_in)
            template = templates[names]
            urls.append(
                self._sign(template, part)
                if template is not None
                else self._botocore_url(bucket, key, upload_id, part, expires_in)
            )
        return urls

    def _botocore_url(self, bucket: str, key: str, upload_id: str, part: PartToPresign, expires_in: int) -> str:
        params: dict[str, Any] = {"Bucket": bucket, "Key": key, "UploadId": upload_id, "PartNumber": part.part_number}
        for header, value in part.headers.items():
            name = header.lower()
            if name == "content-length":
                params["ContentLength"] = int(value)
            elif name in _HEADER_PARAMS:
                params[_HEADER_PARAMS[name]] = value
            elif name.startswith(_CHECKSUM_PREFIX):
                params[f"Checksum{name.removeprefix(_CHECKSUM_PREFIX).upper()}"] = value
            else:
                raise ValueError(f"{header} is not an UploadPart header this signer knows")
        return str(self._client.generate_presigned_url("upload_part", Params=params, ExpiresIn=expires_in))

    def _template(self, url: str, part: PartToPresign, expires_in: int) -> _Template | None:
        """What signing another part needs from botocore's URL for `part`; None when another part
        could not be signed exactly as botocore signs it."""
        split = urlsplit(url)
        query = parse_qsl(split.query, keep_blank_values=True)
        auth_params = {name: value for name, value in query if name.startswith("X-Amz-")}
        params = [(name, value) for name, value in query if not name.startswith("X-Amz-")]
        if (
            not set(auth_params) <= _AUTH_PARAMS
            or auth_params.get("X-Amz-Algorithm") != _ALGORITHM
            or auth_params.get("X-Amz-Expires") != str(expires_in)
            or [name for name, _ in params].count("partNumber") != 1
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
        template = _Template(url=base, params=params, auth=auth, host=host)
        # The template's own part signed here must give botocore's URL: the same endpoint, path,
        # query, credential scope, signed headers, expiry and token; only the time may differ (and
        # so the signature). Anything else and the batch is left to botocore.
        probe = self._request(template, part)
        auth.add_auth(probe)
        return template if _timeless(str(probe.url)) == _timeless(url) else None

    @staticmethod
    def _request(template: _Template, part: PartToPresign) -> AWSRequest:
        number = str(part.part_number)
        params = {name: (number if name == "partNumber" else value) for name, value in template.params}
        # Host given as botocore derives it from the URL, so it is not parsed again for every part.
        headers = {**part.headers, "host": template.host}
        return AWSRequest(method="PUT", url=template.url, headers=headers, params=params)

    def _sign(self, template: _Template, part: PartToPresign) -> str:
        request = self._request(template, part)
        template.auth.add_auth(request)
        return str(request.url)


def _timeless(url: str) -> list[str]:
    """A presigned URL's parts but its signing time and signature."""
    return [piece for piece in url.split("&") if not piece.startswith(("X-Amz-Date=", "X-Amz-Signature="))]
