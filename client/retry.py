"""Retries with exponential backoff and full jitter, for API calls and part PUTs alike.

Full jitter (a uniform wait between 0 and ``min(max_delay, base_delay * 2**attempt)``) spreads
the retries of many parallel parts over time instead of sending them back in waves, which is
what a throttled S3 prefix needs. The clock and the randomness are injectable, so the policy is
tested without sleeping.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from client.errors import UploadClientError

# Statuses worth another try whatever the body says: throttling and the server's own failures.
RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})
# S3 answers some transient conditions with a 400 and one of these codes.
RETRYABLE_S3_CODES = frozenset({"SlowDown", "InternalError", "RequestTimeout", "ServiceUnavailable", "Throttling"})


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """``retries`` retries after the first attempt, each after a fully jittered exponential wait."""

    retries: int = 5
    base_delay: float = 0.25
    max_delay: float = 20.0
    random: Callable[[], float] = field(default=random.random, compare=False)

    def __post_init__(self) -> None:
        if self.retries < 0:
            raise ValueError("retries must not be negative")
        if self.base_delay < 0 or self.max_delay < 0:
            raise ValueError("delays must not be negative")

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """The wait before retry number ``attempt`` (0 for the first retry).

        A server's ``Retry-After`` is a floor (it knows when it will have capacity), still capped
        by ``max_delay`` so one header cannot stall an upload for an hour.
        """
        ceiling = min(self.max_delay, self.base_delay * 2.0 ** min(attempt, 62))
        wait = self.random() * ceiling
        if retry_after is not None and retry_after > 0:
            wait = max(wait, min(retry_after, self.max_delay))
        return wait


class Transient(Exception):
    """Raised by an attempt that may succeed if tried again.

    ``final`` is the error to report when no retry is left; ``retry_after`` is the server's hint.
    """

    def __init__(self, final: UploadClientError, retry_after: float | None = None) -> None:
        super().__init__(str(final))
        self.final = final
        self.retry_after = retry_after


def call_with_retries[T](
    attempt: Callable[[], T],
    policy: RetryPolicy,
    sleep: Callable[[float], None],
    *,
    on_retry: Callable[[int, Transient, float], None] | None = None,
) -> T:
    """Run ``attempt`` until it returns or raises something other than ``Transient``; after
    ``policy.retries`` retries, raise the last ``Transient``'s ``final`` error."""
    retry = 0
    while True:
        try:
            return attempt()
        except Transient as transient:
            if retry >= policy.retries:
                raise transient.final from transient
            wait = policy.delay(retry, transient.retry_after)
            if on_retry is not None:
                on_retry(retry + 1, transient, wait)
            sleep(wait)
            retry += 1


def retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    """A ``Retry-After`` given in seconds (the HTTP-date form is rare here and ignored)."""
    value = headers.get("Retry-After") or headers.get("retry-after")
    if value is None:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    return seconds if seconds >= 0 else None
