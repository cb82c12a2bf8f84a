"""Build-once providers for what a container keeps between requests (services, and so their boto3 clients).

A provider is what routes name in `Depends(...)`; tests replace it with `app.dependency_overrides`.
"""

from __future__ import annotations

from collections.abc import Callable
from threading import Lock


class Lazy[T]:
    """Calls `build` on first use and returns the same value ever after (one per container)."""

    def __init__(self, build: Callable[[], T]) -> None:
        self._build = build
        self._value: T | None = None
        self._lock = Lock()

    def __call__(self) -> T:
        if self._value is None:
            with self._lock:
                if self._value is None:
                    self._value = self._build()
        return self._value
