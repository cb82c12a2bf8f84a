"""The multipart upload lifecycle: start, sign parts, list, complete, abort, and single-request forms.

Every operation is scoped to a caller (`owner`, the token's subject): keys are chosen here, under
the caller's prefix, and every key a client sends back is checked before S3 is asked anything.
"""

from __future__ import annotations

import base64
import binascii
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from upload_core import keys, object_meta, parts
from upload_core.content_types import ensure_allowed
from upload_core.errors import Conflict, InvalidRequest, NotFound, TooLarge, UploadError, UpstreamError, UpstreamTimeout
from upload_core.observability import logger, metrics
from upload_core.presigned_urls import PartToPresign
from upload_core.registry import PlanKind, PlanState, Registry, UploadPlan, registry_for
from upload_core.s3 import CHECKSUM_ALGORITHMS, PendingUpload, S3Gateway, UploadedPart
from upload_core.settings import S3_MAX_PARTS, S3_MIN_PART_SIZE, Settings

# A form's reservation outlives its URL by this much, so a queued validation can still settle it.
FORM_SETTLE_MARGIN_SECONDS = 3600
_CHECKSUM_BYTES = {"CRC32": 4, "CRC32C": 4, "SHA1": 20, "SHA256": 32}


@dataclass(frozen=True, slots=True)
class StartedUpload:
    upload_id: str
    key: str
    part_size: int | None
    part_count: int | None
    checksum_algorithm: str | None


@dataclass(frozen=True, slots=True)
class ReservedUpload:
    """A reserved plan and what its S3 upload must be created with."""

    plan: UploadPlan
    metadata: dict[str, str]
    tags: dict[str, str]


@dataclass(frozen=True, slots=True)
class PartRequest:
    part_number: int
    content_md5: str | None = None
    checksum: str | None = None


@dataclass(frozen=True, slots=True)
class SignedPart:
    part_number: int
    url: str
    headers: dict[str, str]
    # The exact length S3 will accept for this part (signed into the URL), when the plan knows it.
    size: int | None = None


@dataclass(frozen=True, slots=True)
class SignedParts:
    parts: list[SignedPart]
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class ClientPart:
    part_number: int
    etag: str


@dataclass(frozen=True, slots=True)
class CompletedUpload:
    key: str
    etag: str
    size: int
    location: str


@dataclass(frozen=True, slots=True)
class ObjectStatus:
    key: str
    status: str
    reason: str | None
    tags: dict[str, str]
    quarantine_key: str | None


@dataclass(frozen=True, slots=True)
class FormUpload:
    url: str
    fields: dict[str, str]
    key: str
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class SignedPut:
    url: str
    key: str
    content_type: str


class UploadService:
    def __init__(
        self,
        settings: Settings,
        s3: S3Gateway | None = None,
        registry: Registry | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._settings = settings
        self._s3 = s3 or S3Gateway(settings)
        self._registry = registry or registry_for(settings, clock)
        self._clock = clock

    @property
    def bucket(self) -> str:
        return self._settings.bucket_name

    @property
    def settings(self) -> Settings:
        return self._settings

    @property
    def storage(self) -> S3Gateway:
        return self._s3

    @property
    def registry(self) -> Registry:
        return self._registry

    # --- start -----------------------------------------------------------------------------------
    def start(
        self,
        owner: str,
        *,
        filename: str,
        content_type: str,
        size: int | None,
        part_size: int | None = None,
        metadata: Mapping[str, object] | None = None,
        checksum_algorithm: str | None = None,
    ) -> StartedUpload:
        """Start a multipart upload. `size` is None only for clients that do not declare it
        (Uppy's Companion protocol); the size limit is then enforced when completing."""
        reserved = self.reserve_multipart(
            owner,
            filename=filename,
            content_type=content_type,
            size=size,
            part_size=part_size,
            metadata=metadata,
            checksum_algorithm=checksum_algorithm,
        )
        plan = reserved.plan
        key = plan.key
        try:
            upload_id = self._s3.create_multipart_upload(
                key,
                content_type=plan.content_type,
                metadata=reserved.metadata,
                tags=reserved.tags,
                checksum_algorithm=plan.checksum_algorithm,
            )
        except UploadError:
            self._registry.release(plan, PlanState.ABORTED)
            raise
        # Should this write fail, the plan stays `creating` and the sweeper aborts whatever
        # upload exists at the key when the plan's time is up.
        self._registry.open(key, upload_id)
        metrics.add_metric(name="UploadsStarted", unit=MetricUnit.Count, value=1)
        logger.info("upload started", extra={"key": key, "upload_id": upload_id, "size": size})
        return StartedUpload(
            upload_id=upload_id,
            key=key,
            part_size=plan.part_size,
            part_count=plan.part_count,
            checksum_algorithm=plan.checksum_algorithm,
        )

    def reserve_multipart(
        self,
        owner: str,
        *,
        filename: str,
        content_type: str,
        size: int | None,
        part_size: int | None = None,
        metadata: Mapping[str, object] | None = None,
        checksum_algorithm: str | None = None,
    ) -> ReservedUpload:
        """Check a multipart upload's declaration, choose its key under the caller's prefix and
        reserve its plan (state `creating`); the caller then creates the S3 upload at the key."""
        settings = self._settings
        normalized_type = ensure_allowed(content_type, settings.allowed_content_types)
        if size is not None and size < 0:
            raise InvalidRequest("size must not be negative", code="InvalidSize")
        chosen_part_size = parts.choose_part_size(size, part_size, settings) if size is not None else None
        chosen_part_count = parts.part_count(size, chosen_part_size) if size is not None and chosen_part_size else None
        algorithm = _checksum_algorithm(checksum_algorithm)
        user_metadata = object_meta.user_metadata(metadata)
        self._registry.count_request(owner, settings.max_requests_per_minute)
        key = keys.new_key(settings.upload_prefix, owner, filename)
        plan = self._registry.reserve(
            self._new_plan(
                owner,
                key,
                kind=PlanKind.MULTIPART if size is not None else PlanKind.UNDECLARED,
                reserved_bytes=size if size is not None else self.undeclared_limit,
                ttl_seconds=settings.upload_ttl_seconds,
                declared_size=size,
                part_size=chosen_part_size,
                part_count=chosen_part_count,
                content_type=normalized_type,
                checksum_algorithm=algorithm,
            )
        )
        return ReservedUpload(
            plan=plan,
            metadata={**user_metadata, **object_meta.system_metadata(owner, filename, declared_size=size)},
            tags=object_meta.pending_tags(),
        )

    @property
    def undeclared_limit(self) -> int:
        """The most an upload that did not declare its size may store (and so reserves)."""
        return min(self._settings.max_undeclared_upload_bytes, self._settings.max_upload_bytes)

    def _new_plan(
        self, owner: str, key: str, *, kind: PlanKind, reserved_bytes: int, ttl_seconds: int, **plan: Any
    ) -> UploadPlan:
        now = int(self._clock())
        return UploadPlan(
            key=key,
            owner=owner,
            kind=kind,
            reserved_bytes=reserved_bytes,
            created_at=now,
            expires_at=now + ttl_seconds,
            **plan,
        )

    def _open_plan(self, owner: str, key: str, upload_id: str) -> UploadPlan:
        """The plan of the caller's open upload ``upload_id`` at ``key``; 404 for anything else
        (another key's upload, an upload that has ended, one this API did not start)."""
        plan = self._registry.plan(key)
        if plan is None or plan.owner != owner or plan.upload_id != upload_id:
            raise NotFound("upload not found", code="NoSuchUpload")
        if plan.state is not PlanState.OPEN:
            raise NotFound(f"this upload has ended ({plan.state})", code="NoSuchUpload")
        return plan

    def list_pending(self, owner: str) -> list[PendingUpload]:
        prefix = keys.owner_prefix(self._settings.upload_prefix, owner)
        return sorted(self._s3.list_multipart_uploads(prefix), key=lambda upload: upload.initiated)

    # --- sign ------------------------------------------------------------------------------------
    def sign_parts(
        self,
        owner: str,
        upload_id: str,
        key: str,
        requests: list[PartRequest],
        *,
        checksum_algorithm: str | None = None,
    ) -> SignedParts:
        """Presign part URLs. Checksums sent with a part are signed into its URL, so S3 refuses a
        body that does not match; `checksum_algorithm` names their algorithm (it must be the one
        the upload was started with)."""
        keys.ensure_owned(self._settings.upload_prefix, owner, key)
        _ensure_upload_id(upload_id)
        numbers = [request.part_number for request in requests]
        if len(numbers) != len(set(numbers)):
            raise InvalidRequest("part numbers must be unique", code="InvalidPartNumber")
        parts.validate_part_numbers(numbers, limit=self._settings.max_parts_per_request)
        self._registry.count_request(owner, self._settings.max_requests_per_minute)
        # Presigning needs no S3 call: the plan proves the upload id is this caller's, for this key.
        plan = self._open_plan(owner, key, upload_id)
        parts.validate_part_numbers(numbers, limit=len(numbers), highest=_highest_part(plan))
        started_with = plan.checksum_algorithm
        requested = _checksum_algorithm(checksum_algorithm)
        if started_with and requested and started_with != requested:
            raise InvalidRequest(
                f"this upload was started with checksumAlgorithm {started_with}, not {requested}",
                code="InvalidChecksum",
            )
        algorithm = started_with or requested
        expires_in = self._settings.url_expiry_seconds
        ordered = sorted(requests, key=lambda r: r.part_number)
        signed_headers = [_signed_headers(request, algorithm, required=started_with is not None) for request in ordered]
        lengths = [plan.part_length(request.part_number) for request in ordered]
        urls = self._s3.presign_upload_parts(
            key,
            upload_id,
            [
                PartToPresign(request.part_number, _with_length(headers, length))
                for request, headers, length in zip(ordered, signed_headers, lengths, strict=True)
            ],
            expires_in=expires_in,
        )
        signed = [
            SignedPart(part_number=request.part_number, url=url, headers=headers, size=length)
            for request, url, headers, length in zip(ordered, urls, signed_headers, lengths, strict=True)
        ]
        return SignedParts(parts=signed, expires_at=self.expires_at(expires_in))

    # --- list ------------------------------------------------------------------------------------
    def list_parts(self, owner: str, upload_id: str, key: str) -> list[UploadedPart]:
        keys.ensure_owned(self._settings.upload_prefix, owner, key)
        _ensure_upload_id(upload_id)
        return self._s3.list_parts(key, upload_id).parts

    # --- complete --------------------------------------------------------------------------------
    def complete(
        self, owner: str, upload_id: str, key: str, client_parts: list[ClientPart] | None = None
    ) -> CompletedUpload:
        """Complete with the client's parts list, or with every uploaded part when none is sent.

        Idempotent: when the upload is already gone because an earlier call completed it, the
        stored object (the key is unique to this upload) is described instead.
        """
        keys.ensure_owned(self._settings.upload_prefix, owner, key)
        _ensure_upload_id(upload_id)
        plan = self._registry.plan(key)
        if plan is None or plan.owner != owner or plan.upload_id != upload_id:
            raise NotFound("upload not found", code="NoSuchUpload")
        if plan.state is PlanState.COMPLETED:
            return self._already_completed(owner, key)
        if plan.state is not PlanState.OPEN:
            raise NotFound(f"this upload has ended ({plan.state})", code="NoSuchUpload")
        try:
            listing = self._s3.list_parts(key, upload_id)
        except NotFound:
            return self._already_completed(owner, key, plan)
        chosen, total = self._checked_parts(plan, listing.parts, client_parts)
        try:
            completed = self._s3.complete_multipart_upload(
                key, upload_id, chosen, object_size=total, checksum_algorithm=listing.checksum_algorithm
            )
        except NotFound:
            return self._already_completed(owner, key, plan)
        except (UpstreamError, UpstreamTimeout, Conflict):
            # S3 may have completed it and only its answers were lost (a retry then finds the
            # upload gone, or the object in the way of If-None-Match): the object tells.
            try:
                stored = self._stored_object(owner, key)
            except UploadError:
                stored = None
            if stored is None:
                raise
            self._registry.settle(plan, stored.size)
            return stored
        self._registry.settle(plan, total)
        metrics.add_metric(name="UploadsCompleted", unit=MetricUnit.Count, value=1)
        metrics.add_metric(name="BytesUploaded", unit=MetricUnit.Bytes, value=total)
        logger.info("upload completed", extra={"key": key, "upload_id": upload_id, "size": total})
        return CompletedUpload(key=key, etag=completed.etag, size=total, location=completed.location)

    def checked_size(self, owner: str, upload_id: str, key: str) -> int:
        """Check every stored part of the caller's open upload against its plan, as completing
        does, and return the object size a completion of those parts makes (for a client that
        completes the upload itself)."""
        keys.ensure_owned(self._settings.upload_prefix, owner, key)
        _ensure_upload_id(upload_id)
        plan = self._open_plan(owner, key, upload_id)
        _, total = self._checked_parts(plan, self._s3.list_parts(key, upload_id).parts, None)
        return total

    def _checked_parts(
        self, plan: UploadPlan, uploaded: list[UploadedPart], client_parts: list[ClientPart] | None
    ) -> tuple[list[UploadedPart], int]:
        chosen = _select_parts(uploaded, client_parts)
        total = parts.check_part_sizes([(part.part_number, part.size) for part in chosen])
        self._check_against_plan(plan, chosen, total)
        return chosen, total

    def _check_against_plan(self, plan: UploadPlan, chosen: list[UploadedPart], total: int) -> None:
        """A declared upload completes with exactly its plan's parts and size; an undeclared one
        with no more than it reserved. What breaks the plan is refused before S3 stores it."""
        if plan.kind is PlanKind.MULTIPART and plan.part_count is not None:
            numbers = [part.part_number for part in chosen]
            missing = sorted(set(range(1, plan.part_count + 1)) - set(numbers))
            if missing:
                raise InvalidRequest(
                    f"the upload is planned in {plan.part_count} parts; missing: {_number_list(missing)}",
                    code="IncompleteUpload",
                )
            if len(numbers) != plan.part_count:
                raise InvalidRequest(
                    f"the upload is planned in {plan.part_count} parts, not {len(numbers)}", code="PartsNotInPlan"
                )
            for part in chosen:
                if part.size != plan.part_length(part.part_number):
                    raise InvalidRequest(
                        f"part {part.part_number} is {part.size} bytes, the plan says"
                        f" {plan.part_length(part.part_number)}",
                        code="PartSizeMismatch",
                    )
            return
        limit = min(plan.reserved_bytes, self._settings.max_upload_bytes)
        if total > limit:
            self._s3.abort_multipart_upload(plan.key, plan.upload_id or "")
            self._registry.release(plan, PlanState.REFUSED)
            metrics.add_metric(name="UploadsRefusedOversize", unit=MetricUnit.Count, value=1)
            raise TooLarge(
                f"the upload is {total} bytes, over the {limit} an upload without a declared size may store;"
                " it has been aborted (declare the size to upload more)",
                code="UploadTooLarge",
            )

    def _already_completed(self, owner: str, key: str, plan: UploadPlan | None = None) -> CompletedUpload:
        stored = self._stored_object(owner, key)
        if stored is None:
            raise NotFound("upload not found", code="NoSuchUpload")
        if plan is not None:
            self._registry.settle(plan, stored.size)
        return stored

    def _stored_object(self, owner: str, key: str) -> CompletedUpload | None:
        """The caller's object at `key`, if there is one (the key is unique to one upload)."""
        head = self._s3.head_object(key)
        if head is None or head.metadata.get(object_meta.OWNER_META) != object_meta.system_metadata(owner, "").get(
            object_meta.OWNER_META
        ):
            return None
        return CompletedUpload(key=key, etag=head.etag, size=head.size, location=self._s3.object_url(key))

    # --- abort -----------------------------------------------------------------------------------
    def abort(self, owner: str, upload_id: str, key: str) -> bool:
        """Abort; aborting an upload that is already gone succeeds too (returns False)."""
        keys.ensure_owned(self._settings.upload_prefix, owner, key)
        _ensure_upload_id(upload_id)
        aborted = self._s3.abort_multipart_upload(key, upload_id)
        plan = self._registry.plan(key)
        if plan is not None and plan.owner == owner and plan.upload_id == upload_id and plan.holds_reservation:
            self._registry.release(plan, PlanState.ABORTED)
        if aborted:
            metrics.add_metric(name="UploadsAborted", unit=MetricUnit.Count, value=1)
            logger.info("upload aborted", extra={"key": key, "upload_id": upload_id})
        return aborted

    # --- validation status -----------------------------------------------------------------------
    def object_status(self, owner: str, key: str) -> ObjectStatus:
        """The validator's verdict on one of the caller's objects, also once it was quarantined."""
        keys.ensure_owned(self._settings.upload_prefix, owner, key)
        quarantine_key = f"{self._settings.quarantine_prefix}/{key}"
        for where in (key, quarantine_key):
            try:
                tags = self._s3.get_tags(where)
            except NotFound:
                continue
            ours = {name: value for name, value in tags.items() if name.startswith("upload-")}
            return ObjectStatus(
                key=key,
                status=ours.get(object_meta.STATUS_TAG, object_meta.STATUS_PENDING),
                reason=ours.get(object_meta.REASON_TAG),
                tags=ours,
                quarantine_key=quarantine_key if where == quarantine_key else None,
            )
        raise NotFound("no object at this key (the upload may not be complete yet)", code="NoSuchKey")

    # --- single-request form ---------------------------------------------------------------------
    def form(self, owner: str, *, filename: str, content_type: str, size: int | None) -> FormUpload:
        """A presigned POST whose policy pins the key, the content type, the metadata, the pending
        tag and the size (exactly the declared size, or up to the form limit when undeclared)."""
        settings = self._settings
        key, normalized_type, expires_in = self._reserve_single(owner, filename, content_type, size)
        fields = {
            "Content-Type": normalized_type,
            "tagging": object_meta.tagging_xml(object_meta.pending_tags()),
            "success_action_status": "201",
            **{
                f"x-amz-meta-{name}": value
                for name, value in object_meta.system_metadata(owner, filename, declared_size=size).items()
            },
        }
        post = self._s3.presigned_post(
            key,
            fields=fields,
            min_size=size if size is not None else 0,
            max_size=size if size is not None else settings.max_form_upload_bytes,
            expires_in=expires_in,
        )
        metrics.add_metric(name="FormUploadsIssued", unit=MetricUnit.Count, value=1)
        return FormUpload(
            url=str(post["url"]),
            fields={str(k): str(v) for k, v in post["fields"].items()},
            key=key,
            expires_at=self.expires_at(expires_in),
        )

    def put_url(self, owner: str, *, filename: str, content_type: str, size: int, expires_in: int) -> SignedPut:
        """A presigned PutObject for the whole file, reserved exactly as a form is: the URL signs the
        exact length and content type (headers the browser sends anyway), the metadata and the
        pending tag, so S3 refuses any other body, type, metadata or tags at the key."""
        key, normalized_type, _ = self._reserve_single(owner, filename, content_type, size)
        url = self._s3.presign_put_object(
            key,
            content_type=normalized_type,
            content_length=size,
            metadata=object_meta.system_metadata(owner, filename, declared_size=size),
            tags=object_meta.pending_tags(),
            expires_in=min(expires_in, self._settings.url_expiry_seconds),
        )
        metrics.add_metric(name="FormUploadsIssued", unit=MetricUnit.Count, value=1)
        return SignedPut(url=url, key=key, content_type=normalized_type)

    def _reserve_single(self, owner: str, filename: str, content_type: str, size: int | None) -> tuple[str, str, int]:
        """Reserve a single-request upload (a form or a whole-file PUT) at a new key: its key, its
        normalized content type and the URL's life."""
        settings = self._settings
        normalized_type = self.single_request_type(content_type, size)
        self._registry.count_request(owner, settings.max_requests_per_minute)
        key = keys.new_key(settings.upload_prefix, owner, filename)
        self._registry.reserve(self.single_request_plan(owner, key, content_type=normalized_type, size=size))
        self._registry.open(key, None)
        return key, normalized_type, settings.url_expiry_seconds

    def single_request_type(self, content_type: str, size: int | None) -> str:
        """The checks every single-request upload (form, whole-file PUT, batch file) passes before
        anything is reserved: an allowed content type (415) and a size within the form limit
        (400, 413). Returns the normalized content type."""
        settings = self._settings
        normalized_type = ensure_allowed(content_type, settings.allowed_content_types)
        if size is not None:
            if size < 0:
                raise InvalidRequest("size must not be negative", code="InvalidSize")
            if size > settings.max_form_upload_bytes:
                raise TooLarge(
                    f"size {size} exceeds the single-request limit of {settings.max_form_upload_bytes}"
                    " bytes; use a multipart upload",
                    code="UploadTooLarge",
                )
        return normalized_type

    def single_request_plan(
        self, owner: str, key: str, *, content_type: str, size: int | None, state: PlanState = PlanState.CREATING
    ) -> UploadPlan:
        """The plan of a single-request upload at ``key`` (kind FORM): the validator settles it when
        its object arrives, the sweeper when its time is up."""
        settings = self._settings
        return self._new_plan(
            owner,
            key,
            kind=PlanKind.FORM,
            reserved_bytes=size if size is not None else settings.max_form_upload_bytes,
            # Past the URL's life (and a margin for a slow queue) the sweeper settles or releases it.
            ttl_seconds=settings.url_expiry_seconds + FORM_SETTLE_MARGIN_SECONDS,
            state=state,
            declared_size=size,
            content_type=content_type,
        )

    def expires_at(self, seconds: int) -> datetime:
        """When a URL signed now for ``seconds`` expires (whole seconds)."""
        return datetime.fromtimestamp(self._clock(), tz=UTC).replace(microsecond=0) + timedelta(seconds=seconds)


def _highest_part(plan: UploadPlan) -> int:
    """The highest part number a plan allows: its part count when declared; otherwise as many
    parts as the reservation holds at S3's minimum part size, plus a smaller last one."""
    if plan.part_count is not None:
        return plan.part_count
    return min(S3_MAX_PARTS, plan.reserved_bytes // S3_MIN_PART_SIZE + 1)


def _number_list(numbers: list[int], shown: int = 10) -> str:
    listed = ", ".join(str(n) for n in numbers[:shown])
    return listed + (f" and {len(numbers) - shown} more" if len(numbers) > shown else "")


def _ensure_upload_id(upload_id: str) -> None:
    # S3 upload ids are opaque but printable and bounded; anything else is a client error.
    if not upload_id or len(upload_id) > 1024 or not upload_id.isprintable():
        raise InvalidRequest("uploadId is malformed", code="InvalidUploadId")


def _checksum_algorithm(value: str | None) -> str | None:
    if value is None or value == "":
        return None
    algorithm = value.upper()
    if algorithm not in CHECKSUM_ALGORITHMS:
        raise InvalidRequest(
            f"checksumAlgorithm must be one of {', '.join(CHECKSUM_ALGORITHMS)}", code="InvalidChecksum"
        )
    return algorithm


def _decoded_length(value: str, field: str) -> int:
    try:
        return len(base64.b64decode(value, validate=True))
    except (binascii.Error, ValueError):
        raise InvalidRequest(f"{field} must be base64", code="InvalidChecksum") from None


def _signed_headers(request: PartRequest, algorithm: str | None, *, required: bool) -> dict[str, str]:
    """Headers signed into a part URL: S3 then refuses a body that does not match them."""
    headers: dict[str, str] = {}
    if request.content_md5 is not None:
        if _decoded_length(request.content_md5, "contentMd5") != 16:
            raise InvalidRequest("contentMd5 must be the base64 of a 16-byte MD5 digest", code="InvalidChecksum")
        headers["Content-MD5"] = request.content_md5
    if request.checksum is not None:
        if algorithm is None:
            raise InvalidRequest(
                "a part checksum needs the checksumAlgorithm the upload was started with (or use contentMd5)",
                code="InvalidChecksum",
            )
        if _decoded_length(request.checksum, "checksum") != _CHECKSUM_BYTES[algorithm]:
            raise InvalidRequest(f"checksum is not a base64 {algorithm} value", code="InvalidChecksum")
        headers[f"x-amz-checksum-{algorithm.lower()}"] = request.checksum
    elif required:
        raise InvalidRequest(
            f"this upload was started with checksumAlgorithm {algorithm}: every part needs its checksum",
            code="ChecksumRequired",
        )
    return headers


def _with_length(headers: dict[str, str], length: int | None) -> dict[str, str]:
    """The headers a part URL signs: its checksum headers and, when the plan knows it, its exact
    length (the client does not send that one itself: HTTP sets it from the body)."""
    return headers if length is None else {"Content-Length": str(length), **headers}


def _normalize_etag(etag: str) -> str:
    return etag.strip().strip('"')


def _select_parts(uploaded: list[UploadedPart], client_parts: list[ClientPart] | None) -> list[UploadedPart]:
    if not uploaded:
        raise InvalidRequest("no parts have been uploaded", code="NoParts")
    if client_parts is None:
        return uploaded
    if not client_parts:
        raise InvalidRequest("parts must not be empty", code="NoParts")
    by_number = {part.part_number: part for part in uploaded}
    chosen: list[UploadedPart] = []
    seen: set[int] = set()
    for client_part in sorted(client_parts, key=lambda p: p.part_number):
        if client_part.part_number in seen:
            raise InvalidRequest(f"part {client_part.part_number} is listed twice", code="InvalidPart")
        seen.add(client_part.part_number)
        stored = by_number.get(client_part.part_number)
        if stored is None or _normalize_etag(stored.etag) != _normalize_etag(client_part.etag):
            raise InvalidRequest(
                f"part {client_part.part_number} was not uploaded or its ETag does not match", code="InvalidPart"
            )
        chosen.append(stored)
    return chosen
