"""The only module that talks to S3. Every boto3 call of the application goes through S3Gateway."""

from __future__ import annotations

from collections.abc import Generator, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from http import HTTPStatus
from typing import Any
from urllib.parse import quote

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, ConnectTimeoutError, ReadTimeoutError

from upload_core.errors import Conflict, InvalidRequest, NotFound, UploadError, UpstreamError, UpstreamTimeout
from upload_core.observability import logger
from upload_core.presigned_urls import PartToPresign, PutToPresign, UrlSigner
from upload_core.settings import Settings

CHECKSUM_ALGORITHMS = ("CRC32", "CRC32C", "SHA1", "SHA256")


@dataclass(frozen=True, slots=True)
class UploadedPart:
    part_number: int
    etag: str
    size: int
    last_modified: datetime | None = None
    checksum: str | None = None


@dataclass(frozen=True, slots=True)
class PartsListing:
    parts: list[UploadedPart]
    checksum_algorithm: str | None


@dataclass(frozen=True, slots=True)
class PendingUpload:
    key: str
    upload_id: str
    initiated: datetime


@dataclass(frozen=True, slots=True)
class CompletedObject:
    key: str
    etag: str
    location: str
    version_id: str | None


@dataclass(frozen=True, slots=True)
class ObjectHead:
    size: int
    etag: str
    content_type: str | None
    metadata: dict[str, str]
    version_id: str | None


class StorageBusy(UploadError):
    """S3 asked us to slow down (503 SlowDown) and kept asking through the client's retries."""

    status = HTTPStatus.SERVICE_UNAVAILABLE
    code = "StorageBusy"


def storage_error(error: ClientError | BotoCoreError, *, missing: str = "not found") -> UploadError:
    """Turn an S3 error into a domain error without leaking S3's message or request ids."""
    if isinstance(error, ReadTimeoutError | ConnectTimeoutError):
        return UpstreamTimeout("the storage service did not answer in time", code="StorageTimeout")
    if isinstance(error, BotoCoreError):
        return UpstreamError("the storage service could not be reached", code="StorageUnavailable")
    code = error.response.get("Error", {}).get("Code", "")
    if code in ("SlowDown", "ServiceUnavailable", "503"):
        return StorageBusy("the storage service is busy; retry later")
    if code in ("NoSuchUpload", "NoSuchKey", "404", "NotFound", "NoSuchVersion"):
        return NotFound(missing)
    if code in ("InvalidPart", "InvalidPartOrder", "EntityTooSmall", "InvalidDigest", "BadDigest"):
        return InvalidRequest(error.response["Error"].get("Message", code), code=code)
    if code in ("PreconditionFailed", "ConditionalRequestConflict", "OperationAborted"):
        return Conflict("the object was changed by another request", code=code)
    return UpstreamError("the storage service refused the request", code="StorageError")


@contextmanager
def storage_errors(*, missing: str = "not found") -> Iterator[None]:
    """Around S3 calls: an S3 error leaves as the domain error `storage_error` maps it to."""
    try:
        yield
    except (ClientError, BotoCoreError) as error:
        raise storage_error(error, missing=missing) from error


class S3Gateway:
    """S3 operations the domain needs, with S3's pagination and errors folded in."""

    def __init__(self, settings: Settings, client: Any | None = None) -> None:
        self._settings = settings
        self._client = client
        self._url_signer: UrlSigner | None = None
        self._put_signer: UrlSigner | None = None

    @property
    def bucket(self) -> str:
        return self._settings.bucket_name

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = build_s3_client(self._settings)
        return self._client

    @property
    def _signer(self) -> UrlSigner:
        if self._url_signer is None:
            self._url_signer = UrlSigner(self.client)
        return self._url_signer

    # --- multipart -------------------------------------------------------------------------------
    def create_multipart_upload(
        self,
        key: str,
        *,
        content_type: str,
        metadata: Mapping[str, str],
        tags: Mapping[str, str],
        checksum_algorithm: str | None = None,
    ) -> str:
        params: dict[str, Any] = {
            "Bucket": self.bucket,
            "Key": key,
            "ContentType": content_type,
            "Metadata": dict(metadata),
            "Tagging": encode_tag_query(tags),
        }
        if checksum_algorithm:
            params["ChecksumAlgorithm"] = checksum_algorithm
        try:
            with storage_errors():
                response = self.client.create_multipart_upload(**params)
        except UploadError:
            # An attempt may have created an upload whose answer was lost on the way back.
            self.abort_uploads_at(key)
            raise
        upload_id = str(response["UploadId"])
        if response.get("ResponseMetadata", {}).get("RetryAttempts"):
            # The client retried: an earlier attempt may have created an upload too, which
            # nobody would ever complete or abort. The key is new, so any other upload at it
            # is one of those.
            self.abort_uploads_at(key, keep=upload_id)
        return upload_id

    def abort_uploads_at(self, key: str, *, keep: str | None = None) -> None:
        """Best effort: the bucket's lifecycle rule is the backstop when S3 is still failing."""
        try:
            listed = self.client.list_multipart_uploads(Bucket=self.bucket, Prefix=key)
            strays = [u["UploadId"] for u in listed.get("Uploads", []) if u["Key"] == key and u["UploadId"] != keep]
            for upload_id in strays:
                self.client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
        except (ClientError, BotoCoreError):
            logger.warning("could not clean up after a failed CreateMultipartUpload", extra={"key": key})
            return
        if strays:
            logger.info(
                "aborted uploads left by lost CreateMultipartUpload answers", extra={"key": key, "count": len(strays)}
            )

    def presign_upload_parts(
        self, key: str, upload_id: str, parts: Sequence[PartToPresign], *, expires_in: int
    ) -> list[str]:
        """Part URLs, one per part in the order given, each signing its part's headers (with
        Content-Length, S3 refuses a body of any other length; with a checksum, any other body)."""
        return self._signer.presign_parts(self.bucket, key, upload_id, parts, expires_in=expires_in)

    def list_parts(self, key: str, upload_id: str) -> PartsListing:
        parts: list[UploadedPart] = []
        algorithm: str | None = None
        with storage_errors(missing="upload not found"):
            pages: Iterator[dict[str, Any]] = self.client.get_paginator("list_parts").paginate(
                Bucket=self.bucket, Key=key, UploadId=upload_id
            )
            for page in pages:
                algorithm = page.get("ChecksumAlgorithm") or algorithm
                for part in page.get("Parts", []):
                    # Some S3-compatible servers omit the upload's algorithm but list part checksums.
                    algorithm = algorithm or _checksum_algorithm_of(part)
                    parts.append(
                        UploadedPart(
                            part_number=int(part["PartNumber"]),
                            etag=str(part["ETag"]),
                            size=int(part["Size"]),
                            last_modified=part.get("LastModified"),
                            checksum=_part_checksum(part, algorithm),
                        )
                    )
        return PartsListing(parts=sorted(parts, key=lambda p: p.part_number), checksum_algorithm=algorithm)

    def complete_multipart_upload(
        self,
        key: str,
        upload_id: str,
        parts: list[UploadedPart],
        *,
        object_size: int,
        checksum_algorithm: str | None,
    ) -> CompletedObject:
        completed_parts: list[dict[str, Any]] = []
        for part in parts:
            entry: dict[str, Any] = {"PartNumber": part.part_number, "ETag": part.etag}
            if checksum_algorithm and part.checksum:
                entry[f"Checksum{checksum_algorithm}"] = part.checksum
            completed_parts.append(entry)
        with storage_errors(missing="upload not found"):
            response = self.client.complete_multipart_upload(
                Bucket=self.bucket,
                Key=key,
                UploadId=upload_id,
                MultipartUpload={"Parts": completed_parts},
                MpuObjectSize=object_size,
                # Keys are unique per upload: refuse to overwrite anything already at the key.
                IfNoneMatch="*",
            )
        return CompletedObject(
            key=key,
            etag=str(response["ETag"]),
            location=str(response.get("Location") or self.object_url(key)),
            version_id=response.get("VersionId"),
        )

    def abort_multipart_upload(self, key: str, upload_id: str) -> bool:
        """Abort; returns False when there was nothing to abort (already gone), which is not an error."""
        try:
            with storage_errors():
                self.client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
        except NotFound:
            return False
        return True

    def list_multipart_uploads(self, prefix: str) -> list[PendingUpload]:
        uploads: list[PendingUpload] = []
        with storage_errors():
            pages = self.client.get_paginator("list_multipart_uploads").paginate(Bucket=self.bucket, Prefix=prefix)
            for page in pages:
                for upload in page.get("Uploads", []):
                    uploads.append(
                        PendingUpload(
                            key=str(upload["Key"]),
                            upload_id=str(upload["UploadId"]),
                            initiated=upload["Initiated"],
                        )
                    )
        return uploads

    def upload_part(self, key: str, upload_id: str, part_number: int, body: bytes | bytearray) -> UploadedPart:
        with storage_errors(missing="upload not found"):
            response = self.client.upload_part(
                Bucket=self.bucket, Key=key, UploadId=upload_id, PartNumber=part_number, Body=body
            )
        return UploadedPart(part_number=part_number, etag=str(response["ETag"]), size=len(body))

    # --- single objects --------------------------------------------------------------------------
    def presigned_post(
        self,
        key: str,
        *,
        fields: Mapping[str, str],
        min_size: int,
        max_size: int,
        expires_in: int,
    ) -> dict[str, Any]:
        conditions: list[Any] = [{name: value} for name, value in fields.items()]
        conditions.append(["content-length-range", min_size, max_size])
        return dict(
            self.client.generate_presigned_post(
                self.bucket, key, Fields=dict(fields), Conditions=conditions, ExpiresIn=expires_in
            )
        )

    def put_object(
        self,
        key: str,
        body: bytes | bytearray,
        *,
        content_type: str,
        metadata: Mapping[str, str],
        tags: Mapping[str, str],
    ) -> CompletedObject:
        with storage_errors():
            response = self.client.put_object(
                Bucket=self.bucket,
                Key=key,
                Body=body,
                ContentType=content_type,
                Metadata=dict(metadata),
                Tagging=encode_tag_query(tags),
                IfNoneMatch="*",
            )
        return CompletedObject(
            key=key,
            etag=str(response["ETag"]),
            location=self.object_url(key),
            version_id=response.get("VersionId"),
        )

    def head_object(self, key: str, version_id: str | None = None) -> ObjectHead | None:
        try:
            with storage_errors():
                response = self.client.head_object(**self._object(key, version_id))
        except NotFound:
            return None
        return ObjectHead(
            size=int(response["ContentLength"]),
            etag=str(response["ETag"]),
            content_type=response.get("ContentType"),
            metadata={str(k).lower(): str(v) for k, v in response.get("Metadata", {}).items()},
            version_id=response.get("VersionId"),
        )

    def get_range(self, key: str, start: int, end: int, version_id: str | None = None) -> bytes:
        """Bytes start..end inclusive (HTTP Range semantics); fewer when the object is shorter."""
        with storage_errors():
            response = self.client.get_object(**self._object(key, version_id), Range=f"bytes={start}-{end}")
            return bytes(response["Body"].read())

    def get_tags(self, key: str, version_id: str | None = None) -> dict[str, str]:
        with storage_errors():
            response = self.client.get_object_tagging(**self._object(key, version_id))
        return {str(tag["Key"]): str(tag["Value"]) for tag in response.get("TagSet", [])}

    def put_tags(self, key: str, tags: Mapping[str, str], version_id: str | None = None) -> None:
        tag_set = [{"Key": name, "Value": value} for name, value in tags.items()]
        with storage_errors():
            self.client.put_object_tagging(**self._object(key, version_id), Tagging={"TagSet": tag_set})

    def copy_object(
        self,
        source_key: str,
        destination_key: str,
        *,
        source_version_id: str | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> str | None:
        params: dict[str, Any] = {"CopySource": self._object(source_key, source_version_id)}
        if tags is not None:
            params["TaggingDirective"] = "REPLACE"
            params["Tagging"] = encode_tag_query(tags)
        with storage_errors():
            response = self.client.copy_object(**self._object(destination_key), **params)
        version = response.get("VersionId")
        return str(version) if version else None

    def delete_object(self, key: str, version_id: str | None = None) -> None:
        with storage_errors():
            self.client.delete_object(**self._object(key, version_id))

    def delete_every_version(self, key: str) -> int:
        """Every version and delete marker stored under exactly ``key`` removed; how many were."""
        removed = 0
        params: dict[str, Any] = {"Bucket": self.bucket, "Prefix": key}
        with storage_errors():
            while True:
                page = self.client.list_object_versions(**params)
                for entry in [*page.get("Versions", []), *page.get("DeleteMarkers", [])]:
                    if entry["Key"] == key:  # the prefix also matches longer keys
                        self.client.delete_object(Bucket=self.bucket, Key=key, VersionId=entry["VersionId"])
                        removed += 1
                if not page.get("IsTruncated"):
                    return removed
                params["KeyMarker"] = page["NextKeyMarker"]
                params["VersionIdMarker"] = page["NextVersionIdMarker"]

    def presign_download(
        self, key: str, version_id: str, *, disposition: str, content_type: str, expires_in: int
    ) -> str:
        """A GET of exactly this version that makes S3 answer with our Content-Disposition and
        Content-Type, whatever the object's own headers say."""
        params = {
            **self._object(key, version_id),
            "ResponseContentDisposition": disposition,
            "ResponseContentType": content_type,
        }
        return str(self.client.generate_presigned_url("get_object", Params=params, ExpiresIn=expires_in))

    def _object(self, key: str, version_id: str | None = None) -> dict[str, str]:
        """Names one object (or one version of it: `VersionId` only when a version is given), in
        the shape S3 takes as call arguments and as a copy's `CopySource`."""
        named = {"Bucket": self.bucket, "Key": key}
        if version_id:
            named["VersionId"] = version_id
        return named

    def object_url(self, key: str) -> str:
        base = self._settings.s3_endpoint_url or f"https://s3.{self._settings.region}.amazonaws.com"
        return f"{base.rstrip('/')}/{self.bucket}/{quote(key, safe='/')}"

    def iter_object(self, key: str, version_id: str | None = None, chunk_size: int = 1 << 20) -> Generator[bytes]:
        """The object's body in chunks, from one GET, as it arrives (nothing is held).

        The GET is sent on the first ``next()``; closing the iterator early closes the connection.
        A body shorter than its Content-Length raises (botocore checks it) as a storage error.
        """
        params: dict[str, Any] = {"Bucket": self.bucket, "Key": key}
        if version_id:
            params["VersionId"] = version_id
        try:
            body = self.client.get_object(**params)["Body"]
            try:
                yield from body.iter_chunks(chunk_size)
            finally:
                body.close()
        except (ClientError, BotoCoreError) as error:
            raise storage_error(error) from error

    # --- presigned requests a browser sends itself (Uppy 6's signRequest) -------------------------
    def presign_put_object(
        self,
        key: str,
        *,
        content_type: str,
        content_length: int,
        metadata: Mapping[str, str],
        tags: Mapping[str, str],
        expires_in: int,
    ) -> str:
        """PutObject at ``key``: the length and content type are signed headers (S3 refuses a body
        of any other length or type), the metadata and tags are signed into the query string."""
        params = {
            "Bucket": self.bucket,
            "Key": key,
            "ContentType": content_type,
            "ContentLength": content_length,
            "Metadata": dict(metadata),
            "Tagging": encode_tag_query(tags),
        }
        return self._presign("put_object", params, expires_in)

    def presign_put_objects(self, puts: Sequence[PutToPresign], *, expires_in: int) -> list[str]:
        """PutObject URLs, one per file in the order given, each signing its file's headers (with
        Content-Length and a checksum, S3 refuses any other body; with If-None-Match, a second
        write at the key), its metadata and tags included: these clients send headers, and S3 is
        reported to ignore a hoisted x-amz-tagging (docs/limits.md), so they stay headers here,
        signed on a second client without the hoisting hook (made once, on first use)."""
        if self._put_signer is None:
            self._put_signer = UrlSigner(build_s3_client(self._settings, hoist=False))
        return self._put_signer.presign_puts(self.bucket, puts, expires_in=expires_in)

    def presign_create_multipart_upload(
        self, key: str, *, content_type: str, metadata: Mapping[str, str], tags: Mapping[str, str], expires_in: int
    ) -> str:
        """CreateMultipartUpload at ``key``: the content type is a signed header, the metadata and
        tags are signed into the query string (S3 refuses the request unless they are exactly these)."""
        params = {
            "Bucket": self.bucket,
            "Key": key,
            "ContentType": content_type,
            "Metadata": dict(metadata),
            "Tagging": encode_tag_query(tags),
        }
        return self._presign("create_multipart_upload", params, expires_in)

    def presign_list_parts(self, key: str, upload_id: str, *, expires_in: int) -> str:
        return self._presign("list_parts", {"Bucket": self.bucket, "Key": key, "UploadId": upload_id}, expires_in)

    def presign_complete_multipart_upload(self, key: str, upload_id: str, *, object_size: int, expires_in: int) -> str:
        """CompleteMultipartUpload with the object's size signed into the query string: S3 refuses
        a parts list of any other total."""
        params = {"Bucket": self.bucket, "Key": key, "UploadId": upload_id, "MpuObjectSize": object_size}
        return self._presign("complete_multipart_upload", params, expires_in)

    def presign_abort_multipart_upload(self, key: str, upload_id: str, *, expires_in: int) -> str:
        params = {"Bucket": self.bucket, "Key": key, "UploadId": upload_id}
        return self._presign("abort_multipart_upload", params, expires_in)

    def _presign(self, operation: str, params: Mapping[str, Any], expires_in: int) -> str:
        return str(self.client.generate_presigned_url(operation, Params=dict(params), ExpiresIn=expires_in))


def build_s3_client(settings: Settings, *, hoist: bool = True) -> Any:
    """A SigV4 client on a regional endpoint: SSE-KMS buckets refuse SigV2 presigned URLs.
    ``hoist``: its presigned URLs carry x-amz-* headers as query parameters (see below)."""
    endpoint = settings.s3_endpoint_url or f"https://s3.{settings.region}.amazonaws.com"
    config = Config(
        signature_version="s3v4",
        # total_max_attempts counts the first attempt too (botocore's max_attempts counts only retries).
        retries={"mode": "standard", "total_max_attempts": settings.s3_max_attempts},
        connect_timeout=settings.s3_connect_timeout_seconds,
        read_timeout=settings.s3_read_timeout_seconds,
        # Path style for local emulators; virtual-hosted style (S3's default) on AWS.
        s3={"addressing_style": "path" if settings.s3_endpoint_url else "virtual"},
        # Send a checksum only when S3 requires one: presigned part URLs must not gain
        # checksum headers the browser does not know to send.
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    )
    client = boto3.client("s3", region_name=settings.region, endpoint_url=endpoint, config=config)
    if hoist:
        hoist_presigned_amz_headers(client)
    return client


# The x-amz-* request headers a presigned URL carries in its query string instead. Uppy 6.1
# (the `uppy` 6.0.x package) sends a presigned request with nothing but its own Content-Type, so
# a signed header it does not know to send would fail every request. SigV4 covers a query
# parameter exactly as it covers a signed header, and S3 applies these as the headers they stand
# for. Checksums stay headers: a presigned checksum value would describe an empty body.
_HOISTED_HEADERS = ("x-amz-tagging", "x-amz-mp-object-size")
_HOISTED_PREFIX = "x-amz-meta-"


def hoist_presigned_amz_headers(client: Any) -> None:
    """Make the client's presigned URLs carry metadata, tags and the completion size as signed
    query parameters (a browser then sends only the URL, Content-Type and its body)."""
    client.meta.events.register("before-sign.s3", _hoist_amz_headers, unique_id="upload-core-hoist-amz-headers")


def _hoist_amz_headers(request: Any, signature_version: str | None = None, **_: Any) -> None:
    if not str(signature_version or "").endswith("-query"):
        return
    for name in list(request.headers.keys()):
        lowered = name.lower()
        if lowered in _HOISTED_HEADERS or lowered.startswith(_HOISTED_PREFIX):
            request.params[lowered] = request.headers[name]
            del request.headers[name]


def encode_tag_query(tags: Mapping[str, str]) -> str:
    return "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in tags.items())


def _checksum_algorithm_of(part: Mapping[str, Any]) -> str | None:
    return next((name for name in CHECKSUM_ALGORITHMS if part.get(f"Checksum{name}")), None)


def _part_checksum(part: Mapping[str, Any], algorithm: str | None) -> str | None:
    if not algorithm:
        return None
    value = part.get(f"Checksum{algorithm}")
    return str(value) if value else None
