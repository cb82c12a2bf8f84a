"""The CLI's progress bar (tqdm): bytes sent, rate and time left, on stderr.

It follows the bytes as they are sent (the uploader reports each block of a part body the HTTP
library reads), so a large part moves the bar while it travels; bytes sent again after a failed
attempt count once, so it never goes back. It turns itself off when stderr is not a terminal,
and notices printed through ``write`` do not tear the bar.
"""

from __future__ import annotations

import sys
from typing import Any, TextIO

from tqdm import tqdm


class ProgressBar:
    """A callable ``on_progress(bytes_done, bytes_total)`` that draws a bar on first use."""

    def __init__(self, label: str, *, enabled: bool | None = None, stream: TextIO | None = None) -> None:
        self._label = label
        # None: on when the stream is a terminal (tqdm's own test).
        self._disable = None if enabled is None else not enabled
        self._stream = stream or sys.stderr
        self._bar: tqdm[Any] | None = None
        self._shown = 0

    def __call__(self, done: int, total: int) -> None:
        bar = self._bar
        if bar is None:
            bar = self._bar = tqdm(
                total=total,
                desc=self._label,
                unit="B",
                unit_scale=True,
                unit_divisor=1024,
                file=self._stream,
                disable=self._disable,
                dynamic_ncols=True,
                miniters=1,
                leave=True,
            )
        if done > self._shown:
            bar.update(done - self._shown)
            self._shown = done

    def write(self, message: str) -> None:
        """Print a line above the bar (or plainly, when there is no bar)."""
        if self._bar is not None and not self._bar.disable:
            self._bar.write(message, file=self._stream)
        else:
            print(message, file=self._stream, flush=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
