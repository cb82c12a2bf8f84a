"""The transfer engine: sends a job's parts on a bounded executor, completes the upload, and is
the one place where a stopped transfer is wound down.

At most ``concurrency`` part tasks exist at a time (the next is submitted when one finishes), so
memory stays within concurrency x part size whatever the file's size. Workers talk to the
calling thread through one queue: their finished futures and the progress of the bodies being
sent. So ``on_progress`` and the state file are only ever touched from the calling thread.

Whatever stops a transfer (Ctrl-C, ``cancel()``, a part that cannot be stored, a changed file)
goes through ``_wind_down``: it stops the workers, then keeps the upload for ``resume`` or
aborts it, by the caller's choice for interrupts and for failures.
"""

from __future__ import annotations

import contextlib
import queue
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_for_futures
from dataclasses import dataclass

from client.api import UploadApi
from client.cancellation import Cancellation, TransferCancelled
from client.errors import KeptUpload, LocalFileError, UploadClientError, UploadInterrupted
from client.part_task import PartSender
from client.verify import StoredPart, check_completed

ProgressCallback = Callable[[int, int], None]
"""``on_progress(bytes_done, bytes_total)``: called from the calling thread, first with 0, then
as part bodies are sent (bytes handed to the HTTP library, per block) and parts are stored (or,
when resuming, found intact). ``bytes_done`` never decreases: bytes sent again after a failed
attempt count once."""

# How long an abort waits for the parts in flight to stop (S3 may keep a part that lands after
# the abort otherwise), unless Ctrl-C is pressed again. Bodies stop at their next block, so this
# is only reached when S3 is slow to answer a part already sent.
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


@dataclass(frozen=True, slots=True)
class WhenStopped:
    """What happens to an upload whose transfer stops: keep its parts (for ``resume``) or abort it."""

    keep_on_interrupt: bool = True
    keep_on_failure: bool = False


class _Events:
    """The workers' channel to the calling thread: finished part tasks and body progress."""

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[Future[StoredPart] | tuple[int, int]] = queue.SimpleQueue()

    def finished(self, future: Future[StoredPart]) -> None:
        self._queue.put(future)

    def read(self, number: int, bytes_read: int) -> None:
        self._queue.put((number, bytes_read))

    def next_batch(self, cancellation: Cancellation) -> list[Future[StoredPart] | tuple[int, int]]:
        """The next event and whatever else is already queued (one progress report for them all)."""
        while True:
            try:
                first = self._queue.get(timeout=_POLL_SECONDS)
                break
            except queue.Empty:
                cancellation.check()  # cancel() from another thread, while every worker waits on S3
        batch = [first]
        while True:
            try:
                batch.append(self._queue.get_nowait())
            except queue.Empty:
                return batch


class _Progress:
    """Bytes done: per part, the most of its body sent in any attempt, or all of it once stored."""

    def __init__(self, total: int, on_progress: ProgressCallback | None) -> None:
        self._total = total
        self._on_progress = on_progress
        self._per_part: dict[int, int] = {}
        self._done = 0
        self._reported = -1

    def sent(self, number: int, bytes_read: int) -> None:
        before = self._per_part.get(number, 0)
        if bytes_read > before:
            self._per_part[number] = bytes_read
            self._done += bytes_read - before

    def stored(self, part: StoredPart) -> None:
        self.sent(part.number, part.length)

    def report(self) -> None:
        if self._on_progress is not None and self._done != self._reported:
            self._reported = self._done
            self._on_progress(self._done, self._total)


class TransferEngine:
    """Runs one job to a completed, verified upload. ``notice`` and ``warn`` receive one-line
    messages (aborts, abort failures)."""

    def __init__(
        self,
        api: UploadApi,
        sender: PartSender,
        *,
        concurrency: int,
        cancellation: Cancellation,
        notice: Callable[[str], None],
        grace_seconds: float = ABORT_GRACE_SECONDS,
    ) -> None:
        self._api = api
        self._sender = sender
        self._job = sender.job
        self._concurrency = max(1, min(concurrency, self._job.plan.count))
        self._cancellation = cancellation
        self._notice = notice
        self._grace = grace_seconds

    def run(self, on_progress: ProgressCallback | None, when_stopped: WhenStopped) -> UploadResult:
        job = self._job
        executor = ThreadPoolExecutor(max_workers=self._concurrency, thread_name_prefix="upload-part")
        in_flight: set[Future[StoredPart]] = set()
        done: dict[int, StoredPart] = {}
        self._sender.start(self._concurrency)
        try:
            self._send_all(executor, in_flight, done, _Progress(job.plan.size, on_progress))
            if not job.source.unchanged():
                raise LocalFileError(f"{job.source.path} changed during the upload")
            parts = [done[number] for number in job.plan.numbers()]
            completed = self._api.complete(job.upload_id, job.key, [(part.number, part.etag) for part in parts])
        except BaseException as error:
            failure = self._wind_down(executor, in_flight, len(done), error, when_stopped)
            if failure is error:
                raise
            raise failure from error
        finally:
            executor.shutdown(wait=False, cancel_futures=True)
            self._sender.stop()
        # The upload is now an object: nothing to keep or abort, whatever the check says.
        if job.state is not None:
            job.state.remove()
        check_completed(job.plan.size, parts, completed)
        return UploadResult(
            key=completed.key,
            etag=completed.etag,
            size=completed.size,
            location=completed.location,
            upload_id=job.upload_id,
            parts_sent=sum(1 for part in parts if part.sent),
            parts_reused=sum(1 for part in parts if not part.sent),
        )

    def _send_all(
        self,
        executor: ThreadPoolExecutor,
        in_flight: set[Future[StoredPart]],
        done: dict[int, StoredPart],
        progress: _Progress,
    ) -> None:
        events = _Events()
        numbers = iter(self._job.plan.numbers())
        progress.report()
        while True:
            while len(in_flight) < self._concurrency and (number := next(numbers, None)) is not None:
                future = executor.submit(self._sender.send, number, events.read)
                in_flight.add(future)
                future.add_done_callback(events.finished)
            if not in_flight:
                return
            for event in events.next_batch(self._cancellation):
                if isinstance(event, tuple):
                    progress.sent(*event)
                    continue
                in_flight.discard(event)
                part = event.result()  # a worker's exception is raised here, in the calling thread
                done[part.number] = part
                progress.stored(part)
                if self._job.state is not None and part.sent:
                    self._job.state.record_part(part.number, part.etag)
            progress.report()

    def _wind_down(
        self,
        executor: ThreadPoolExecutor,
        in_flight: set[Future[StoredPart]],
        parts_stored: int,
        error: BaseException,
        when_stopped: WhenStopped,
    ) -> BaseException:
        """Stop the workers, then keep or abort the upload; returns the exception to raise."""
        self._cancellation.cancel()
        executor.shutdown(wait=False, cancel_futures=True)
        job = self._job
        interrupted = isinstance(error, (KeyboardInterrupt, TransferCancelled))
        if when_stopped.keep_on_interrupt if interrupted else when_stopped.keep_on_failure:
            if job.state is not None:
                job.state.flush()
            kept = KeptUpload(
                upload_id=job.upload_id,
                key=job.key,
                path=str(job.source.path),
                parts_stored=parts_stored,
                part_count=job.plan.count,
                state_file=str(job.state.path) if job.state is not None and job.state.written else None,
            )
            if interrupted:
                return UploadInterrupted(kept)
            if isinstance(error, UploadClientError):
                error.kept = kept
            return error
        if interrupted:
            self._notice("interrupted: aborting the upload (Ctrl-C again to skip waiting for parts in flight)")
        with contextlib.suppress(KeyboardInterrupt):  # a second Ctrl-C skips the wait
            wait_for_futures(in_flight, timeout=self._grace)
        try:
            self._api.abort(job.upload_id, job.key)
        except (UploadClientError, KeyboardInterrupt) as abort_error:
            self._notice(
                f"warning: could not abort upload {job.upload_id} ({abort_error or 'interrupted'}); the bucket's"
                " lifecycle rule removes it, or `abort` it by its upload id"
            )
            if job.state is not None:
                job.state.flush()
        else:
            if job.state is not None:
                job.state.remove()
            self._notice(f"aborted upload {job.upload_id}")
        return UploadInterrupted(None) if interrupted else error
