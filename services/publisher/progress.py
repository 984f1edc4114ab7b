"""A one-line progress bar for long uploads, redrawn in place on a terminal."""

from __future__ import annotations

import time
from typing import TextIO

MIN_ROWS = 500  # smaller files finish before a bar is worth drawing


class ProgressBar:
    """``update(done)`` as work goes on, ``close()`` at the end. Silent when the stream is
    not a terminal (a log file) or the job is small."""

    def __init__(
        self, label: str, total: int, stream: TextIO, *, width: int = 30,
        enabled: bool | None = None, interval_seconds: float = 0.1,
    ) -> None:
        self.label = label
        self.total = max(total, 1)
        self.stream = stream
        self.width = width
        self.interval = interval_seconds
        if enabled is None:
            enabled = total >= MIN_ROWS and stream.isatty()
        self.enabled = enabled
        self._last = float("-inf")
        self._drawn = False

    def update(self, done: int) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if done < self.total and now - self._last < self.interval:
            return
        self._last = now
        self.stream.write("\r" + self.render(done))
        self.stream.flush()
        self._drawn = True

    def render(self, done: int) -> str:
        share = min(max(done, 0), self.total) / self.total
        filled = int(share * self.width)
        bar = "#" * filled + "." * (self.width - filled)
        return f"{self.label} [{bar}] {done:,}/{self.total:,} {share:4.0%}"

    def close(self) -> None:
        if self._drawn:
            self.stream.write("\n")
            self.stream.flush()
            self._drawn = False
