"""One part's task, run on a worker thread: make sure part N is in S3 and holds the local bytes.

The part's digest and URL come from the signing thread (client.signing: parts hashed ahead and
signed in batches); the part's bytes are read only when its turn comes. A part already in S3 that
matches is kept; otherwise the bytes are PUT to the URL, which has the part's checksum in it, with
retries (backoff and full jitter) for transient failures, a fresh URL at once for an expired one
(only a run of them, which points at a wrong clock, counts as a failure), and a fresh read when
S3 refuses the body as not matching its checksum.
"""

from __future__ import annotations

from collections.abc import Callable

import requests

from client.api import SignedPart, UploadApi
from client.cancellation import Cancellation
from client.checksums import API_ALGORITHMS, PartDigest
from client.errors import LocalFileError, TransferError
from client.planning import TransferJob
from client.retry import RetryPolicy, Transient, call_with_retries
from client.signing import SignAhead, part_to_sign
from client.transfer import Outcome, PartBody, put_part
from client.verify import StoredPart, reused_part, stored_part

# An expired URL is signed again at once; more than this many in a row means a wrong clock.
MAX_RESIGNS_IN_A_ROW = 3

ReadCallback = Callable[[int, int], None]
"""``on_read(part_number, bytes_read)``: the bytes of this attempt's body the HTTP library has
read so far (from 0 again on a retry)."""


class PartSender:
    """What every part task of one transfer shares: the job, the API, the session and the policies."""

    def __init__(
        self,
        job: TransferJob,
        *,
        api: UploadApi,
        session: requests.Session,
        policy: RetryPolicy,
        sleep: Callable[[float], None],
        put_timeout: tuple[float, float],
        cancellation: Cancellation,
        notice: Callable[[str], None],
    ) -> None:
        self.job = job
        self.api = api
        self.session = session
        self.policy = policy
        self.sleep = sleep
        self.put_timeout = put_timeout
        self.cancellation = cancellation
        self.notice = notice
        self._ahead: SignAhead | None = None

    def start(self, concurrency: int) -> None:
        """Starts hashing and signing ahead (the first batch covers the first parts in flight)."""
        self._ahead = SignAhead(self.job, self.api, self.cancellation, first_batch=2 * concurrency)
        self._ahead.start()

    def stop(self) -> None:
        if self._ahead is not None:
            self._ahead.stop()

    @property
    def sign_calls(self) -> int:
        return self._ahead.sign_calls if self._ahead is not None else 0

    def send(self, number: int, on_read: ReadCallback) -> StoredPart:
        """Runs in a worker: the part, stored in S3 (or found there intact)."""
        job = self.job
        self.cancellation.check()
        if self._ahead is None:
            self.start(1)
        assert self._ahead is not None
        ready = self._ahead.take(number)
        offset, length = job.plan.offset(number), job.plan.length(number)
        if ready.reused_etag is not None:
            return reused_part(number, length, ready.digest, ready.reused_etag)
        # Not hashed again: S3 checks the bytes against the signed checksum (and a refusal reads
        # and hashes the part again, to tell a changed file from damage on the way).
        data = job.source.read_bytes(offset, length)
        attempts = _PartAttempts(
            self, number, offset=offset, data=data, digest=ready.digest, on_read=on_read, signed=ready.signed
        )
        return call_with_retries(attempts.attempt, self.policy, self.sleep)

    def sign(self, number: int, digest: PartDigest) -> SignedPart:
        """A fresh URL for one part (its first expired)."""
        job = self.job
        part = part_to_sign(number, digest, job.checksum)
        signed = self.api.sign_parts(
            job.upload_id, job.key, [part], checksum_algorithm=API_ALGORITHMS.get(job.checksum or "")
        )
        if number not in signed:
            raise TransferError(f"the API did not sign part {number}")
        return signed[number]


class _PartAttempts:
    """One part across its attempts: its bytes, their digest, and the URL while it is valid."""

    def __init__(
        self,
        sender: PartSender,
        number: int,
        *,
        offset: int,
        data: bytes,
        digest: PartDigest,
        on_read: ReadCallback,
        signed: SignedPart | None = None,
    ) -> None:
        self._sender = sender
        self._number = number
        self._offset = offset
        self._data = data
        self._digest = digest
        self._on_read = on_read
        self._signed = signed

    def attempt(self) -> StoredPart:
        sender, number = self._sender, self._number
        for _ in range(MAX_RESIGNS_IN_A_ROW + 1):
            sender.cancellation.check()
            if self._signed is None:
                self._signed = sender.sign(number, self._digest)
            body = PartBody(self._data, self._report, sender.cancellation)
            result = put_part(sender.session, self._signed, body, timeout=sender.put_timeout)
            sender.cancellation.check()  # a stopped transfer has no use for the answer (nor its notices)
            if result.outcome is not Outcome.EXPIRED:
                break
            sender.notice(f"part {number}: the URL expired; signing a new one")
            self._signed = None
        else:
            raise Transient(TransferError(f"part {number}: S3 keeps refusing fresh URLs as expired (clock skew?)"))
        if result.outcome is Outcome.STORED:
            return stored_part(number, len(self._data), self._digest, result)
        if result.outcome is Outcome.BAD_DIGEST:
            self._read_again()
            raise Transient(TransferError(f"part {number}: S3 refused the body ({result.describe()})"))
        if result.outcome is Outcome.TRANSIENT:
            sender.notice(f"part {number}: {result.describe()}; retrying")
            raise Transient(TransferError(f"part {number}: {result.describe()}"), result.retry_after)
        raise TransferError(f"part {number}: S3 refused it ({result.describe()})")

    def _report(self, bytes_read: int) -> None:
        self._on_read(self._number, bytes_read)

    def _read_again(self) -> None:
        """S3 got a body that does not match the checksum read before: either the file changed
        (fatal) or the bytes were damaged on the way (worth another try with the same bytes)."""
        job = self._sender.job
        fresh, digest = job.source.read(self._offset, len(self._data), job.checksum)
        if digest != self._digest:
            raise LocalFileError(f"{job.source.path} changed during the upload (part {self._number})")
        self._data = fresh
