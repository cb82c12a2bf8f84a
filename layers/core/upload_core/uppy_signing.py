"""Uppy 6's `signRequest`: presign each S3 request the browser then sends itself, within the plan.

Uppy 6 (`@uppy/aws-s3` 6.x) asks its backend to presign one S3 request at a time: a whole-file
upload, CreateMultipartUpload, UploadPart, ListParts, CompleteMultipartUpload or
AbortMultipartUpload. The browser talks to S3 directly, so every limit has to be in what is
signed:

- whole file: a presigned PutObject (UploadService.put_url, reserved as a form is) at a
  server-chosen key signing the exact Content-Length and the Content-Type (headers every browser
  sends by itself) and, in the query string, the metadata and the pending tag;
- create: the plan is reserved here, exactly as the native create reserves it (a declared size
  gets exact part lengths), at a key chosen here under the caller's prefix; the URL signs the
  content type, the system metadata and the pending tag, so only that upload can be created at
  the key;
- the upload id is S3's answer to the browser, so the plan learns it on the first request that
  names it: the id must be an upload S3 holds at exactly the plan's key. Only the create URL
  signed for this plan can make one there (the key is new and the browser has no other
  credentials), so such an upload is this plan's; the plan is bound to the first id presented
  and other uploads a replayed create URL made at the key are aborted;
- part: the plan's exact length is signed in (Content-Length);
- complete: the stored parts are checked against the plan and the quota first, and the URL
  signs the total they make (`x-amz-mp-object-size`), so S3 refuses a completion of any other
  size; no object may be at the key yet (only this plan's upload can complete there);
- abort: aborted here (S3 and the reservation) before the browser's own DELETE is signed.

Nothing but Content-Type (and the Content-Length a browser derives from the body) may have to be
sent as a header: `npm install uppy` (6.0.1) brings @uppy/aws-s3 6.1.0, which uses only the
`url` (and `key`) of the answer and sends no `headers` and no `fields`. So every other signed
value travels in the URL's query string (S3Gateway hoists x-amz-* there), and one answer works
for 6.1 and for 6.3, which sends the `headers` given (only Content-Type here).

The reservation is settled when the object is there: by the validator's verdict on it, or by
the sweeper once the plan's time is up (it settles a plan whose object exists and ends one
whose object does not), since the browser never reports a completion back.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from upload_core import keys, parts
from upload_core.errors import Conflict, InvalidRequest, NotFound, UploadError
from upload_core.observability import logger
from upload_core.registry import PlanKind, PlanState, UploadPlan
from upload_core.settings import S3_MAX_PARTS, S3_MIN_PART_SIZE
from upload_core.uploads import PartRequest, UploadService


class Operation(StrEnum):
    PUT_OBJECT = "putObject"
    CREATE = "createMultipartUpload"
    UPLOAD_PART = "uploadPart"
    LIST_PARTS = "listParts"
    COMPLETE = "completeMultipartUpload"
    ABORT = "abortMultipartUpload"


@dataclass(frozen=True, slots=True)
class SignRequest:
    """Uppy's request (method, key, uploadId, partNumber, contentType, expiresIn) and the file's
    size, name and type, which Uppy itself does not send (the documented signRequest adds them)."""

    method: str
    key: str
    upload_id: str | None = None
    part_number: int | None = None
    content_type: str | None = None
    expires_in: int | None = None
    size: int | None = None
    name: str | None = None
    type: str | None = None
    part_size: int | None = None

    @property
    def operation(self) -> Operation:
        """Which S3 request this is, from the method and what it names (as Uppy builds them)."""
        method = self.method.upper()
        if self.upload_id is None:
            if self.part_number is not None:
                raise InvalidRequest("partNumber needs an uploadId", code="InvalidSignRequest")
            if method == "PUT":
                return Operation.PUT_OBJECT
            if method == "POST":
                return Operation.CREATE
        elif self.part_number is not None:
            if method == "PUT":
                return Operation.UPLOAD_PART
        elif method == "GET":
            return Operation.LIST_PARTS
        elif method == "POST":
            return Operation.COMPLETE
        elif method == "DELETE":
            return Operation.ABORT
        raise InvalidRequest(
            "only uploads can be signed: a whole file (PUT), CreateMultipartUpload (POST), a part (PUT with"
            " uploadId and partNumber), ListParts (GET), CompleteMultipartUpload (POST) or AbortMultipartUpload"
            " (DELETE) of an upload this API started",
            code="UnsupportedSignRequest",
        )


@dataclass(frozen=True, slots=True)
class SignedRequest:
    """What Uppy 6 sends: `url` with `method`, `headers` as given; `fields` makes it a form POST;
    `key` (on the first request of an upload) is the key the server chose."""

    url: str
    method: str
    key: str | None = None
    headers: dict[str, str] | None = None
    fields: dict[str, str] | None = None


def uppy_part_size(size: int) -> int:
    """The part size Uppy 6 splits a file into when not told otherwise (S3Uploader: the size over
    10,000 parts, at least 5 MiB). A plan made with it has the lengths Uppy sends."""
    return max(S3_MIN_PART_SIZE, parts.ceil_div(size, S3_MAX_PARTS))


class UppySigner:
    def __init__(self, service: UploadService) -> None:
        self._service = service
        self._settings = service.settings
        self._s3 = service.storage
        self._registry = service.registry

    def sign(self, owner: str, request: SignRequest) -> SignedRequest:
        operation = request.operation
        if operation is Operation.PUT_OBJECT:
            return self._put_object(owner, request)
        if operation is Operation.CREATE:
            return self._create(owner, request)
        upload_id = request.upload_id or ""
        plan = self._bound_plan(owner, request.key, upload_id)
        expires_in = self._expires_in(request)
        if operation is Operation.UPLOAD_PART:
            signed = self._service.sign_parts(owner, upload_id, plan.key, [PartRequest(request.part_number or 0)])
            part = signed.parts[0]
            return SignedRequest(url=part.url, method="PUT", headers=part.headers or None)
        if operation is Operation.LIST_PARTS:
            url = self._s3.presign_list_parts(plan.key, upload_id, expires_in=expires_in)
            return SignedRequest(url=url, method="GET")
        if operation is Operation.COMPLETE:
            return self._complete(owner, plan, upload_id, expires_in)
        self._service.abort(owner, upload_id, plan.key)
        url = self._s3.presign_abort_multipart_upload(plan.key, upload_id, expires_in=expires_in)
        return SignedRequest(url=url, method="DELETE")

    # --- whole file and create -------------------------------------------------------------------
    def _put_object(self, owner: str, request: SignRequest) -> SignedRequest:
        put = self._service.put_url(
            owner,
            filename=self._filename(request),
            content_type=self._content_type(request),
            size=self._size(request),
            expires_in=self._expires_in(request),
        )
        return SignedRequest(url=put.url, method="PUT", key=put.key, headers={"Content-Type": put.content_type})

    def _create(self, owner: str, request: SignRequest) -> SignedRequest:
        size = self._size(request)
        reserved = self._service.reserve_multipart(
            owner,
            filename=self._filename(request),
            content_type=self._content_type(request),
            size=size,
            part_size=request.part_size or uppy_part_size(size),
        )
        plan = reserved.plan
        url = self._s3.presign_create_multipart_upload(
            plan.key,
            content_type=plan.content_type,
            metadata=reserved.metadata,
            tags=reserved.tags,
            expires_in=self._expires_in(request),
        )
        headers = {"Content-Type": plan.content_type}
        logger.info("upload planned for a browser-created multipart upload", extra={"key": plan.key, "size": size})
        return SignedRequest(url=url, method="POST", key=plan.key, headers=headers)

    # --- the upload id ---------------------------------------------------------------------------
    def _bound_plan(self, owner: str, key: str, upload_id: str) -> UploadPlan:
        """The caller's plan at ``key``, bound to ``upload_id`` (binding it on first use)."""
        keys.ensure_owned(self._settings.upload_prefix, owner, key)
        if not upload_id or len(upload_id) > 1024 or not upload_id.isprintable():
            raise InvalidRequest("uploadId is malformed", code="InvalidUploadId")
        plan = self._registry.plan(key)
        if plan is None or plan.owner != owner or plan.kind is PlanKind.FORM:
            raise NotFound("upload not found", code="NoSuchUpload")
        if plan.state is PlanState.CREATING and plan.upload_id is None:
            plan = self._bind(plan, upload_id)
        if plan.upload_id != upload_id:
            raise NotFound("upload not found", code="NoSuchUpload")
        if plan.state is not PlanState.OPEN:
            raise NotFound(f"this upload has ended ({plan.state})", code="NoSuchUpload")
        return plan

    def _bind(self, plan: UploadPlan, upload_id: str) -> UploadPlan:
        at_key = {upload.upload_id for upload in self._s3.list_multipart_uploads(plan.key) if upload.key == plan.key}
        if upload_id not in at_key:
            raise NotFound("upload not found", code="NoSuchUpload")
        try:
            self._registry.open(plan.key, upload_id)
        except UploadError:
            # The write is conditional on the plan still `creating`: another request bound it
            # first (or it ended), and what it holds now decides; otherwise the registry failed.
            bound = self._registry.plan(plan.key)
            if bound is None or bound.upload_id is None:
                raise
            return bound
        # A replayed create URL can have made more uploads at the key; they can never be signed for.
        self._s3.abort_uploads_at(plan.key, keep=upload_id)
        logger.info("browser-created upload bound to its plan", extra={"key": plan.key, "upload_id": upload_id})
        bound = self._registry.plan(plan.key)
        if bound is None:
            raise NotFound("upload not found", code="NoSuchUpload")
        return bound

    # --- complete --------------------------------------------------------------------------------
    def _complete(self, owner: str, plan: UploadPlan, upload_id: str, expires_in: int) -> SignedRequest:
        total = self._service.checked_size(owner, upload_id, plan.key)
        # Uppy 6.1 cannot send If-None-Match; the key is new and only this upload can complete
        # there, so an object already at it means this upload completed before.
        if self._s3.head_object(plan.key) is not None:
            raise Conflict("this upload is already complete", code="UploadAlreadyCompleted")
        url = self._s3.presign_complete_multipart_upload(plan.key, upload_id, object_size=total, expires_in=expires_in)
        logger.info("completion signed", extra={"key": plan.key, "upload_id": upload_id, "size": total})
        return SignedRequest(url=url, method="POST")

    # --- inputs ----------------------------------------------------------------------------------
    def _expires_in(self, request: SignRequest) -> int:
        """Uppy may ask for a shorter life; never a longer one than the API's."""
        limit = self._settings.url_expiry_seconds
        if request.expires_in is None:
            return limit
        if request.expires_in < 1:
            raise InvalidRequest("expiresIn must be positive", code="InvalidSignRequest")
        return min(request.expires_in, limit)

    @staticmethod
    def _size(request: SignRequest) -> int:
        if request.size is None:
            raise InvalidRequest("size (the file's size in bytes) is required to start an upload", code="MissingSize")
        return request.size

    @staticmethod
    def _filename(request: SignRequest) -> str:
        """The file's name; Uppy's requested key (`<uuid>-<name>`) when the name was not sent."""
        return request.name or request.key.rsplit("/", 1)[-1]

    @staticmethod
    def _content_type(request: SignRequest) -> str:
        content_type = request.type or request.content_type
        if not content_type:
            raise InvalidRequest("type (the file's content type) is required", code="MissingContentType")
        return content_type
