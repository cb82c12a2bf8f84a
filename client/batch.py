"""Several files at once (``put photos/ *.jpg``, ``Uploader.put_many``): one overall progress, a
result per file (key and verdict) as each ends, and the worst outcome as the exit code.

``files_at_once`` files are in flight together. A file that fits in one request goes as one
presigned PUT signed in a batch of up to ``batch_size`` small files (client.put_batch: one API
call per batch, not per file), or with ``batch_size=None`` as one form POST; a larger one as a
multipart upload with its own ``concurrency`` part workers (``Uploader.send``). Then the same worker waits for that
file's verdict, so verdicts are awaited concurrently too, and a slow validation does not hold
back the next file's bytes more than one worker's worth. At most
``files_at_once x (concurrency + 1)`` HTTP requests are in flight at once: per file, its part
PUTs plus one API call (signing ahead, or polling for the verdict).

Threads: workers report progress under one lock, so ``on_progress(done, total)`` gets one call at
a time and ``done`` (the sum over files of the most each has reported) never decreases.
``on_result`` is called from the calling thread, as each file ends, in the order they end.

A file that fails does not stop the others. Ctrl-C in the calling thread (or ``Uploader.cancel()``
from another) stops them all: files not started are dropped, multipart uploads in flight wind
down as a single upload's do (their parts kept for ``resume``, or aborted with
``abort_on_interrupt``), form POSTs in flight end, verdict waits stop; then ``BatchInterrupted``
is raised with every file's outcome.
"""

from __future__ import annotations

import contextlib
import os
import queue
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from client.cancellation import Cancellation, TransferCancelled
from client.engine import ProgressCallback, UploadResult, WhenStopped
from client.errors import ExitCode, KeptUpload, UploadClientError, UploadInterrupted, exit_code_for
from client.put_batch import DEFAULT_BATCH_SIZE, PutBatches

if TYPE_CHECKING:
    from client.uploader import Uploader

DEFAULT_FILES_AT_ONCE = 4
_POLL_SECONDS = 0.2


@dataclass(frozen=True, slots=True)
class FileOutcome:
    """One file of a several-file upload.

    ``result`` is the stored object (None when the upload failed or was interrupted), ``error``
    what stopped it. ``verdict``: ``valid``, ``rejected``, ``pending`` (not waited for, or no
    verdict in time: then ``reason`` says so), ``error`` or ``interrupted``. ``exit_code`` is the
    CLI's code for this file alone; ``kept`` an interrupted multipart upload left for ``resume``.
    """

    path: str
    result: UploadResult | None = None
    error: UploadClientError | None = None
    verdict: str = "pending"
    reason: str | None = None
    exit_code: ExitCode = ExitCode.OK
    kept: KeptUpload | None = None

    @property
    def key(self) -> str | None:
        return self.result.key if self.result else None

    def as_json(self) -> dict[str, object]:
        body: dict[str, object] = {"path": self.path}
        if self.result is not None:
            body.update(
                key=self.result.key,
                etag=self.result.etag,
                size=self.result.size,
                location=self.result.location,
                uploadId=self.result.upload_id,
                partsSent=self.result.parts_sent,
                partsReused=self.result.parts_reused,
            )
        body.update(verdict=self.verdict, reason=self.reason, exitCode=int(self.exit_code))
        if self.kept is not None:
            body.update(keptUploadId=self.kept.upload_id, keptKey=self.kept.key)
        return body

    def line(self) -> str:
        if self.result is None:
            if self.verdict == "interrupted":
                return f"interrupted {self.path}" + (" (parts kept)" if self.kept is not None else "")
            return f"failed {self.path}: {self.reason}"
        result = self.result
        reused = f", {result.parts_reused} already there" if result.parts_reused else ""
        verdict = {
            "valid": "valid",
            "rejected": f"REJECTED ({self.reason})",
            "pending": "pending" + (f" ({self.reason})" if self.reason else ""),
            "interrupted": "interrupted before the verdict",
        }.get(self.verdict, self.verdict)
        return (
            f"uploaded {self.path} to {result.key} ({result.size} bytes; {result.parts_sent} parts sent{reused};"
            f" etag {result.etag}): {verdict}"
        )


class BatchInterrupted(UploadInterrupted):
    """Ctrl-C or ``Uploader.cancel()`` stopped a several-file upload. ``outcomes``: every file
    that started, in the order given (interrupted ones with ``kept``); ``not_started``: the rest."""

    def __init__(self, outcomes: list[FileOutcome], not_started: list[str]) -> None:
        super().__init__(None)
        self.outcomes = outcomes
        self.not_started = not_started

    @property
    def kept_uploads(self) -> list[KeptUpload]:
        return [outcome.kept for outcome in self.outcomes if outcome.kept is not None]


@dataclass(frozen=True, slots=True)
class PutOptions:
    """How each file of a batch is sent and judged (see ``Uploader.put_many``)."""

    wait: bool = True
    wait_timeout: float = 120.0
    content_type: str | None = None
    filename: str | None = None
    when_stopped: WhenStopped = field(default_factory=WhenStopped)
    form_max_bytes: int | None = None  # None: the uploader's default; 0: multipart only
    # Small files per POST /uploads/batch (client.put_batch); None: one form per file.
    batch_size: int | None = DEFAULT_BATCH_SIZE


def collect(targets: Iterable[str]) -> list[Path]:
    """The files named, and every file under the folders named (sorted, hidden ones skipped)."""
    found: list[Path] = []
    for target in targets:
        path = Path(target)
        if path.is_dir():
            found += sorted(
                item
                for item in path.rglob("*")
                if item.is_file() and not any(part.startswith(".") for part in item.relative_to(path).parts)
            )
        else:
            found.append(path)
    return found


def worst(outcomes: Iterable[FileOutcome]) -> ExitCode:
    """The exit code of a batch: its worst file's (interrupted, 130, above all)."""
    return max((outcome.exit_code for outcome in outcomes), default=ExitCode.OK)


class OverallProgress:
    """One ``on_progress(done, total)`` for several files: per file the most it has reported,
    summed, reported under a lock (one call at a time, ``done`` never decreasing)."""

    def __init__(self, total: int, on_progress: ProgressCallback | None) -> None:
        self.total = total
        self._on_progress = on_progress
        self._per_file: dict[int, int] = {}
        self._done = 0
        self._lock = threading.Lock()

    def start(self) -> None:
        if self._on_progress is not None:
            with self._lock:
                self._on_progress(self._done, self.total)

    def for_file(self, index: int) -> ProgressCallback:
        def report(done: int, _total: int) -> None:
            self.update(index, done)

        return report

    def update(self, index: int, done: int) -> None:
        with self._lock:
            before = self._per_file.get(index, 0)
            if done <= before:
                return
            self._per_file[index] = done
            self._done += done - before
            if self._on_progress is not None:
                self._on_progress(self._done, self.total)


class _Stopper:
    """Which files have started, and the stop signal of each, so that one Ctrl-C reaches them
    all, including a file whose worker is just starting."""

    def __init__(self, signal: Cancellation) -> None:
        self._lock = threading.Lock()
        self._signal = signal  # the batch's own, which Uploader.cancel() sets
        self._stopping = False
        self._running: dict[int, Cancellation] = {}
        self.started: set[int] = set()

    def begin(self, index: int) -> Cancellation | None:
        """The file's stop signal, or None when the batch is stopping (the file never starts)."""
        with self._lock:
            if self._stopping or self._signal.cancelled:
                return None
            cancellation = self._running[index] = Cancellation()
            self.started.add(index)
            return cancellation

    def end(self, index: int) -> None:
        with self._lock:
            self._running.pop(index, None)

    def stop(self) -> None:
        with self._lock:
            self._stopping = True
            for cancellation in self._running.values():
                cancellation.cancel()


def put_files(
    uploader: Uploader,
    paths: list[Path],
    options: PutOptions,
    *,
    files_at_once: int,
    on_progress: ProgressCallback | None = None,
    on_result: Callable[[FileOutcome], None] | None = None,
) -> list[FileOutcome]:
    """Send ``paths`` ``files_at_once`` at a time and wait for their verdicts (module docstring);
    one outcome per path, in order. Raises ``BatchInterrupted`` on Ctrl-C or ``cancel()``."""
    return _Batch(uploader, paths, options, on_progress, on_result).run(files_at_once)


class _Batch:
    def __init__(
        self,
        uploader: Uploader,
        paths: list[Path],
        options: PutOptions,
        on_progress: ProgressCallback | None,
        on_result: Callable[[FileOutcome], None] | None,
    ) -> None:
        self._uploader = uploader
        self._paths = paths
        self._options = options
        self._on_result = on_result
        sizes = [_size(path) for path in paths]
        self._progress = OverallProgress(sum(size for size in sizes if size is not None), on_progress)
        self._ended: queue.SimpleQueue[tuple[int, FileOutcome]] = queue.SimpleQueue()
        self._outcomes: dict[int, FileOutcome] = {}
        self._puts = uploader.put_batches(paths, options)

    def run(self, files_at_once: int) -> list[FileOutcome]:
        paths = self._paths
        self._signal = self._uploader._register(Cancellation())  # Uploader.cancel() stops the whole batch
        self._stopper = _Stopper(self._signal)
        executor = ThreadPoolExecutor(
            max_workers=max(1, min(files_at_once, len(paths))), thread_name_prefix="upload-file"
        )
        try:
            self._progress.start()
            for index in range(len(paths)):
                executor.submit(self._work, index)
            self._receive(lambda: len(paths))
        except KeyboardInterrupt:
            self._stopper.stop()
            executor.shutdown(wait=False, cancel_futures=True)
            # The files in flight wind down (parts kept or aborted) and report; a second Ctrl-C
            # stops waiting for them.
            with contextlib.suppress(KeyboardInterrupt):
                self._receive(lambda: len(self._stopper.started), stopping=True)
            outcomes = self._outcomes
            raise BatchInterrupted(
                [outcomes[index] for index in sorted(outcomes)],
                [str(path) for index, path in enumerate(paths) if index not in outcomes],
            ) from None
        finally:
            executor.shutdown(wait=False, cancel_futures=True)
            self._uploader._unregister(self._signal)
        return [self._outcomes[index] for index in range(len(paths))]

    def _work(self, index: int) -> None:
        """One file, in a worker; its outcome goes to the calling thread."""
        cancellation = self._stopper.begin(index)
        if cancellation is None:
            return
        path = self._paths[index]
        try:
            batched = self._puts if self._puts is not None and self._puts.covers(index) else None
            outcome = _put_one(
                self._uploader,
                path,
                self._options,
                cancellation,
                self._progress.for_file(index),
                batch=(batched, index),
            )
        except KeyboardInterrupt:  # raised in this worker (not by a transfer, which winds down first)
            outcome = FileOutcome(str(path), verdict="interrupted", exit_code=ExitCode.INTERRUPTED)
        except BaseException as error:  # a bug: reported for this file, the others carry on
            reason = f"unexpected {type(error).__name__}: {error}"
            outcome = FileOutcome(str(path), verdict="error", reason=reason, exit_code=ExitCode.INTERNAL)
        finally:
            self._stopper.end(index)
        if outcome.verdict == "interrupted":
            self._stopper.stop()  # no other file starts meanwhile; the calling thread then winds down
        self._ended.put((index, outcome))

    def _receive(self, expected: Callable[[], int], *, stopping: bool = False) -> None:
        """Outcomes, in the calling thread, until ``expected()`` have arrived."""
        while len(self._outcomes) < expected():
            try:
                index, outcome = self._ended.get(timeout=_POLL_SECONDS)
            except queue.Empty:
                if self._signal.cancelled and not stopping:
                    raise KeyboardInterrupt from None
                continue
            self._outcomes[index] = outcome
            if self._on_result is not None:
                self._on_result(outcome)
            if outcome.verdict == "interrupted" and not stopping:
                raise KeyboardInterrupt  # an interrupt that reached a worker stops the batch too


def _put_one(
    uploader: Uploader,
    path: Path,
    options: PutOptions,
    cancellation: Cancellation,
    on_progress: ProgressCallback,
    *,
    batch: tuple[PutBatches | None, int],
) -> FileOutcome:
    puts, index = batch
    try:
        if cancellation.cancelled:
            raise UploadInterrupted(None)
        # A small file goes through its batch's PUT; None when it must go on its own.
        result = puts.upload(index) if puts is not None else None
        if result is not None:
            on_progress(result.size, result.size)
        else:
            result = uploader.send(
                path,
                content_type=options.content_type,
                filename=options.filename,
                on_progress=on_progress,
                when_stopped=options.when_stopped,
                form_max_bytes=options.form_max_bytes,
                cancellation=cancellation,
            )
    except UploadInterrupted as stopped:
        return FileOutcome(str(path), verdict="interrupted", exit_code=ExitCode.INTERRUPTED, kept=stopped.kept)
    except UploadClientError as error:
        return FileOutcome(
            str(path), error=error, verdict="error", reason=str(error), exit_code=exit_code_for(error), kept=error.kept
        )
    if not options.wait:
        return FileOutcome(str(path), result)
    try:
        info = uploader.files.wait(result.key, timeout=options.wait_timeout, stop=cancellation)
    except TransferCancelled:
        return FileOutcome(str(path), result, verdict="interrupted", exit_code=ExitCode.INTERRUPTED)
    except UploadClientError as error:
        return FileOutcome(
            str(path), result, error=error, verdict="error", reason=str(error), exit_code=exit_code_for(error)
        )
    if info is None:
        return FileOutcome(str(path), result, reason="no verdict in time", exit_code=ExitCode.NO_VERDICT)
    code = ExitCode.OK if info.status == "valid" else ExitCode.REJECTED
    return FileOutcome(str(path), result, verdict=info.status, reason=info.reason, exit_code=code)


def _size(path: Path) -> int | None:
    try:
        return os.stat(path).st_size
    except OSError:
        return None


__all__ = [
    "DEFAULT_FILES_AT_ONCE",
    "BatchInterrupted",
    "FileOutcome",
    "OverallProgress",
    "PutOptions",
    "collect",
    "put_files",
    "worst",
]
