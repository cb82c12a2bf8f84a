"""One transfer's stop signal, shared by the engine, its workers and their backoff waits.

Ctrl-C reaches only the calling thread, and ``Uploader.cancel()`` comes from any thread, so the
workers learn that the transfer is stopping from this flag: they check it before each attempt,
while a part's body is being sent (so a PUT stops mid-body), and their retry waits end early.
"""

from __future__ import annotations

import threading


class TransferCancelled(Exception):
    """Raised inside a worker that noticed the transfer is stopping."""


class Cancellation:
    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def check(self) -> None:
        """Raise ``TransferCancelled`` once the transfer is stopping."""
        if self._event.is_set():
            raise TransferCancelled

    def wait(self, seconds: float) -> None:
        """Sleep up to ``seconds``; wakes at once when the transfer is cancelled."""
        self._event.wait(seconds)
