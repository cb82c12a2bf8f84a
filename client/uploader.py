"""The managed upload: the equivalent of the AWS SDK's, over this API.

    from client import Uploader

    uploader = Uploader("http://127.0.0.1:3000", token, concurrency=4)
    result = uploader.upload("photo.png", on_progress=lambda done, total: print(done, "/", total))
    print(result.key, result.etag, result.size)

How a transfer runs: the API starts the upload and chooses the key and the part plan; a state
file is written next to the source; ``concurrency`` worker threads take part numbers in order,
each reading its part only when it gets to it (memory stays within concurrency * part size),
hashing it as it reads, asking the API for a URL with the part's checksum signed in, PUTting the
bytes to S3 and checking S3's answer (the ETag must be the part's MD5 where S3 makes it one).
Failures are retried with exponential backoff and full jitter; an expired URL is signed again.
Then the upload is completed with the exact parts list, and the stored object's size and
multipart ETag are checked against the local file.

Ctrl-C (KeyboardInterrupt) or a fatal error aborts the upload, unless ``keep_parts=True``: then
the uploaded parts and the state file stay, and ``resume`` sends only what is missing.
"""

from __future__ import annotations

import contextlib
import mimetypes
import os
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import requests
from requests.adapters import HTTPAdapter

from client.api import (
    DEFAULT_TIMEOUT,
    ImportedObject,
    PartToSign,
    PendingUpload,
    SignedPart,
    UploadApi,
    UploadedPart,
)
from client.checksums import (
    API_ALGORITHMS,
    CHECKSUMS,
    Checksum,
    PartDigest,
    from_api_algorithm,
    is_md5_etag,
    is_multipart_md5_etag,
    multipart_etag,
    normalize_etag,
)
from client.errors import ApiError, LocalFileError, NotFoundError, TransferError, UploadClientError
from client.parts import PartPlan, SourceFile
from client.resume import checksum_of_listing, infer_plan, part_matches, same_filename
from client.retry import RetryPolicy, Transient, call_with_retries
from client.state import StateFile, UploadState, load_state, remove_state, state_path_for
from client.transfer import DEFAULT_PUT_TIMEOUT, Outcome, PutResult, put_part

ProgressCallback = Callable[[int, int], None]
"""``on_progress(bytes_done, bytes_total)``: called from the calling thread, after each part is
stored in S3 (or, when resuming, found there intact). ``bytes_done`` never decreases."""

LogCallback = Callable[[str], None]

DEFAULT_CONCURRENCY = 4
DEFAULT_RETRIES = 5
# An expired URL is signed again at once; more than this many in a row means a wrong clock.
MAX_RESIGNS_IN_A_ROW = 3
# How long an abort waits for the parts in flight to finish (S3 may keep a part that lands after
# the abort otherwise), unless Ctrl-C is pressed again.
ABORT_GRACE_SECONDS = 30.0
_POLL_SECONDS = 0.2


@dataclass(frozen=True, slots=True)
class UploadResult:
    """A completed upload: the object's key, ETag (as S3 gives it, quoted), size and location."""

    key: str
    etag: str
    size: int
    location: str
    upload_id: str = ""
    parts_sent: int = 0  # parts PUT to S3 by this call
    parts_reused: int = 0  # parts already in S3 (a resume) that matched the local bytes


class _Cancelled(Exception):
    """A worker noticed the transfer is stopping."""


@dataclass(slots=True)
class _PartDone:
    number: int
    etag: str
    digest: PartDigest
    length: int
    sent: bool
    etag_is_md5: bool


@dataclass(slots=True)
class _Run:
    """One transfer: its upload, its file, and the parts already in S3 (when resuming)."""

    upload_id: str
    key: str
    source: SourceFile
    plan: PartPlan
    checksum: Checksum | None
    state: StateFile | None
    existing: dict[int, UploadedPart] = field(default_factory=dict)
    recorded_etags: dict[int, str] = field(default_factory=dict)  # from a state file, if trusted
    stop: threading.Event = field(default_factory=threading.Event)
    workers: list[threading.Thread] = field(default_factory=list)


class Uploader:
    """Uploads files through the upload API; one transfer at a time per instance.

    ``api_url`` and ``token``: the API's base URL and a bearer token. ``concurrency``: parts in
    flight at once. ``part_size``: bytes per part (None lets the API choose; S3 needs ≥ 5 MiB).
    ``checksum``: the per-part checksum signed into each part URL so that S3 refuses a corrupted
    body — ``"md5"`` (Content-MD5), ``"sha256"`` or ``"crc32"`` (S3 additional checksums), or None.
    Whatever it is, each part's ETag is compared with its MD5 where S3 makes it one.
    ``retries``: retries per API call and per part. ``session``: a ``requests.Session`` to use
    (proxies, certificates, adapters). ``state_files``: keep ``<file>.upload-state.json`` next to
    the source while uploading. ``log``: receives one-line notices (retries, aborts, warnings),
    possibly from worker threads.
    ``sleep`` and ``retry_policy`` are for tests and tuning.
    """

    def __init__(
        self,
        api_url: str,
        token: str,
        *,
        concurrency: int = DEFAULT_CONCURRENCY,
        part_size: int | None = None,
        checksum: Checksum | None = "md5",
        retries: int = DEFAULT_RETRIES,
        session: requests.Session | None = None,
        timeout: tuple[float, float] = DEFAULT_TIMEOUT,
        put_timeout: tuple[float, float] = DEFAULT_PUT_TIMEOUT,
        state_files: bool = True,
        log: LogCallback | None = None,
        retry_policy: RetryPolicy | None = None,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        if part_size is not None and part_size < 1:
            raise ValueError("part_size must be positive")
        if checksum is not None and checksum not in CHECKSUMS:
            raise ValueError(f"checksum must be one of {', '.join(CHECKSUMS)} or None")
        self.concurrency = concurrency
        self.part_size = part_size
        self.checksum: Checksum | None = checksum
        self.policy = retry_policy or RetryPolicy(retries=retries)
        self.session = session or _default_session(concurrency)
        self.state_files = state_files
        self._put_timeout = put_timeout
        self._log = log
        self._injected_sleep = sleep
        self._current: _Run | None = None
        self._idle = threading.Event()  # what API retries wait on outside a transfer (never set)
        self.api = UploadApi(
            api_url,
            token,
            session=self.session,
            policy=self.policy,
            sleep=self._sleep,
            timeout=timeout,
            on_retry=self._api_retry_notice,
        )

    # ---- public API

    def upload(
        self,
        path: str | os.PathLike[str],
        *,
        content_type: str | None = None,
        filename: str | None = None,
        on_progress: ProgressCallback | None = None,
        keep_parts: bool = False,
    ) -> UploadResult:
        """Upload a file. ``content_type`` defaults to a guess from the extension; ``filename``
        (the name the key ends with) defaults to the file's name."""
        source_path = Path(path)
        with SourceFile(source_path) as source:
            name = filename or source_path.name
            ctype = content_type or guess_content_type(name)
            started = self.api.create_upload(
                filename=name,
                content_type=ctype,
                size=source.size,
                part_size=self.part_size,
                checksum_algorithm=API_ALGORITHMS.get(self.checksum or ""),
            )
            plan = PartPlan(source.size, started.part_size)
            if plan.count != started.part_count:
                self._abort_quietly(started.upload_id, started.key)
                raise TransferError(
                    f"the API planned {started.part_count} parts of {started.part_size} bytes for {source.size}"
                    f" bytes; expected {plan.count}"
                )
            checksum = from_api_algorithm(started.checksum_algorithm) or self._md5_or_none()
            run = _Run(
                upload_id=started.upload_id,
                key=started.key,
                source=source,
                plan=plan,
                checksum=checksum,
                state=self._new_state_file(
                    source_path=source_path,
                    source=source,
                    upload_id=started.upload_id,
                    key=started.key,
                    plan=plan,
                    content_type=ctype,
                    checksum=checksum,
                ),
            )
            return self._transfer(run, on_progress, keep_parts)

    def resume(
        self,
        path: str | os.PathLike[str],
        *,
        upload_id: str | None = None,
        on_progress: ProgressCallback | None = None,
        keep_parts: bool = False,
    ) -> UploadResult:
        """Continue an interrupted upload of ``path``, sending only the parts S3 does not hold.

        The upload is named by the state file next to the source, by ``upload_id``, or else
        found with ``GET /uploads`` (same file name, parts that fit the file's size). Every part
        already in S3 is compared with the local bytes (MD5 ETag or checksum) before it is kept.
        """
        source_path = Path(path)
        with SourceFile(source_path) as source:
            state_path = state_path_for(source_path)
            saved = load_state(state_path)
            if saved is not None and upload_id is not None and saved.upload_id != upload_id:
                saved = None  # the caller named another upload than the state file's
            if saved is not None:
                run = self._run_from_state(source, state_path, saved)
            else:
                run = self._run_from_listing(source, source_path, upload_id)
            return self._transfer(run, on_progress, keep_parts)

    def abort(self, target: str | os.PathLike[str]) -> list[PendingUpload]:
        """Abort an unfinished upload named by its key, its upload id, or the file being uploaded
        (through its state file). Returns what was aborted; raises NotFoundError if nothing matched."""
        text = os.fspath(target)
        state_path = state_path_for(Path(text))
        saved = load_state(state_path) if Path(text).is_file() else None
        if saved is not None:
            self.api.abort(saved.upload_id, saved.key)
            remove_state(state_path)
            return [PendingUpload(upload_id=saved.upload_id, key=saved.key, initiated="")]
        if Path(text).is_file():
            raise NotFoundError(f"{text} has no state file ({state_path.name}); pass the key or upload id (see `ls`)")
        pending = self.api.list_uploads()
        matches = [upload for upload in pending if text in (upload.key, upload.upload_id)]
        if not matches:
            raise NotFoundError(f"no unfinished upload has the key or upload id {text!r} (see `ls`)")
        for upload in matches:
            self.api.abort(upload.upload_id, upload.key)
        return matches

    def list_unfinished(self) -> list[PendingUpload]:
        """The caller's unfinished multipart uploads, oldest first."""
        return self.api.list_uploads()

    def import_url(self, url: str, *, filename: str | None = None) -> ImportedObject:
        """Have the API fetch an image from ``url`` into the bucket (``POST /imports``)."""
        return self.api.import_url(url, filename=filename)

    def cancel(self) -> None:
        """Stop the running transfer from another thread (it then ends like a Ctrl-C)."""
        run = self._current
        if run is not None:
            run.stop.set()

    # ---- planning a resume

    def _run_from_state(self, source: SourceFile, state_path: Path, saved: UploadState) -> _Run:
        if source.size != saved.size:
            raise LocalFileError(
                f"{source.path} is {source.size} bytes but the interrupted upload was of {saved.size} bytes;"
                f" abort it (`abort {source.path}`) and upload the file again"
            )
        existing = self._listed_parts(saved.upload_id, saved.key, state_path)
        run = _Run(
            upload_id=saved.upload_id,
            key=saved.key,
            source=source,
            plan=PartPlan(saved.size, saved.part_size),
            checksum=saved.checksum,
            state=StateFile(state_path, saved, warn=self._warn) if self.state_files else None,
            existing=existing,
        )
        # ETags this client recorded are evidence only while the file is the one they were read from.
        if saved.mtime_ns == source.identity.mtime_ns:
            run.recorded_etags = {number: normalize_etag(etag) for number, etag in saved.etags.items()}
        return run

    def _run_from_listing(self, source: SourceFile, source_path: Path, upload_id: str | None) -> _Run:
        pending = self.api.list_uploads()
        if upload_id is not None:
            candidates = [upload for upload in pending if upload.upload_id == upload_id]
            if not candidates:
                raise NotFoundError(f"no unfinished upload has the id {upload_id!r} (see `ls`)")
        else:
            candidates = [upload for upload in pending if same_filename(upload.key, source_path.name)]
            if not candidates:
                raise NotFoundError(
                    f"no unfinished upload of {source_path.name!r} found ({len(pending)} unfinished in all;"
                    " see `ls`); upload it again with `put`"
                )
        for candidate in sorted(candidates, key=lambda upload: upload.initiated, reverse=True):
            listed = {part.part_number: part for part in self.api.list_parts(candidate.upload_id, candidate.key)}
            plan = infer_plan(source.size, listed.values(), self.part_size)
            if plan is None:
                continue
            checksum = checksum_of_listing(listed.values(), self.checksum)
            state = self._new_state_file(
                source_path=source_path,
                source=source,
                upload_id=candidate.upload_id,
                key=candidate.key,
                plan=plan,
                content_type=guess_content_type(source_path.name),
                checksum=checksum,
            )
            return _Run(
                upload_id=candidate.upload_id,
                key=candidate.key,
                source=source,
                plan=plan,
                checksum=checksum,
                state=state,
                existing=listed,
            )
        raise NotFoundError(
            f"unfinished uploads named {source_path.name!r} exist, but none has parts that fit this file's"
            f" {source.size} bytes; upload it again with `put`"
        )

    def _listed_parts(self, upload_id: str, key: str, state_path: Path) -> dict[int, UploadedPart]:
        try:
            parts = self.api.list_parts(upload_id, key)
        except ApiError as error:
            if error.status == 404:
                remove_state(state_path)
                raise NotFoundError(
                    f"the upload in {state_path.name} no longer exists (completed, aborted, or expired);"
                    " upload the file again with `put`"
                ) from None
            raise
        return {part.part_number: part for part in parts}

    # ---- the transfer

    def _transfer(self, run: _Run, on_progress: ProgressCallback | None, keep_parts: bool) -> UploadResult:
        self._current = run
        try:
            done = self._send_all(run, on_progress)
            if not run.source.unchanged():
                raise LocalFileError(f"{run.source.path} changed during the upload")
            return self._complete(run, done)
        except BaseException as error:
            self._end_failed(run, keep_parts, error)
            raise
        finally:
            run.stop.set()
            self._current = None

    def _send_all(self, run: _Run, on_progress: ProgressCallback | None) -> dict[int, _PartDone]:
        numbers: queue.SimpleQueue[int] = queue.SimpleQueue()
        for number in run.plan.numbers():
            numbers.put(number)
        results: queue.SimpleQueue[_PartDone | BaseException] = queue.SimpleQueue()

        def work() -> None:
            while not run.stop.is_set():
                try:
                    number = numbers.get_nowait()
                except queue.Empty:
                    return
                try:
                    results.put(self._part(run, number))
                except BaseException as error:  # reported to the calling thread, which decides
                    results.put(error)
                    return

        # Daemon threads: a process that exits while parts are in flight (keep_parts) must not
        # wait for them.
        for index in range(min(self.concurrency, run.plan.count)):
            thread = threading.Thread(target=work, name=f"upload-part-{index + 1}", daemon=True)
            run.workers.append(thread)
            thread.start()
        done: dict[int, _PartDone] = {}
        bytes_done = 0
        total = run.plan.size
        if on_progress is not None:
            on_progress(0, total)
        while len(done) < run.plan.count:
            try:
                result = results.get(timeout=_POLL_SECONDS)
            except queue.Empty:
                if run.stop.is_set():
                    raise KeyboardInterrupt from None  # cancel() from another thread
                if not any(thread.is_alive() for thread in run.workers) and results.empty():
                    raise TransferError("the upload workers stopped before every part was sent") from None
                continue
            if isinstance(result, _Cancelled):
                raise KeyboardInterrupt from None  # cancel() from another thread
            if isinstance(result, BaseException):
                raise result
            done[result.number] = result
            if run.state is not None and result.sent:
                run.state.record_part(result.number, result.etag)
            bytes_done += result.length
            if on_progress is not None:
                on_progress(bytes_done, total)
        return done

    def _part(self, run: _Run, number: int) -> _PartDone:
        """Runs in a worker: make sure part ``number`` is in S3 and matches the local bytes."""
        offset, length = run.plan.offset(number), run.plan.length(number)
        data, digest = run.source.read(offset, length, run.checksum)
        listed = run.existing.get(number)
        if listed is not None and part_matches(listed, length, digest, run.recorded_etags):
            # Its ETag counts as an MD5 only if it is this part's MD5 (SSE-KMS ETags look alike).
            is_md5 = normalize_etag(listed.etag) == digest.md5_hex
            return _PartDone(number, listed.etag, digest, length, sent=False, etag_is_md5=is_md5)
        signed: list[SignedPart] = []  # the current URL, if any (a list so the closure can replace it)

        def attempt() -> _PartDone:
            nonlocal data, digest
            for _ in range(MAX_RESIGNS_IN_A_ROW + 1):
                if run.stop.is_set():
                    raise _Cancelled
                if not signed:
                    signed.append(self._sign(run, number, digest))
                result = put_part(self.session, signed[0], data, timeout=self._put_timeout)
                if result.outcome is not Outcome.EXPIRED:
                    break
                self._notice(f"part {number}: the URL expired; signing a new one")
                signed.clear()
            else:
                raise Transient(TransferError(f"part {number}: S3 keeps refusing fresh URLs as expired (clock skew?)"))
            if result.outcome is Outcome.STORED:
                self._check_stored(number, result, digest)
                assert result.etag is not None
                return _PartDone(number, result.etag, digest, length, sent=True, etag_is_md5=result.etag_is_md5)
            if result.outcome is Outcome.BAD_DIGEST:
                # The body S3 got does not match the checksum read before: the file changed under
                # us (fatal) or the bytes were damaged on the way (worth another try).
                fresh, fresh_digest = run.source.read(offset, length, run.checksum)
                if fresh_digest != digest:
                    raise LocalFileError(f"{run.source.path} changed during the upload (part {number})")
                data, digest = fresh, fresh_digest
                raise Transient(TransferError(f"part {number}: S3 refused the body ({result.describe()})"))
            if result.outcome is Outcome.TRANSIENT:
                self._notice(f"part {number}: {result.describe()}; retrying")
                raise Transient(TransferError(f"part {number}: {result.describe()}"), result.retry_after)
            raise TransferError(f"part {number}: S3 refused it ({result.describe()})")

        return call_with_retries(attempt, self.policy, self._sleep)

    def _sign(self, run: _Run, number: int, digest: PartDigest) -> SignedPart:
        if run.checksum is None:
            part = PartToSign(number)
        elif run.checksum == "md5":
            part = PartToSign(number, content_md5=digest.content_md5)
        else:
            part = PartToSign(number, checksum=digest.checksum)
        signed = self.api.sign_parts(
            run.upload_id, run.key, [part], checksum_algorithm=API_ALGORITHMS.get(run.checksum or "")
        )
        if number not in signed:
            raise TransferError(f"the API did not sign part {number}")
        return signed[number]

    @staticmethod
    def _check_stored(number: int, result: PutResult, digest: PartDigest) -> None:
        """S3 said it stored the part: check that what it stored is what was read."""
        assert result.etag is not None
        if result.etag_is_md5 and is_md5_etag(result.etag) and normalize_etag(result.etag) != digest.md5_hex:
            raise Transient(
                TransferError(
                    f"part {number}: S3 stored a body with MD5 {normalize_etag(result.etag)}, not {digest.md5_hex}"
                )
            )
        echoed = (result.checksums or {}).values()
        if digest.checksum is not None and echoed and digest.checksum not in echoed:
            raise Transient(TransferError(f"part {number}: S3's checksum differs from the local one"))

    def _complete(self, run: _Run, done: dict[int, _PartDone]) -> UploadResult:
        ordered = [done[number] for number in run.plan.numbers()]
        completed = self.api.complete(run.upload_id, run.key, [(part.number, part.etag) for part in ordered])
        if completed.size != run.plan.size:
            raise TransferError(f"S3 stored {completed.size} bytes but the file has {run.plan.size}")
        if all(part.etag_is_md5 and is_md5_etag(part.etag) for part in ordered) and is_multipart_md5_etag(
            completed.etag
        ):
            expected = multipart_etag([part.digest.md5 for part in ordered])
            if normalize_etag(completed.etag) != expected:
                raise TransferError(
                    f"the stored object's ETag {normalize_etag(completed.etag)} is not the expected {expected}"
                )
        if run.state is not None:
            run.state.remove()
        return UploadResult(
            key=completed.key,
            etag=completed.etag,
            size=completed.size,
            location=completed.location,
            upload_id=run.upload_id,
            parts_sent=sum(1 for part in ordered if part.sent),
            parts_reused=sum(1 for part in ordered if not part.sent),
        )

    def _end_failed(self, run: _Run, keep_parts: bool, error: BaseException) -> None:
        run.stop.set()
        if keep_parts:
            if run.state is not None:
                run.state.flush()
            where = f"resume with: python -m client resume {run.source.path}"
            self._notice(f"kept the uploaded parts of {run.key} (upload {run.upload_id}); {where}")
            return
        if isinstance(error, KeyboardInterrupt):
            self._notice("interrupted: aborting the upload (Ctrl-C again to skip waiting for parts in flight)")
        try:
            for thread in run.workers:
                thread.join(ABORT_GRACE_SECONDS / max(1, len(run.workers)))
        except KeyboardInterrupt:
            pass
        try:
            self.api.abort(run.upload_id, run.key)
        except (UploadClientError, KeyboardInterrupt) as abort_error:
            self._warn(
                f"could not abort upload {run.upload_id} ({abort_error or 'interrupted'}); the bucket's lifecycle"
                f" rule removes it, or run: python -m client abort {run.upload_id}"
            )
            if run.state is not None:
                run.state.flush()
            return
        if run.state is not None:
            run.state.remove()
        self._notice(f"aborted upload {run.upload_id}")

    # ---- helpers

    def _new_state_file(
        self,
        *,
        source_path: Path,
        source: SourceFile,
        upload_id: str,
        key: str,
        plan: PartPlan,
        content_type: str,
        checksum: Checksum | None,
    ) -> StateFile | None:
        if not self.state_files:
            return None
        state = UploadState(
            upload_id=upload_id,
            key=key,
            api_url=self.api.base_url,
            size=source.size,
            mtime_ns=source.identity.mtime_ns,
            part_size=plan.part_size,
            checksum=checksum,
            content_type=content_type,
        )
        state_file = StateFile(state_path_for(source_path), state, warn=self._warn)
        state_file.flush()
        return state_file

    def _md5_or_none(self) -> Checksum | None:
        return "md5" if self.checksum == "md5" else None

    def _abort_quietly(self, upload_id: str, key: str) -> None:
        with contextlib.suppress(UploadClientError):
            self.api.abort(upload_id, key)

    def _sleep(self, seconds: float) -> None:
        if self._injected_sleep is not None:
            self._injected_sleep(seconds)
            return
        # A backoff wait ends early when the transfer is stopping.
        run = self._current
        (run.stop if run is not None else self._idle).wait(seconds)

    def _api_retry_notice(self, retry: int, transient: Transient, wait: float) -> None:
        self._notice(f"{transient.final}; retry {retry} in {wait:.1f}s")

    def _notice(self, message: str) -> None:
        if self._log is not None:
            self._log(message)

    def _warn(self, message: str) -> None:
        self._notice(f"warning: {message}")


def guess_content_type(filename: str) -> str:
    """The type implied by the extension (the API decides whether it accepts it)."""
    guessed, _ = mimetypes.guess_type(filename, strict=False)
    return guessed or "application/octet-stream"


def _default_session(concurrency: int) -> requests.Session:
    session = requests.Session()
    # One pooled connection per worker, plus the API calls, so connections are reused.
    adapter = HTTPAdapter(pool_connections=4, pool_maxsize=max(10, concurrency + 2))
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session
