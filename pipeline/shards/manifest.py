"""``manifest.json`` beside the shards: settings, vocab hash, figures per shard and in all.

Also the feature spec (from ``schemas/tfrecord_features``) and the shard count
chosen when none is configured.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

from pipeline import schema, storage
from pipeline.shards.builder import STAT_FIELDS, SUMMED_FIELDS, shard_name
from pipeline.config import ShardOptions

MANIFEST = "manifest.json"


def feature_spec(unmasked: bool = False) -> list[dict]:
    """The features of one Example: [{name, dtype, length}] with length "L", "P" or an int."""
    return schema.spec("tfrecord_features")["variants"]["unmasked" if unmasked else "masked"]


def feature_lengths(unmasked: bool, max_seq_length: int, max_predictions: int) -> list[tuple[str, str, int]]:
    """(name, dtype, length) of each feature for these settings."""
    sizes = {"L": max_seq_length, "P": max_predictions}
    return [(f["name"], f["dtype"], sizes.get(f["length"], f["length"])) for f in feature_spec(unmasked)]


def shard_count(options: ShardOptions, document_tokens: int) -> int:
    """``options.shards``, else enough shards for about ``instances_per_shard`` instances each (estimated from
    the tokens: instances hold about 85% of ``max_seq_length`` real tokens)."""
    if options.shards > 0:
        return options.shards
    per_instance = max(1.0, 0.85 * (options.max_seq_length - 3))
    estimate = options.dupe_factor * document_tokens / per_instance
    return max(1, math.ceil(estimate / max(1, options.instances_per_shard)))


def empty_summary(shard: int, shards: int) -> dict:
    return {"file": shard_name(shard, shards), "shard": shard, "instances": 0, "bytes": 0,
            "sha256": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            **{name: 0 for name in SUMMED_FIELDS}, "by_source": {}}


def write_empty(directory, shard: int, shards: int, options) -> dict:
    """The files of a shard no instance reached (an empty TFRecord file; a Parquet file of no rows) and its
    summary."""
    from pipeline.shards import builder

    return builder.write_shard(directory, shard, shards, [], options)


def build(options: ShardOptions, vocab_path: str, vocab_sha256: str, vocab_size: int, summaries: list[dict],
          documents: int, document_tokens: int, sources: dict | None = None) -> dict:
    """The manifest (see ``schemas/manifest.v1.json``) from the shard summaries in shard order."""
    totals = {name: sum(s[name] for s in summaries) for name in ("instances", "bytes", *SUMMED_FIELDS)}
    random_next = totals["random_next"]
    instances = totals["instances"]
    return {
        "schema_version": schema.spec("manifest")["version"],
        "features": "unmasked" if options.unmasked else "masked",
        "features_schema_version": schema.spec("tfrecord_features")["version"],
        "vocab": storage.absolute(vocab_path),
        "vocab_sha256": vocab_sha256,
        "vocab_size": vocab_size,
        "settings": dataclasses.asdict(options),
        "max_seq_length": options.max_seq_length,
        "max_predictions_per_seq": options.max_predictions_per_seq,
        "documents": documents,
        "instances": instances,
        "tokens": totals["tokens"],
        "masked_tokens": totals["masked"],
        "masked_words": totals["masked_words"],
        "document_tokens": document_tokens,
        "document_tokens_in_instances": totals["own_tokens"],
        "truncated_tokens": totals["truncated"],
        "borrowed_truncated_tokens": totals["truncated_borrowed"],
        "single_segment_instances": totals["single_segment"],
        "bytes": totals["bytes"],
        "sources": sources or {},
        "next_sentence": {"random": random_next, "actual": instances - random_next,
                          "random_share": round(random_next / instances, 4) if instances else None},
        "format": getattr(options, "format", "tfrecord"),
        "shards": [{key: s[key] for key in ("file", "instances", "tokens", "masked", "random_next", "truncated",
                                              "bytes", "sha256", "parquet_file", "parquet_bytes", "parquet_sha256")
                    if key in s} for s in summaries],
    }


def write(directory: str | Path, manifest: dict) -> str:
    path = storage.join(directory, MANIFEST)
    storage.write_text(path, json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
    return path


def read(directory: str | Path) -> dict:
    return json.loads(storage.read_text(storage.join(directory, MANIFEST)))
