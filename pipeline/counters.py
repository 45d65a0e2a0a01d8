"""Counters injected into the core.

Core functions take ``count(name, n=1)``.  Engines pass their own (Beam
``Metrics.counter``, a Spark accumulator); unit tests and plain local runs use
:class:`Counters`.  Names are dotted, stage first: ``clean.rejected.too_short``.
"""

from __future__ import annotations

from collections import Counter
from typing import Callable

CountFn = Callable[..., None]


def no_count(name: str, n: int = 1) -> None:
    """A counter that drops everything."""


class Counters:
    """A plain in-memory counter: call it like ``count(name, n)``."""

    def __init__(self) -> None:
        self.values: Counter[str] = Counter()

    def __call__(self, name: str, n: int = 1) -> None:
        self.values[name] += n

    def __getitem__(self, name: str) -> int:
        return self.values[name]

    def as_dict(self) -> dict[str, int]:
        return dict(sorted(self.values.items()))


def merge(*dicts: dict[str, int]) -> dict[str, int]:
    """Sum several counter dicts."""
    total: Counter[str] = Counter()
    for d in dicts:
        total.update(d)
    return dict(sorted(total.items()))
