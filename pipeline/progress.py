"""A rate-limited progress line for long local work.

Readers call :meth:`Progress.update` as they go; at most every ``interval``
seconds one line with documents/s, MB/s and (where the input size is known) the
share done and an ETA goes to stderr.  Each worker process prints its own line,
prefixed with its label.
"""

from __future__ import annotations

import sys
import time


def _clock(seconds: float) -> str:
    seconds = max(0, int(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


class Progress:
    def __init__(self, label: str, total_bytes: int | None = None, *, enabled: bool = True,
                 interval: float = 2.0, stream=None) -> None:
        self.label = label
        self.total_bytes = total_bytes or None
        self.enabled = enabled
        self.interval = interval
        self.stream = stream if stream is not None else sys.stderr
        self.docs = 0
        self.bytes = 0
        self.start = time.monotonic()
        self._last = self.start
        self.lines_printed = 0

    def update(self, docs: int = 0, nbytes: int = 0) -> None:
        """Add work done; print a line if the interval has passed."""
        self.docs += docs
        self.bytes += nbytes
        if self.enabled:
            now = time.monotonic()
            if now - self._last >= self.interval:
                self._last = now
                self._print(now)

    def line(self, now: float | None = None) -> str:
        now = time.monotonic() if now is None else now
        elapsed = max(now - self.start, 1e-9)
        mb_s = self.bytes / elapsed / 1e6
        parts = [f"[{self.label}]", f"{self.docs:,} docs", f"{self.docs / elapsed:,.0f} docs/s",
                 f"{mb_s:.2f} MB/s"]
        if self.total_bytes:
            done = min(self.bytes / self.total_bytes, 1.0)
            parts.append(f"{done:.0%}")
            if 0 < done < 1 and mb_s > 0:
                parts.append(f"ETA {_clock((self.total_bytes - self.bytes) / (mb_s * 1e6))}")
        return "  ".join(parts)

    def _print(self, now: float) -> None:
        print(self.line(now), file=self.stream, flush=True)
        self.lines_printed += 1

    def close(self) -> None:
        """Print the final line (if anything was done and printing is on)."""
        if self.enabled and self.docs:
            self._print(time.monotonic())
