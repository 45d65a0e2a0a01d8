"""A fixed-size filter of document ids (a Bloom filter): what a driver may broadcast instead of a set of ids.

A set of ids costs a driver ~100 bytes an id; this filter is ``bits / 8``
bytes whatever it holds (the Spark adapter sizes it at 16 bits an id it will
hold, at most 128 MiB).  It answers "maybe" or "no": every id added is a
"maybe", and an id not added is a "maybe" with a small probability (about
0.2% at 16 bits an id, more past the cap), so a "maybe" is always checked
exactly afterwards (by a join); a "no" needs no check.  Filters built on
several workers are merged by OR (:meth:`IdFilter.merge`).
"""

from __future__ import annotations

import hashlib
from typing import Iterable

import numpy as np

DEFAULT_BITS = 1 << 27      # 16 MiB
HASHES = 4


def _positions(doc_id: str, bits: int) -> list[int]:
    digest = hashlib.blake2b(doc_id.encode("utf-8", "surrogatepass"), digest_size=16).digest()
    h1, h2 = int.from_bytes(digest[:8], "little"), int.from_bytes(digest[8:], "little") | 1
    return [(h1 + k * h2) % bits for k in range(HASHES)]


class IdFilter:
    """A Bloom filter over document ids; picklable (its bit array travels as bytes)."""

    def __init__(self, bits: int = DEFAULT_BITS, array: np.ndarray | None = None) -> None:
        if bits <= 0 or bits % 8:
            raise ValueError(f"an id filter needs a positive multiple of 8 bits, got {bits}")
        self.bits = bits
        self.array = np.zeros(bits // 8, np.uint8) if array is None else array

    @classmethod
    def of(cls, ids: Iterable[str], bits: int = DEFAULT_BITS) -> "IdFilter":
        found = cls(bits)
        found.add_all(ids)
        return found

    def add_all(self, ids: Iterable[str]) -> None:
        array = self.array
        for doc_id in ids:
            for p in _positions(doc_id, self.bits):
                array[p >> 3] |= 1 << (p & 7)

    def __contains__(self, doc_id: str) -> bool:
        array = self.array
        return all(array[p >> 3] >> (p & 7) & 1 for p in _positions(doc_id, self.bits))

    def merge(self, other: "IdFilter") -> "IdFilter":
        if other.bits != self.bits:
            raise ValueError("id filters of different sizes cannot be merged")
        return IdFilter(self.bits, self.array | other.array)

    def __getstate__(self):
        return self.bits, self.array.tobytes()

    def __setstate__(self, state):
        self.bits, raw = state
        self.array = np.frombuffer(raw, np.uint8).copy()


__all__ = ["IdFilter", "DEFAULT_BITS"]
