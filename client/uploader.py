"""The managed upload: the equivalent of the AWS SDK's, over this API.

    from client import Uploader

    uploader = Uploader("http://127.0.0.1:3000", token, concurrency=4)
    result = uploader.upload("photo.png", on_progress=lambda done, total: print(done, "/", total))
    print(result.key, result.etag, result.size)

``Uploader`` is the facade; each job lives in its own module, as in s3transfer:
client.planning (which upload, which parts: start or resume), client.part_task (one part to S3,
with retries and re-signing), client.engine (the bounded executor, progress, and the one place
that winds a stopped transfer down), client.verify (ETags, checksums and size).

``put_many`` sends several files at once (client.batch): small ones as one presigned PUT each,
signed in batches of up to 50 per API call (client.put_batch; or one form POST each, client.many),
larger ones as multipart uploads, then waits for their verdicts.

Ctrl-C (KeyboardInterrupt) or ``cancel()`` keeps the parts already in S3 and the state file, so
``resume`` sends only what is missing (``abort_on_interrupt=True`` aborts instead; the bucket's
lifecycle rule removes uploads never resumed). A failure aborts the upload, unless
``keep_parts=True``.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import requests
from requests.adapters import HTTPAdapter

from client.api import DEFAULT_TIMEOUT, ImportedObject, PendingUpload, UploadApi
from client.batch import DEFAULT_FILES_AT_ONCE, FileOutcome, PutOptions, collect, put_files
from client.cancellation import Cancellation
from client.checksums import CHECKSUMS, Checksum
from client.engine import ProgressCallback, TransferEngine, UploadResult, WhenStopped
from client.errors import NotFoundError, UploadInterrupted
from client.files import Files
from client.many import FormUploader, TooLargeForForm
from client.part_task import PartSender
from client.parts import SourceFile
from client.planning import Planner, TransferJob, guess_content_type
from client.put_batch import DEFAULT_BATCH_SIZE, PutBatches, small_files
from client.retry import RetryPolicy, Transient
from client.state import load_state, remove_state, state_path_for
from client.transfer import DEFAULT_PUT_TIMEOUT

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "DEFAULT_CONCURRENCY",
    "DEFAULT_FILES_AT_ONCE",
    "DEFAULT_RETRIES",
    "FileOutcome",
    "ProgressCallback",
    "UploadResult",
    "Uploader",
]

LogCallback = Callable[[str], None]

DEFAULT_CONCURRENCY = 4
DEFAULT_RETRIES = 5
SEND_BLOCK = 1024 * 1024
# Files up to this size (and one part) go as one form POST in put_many (the API's own limit is
# 100 MiB by default; a file is read whole, so this bounds memory to files at once x 16 MiB).
DEFAULT_FORM_MAX_BYTES = 16 * 1024 * 1024


class Uploader:
    """Uploads files through the upload API. ``upload`` and ``resume`` send one file (call them
    from one thread at a time); ``put_many`` sends several at once.

    ``api_url`` and ``token``: the API's base URL and a bearer token. ``concurrency``: parts in
    flight at once, per file. ``files_at_once``: files ``put_many`` sends together (so at most
    ``files_at_once x (concurrency + 1)`` requests at once; the default session's connection pool
    is sized for that). ``part_size``: bytes per part (None lets the API choose; S3 needs ≥ 5 MiB).
    ``checksum``: the per-part checksum signed into each part URL so that S3 refuses a corrupted
    body — ``"crc32"`` (the default; zlib's, in C), ``"sha256"`` (S3 additional checksums),
    ``"md5"`` (Content-MD5), or None. With md5 or None each part's ETag is compared with its MD5
    where S3 makes it one; with an additional checksum, S3's echo of it.
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
        files_at_once: int = DEFAULT_FILES_AT_ONCE,
        part_size: int | None = None,
        checksum: Checksum | None = "crc32",
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
        if files_at_once < 1:
            raise ValueError("files_at_once must be at least 1")
        if part_size is not None and part_size < 1:
            raise ValueError("part_size must be positive")
        if checksum is not None and checksum not in CHECKSUMS:
            raise ValueError(f"checksum must be one of {', '.join(CHECKSUMS)} or None")
        self.concurrency = concurrency
        self.files_at_once = files_at_once
        self.part_size = part_size
        self.checksum: Checksum | None = checksum
        self.policy = retry_policy or RetryPolicy(retries=retries)
        self.session = session or _default_session(files_at_once * (concurrency + 1))
        self.state_files = state_files
        self._put_timeout = put_timeout
        self._log = log
        self._injected_sleep = sleep
        # The stop signals of the transfers (and batches) running, for cancel().
        self._running: set[Cancellation] = set()
        self._running_lock = threading.Lock()
        self.api = UploadApi(
            api_url,
            token,
            session=self.session,
            policy=self.policy,
            sleep=self._sleep,
            timeout=timeout,
            on_retry=self._api_retry_notice,
        )
        # The caller's finished files: list, status, wait for a verdict, download, delete.
        self.files = Files(self.api, self.session, sleep=self._sleep)
        self._planner = Planner(
            self.api, part_size=part_size, checksum=checksum, state_files=state_files, warn=self._warn
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
        abort_on_interrupt: bool = False,
    ) -> UploadResult:
        """Upload a file. ``content_type`` defaults to a guess from the extension; ``filename``
        (the name the key ends with) defaults to the file's name. An interrupt keeps the parts
        (``abort_on_interrupt`` aborts instead); a failure aborts, unless ``keep_parts``."""
        source_path = Path(path)
        with SourceFile(source_path) as source:
            name = filename or source_path.name
            job = self._planner.start(source, filename=name, content_type=content_type or guess_content_type(name))
            return self._transfer(job, on_progress, WhenStopped(not abort_on_interrupt, keep_parts))

    def put_many(
        self,
        targets: Sequence[str | os.PathLike[str]],
        *,
        files_at_once: int | None = None,
        wait: bool = True,
        wait_timeout: float = 120.0,
        content_type: str | None = None,
        on_progress: ProgressCallback | None = None,
        on_result: Callable[[FileOutcome], None] | None = None,
        keep_parts: bool = False,
        abort_on_interrupt: bool = False,
        form_max_bytes: int = DEFAULT_FORM_MAX_BYTES,
        batch_size: int | None = DEFAULT_BATCH_SIZE,
    ) -> list[FileOutcome]:
        """Upload files, and every file under the folders given (recursively, hidden ones
        skipped), ``files_at_once`` (default: the uploader's) at a time, then wait for each
        verdict (unless ``wait=False``), concurrently too; one ``FileOutcome`` per file, in order.

        A file that fits in one part and ``form_max_bytes`` goes as one presigned PUT, signed with
        up to ``batch_size - 1`` other small files in one API call (``batch_size=None``: one form
        POST each, one API call per file); a larger one as a multipart upload with
        ``concurrency`` parts in flight. A file
        that fails does not stop the others. ``on_progress(done, total)`` follows the bytes of all
        files (one call at a time, from the workers; never decreasing); ``on_result`` gets each
        outcome as it ends, from the calling thread. ``client.batch.worst(outcomes)`` is the
        CLI's exit code. Ctrl-C or ``cancel()`` stops every file and raises
        ``client.batch.BatchInterrupted`` with the outcomes (the interrupted multipart uploads
        kept for ``resume`` unless ``abort_on_interrupt``)."""
        options = PutOptions(
            wait=wait,
            wait_timeout=wait_timeout,
            content_type=content_type,
            when_stopped=WhenStopped(not abort_on_interrupt, keep_parts),
            form_max_bytes=form_max_bytes,
            batch_size=batch_size,
        )
        return put_files(
            self,
            collect(os.fspath(target) for target in targets),
            options,
            files_at_once=files_at_once or self.files_at_once,
            on_progress=on_progress,
            on_result=on_result,
        )

    def upload_many(
        self,
        paths: Sequence[str | os.PathLike[str]],
        *,
        content_type: str | None = None,
        concurrency: int | None = None,
        form_max_bytes: int = DEFAULT_FORM_MAX_BYTES,
        on_file: Callable[[FileOutcome], None] | None = None,
        batch_size: int | None = DEFAULT_BATCH_SIZE,
    ) -> list[FileOutcome]:
        """``put_many`` of exactly these files, ``concurrency`` (default: the uploader's
        ``concurrency``, as before ``files_at_once`` existed) at a time, without waiting for
        verdicts (each outcome's verdict is ``pending``); small files signed ``batch_size`` per
        API call (None: one form each)."""
        options = PutOptions(
            wait=False, content_type=content_type, form_max_bytes=form_max_bytes, batch_size=batch_size
        )
        return put_files(
            self,
            [Path(path) for path in paths],
            options,
            files_at_once=concurrency or self.concurrency,
            on_result=on_file,
        )

    def send(
        self,
        path: Path,
        *,
        content_type: str | None = None,
        filename: str | None = None,
        on_progress: ProgressCallback | None = None,
        when_stopped: WhenStopped = WhenStopped(),  # noqa: B008 - frozen
        form_max_bytes: int | None = None,
        cancellation: Cancellation | None = None,
    ) -> UploadResult:
        """One file of ``put_many``: as one form POST when it fits in one part (of ``part_size``,
        when set) and in ``form_max_bytes`` (two calls instead of four, no state file), else as
        a multipart upload (``upload``). ``cancellation`` stops it from another thread."""
        limit = self.single_request_limit(form_max_bytes)
        stop = cancellation or Cancellation()
        if stop.cancelled:
            raise UploadInterrupted(None)
        if limit > 0:
            forms = FormUploader(self.api, self.session, policy=self.policy, sleep=self._sleep, form_max_bytes=limit)
            try:
                result = forms.upload(path, content_type, filename=filename)
            except TooLargeForForm:
                pass
            else:
                if on_progress is not None:
                    on_progress(result.size, result.size)
                return result
        with SourceFile(path) as source:
            name = filename or path.name
            job = self._planner.start(source, filename=name, content_type=content_type or guess_content_type(name))
            return self._transfer(job, on_progress, when_stopped, stop)

    def single_request_limit(self, form_max_bytes: int | None) -> int:
        """The largest file sent in one request (a form or a batch's PUT): within one part (of
        ``part_size``, when set) and ``form_max_bytes`` (None: the default; 0: never)."""
        limit = DEFAULT_FORM_MAX_BYTES if form_max_bytes is None else form_max_bytes
        return limit if self.part_size is None else min(limit, self.part_size)

    def put_batches(self, paths: Sequence[Path], options: PutOptions) -> PutBatches | None:
        """The batch signer for the small files of ``paths`` (None when batches are off or none
        is small); ``put_files`` sends each small file through it."""
        limit = self.single_request_limit(options.form_max_bytes)
        if options.batch_size is None or limit <= 0:
            return None
        files = small_files(paths, limit=limit, content_type=options.content_type, filename=options.filename)
        if not files:
            return None
        return PutBatches(
            self.api,
            self.session,
            files,
            batch_size=options.batch_size,
            policy=self.policy,
            sleep=self._sleep,
            timeout=self._put_timeout,
        )

    def resume(
        self,
        path: str | os.PathLike[str],
        *,
        upload_id: str | None = None,
        on_progress: ProgressCallback | None = None,
        keep_parts: bool = False,
        abort_on_interrupt: bool = False,
    ) -> UploadResult:
        """Continue an interrupted upload of ``path``, sending only the parts S3 does not hold.

        The upload is named by the state file next to the source, by ``upload_id``, or else
        found with ``GET /uploads`` (same file name, parts that fit the file's size). Every part
        already in S3 is compared with the local bytes (MD5 ETag or checksum) before it is kept.
        """
        with SourceFile(Path(path)) as source:
            job = self._planner.resume(source, upload_id=upload_id)
            return self._transfer(job, on_progress, WhenStopped(not abort_on_interrupt, keep_parts))

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
        """Stop the running transfers (and ``put_many``) from another thread: they end like a Ctrl-C."""
        with self._running_lock:
            for running in self._running:
                running.cancel()

    # ---- plumbing

    def _register(self, cancellation: Cancellation) -> Cancellation:
        with self._running_lock:
            self._running.add(cancellation)
        return cancellation

    def _unregister(self, cancellation: Cancellation) -> None:
        with self._running_lock:
            self._running.discard(cancellation)

    def _transfer(
        self,
        job: TransferJob,
        on_progress: ProgressCallback | None,
        when_stopped: WhenStopped,
        cancellation: Cancellation | None = None,
    ) -> UploadResult:
        cancellation = self._register(cancellation or Cancellation())
        # Workers wait between retries on the transfer's stop signal, so a stopped transfer's
        # threads end at once instead of sleeping out their backoff.
        worker_sleep = self._injected_sleep or cancellation.wait
        sender = PartSender(
            job,
            api=self.api.waiting_with(worker_sleep),
            session=self.session,
            policy=self.policy,
            sleep=worker_sleep,
            put_timeout=self._put_timeout,
            cancellation=cancellation,
            notice=self._notice,
        )
        engine = TransferEngine(
            self.api, sender, concurrency=self.concurrency, cancellation=cancellation, notice=self._notice
        )
        try:
            return engine.run(on_progress, when_stopped)
        finally:
            self._unregister(cancellation)

    def _sleep(self, seconds: float) -> None:
        (self._injected_sleep or time.sleep)(seconds)

    def _api_retry_notice(self, retry: int, transient: Transient, wait: float) -> None:
        self._notice(f"{transient.final}; retry {retry} in {wait:.1f}s")

    def _notice(self, message: str) -> None:
        if self._log is not None:
            self._log(message)

    def _warn(self, message: str) -> None:
        self._notice(f"warning: {message}")


class _LargeBlockAdapter(HTTPAdapter):
    """Sends bodies in 1 MiB blocks instead of urllib3's 16 KiB: 64 times fewer reads, progress
    reports and socket calls per part."""

    def init_poolmanager(self, connections: int, maxsize: int, block: bool = False, **pool_kwargs: Any) -> None:
        pool_kwargs.setdefault("blocksize", SEND_BLOCK)
        super().init_poolmanager(connections, maxsize, block, **pool_kwargs)


def session_adapter(concurrency: int) -> HTTPAdapter:
    """The adapter the uploader's own session uses: one pooled connection per worker plus the API
    calls, so connections are reused, and bodies sent in 1 MiB blocks (for sessions made elsewhere)."""
    return _LargeBlockAdapter(pool_connections=4, pool_maxsize=max(10, concurrency + 2))


def _default_session(concurrency: int) -> requests.Session:
    session = requests.Session()
    adapter = session_adapter(concurrency)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session
