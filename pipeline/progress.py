"""Progress of a stage while it runs: documents/s, MB/s, share done and ETA.

Workers count with :class:`Progress` as they go.  Given a ``report_dir``
(which ``wwm`` stages do), a worker's counts go, at most every ``interval``
seconds, to a small JSON file there, and the driver's :class:`StageMonitor`
sums the files of all workers into one line per interval on stderr, with the
share done and an ETA where the stage's size is known (input bytes for ingest,
input rows after it).  Without a ``report_dir`` each worker prints its own line.
This works wherever the workers and the driver see the same output directory
(every local engine and a standalone cluster on one machine); elsewhere the
engine's own monitoring shows progress.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
import uuid
from pathlib import Path


def _clock(seconds: float) -> str:
    seconds = max(0, int(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def progress_line(label: str, docs: int, nbytes: int, elapsed: float, *, total_docs: int | None = None,
                  total_bytes: int | None = None) -> str:
    """``[label] 1,234 of 5,000 docs  410 docs/s  0.52 MB/s  25%  ETA 0:00:09``."""
    elapsed = max(elapsed, 1e-9)
    mb_s = nbytes / elapsed / 1e6
    parts = [f"[{label}]", f"{docs:,} of {total_docs:,} docs" if total_docs else f"{docs:,} docs",
             f"{docs / elapsed:,.0f} docs/s", f"{mb_s:.2f} MB/s"]
    done = rate = left = None
    if total_bytes:
        done, rate, left = min(nbytes / total_bytes, 1.0), nbytes / elapsed, total_bytes - nbytes
    elif total_docs:
        done, rate, left = min(docs / total_docs, 1.0), docs / elapsed, total_docs - docs
    if done is not None:
        parts.append(f"{done:.0%}")
        if 0 < done < 1 and rate > 0:
            parts.append(f"ETA {_clock(left / rate)}")
    return "  ".join(parts)


class Progress:
    """One worker's counts of documents and bytes done, printed or reported to the driver."""

    def __init__(self, label: str, total_bytes: int | None = None, *, enabled: bool = True,
                 interval: float = 2.0, stream=None, report_dir: str | None = None) -> None:
        self.label = label
        self.total_bytes = total_bytes or None
        self.enabled = enabled
        self.interval = interval
        self.stream = stream if stream is not None else sys.stderr
        self.report_dir = report_dir
        self._report = None
        if report_dir:
            self._report = Path(report_dir) / f"{label.replace('/', '.')}-{os.getpid()}-{uuid.uuid4().hex[:8]}.json"
        self.docs = 0
        self.bytes = 0
        self.start = time.monotonic()
        self._last = self.start
        self.lines_printed = 0

    def update(self, docs: int = 0, nbytes: int = 0) -> None:
        """Add work done; print or report if the interval has passed."""
        self.docs += docs
        self.bytes += nbytes
        if self.enabled:
            now = time.monotonic()
            if now - self._last >= self.interval:
                self._last = now
                self._emit(now)

    def line(self, now: float | None = None) -> str:
        now = time.monotonic() if now is None else now
        return progress_line(self.label, self.docs, self.bytes, now - self.start, total_bytes=self.total_bytes)

    def _emit(self, now: float) -> None:
        if self._report is not None:
            self._write_report()
            return
        print(self.line(now), file=self.stream, flush=True)
        self.lines_printed += 1

    def _write_report(self) -> None:
        try:
            self._report.parent.mkdir(parents=True, exist_ok=True)
            tmp = self._report.with_name("." + self._report.name)
            tmp.write_text(json.dumps({"label": self.label, "docs": self.docs, "bytes": self.bytes}))
            os.replace(tmp, self._report)
        except OSError:       # progress is best effort: never fail the work because of it
            pass

    def track(self, items, measure):
        """Pass ``items`` through, adding ``measure(item)`` (documents, bytes) for each; close at the end."""
        for item in items:
            self.update(*measure(item))
            yield item
        self.close()

    def close(self) -> None:
        """Print the final line or write the final counts (if anything was done and progress is on)."""
        if self.enabled and self.docs:
            self._emit(time.monotonic())


def text_size(doc) -> tuple[int, int]:
    """One document and its text's UTF-8 size (a record with ``text``)."""
    return 1, len(doc.text.encode("utf-8", "surrogatepass"))


def reporter(label: str, report_dir: str | None, total_bytes: int | None = None) -> Progress:
    """A worker's :class:`Progress` for a stage: reports to ``report_dir``, or does nothing without one."""
    return Progress(label, total_bytes, enabled=report_dir is not None, report_dir=report_dir)


def read_reports(report_dir: str | Path) -> dict[str, tuple[int, int]]:
    """Documents and bytes per label, summed over the workers' report files."""
    totals: dict[str, list[int]] = {}
    directory = Path(report_dir)
    if not directory.is_dir():
        return {}
    for path in directory.glob("*.json"):
        try:
            report = json.loads(path.read_text())
        except (OSError, ValueError):    # replaced while being read: the next poll sees it
            continue
        total = totals.setdefault(report["label"], [0, 0])
        total[0] += int(report["docs"])
        total[1] += int(report["bytes"])
    return {label: (docs, nbytes) for label, (docs, nbytes) in totals.items()}


class StageMonitor:
    """A driver thread printing the stage's summed progress every ``interval`` seconds while it runs.

    Each label a worker reports (``dedup``, ``dedup/minhash``) is a pass over
    the stage's input; the line shows the pass most recently moved.
    """

    def __init__(self, report_dir: str | Path | None, *, total_docs: int | None = None,
                 total_bytes: int | None = None, interval: float = 2.0, stream=None) -> None:
        self.report_dir = Path(report_dir) if report_dir else None
        self.total_docs = total_docs or None
        self.total_bytes = total_bytes or None
        self.interval = interval
        self.stream = stream if stream is not None else sys.stderr
        self.lines: list[str] = []
        self.reported: dict[str, tuple[int, int]] = {}
        self._seen: dict[str, tuple[int, int]] = {}
        self._current: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.start = time.monotonic()

    def __enter__(self) -> "StageMonitor":
        if self.report_dir is not None:
            self.report_dir.mkdir(parents=True, exist_ok=True)
            self.start = time.monotonic()
            self._thread = threading.Thread(target=self._run, name="wwm-progress", daemon=True)
            self._thread.start()
        return self

    def poll(self, now: float | None = None) -> str | None:
        """Read the reports; the line to print, or None when nothing moved since the last poll."""
        now = time.monotonic() if now is None else now
        reports = read_reports(self.report_dir)
        moved = [label for label, counts in reports.items() if counts != self._seen.get(label)]
        if not moved:
            return None
        self._seen.update(reports)
        self._current = sorted(moved)[-1] if self._current not in moved else self._current
        docs, nbytes = reports[self._current]
        line = progress_line(self._current, docs, nbytes, now - self.start, total_docs=self.total_docs,
                             total_bytes=self.total_bytes)
        self.lines.append(line)
        return line

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            line = self.poll()
            if line:
                print(line, file=self.stream, flush=True)

    def summary(self) -> dict[str, dict[str, int]]:
        """Documents and bytes each pass's workers last reported (empty with progress off)."""
        return {label: {"docs": docs, "bytes": nbytes} for label, (docs, nbytes) in sorted(self.reported.items())}

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self.reported = read_reports(self.report_dir)   # what the workers said last, for the stage's stats
