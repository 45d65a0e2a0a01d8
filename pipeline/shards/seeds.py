"""Seeds and keys derived from (global seed, document id, copy, ...), never from a shared stream.

Every random choice of the shards stage is drawn from a ``random.Random`` seeded
here, so what a document yields does not depend on partitioning, worker count or
engine.  BLAKE2b gives the same 64-bit value in every process (Python's ``hash``
of a string does not).
"""

from __future__ import annotations

import hashlib
import random

import numpy as np


def derive_text(*parts) -> bytes:
    """What ``derive`` and ``derive_pair`` hash: the parts as text, joined by U+001F, in UTF-8."""
    return "\x1f".join(str(part) for part in parts).encode("utf-8")


def derive(*parts) -> int:
    """A 64-bit integer from the parts (ints and strings), the same in every process."""
    return int.from_bytes(hashlib.blake2b(derive_text(*parts), digest_size=8).digest(), "little")


def rng_for(*parts) -> random.Random:
    """A random stream seeded from the parts."""
    return random.Random(derive(*parts))


def pool_of(seed: int, doc_id: str, pools: int) -> int:
    """The document pool (pairing partners for random next sentences, packing neighbours) of a document."""
    return derive(seed, "pool", doc_id) % pools


def derive_pair(*parts) -> tuple[int, int]:
    """Two independent 64-bit integers from the parts (one hash): an instance's shuffle key and mask seed."""
    digest = hashlib.blake2b(derive_text(*parts), digest_size=16).digest()
    return int.from_bytes(digest[:8], "little"), int.from_bytes(digest[8:], "little")


_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)


def _splitmix(x: np.ndarray) -> np.ndarray:
    x = x + _GOLDEN
    x = (x ^ (x >> np.uint64(30))) * _M1
    x = (x ^ (x >> np.uint64(27))) * _M2
    return x ^ (x >> np.uint64(31))


def uniform(seeds: np.ndarray, index: np.ndarray, salt: int) -> np.ndarray:
    """A float in [0, 1) per (seed, index, salt), vectorised: counter-based, so each instance's draws depend on
    its own seed and nothing else (SplitMix64 finaliser)."""
    mixed = _splitmix(seeds.astype(np.uint64) ^ _splitmix(index.astype(np.uint64) * np.uint64(4) + np.uint64(salt)))
    return (mixed >> np.uint64(11)).astype(np.float64) * (1.0 / (1 << 53))
