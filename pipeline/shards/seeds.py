"""Seeds and keys derived from (global seed, document id, copy, ...), never from a shared stream.

Every random choice of the shards stage is drawn from a ``random.Random`` seeded
here, so what a document yields does not depend on partitioning, worker count or
engine.  BLAKE2b gives the same 64-bit value in every process (Python's ``hash``
of a string does not).
"""

from __future__ import annotations

import hashlib
import random


def derive(*parts) -> int:
    """A 64-bit integer from the parts (ints and strings), the same in every process."""
    text = "\x1f".join(str(part) for part in parts)
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest(), "little")


def rng_for(*parts) -> random.Random:
    """A random stream seeded from the parts."""
    return random.Random(derive(*parts))


def pool_of(seed: int, doc_id: str, pools: int) -> int:
    """The document pool (pairing partners for random next sentences, packing neighbours) of a document."""
    return derive(seed, "pool", doc_id) % pools


def order_key(seed: int, doc_id: str, copy: int, index: int) -> int:
    """The global shuffle key of the ``index``-th instance of copy ``copy`` of a document."""
    return derive(seed, "order", doc_id, copy, index)
