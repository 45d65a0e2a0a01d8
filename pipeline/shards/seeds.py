"""Seeds and keys derived from (global seed, document id, copy, ...), never from a shared stream.

Every random choice of the shards stage is a counter-based draw: a 64-bit seed
per (document, copy) (``copy_seeds``: a BLAKE2b value of (seed, document id),
mixed with the copy) and a counter naming the choice (``counter``: an index, for
bert's chunk draws the chunk's first sentence in the document, for the shuffle
key and mask seed the instance's number, and a slot saying what is drawn),
hashed together by the SplitMix64 finaliser
(``mix``, ``uniform_at``).  So what a document yields does not depend on
partitioning, worker count or engine, and all the draws of a pool are taken at
once with NumPy.  BLAKE2b gives the same 64-bit value in every process (Python's
``hash`` of a string does not).
"""

from __future__ import annotations

import hashlib

import numpy as np


def derive_text(*parts) -> bytes:
    """What ``derive`` hashes: the parts as text, joined by U+001F, in UTF-8."""
    return "\x1f".join(str(part) for part in parts).encode("utf-8")


def derive(*parts) -> int:
    """A 64-bit integer from the parts (ints and strings), the same in every process."""
    return int.from_bytes(hashlib.blake2b(derive_text(*parts), digest_size=8).digest(), "little")


def pool_of(seed: int, doc_id: str, pools: int) -> int:
    """The document pool (pairing partners for random next sentences, packing neighbours) of a document."""
    return derive(seed, "pool", doc_id) % pools


_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)


def splitmix_in_place(x: np.ndarray) -> np.ndarray:
    """The SplitMix64 finaliser of a uint64 array, computed in ``x`` itself (one temporary); returns ``x``."""
    x += _GOLDEN
    t = x >> np.uint64(30)
    x ^= t
    x *= _M1
    np.right_shift(x, np.uint64(27), out=t)
    x ^= t
    x *= _M2
    np.right_shift(x, np.uint64(31), out=t)
    x ^= t
    return x


def _splitmix(x: np.ndarray) -> np.ndarray:
    return splitmix_in_place(np.array(x, dtype=np.uint64))


def uniform(seeds: np.ndarray, index: np.ndarray, salt: int) -> np.ndarray:
    """A float in [0, 1) per (seed, index, salt), vectorised: counter-based, so each instance's draws depend on
    its own seed and nothing else (SplitMix64 finaliser)."""
    mixed = _splitmix(seeds.astype(np.uint64) ^ _splitmix(index.astype(np.uint64) * np.uint64(4) + np.uint64(salt)))
    return (mixed >> np.uint64(11)).astype(np.float64) * (1.0 / (1 << 53))


def mix(seeds, counters) -> np.ndarray:
    """A 64-bit value per (seed, counter), vectorised: arrays broadcast (scalars are taken as arrays of one, so
    that NumPy wraps around without an overflow warning)."""
    seeds = np.atleast_1d(np.asarray(seeds, dtype=np.uint64))
    return _splitmix(seeds ^ _splitmix(np.atleast_1d(np.asarray(counters, dtype=np.uint64))))


def uniform_at(seeds, counters) -> np.ndarray:
    """A float in [0, 1) per (seed, counter): the top 53 bits of ``mix``."""
    return (mix(seeds, counters) >> np.uint64(11)).astype(np.float64) * (1.0 / (1 << 53))


def below(u, n):
    """An integer in [0, n) from a uniform float: floor(u * n) (kept under n against rounding up); n >= 1."""
    return np.minimum((np.asarray(u) * n).astype(np.int64), np.asarray(n, dtype=np.int64) - 1)


def counter(index, slot) -> np.ndarray:
    """The counter of draw ``slot`` (0 <= slot < 2**32) at ``index`` of a document copy (a chunk's first sentence,
    an instance's number: see the slots below); index -1 names the draws of the copy itself (its target
    length)."""
    return (np.asarray(index, dtype=np.int64) + 1).astype(np.uint64) << np.uint64(32) | np.asarray(
        slot, dtype=np.int64).astype(np.uint64)


def document_values(seed: int, doc_ids) -> np.ndarray:
    """Per document, the 64-bit value ``derive(seed, "doc", doc id)`` its copies' seeds come from."""
    return np.fromiter((derive(seed, "doc", doc_id) for doc_id in doc_ids), np.uint64, len(doc_ids))


def copy_seeds(values: np.ndarray, copies) -> np.ndarray:
    """The seed of each (document, copy) from its document's value (``document_values``); broadcast."""
    return mix(values, np.asarray(copies, dtype=np.uint64) ^ np.uint64(0x636F7079))


# Draw slots (``counter``).  Of a copy (index -1): whether it aims at a shorter target, and that target.  Of a
# bert chunk (index: its first sentence in the document): random next or not, where a one-sentence chunk is
# cut, where A ends, the partner document, its start sentence, then one draw per token truncation removes
# (``SLOT_TRUNCATE + k``).  Of an instance (index: its number in the copy, both modes): the shuffle key and
# the mask seed.
SLOT_SHORT, SLOT_TARGET = 0, 1
SLOT_NEXT, SLOT_CUT, SLOT_A_END, SLOT_PARTNER, SLOT_START, SLOT_KEY, SLOT_MASK = 0, 1, 2, 3, 4, 5, 6
SLOT_TRUNCATE = 16
