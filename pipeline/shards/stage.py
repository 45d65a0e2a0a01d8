"""The shards stage around its engine step: the driver's checks before it, the finish after it.

Before: the settings checked, the vocab found (``--shards-vocab`` or the vocab
stage's committed output), the segmented table found, the pool count.  The
engine then writes the shard files, one summary per shard under
``.summaries/`` and the rejected and quarantined tables.  After
(:func:`finish`): a shard no instance reached is written as an empty file,
``manifest.json`` is built from the summaries in shard order, and the
accounting (documents, and every document token in an instance or counted as
truncated) is checked.
"""

from __future__ import annotations

import dataclasses
import json
from typing import TYPE_CHECKING

from pipeline import storage
from pipeline.config import Config, ConfigError, ShardOptions, source_weights
from pipeline.outputs import count_by
from pipeline.shards import manifest as shard_manifest

if TYPE_CHECKING:
    from pipeline.engine import Plan, Ran
    from pipeline.stages import StageSpec

COLUMNS = ["id", "source", "title", "sentences", "words", "file", "position"]   # what the stage reads of segmented
SUMMARIES = ".summaries"     # inside the stage's temporary output: one JSON summary per shard written
POOLS = ".pools"             # the engine's spill files: documents and instance bytes


def shard_total(options: ShardOptions, document_tokens: int) -> int:
    """How many shards the stage writes (the one place it is decided: both engines and the finish call it)."""
    return shard_manifest.shard_count(options, document_tokens)


def pool_count(options: ShardOptions, documents: int) -> int:
    """Pools of about ``pool_documents`` documents each (at least one)."""
    return max(1, -(-documents // max(1, options.pool_documents)))


def shards_vocab(config: Config) -> str:
    """The vocab the shards stage reads: ``--shards-vocab``, else the vocab stage's output."""
    from pipeline.stages import published, stage_dir

    path = config.shards.vocab or published(config, "vocab", "vocab.txt")
    if path is None:
        raise FileNotFoundError(f"shards: vocab {storage.join(stage_dir(config, 'vocab'), 'vocab.txt')} is not "
                                f"committed (no stats.json beside it): run the vocab stage")
    if not storage.is_file(path):
        raise FileNotFoundError(f"shards: vocab {path} does not exist (run the vocab stage, or pass --shards-vocab "
                                f"FILE, e.g. Google's Chinese vocab.txt)")
    return str(path)


def plan(spec: "StageSpec", config: Config, input_dir: str | None) -> "Plan":
    from pipeline.shards import units
    from pipeline.stages import plan_table
    from pipeline.vocab.wordpiece import read_vocab

    options = config.shards
    if options.max_predictions_per_seq < 1 or options.max_seq_length < 8 or options.dupe_factor < 1:
        raise ConfigError("shards: max_seq_length >= 8, max_predictions_per_seq >= 1 and dupe_factor >= 1 needed")
    try:
        units.of_options(options)
    except ValueError as exc:
        raise ConfigError(f"shards: {exc}") from None
    vocab = shards_vocab(config)
    entries = read_vocab(vocab)
    found = plan_table(spec, config, input_dir)
    # the workers read the weights from the shard options: the inputs' weights join shards.weights there
    found.config = dataclasses.replace(config, shards=dataclasses.replace(options, weights=source_weights(config)))
    found.vocab, found.pools = vocab, pool_count(options, found.read)
    found.input["pools"] = found.pools
    found.info["vocab_size"] = len(entries)
    return found


def summaries_dir(out) -> str:
    return out.path(SUMMARIES)


def pools_dir(out) -> str:
    return out.path(POOLS)


def write_summary(directory: str, summary: dict) -> None:
    """An engine's record of one shard written, in :func:`summaries_dir` (read back by :func:`finish`)."""
    storage.makedirs(directory)
    storage.write_text(storage.join(directory, f"{summary['shard']:05d}.json"), json.dumps(summary))


def _summaries(out, total: int, options: ShardOptions) -> list[dict]:
    """The summaries of every shard in shard order; a shard no instance reached is written as an empty file."""
    directory, found = summaries_dir(out), {}
    for rel, _, _ in storage.walk(directory):
        if "/" not in rel and rel.endswith(".json"):
            summary = json.loads(storage.read_text(storage.join(directory, rel)))
            found[summary["shard"]] = summary
    for work in (directory, pools_dir(out)):
        storage.delete_dir(work)
    for shard in range(total):
        if shard not in found:
            found[shard] = shard_manifest.write_empty(out.tmp, shard, total, options)
    return [found[shard] for shard in range(total)]


def finish(ran: "Ran") -> dict:
    """Empty shards, the manifest, the accounting; the stage's stats."""
    from pipeline.stages import AccountingError, accounting, common_stats, per_second
    from pipeline.shards import mixing
    from pipeline.vocab.wordpiece import vocab_sha256

    options, counters, plan, out = ran.config.shards, ran.counters, ran.plan, ran.out
    document_tokens = counters.get("shards.document_tokens", 0)
    total = shard_total(options, document_tokens)
    summaries = _summaries(out, total, options)
    kept = counters.get("shards.kept", 0)
    manifest = shard_manifest.build(options, plan.vocab, vocab_sha256(plan.vocab), plan.info["vocab_size"],
                                    summaries, documents=kept, document_tokens=document_tokens,
                                    sources=mixing.summary(counters, options.weights, summaries))
    shard_manifest.write(out.tmp, manifest)
    lost = counters.get("shards.weighted_document_tokens", 0) * options.dupe_factor - sum(
        s["own_tokens"] for s in summaries) - manifest["truncated_tokens"]
    instances = manifest["instances"]
    stats = common_stats(ran)
    stats["schemas"] = {"tfrecord_features": manifest["features_schema_version"],
                        "manifest": manifest["schema_version"], **stats["schemas"]}
    stats.update({
        "throughput": {"instances_per_s": per_second(instances, ran.seconds),
                       "docs_per_s": per_second(plan.read, ran.seconds)},
        "accounting": accounting(plan.read, kept, ran.tables),
        "tables": ran.tables,
        "rejected_by_rule": count_by(out.table("rejected"), "rejected", "rule"),
        "shards": total,
        "instances": instances,
        "tokens_lost_untruncated": lost,
        "manifest": {k: v for k, v in manifest.items() if k not in ("shards", "settings")},
        "counters": counters,
        "progress": ran.progress,
    })
    if not stats["accounting"]["balanced"]:
        raise AccountingError(f"shards: read {plan.read} but kept {kept} and wrote {json.dumps(ran.tables)}")
    if lost != 0:
        raise AccountingError(f"shards: {lost} document tokens are in no instance and were not counted as "
                              f"truncated")
    return stats


def summary(stats: dict, final: str) -> list[str]:
    m = stats["manifest"]
    return [f"shards: read {stats['accounting']['read']:,} -> {stats['accounting']['kept']:,} documents, "
            f"{stats['instances']:,} instances in {stats['shards']} shards ({m['masked_tokens']:,} masked, "
            f"{m['truncated_tokens']:,} truncated, random next {m['next_sentence']['random_share']}) "
            f"({stats['seconds']:.1f} s, {stats['throughput']['instances_per_s']} instances/s) -> {final}"]


__all__ = ["plan", "finish", "summary", "shard_total", "pool_count", "shards_vocab", "write_summary",
           "summaries_dir", "pools_dir", "SUMMARIES", "POOLS"]
