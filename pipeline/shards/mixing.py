"""Per-source mixing weights: how many weighted copies of each document go into the shards.

A weight ``w`` gives each document of its source ``floor(w)`` copies and one more with probability
``w - floor(w)`` (so ``w < 1`` subsamples), drawn from the document's own value (``seeds.document_values``:
a hash of the seed and the document id), never from a shared stream: the same documents are kept and
repeated on every engine, at any worker count and partitioning.  Each weighted copy then gets its
``dupe_factor`` copies; a document of weight 1 is exactly what it was without weights.

Per source, the tokenize step counts (engine counters) documents and tokens before and after weighting; each
instance carries its source's id (``source_id``) among its figures, so each shard's summary gives its
instances, tokens and own tokens per source; ``summary`` joins both into the manifest's ``sources``.
"""

from __future__ import annotations

import math

import numpy as np

from pipeline.shards.seeds import derive, mix

_WEIGHT_COUNTER = np.uint64(0x776569676874)       # "weight": the draw of a document's extra copy
PREFIX = "shards.source:"
FIELDS = ("documents", "tokens", "weighted_documents", "weighted_tokens", "instances", "instance_tokens",
          "own_tokens")


def check_weights(weights: dict) -> dict[str, float]:
    """``{source: weight}`` with each weight a finite number >= 0; ValueError otherwise."""
    out = {}
    for source, weight in (weights or {}).items():
        try:
            value = float(weight)
        except (TypeError, ValueError):
            raise ValueError(f"weight of source {source!r}: {weight!r} is not a number") from None
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"weight of source {source!r}: {weight!r} must be a finite number >= 0")
        out[str(source)] = value
    return out


def copies(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Weighted copies of each document (int64): floor(w), plus one when its draw is under w - floor(w)."""
    weights = np.asarray(weights, np.float64)
    whole = np.floor(weights)
    u = (mix(np.asarray(values, np.uint64), _WEIGHT_COUNTER) >> np.uint64(11)).astype(np.float64) * (1.0 / (1 << 53))
    return (whole + (u < weights - whole)).astype(np.int64)


def name(source: str, field: str) -> str:
    return f"{PREFIX}{source}:{field}"


def count_source(count, source: str, tokens: int) -> None:
    """A tokenized document of ``source`` (before weighting)."""
    count(name(source, "documents"))
    count(name(source, "tokens"), int(tokens))


def source_id(source: str) -> int:
    """A source's id among the figures of instances (a non-negative int64, the same in every process)."""
    return derive("source", source) >> 1


def summary(counters: dict, weights: dict, shard_summaries: list | None = None) -> dict:
    """Per source (sorted): its weight, the counted figures (``FIELDS``) and the shares: of document tokens
    before and after weighting, and of the shards' tokens (the tokens of the instances built from its
    documents, which in bert mode include random next segments borrowed from other documents)."""
    sources: dict[str, dict] = {}
    for key, value in counters.items():
        if key.startswith(PREFIX):
            source, _, field = key[len(PREFIX):].rpartition(":")
            if field in FIELDS:
                sources.setdefault(source, dict.fromkeys(FIELDS, 0))[field] = int(value)
    names = {str(source_id(source)): source for source in sources}
    for shard in shard_summaries or ():
        for key, (instances, tokens, own) in (shard.get("by_source") or {}).items():
            figures = sources.setdefault(names.get(key, key), dict.fromkeys(FIELDS, 0))
            figures["instances"] += instances
            figures["instance_tokens"] += tokens
            figures["own_tokens"] += own
    totals = {field: sum(s[field] for s in sources.values()) for field in FIELDS}
    out = {}
    for source in sorted(sources):
        figures = sources[source]
        share = {f"{field}_share": round(figures[field] / totals[field], 6) if totals[field] else None
                 for field in ("tokens", "weighted_tokens", "instance_tokens", "own_tokens")}
        out[source] = {"weight": float(weights.get(source, 1.0)), **figures, **share}
    return out
