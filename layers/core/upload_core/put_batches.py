"""Many small files in one API call: reserve them all, then one presigned PUT per file.

A form costs one API call per file, and each call costs a JWT check, a Lambda invocation and
registry writes. A batch of up to ``MAX_BATCH_FILES`` small files costs one call: every file is
checked as a form is (UploadService.single_request_type: type, size), the caller's rate is counted
per file, and all the files' plans and their quota and in-flight slots are reserved in one
registry transaction (all or none). Each file then gets a presigned PutObject at a server-chosen
key under the caller's prefix, signing:

- Content-Length (the declared size) and x-amz-checksum-crc32 (the declared CRC32): S3 refuses
  any other body;
- Content-Type (the checked type) and If-None-Match: * (S3 refuses a second write at the key);
- the metadata and the pending tag a form sets (x-amz-meta-*, x-amz-tagging, as headers: the
  client sends every header it is given): the validator judges the object exactly as a form's.

The plans are form plans (open at once: there is no S3 upload to create), so the validator
settles each when its object arrives and the sweeper ends the unused ones, as for forms.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from aws_lambda_powertools.metrics import MetricUnit

from upload_core import keys, object_meta
from upload_core.errors import InvalidRequest, UploadError
from upload_core.observability import logger, metrics
from upload_core.presigned_urls import PutToPresign
from upload_core.registry import PlanState
from upload_core.s3 import encode_tag_query
from upload_core.uploads import UploadService

MAX_BATCH_FILES = 50
CRC32_BYTES = 4


@dataclass(frozen=True, slots=True)
class BatchFile:
    """One file of a batch, as the client declares it (``checksum_crc32``: base64, as S3's header)."""

    filename: str
    content_type: str
    size: int
    checksum_crc32: str


@dataclass(frozen=True, slots=True)
class SignedFilePut:
    file_id: str
    key: str
    url: str
    # The headers to send with the body, exactly (HTTP adds the Content-Length of `size` itself).
    headers: dict[str, str]
    size: int


@dataclass(frozen=True, slots=True)
class SignedBatch:
    files: list[SignedFilePut]
    expires_at: datetime


class PutBatches:
    """Reserves and signs batches of small files (see the module's docstring)."""

    def __init__(self, uploads: UploadService) -> None:
        self._uploads = uploads

    def sign(self, owner: str, files: Sequence[BatchFile]) -> SignedBatch:
        if not 1 <= len(files) <= MAX_BATCH_FILES:
            raise InvalidRequest(f"a batch holds 1 to {MAX_BATCH_FILES} files", code="InvalidBatch")
        uploads = self._uploads
        settings = uploads.settings
        # Every file is checked before anything is counted or reserved: a bad file fails the batch.
        types = [_checked(index, file, uploads) for index, file in enumerate(files)]
        uploads.registry.count_request(owner, settings.max_requests_per_minute, count=len(files))
        chosen = [keys.new_key(settings.upload_prefix, owner, file.filename) for file in files]
        plans = uploads.registry.reserve_all(
            [
                uploads.single_request_plan(owner, key, content_type=type_, size=file.size, state=PlanState.OPEN)
                for key, type_, file in zip(chosen, types, files, strict=True)
            ]
        )
        expires_in = settings.url_expiry_seconds
        tagging = encode_tag_query(object_meta.pending_tags())
        headers = [
            {
                "Content-Type": type_,
                "x-amz-checksum-crc32": file.checksum_crc32,
                "If-None-Match": "*",
                **{
                    f"x-amz-meta-{name}": value
                    for name, value in object_meta.system_metadata(
                        owner, file.filename, declared_size=file.size
                    ).items()
                },
                "x-amz-tagging": tagging,
            }
            for type_, file in zip(types, files, strict=True)
        ]
        try:
            urls = uploads.storage.presign_put_objects(
                [
                    PutToPresign(key=key, headers={"Content-Length": str(file.size), **sent})
                    for key, file, sent in zip(chosen, files, headers, strict=True)
                ],
                expires_in=expires_in,
            )
        except Exception:
            # Nothing was handed out: give every reservation back before failing.
            for plan in plans:
                uploads.registry.release(plan, PlanState.ABORTED)
            raise
        metrics.add_metric(name="BatchFilesIssued", unit=MetricUnit.Count, value=len(files))
        logger.info("batch signed", extra={"files": len(files), "bytes": sum(file.size for file in files)})
        return SignedBatch(
            files=[
                SignedFilePut(file_id=keys.file_id_of(key), key=key, url=url, headers=sent, size=file.size)
                for key, url, sent, file in zip(chosen, urls, headers, files, strict=True)
            ],
            expires_at=uploads.expires_at(expires_in),
        )


def _checked(index: int, file: BatchFile, uploads: UploadService) -> str:
    """The file's normalized content type, after the form path's own checks and its CRC32's; an
    error names the file."""
    try:
        normalized = uploads.single_request_type(file.content_type, file.size)
        if _decoded_length(file.checksum_crc32) != CRC32_BYTES:
            raise InvalidRequest("checksumCrc32 must be the base64 of a 4-byte CRC32", code="InvalidChecksum")
    except UploadError as error:
        error.message = f"files[{index}] ({file.filename[:100]}): {error.message}"
        error.args = (error.message,)
        raise
    return normalized


def _decoded_length(value: str) -> int:
    try:
        return len(base64.b64decode(value, validate=True))
    except (binascii.Error, ValueError):
        return -1
