"""Signing ahead: each part's URL is ready before a worker needs it, in few API calls.

A part's checksum is in its URL's signature, so a part can be signed only once it is hashed. One
thread reads and hashes the parts in order ahead of the workers, keeping their digests but not
their bytes (a worker reads its part again, from the page cache, when its turn comes), and signs
them in batches: a small first batch so that sending starts at once, then the rest in as few
calls as keep an upload within ``ceil(parts / 100)`` sign calls. It stays at most one batch ahead
of the workers, so URLs are not signed long before they are used (they expire).

When resuming, a part S3 already holds is compared with its digest here and is not signed.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from client.api import PartToSign, SignedPart, UploadApi
from client.cancellation import Cancellation, TransferCancelled
from client.checksums import API_ALGORITHMS, PartDigest
from client.errors import TransferError
from client.parts import ceil_div
from client.planning import TransferJob
from client.resume import part_matches

PARTS_PER_SIGN_CALL = 100
_POLL_SECONDS = 0.2


def batch_sizes(count: int, first: int) -> list[int]:
    """How many parts each sign call covers: ``first`` (or all, for one call), then even shares
    of the rest, in ``ceil(count / 100)`` calls at most."""
    if count <= 0:
        return []
    calls = ceil_div(count, PARTS_PER_SIGN_CALL)
    if calls == 1 or count <= first:
        return [count]
    rest = count - first
    share = ceil_div(rest, calls - 1)
    sizes = [first]
    while rest > 0:
        sizes.append(min(share, rest))
        rest -= sizes[-1]
    return sizes


def part_to_sign(number: int, digest: PartDigest, checksum: str | None) -> PartToSign:
    if checksum is None:
        return PartToSign(number)
    if checksum == "md5":
        return PartToSign(number, content_md5=digest.content_md5)
    return PartToSign(number, checksum=digest.checksum)


@dataclass(frozen=True, slots=True)
class ReadyPart:
    """A part hashed and signed (``signed``), or found intact in S3 (``reused_etag``)."""

    number: int
    digest: PartDigest
    signed: SignedPart | None = None
    reused_etag: str | None = None


class SignAhead:
    """The hashing and signing thread of one transfer; workers ``take`` their part from it."""

    def __init__(self, job: TransferJob, api: UploadApi, cancellation: Cancellation, *, first_batch: int) -> None:
        self._job = job
        self._api = api
        self._cancellation = cancellation
        self._sizes = batch_sizes(job.plan.count, max(1, first_batch))
        self._ready: dict[int, ReadyPart] = {}
        self._error: BaseException | None = None
        self._finished = False
        self._changed = threading.Condition()
        self._thread = threading.Thread(target=self._run, name="upload-sign-ahead", daemon=True)
        self.sign_calls = 0

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Ends the thread (the transfer's cancellation stops it between two parts)."""
        with self._changed:
            self._finished = True
            self._changed.notify_all()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout=5.0)

    def take(self, number: int) -> ReadyPart:
        """Part ``number``, hashed and signed; raises what stopped the signing thread, if anything."""
        with self._changed:
            while number not in self._ready:
                if self._error is not None:
                    raise self._error
                self._cancellation.check()
                if self._finished:
                    raise TransferError(f"part {number} was never signed")
                self._changed.wait(_POLL_SECONDS)
            ready = self._ready.pop(number)
            self._changed.notify_all()  # room for the next batch
            return ready

    # ---- the thread

    def _run(self) -> None:
        try:
            self._sign_all()
        except TransferCancelled:
            pass
        except BaseException as error:  # handed to the workers, which raise it in the calling thread
            with self._changed:
                self._error = error
                self._changed.notify_all()

    def _sign_all(self) -> None:
        job = self._job
        numbers = iter(job.plan.numbers())
        largest = max(self._sizes, default=1)
        for size in self._sizes:
            self._wait_for_room(largest)
            batch: list[tuple[int, PartDigest]] = []
            while len(batch) < size and (number := next(numbers, None)) is not None:
                self._cancellation.check()
                reused = self._hash(number, batch)
                if reused is not None:
                    self._publish([reused])
            # Parts reused on a resume do not count: the batches' sizes add up to every part.
            self._sign(batch)

    def _hash(self, number: int, batch: list[tuple[int, PartDigest]]) -> ReadyPart | None:
        """Reads and hashes part ``number``: a ReadyPart when S3 holds it intact, else it joins ``batch``."""
        job = self._job
        length = job.plan.length(number)
        _, digest = job.source.read(job.plan.offset(number), length, job.checksum)
        listed = job.existing.get(number)
        if listed is not None and part_matches(listed, length, digest, job.recorded_etags):
            return ReadyPart(number, digest, reused_etag=listed.etag)
        batch.append((number, digest))
        return None

    def _sign(self, batch: list[tuple[int, PartDigest]]) -> None:
        if not batch:
            return
        job = self._job
        signed = self._api.sign_parts(
            job.upload_id,
            job.key,
            [part_to_sign(number, digest, job.checksum) for number, digest in batch],
            checksum_algorithm=API_ALGORITHMS.get(job.checksum or ""),
        )
        self.sign_calls += 1
        missing = [number for number, _ in batch if number not in signed]
        if missing:
            raise TransferError(f"the API did not sign part {missing[0]}")
        self._publish([ReadyPart(number, digest, signed=signed[number]) for number, digest in batch])

    def _publish(self, parts: list[ReadyPart]) -> None:
        with self._changed:
            for part in parts:
                self._ready[part.number] = part
            self._changed.notify_all()

    def _wait_for_room(self, largest: int) -> None:
        """Hash the next batch only once fewer than a batch of signed parts wait for workers."""
        with self._changed:
            while len(self._ready) >= largest and not self._finished:
                self._cancellation.check()
                self._changed.wait(_POLL_SECONDS)
            if self._finished:
                raise TransferCancelled
