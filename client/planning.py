"""Planning a transfer: which upload the bytes go to, how the file splits into parts, and, when
resuming, which parts S3 already holds.

A new upload is started with ``POST /uploads`` (the API chooses the key and the part plan, which
is checked against the file's size). A resume starts from the state file next to the source, or,
without one, from ``GET /uploads``: an unfinished upload whose key ends with the file's name and
whose listed parts fit the file's size. Either way the result is a ``TransferJob``; deciding
which listed parts hold the local bytes happens per part, when the part is read
(client.resume.part_matches).
"""

from __future__ import annotations

import contextlib
import mimetypes
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from client.api import UploadApi, UploadedPart
from client.checksums import API_ALGORITHMS, Checksum, from_api_algorithm, normalize_etag
from client.errors import ApiError, LocalFileError, NotFoundError, TransferError, UploadClientError
from client.parts import PartPlan, SourceFile
from client.resume import checksum_of_listing, infer_plan, same_filename
from client.state import StateFile, UploadState, load_state, remove_state, state_path_for


@dataclass(slots=True)
class TransferJob:
    """One transfer: its upload, its file and plan, and the parts already in S3 (when resuming)."""

    upload_id: str
    key: str
    source: SourceFile
    plan: PartPlan
    checksum: Checksum | None
    state: StateFile | None
    existing: dict[int, UploadedPart] = field(default_factory=dict)
    recorded_etags: dict[int, str] = field(default_factory=dict)  # from a state file, if still trusted


class Planner:
    """Builds ``TransferJob``s. ``part_size`` and ``checksum`` are what a new upload asks for;
    ``state_files`` says whether to keep ``<file>.upload-state.json`` next to the source."""

    def __init__(
        self,
        api: UploadApi,
        *,
        part_size: int | None,
        checksum: Checksum | None,
        state_files: bool,
        warn: Callable[[str], None],
    ) -> None:
        self._api = api
        self._part_size = part_size
        self._checksum = checksum
        self._state_files = state_files
        self._warn = warn

    def start(self, source: SourceFile, *, filename: str, content_type: str) -> TransferJob:
        """Start a new upload of ``source`` with ``POST /uploads``."""
        started = self._api.create_upload(
            filename=filename,
            content_type=content_type,
            size=source.size,
            part_size=self._part_size,
            checksum_algorithm=API_ALGORITHMS.get(self._checksum or ""),
        )
        plan = PartPlan(source.size, started.part_size)
        if plan.count != started.part_count:
            with contextlib.suppress(UploadClientError):
                self._api.abort(started.upload_id, started.key)
            raise TransferError(
                f"the API planned {started.part_count} parts of {started.part_size} bytes for {source.size}"
                f" bytes; expected {plan.count}"
            )
        checksum = from_api_algorithm(started.checksum_algorithm) or ("md5" if self._checksum == "md5" else None)
        job = TransferJob(started.upload_id, started.key, source, plan, checksum, state=None)
        job.state = self._new_state_file(job, content_type)
        return job

    def resume(self, source: SourceFile, *, upload_id: str | None) -> TransferJob:
        """The job that continues an interrupted upload of ``source`` (named by ``upload_id``, by
        the state file, or found with ``GET /uploads``)."""
        state_path = state_path_for(source.path)
        saved = load_state(state_path)
        if saved is not None and upload_id is not None and saved.upload_id != upload_id:
            saved = None  # the caller named another upload than the state file's
        if saved is not None:
            return self._from_state(source, state_path, saved)
        return self._from_listing(source, upload_id)

    def _from_state(self, source: SourceFile, state_path: Path, saved: UploadState) -> TransferJob:
        if source.size != saved.size:
            raise LocalFileError(
                f"{source.path} is {source.size} bytes but the interrupted upload was of {saved.size} bytes;"
                f" abort it (`abort {source.path}`) and upload the file again"
            )
        job = TransferJob(
            upload_id=saved.upload_id,
            key=saved.key,
            source=source,
            plan=PartPlan(saved.size, saved.part_size),
            checksum=saved.checksum,
            state=StateFile(state_path, saved, warn=self._warn) if self._state_files else None,
            existing=self._listed_parts(saved.upload_id, saved.key, state_path),
        )
        # ETags this client recorded are evidence only while the file is the one they were read from.
        if saved.mtime_ns == source.identity.mtime_ns:
            job.recorded_etags = {number: normalize_etag(etag) for number, etag in saved.etags.items()}
        return job

    def _from_listing(self, source: SourceFile, upload_id: str | None) -> TransferJob:
        name = source.path.name
        pending = self._api.list_uploads()
        if upload_id is not None:
            candidates = [upload for upload in pending if upload.upload_id == upload_id]
            if not candidates:
                raise NotFoundError(f"no unfinished upload has the id {upload_id!r} (see `ls`)")
        else:
            candidates = [upload for upload in pending if same_filename(upload.key, name)]
            if not candidates:
                raise NotFoundError(
                    f"no unfinished upload of {name!r} found ({len(pending)} unfinished in all;"
                    " see `ls`); upload it again with `put`"
                )
        for candidate in sorted(candidates, key=lambda upload: upload.initiated, reverse=True):
            listed = {part.part_number: part for part in self._api.list_parts(candidate.upload_id, candidate.key)}
            plan = infer_plan(source.size, listed.values(), self._part_size)
            if plan is None:
                continue
            checksum = checksum_of_listing(listed.values(), self._checksum)
            job = TransferJob(candidate.upload_id, candidate.key, source, plan, checksum, None, existing=listed)
            job.state = self._new_state_file(job, guess_content_type(name))
            return job
        raise NotFoundError(
            f"unfinished uploads named {name!r} exist, but none has parts that fit this file's"
            f" {source.size} bytes; upload it again with `put`"
        )

    def _listed_parts(self, upload_id: str, key: str, state_path: Path) -> dict[int, UploadedPart]:
        try:
            parts = self._api.list_parts(upload_id, key)
        except ApiError as error:
            if error.status == 404:
                remove_state(state_path)
                raise NotFoundError(
                    f"the upload in {state_path.name} no longer exists (completed, aborted, or expired);"
                    " upload the file again with `put`"
                ) from None
            raise
        return {part.part_number: part for part in parts}

    def _new_state_file(self, job: TransferJob, content_type: str) -> StateFile | None:
        if not self._state_files:
            return None
        state = UploadState(
            upload_id=job.upload_id,
            key=job.key,
            api_url=self._api.base_url,
            size=job.source.size,
            mtime_ns=job.source.identity.mtime_ns,
            part_size=job.plan.part_size,
            checksum=job.checksum,
            content_type=content_type,
        )
        state_file = StateFile(state_path_for(job.source.path), state, warn=self._warn)
        state_file.flush()  # at once, so even a killed process can be resumed
        return state_file


def guess_content_type(filename: str) -> str:
    """The type implied by the extension (the API decides whether it accepts it)."""
    guessed, _ = mimetypes.guess_type(filename, strict=False)
    return guessed or "application/octet-stream"
