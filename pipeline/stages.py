"""Run a stage on the chosen engine, check its accounting, publish its output.

Every stage's ``stats.json`` carries the identity ``read = kept + rejected +
duplicate + quarantined``, computed from the tables the stage wrote (row counts
from the Parquet footers), next to the engine's counters.  A stage whose tables
do not add up fails and publishes nothing.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import time
from collections import Counter
from pathlib import Path

from pipeline import __version__, fingerprint, schema, storage
from pipeline.config import Config, ConfigError, source_weights
from pipeline.ingest.files import expand
from pipeline.ingest.ids import make_unique
from pipeline.outputs import (StageOutput, committed, count_by, documents_dir, read_table, table_bytes, table_exists,
                              table_rows, write_json)
from pipeline.progress import StageMonitor
from pipeline.segment.segmenters import make_segmenter

STAGES = ("ingest", "clean", "dedup", "segment", "vocab", "shards")
BUILT = ("ingest", "clean", "dedup", "segment", "vocab", "shards")
DOCUMENT_STAGES = ("ingest", "clean", "dedup", "segment")
STAGE_TABLES = {
    "ingest": ("documents", "quarantined"),
    "clean": ("documents", "rejected", "quarantined"),
    "dedup": ("documents", "duplicates", "quarantined"),
    "segment": ("segmented", "quarantined"),
    "vocab": (),          # vocab.txt, counts.tsv: no Parquet table, and no document is dropped
    "shards": ("rejected", "quarantined"),
}
PREVIOUS = {"clean": "ingest", "dedup": "clean", "segment": "dedup", "vocab": "segment"}
KEPT_TABLE = {"segment": "segmented"}


class AccountingError(RuntimeError):
    """A stage's outputs do not account for every document it read."""


class NotBuiltError(RuntimeError):
    """A stage whose issue has not landed yet."""


def engine(name: str):
    """The engine adapter module: ``pipeline.beam.runner`` or ``pipeline.spark.jobs``."""
    modules = {"beam": "pipeline.beam.runner", "spark": "pipeline.spark.jobs"}
    if name not in modules:
        raise ConfigError(f"unknown engine {name!r} (beam or spark)")
    return importlib.import_module(modules[name])


def _published_table(config: Config, stage: str, table: str):
    """``OUTPUT/<stage>/<table>`` (a table or a file); on an object store, None unless that stage's output is
    committed (has its stats.json, written last)."""
    stage_dir = config.stage_dir(stage)
    if storage.is_remote(stage_dir) and not committed(stage_dir):
        return None
    return storage.join(stage_dir, table) if storage.is_remote(stage_dir) else stage_dir / table


def _stage_input(config: Config, stage: str, input_dir: str | None):
    path = documents_dir(input_dir) if input_dir else _published_table(config, PREVIOUS[stage], "documents")
    # a committed object-store stage whose documents table is empty has no object under it: still an input
    if path is None or not (table_exists(path) or (storage.is_remote(path) and not input_dir)):
        shown = path or storage.join(config.stage_dir(PREVIOUS[stage]), "documents")
        raise FileNotFoundError(f"{stage}: input {shown} does not exist (run {PREVIOUS[stage]} first, or pass "
                                f"--input)")
    return path


def _accounting(stage: str, read: int, tables: dict[str, int]) -> dict:
    kept = tables.get(KEPT_TABLE.get(stage, "documents"), 0)
    rejected = tables.get("rejected", 0)
    duplicate = tables.get("duplicates", 0)
    quarantined = tables.get("quarantined", 0)
    return {"read": read, "kept": kept, "rejected": rejected, "duplicate": duplicate,
            "quarantined": quarantined, "balanced": read == kept + rejected + duplicate + quarantined}


def _duplicate_summary(duplicates_dir: str) -> dict:
    """Duplicates by source and by method, and clusters per method with how many have each size
    (kept document included), from one read of the table."""
    rows = read_table(duplicates_dir, "duplicates", ["source", "method", "duplicate_of"]).to_pylist()
    members: dict[str, Counter] = {}
    for row in rows:
        members.setdefault(row["method"], Counter())[row["duplicate_of"]] += 1
    clusters = {}
    for method, dropped in sorted(members.items()):
        histogram = Counter(n + 1 for n in dropped.values())
        clusters[method] = {"clusters": len(dropped),
                            "size_histogram": {str(k): v for k, v in sorted(histogram.items())}}
    return {"duplicates_by_source": dict(sorted(Counter(r["source"] for r in rows).items())),
            "duplicates_by_method": dict(sorted(Counter(r["method"] for r in rows).items())),
            "clusters": clusters}


def _detail(stage: str, out: StageOutput) -> dict:
    kept = KEPT_TABLE.get(stage, "documents")
    detail = {"documents_by_source": count_by(out.table(kept), kept, "source")}
    if stage == "clean":
        detail["rejected_by_rule"] = count_by(out.table("rejected"), "rejected", "rule")
    if stage == "dedup":
        detail.update(_duplicate_summary(out.table("duplicates")))
    detail["quarantined_by_source"] = count_by(out.table("quarantined"), "quarantined", "source")
    return detail


def _monitor(config: Config, out: StageOutput, **size) -> StageMonitor:
    """Workers report progress into the stage's progress directory; the driver prints it (``--progress``)."""
    return StageMonitor(out.report_progress(config.progress), **size)


def run_stage(stage: str, config: Config, input_dir: str | None = None, log=print) -> dict:
    """Run one stage; returns its stats (also written to ``OUTPUT/<stage>/stats.json``)."""
    if stage not in BUILT:
        raise NotBuiltError(f"stage {stage!r} is not built yet")
    if stage == "vocab":
        return _run_vocab(config, input_dir, log)
    if stage == "shards":
        return run_shards(config, input_dir, log)
    adapter = engine(config.engine)
    started = time.time()
    adapter.start(config)
    startup = time.time() - started
    with StageOutput(config.output, stage) as out:
        started = time.time()
        if stage == "ingest":
            specs = config.input_specs()
            if not specs:
                raise ConfigError("ingest: no inputs (pass paths, or 'inputs' in the config file)")
            files = [f for spec in specs for f in expand(spec.path, spec.source, spec.format)]
            input_info = {"files": len(files), "bytes": sum(f.size for f in files),
                          "inputs": [vars(spec) for spec in specs]}
            with _monitor(config, out, total_bytes=input_info["bytes"]) as monitor:
                counters = adapter.ingest(config, files, out)
            renamed = make_unique(out.table("documents"), files)     # two datasets in one source may share ids
            if renamed:
                counters["ingest.ids_renamed"] = renamed
            read = counters.get("ingest.read", 0)
        else:
            if stage == "segment":
                info = make_segmenter(config.segment).describe()   # a missing model fails here, not in a worker
            source = _stage_input(config, stage, input_dir)
            read = table_rows(source)
            input_info = {"documents": str(source), "rows": read,
                          "bytes": table_bytes(source)}
            with _monitor(config, out, total_docs=read) as monitor:
                counters = getattr(adapter, stage)(config, str(source), out)
        seconds = time.time() - started
        tables = {name: table_rows(out.table(name)) for name in STAGE_TABLES[stage]}
        accounting = _accounting(stage, read, tables)
        stats = {
            "stage": stage,
            "engine": config.engine,
            "version": __version__,
            "schemas": {name: int(schema.load(name).metadata[b"wwm.schema_version"]) for name in tables},
            "seconds": round(seconds, 3),
            "engine_startup_seconds": round(startup, 3),
            "input": input_info,
            "throughput": {"docs_per_s": round(read / seconds, 1) if seconds else None,
                           "mb_per_s": round(input_info["bytes"] / seconds / 1e6, 3) if seconds else None},
            "accounting": accounting,
            "tables": tables,
            **_detail(stage, out),
            "counters": counters,
            "progress": monitor.summary(),
        }
        if stage == "segment":
            stats["segmenter"] = info
            chars = counters.get("segment.chars", 0)
            stats["throughput"]["segmented_chars_per_s"] = round(chars / seconds, 1) if seconds else None
        if not accounting["balanced"]:
            raise AccountingError(f"{stage}: read {read} but wrote {json.dumps(tables)}")
        final = out.publish(stats)
    log(f"{stage}: read {read:,} -> kept {accounting['kept']:,}, rejected {accounting['rejected']:,}, "
        f"duplicate {accounting['duplicate']:,}, quarantined {accounting['quarantined']:,} "
        f"({seconds:.1f} s, {stats['throughput']['mb_per_s']} MB/s) -> {final}")
    return stats


def _run_vocab(config: Config, input_dir: str | None = None, log=print) -> dict:
    """The vocab stage: pre-token counts on the engine, training (or a given vocab) and stats on the driver.

    Not a per-document stage: every document is either counted or held out
    (``read = counted + held_out``), and nothing is rejected.  With
    ``--vocab-vocab FILE`` nothing is counted or trained; the file is checked
    and copied, and the held-out stats are still computed when the segmented
    table is there.
    """
    from pipeline.vocab.stage import finish, segmented_dir

    options = config.vocab
    table = segmented_dir(input_dir) if input_dir else _published_table(config, "segment", "segmented")
    if table is None:
        table = storage.join(config.stage_dir("segment"), "segmented")
    has_table = table_exists(table)
    if not options.vocab and not has_table:
        raise FileNotFoundError(f"vocab: input {table} does not exist (run segment first, pass --input, or give an "
                                f"existing vocab with --vocab-vocab FILE)")
    read = table_rows(table) if has_table else 0
    input_info = {"segmented": str(table) if has_table else None, "rows": read,
                  "bytes": table_bytes(table) if has_table else 0}
    startup = counting = 0.0
    counts, counters = {}, {}
    with StageOutput(config.output, "vocab") as out:
        started = time.time()
        if not options.vocab:
            adapter = engine(config.engine)
            adapter.start(config)
            startup = time.time() - started
            started = time.time()
            with _monitor(config, out, total_docs=read) as monitor:
                counts, counters = adapter.vocab(config, str(table), out)
            counting = time.time() - started
        described = finish(counts, options, out.tmp, table if has_table else None)
        seconds = startup + counting + described["training_seconds"] + described["stats_seconds"]
        counted, held_out = counters.get("vocab.counted", 0), counters.get("vocab.held_out", 0)
        accounting = {"read": read, "counted": counted, "held_out": held_out,
                      "balanced": options.vocab != "" or read == counted + held_out,
                      # the identity every stage's stats carry: the vocab stage drops nothing
                      "kept": read, "rejected": 0, "duplicate": 0, "quarantined": 0}
        if options.vocab:
            accounting["counted"] = None
        stats = {
            "stage": "vocab",
            "engine": config.engine if not options.vocab else None,
            "version": __version__,
            "seconds": round(seconds, 3),
            "engine_startup_seconds": round(startup, 3),
            "counting_seconds": round(counting, 3),
            "input": input_info,
            "throughput": {"counting_mb_per_s": round(input_info["bytes"] / counting / 1e6, 3) if counting else None,
                           "counted_chars_per_s": round(counters.get("vocab.chars", 0) / counting, 1)
                           if counting else None},
            "accounting": accounting,
            "options": dataclasses.asdict(options),
            **described,
            "distinct_pre_tokens": len(counts),
            "counters": counters,
            "progress": monitor.summary() if not options.vocab else {},
        }
        if not accounting["balanced"]:
            raise AccountingError(f"vocab: read {read} but counted {counted} and held out {held_out}")
        final = out.publish(stats)
    how = (f"given: {options.vocab}" if options.vocab
           else f"trained on {counted:,} documents, {held_out:,} held out")
    log(f"vocab: {stats['size']:,} entries ({how}), sha256 {stats['vocab_sha256'][:12]} ({seconds:.1f} s) -> "
        f"{storage.join(final, 'vocab.txt')}")
    if stats.get("short_by"):
        log(f"vocab: warning: the corpus gave {stats['size']:,} entries, {stats['short_by']:,} short of "
            f"{stats['requested_size']:,} (too little text for the requested size)")
    return stats


def shards_vocab(config: Config):
    """The vocab the shards stage reads: ``--shards-vocab``, else the vocab stage's output."""
    if config.shards.vocab:
        path = config.shards.vocab if storage.is_remote(config.shards.vocab) else Path(config.shards.vocab)
    else:
        path = _published_table(config, "vocab", "vocab.txt")
        if path is None:
            raise FileNotFoundError(f"shards: vocab {storage.join(config.stage_dir('vocab'), 'vocab.txt')} is not "
                                    f"committed (no stats.json beside it): run the vocab stage")
    if not storage.is_file(path):
        raise FileNotFoundError(f"shards: vocab {path} does not exist (run the vocab stage, or pass --shards-vocab "
                                f"FILE, e.g. Google's Chinese vocab.txt)")
    return path


def _segmented_input(config: Config, input_dir: str | None):
    if storage.is_remote(input_dir or config.output):
        path = input_dir or _published_table(config, "segment", "segmented")
        if path is None:
            raise FileNotFoundError(f"shards: input {storage.join(config.stage_dir('segment'), 'segmented')} "
                                    f"does not exist (run segment first, or pass --input)")
        if table_exists(storage.join(path, "segmented")):
            path = storage.join(path, "segmented")
        if not table_exists(path) and input_dir:
            raise FileNotFoundError(f"shards: input {path} does not exist (run segment first, or pass --input)")
        return path
    path = Path(input_dir) if input_dir else config.stage_dir("segment") / "segmented"
    if (path / "segmented").is_dir():
        path = path / "segmented"
    if not path.is_dir():
        raise FileNotFoundError(f"shards: input {path} does not exist (run segment first, or pass --input)")
    return path


def run_shards(config: Config, input_dir: str | None = None, log=print) -> dict:
    """Segmented documents -> ``OUTPUT/shards/part-*.tfrecord`` + ``manifest.json`` + ``stats.json``."""
    from pipeline.shards import manifest as shard_manifest
    from pipeline.vocab.wordpiece import read_vocab, vocab_sha256

    from pipeline.shards import mixing, units

    options = config.shards
    if options.max_predictions_per_seq < 1 or options.max_seq_length < 8 or options.dupe_factor < 1:
        raise ConfigError("shards: max_seq_length >= 8, max_predictions_per_seq >= 1 and dupe_factor >= 1 needed")
    try:
        units.of_options(options)
    except ValueError as exc:
        raise ConfigError(f"shards: {exc}") from None
    # the workers read the weights from the shard options: the inputs' weights join shards.weights there
    options = dataclasses.replace(options, weights=source_weights(config))
    config = dataclasses.replace(config, shards=options)
    vocab = shards_vocab(config)
    entries = read_vocab(vocab)
    source = _segmented_input(config, input_dir)
    read = table_rows(source)
    pools = max(1, -(-read // max(1, options.pool_documents)))
    adapter = engine(config.engine)
    started = time.time()
    adapter.start(config)
    startup = time.time() - started
    with StageOutput(config.output, "shards") as out:
        summaries_dir = out.path(".summaries")
        started = time.time()
        with _monitor(config, out, total_docs=read) as monitor:
            counters = adapter.shards(config, str(source), out, str(vocab), pools, str(summaries_dir))
        seconds = time.time() - started
        found = {}
        for rel, _, _ in storage.walk(summaries_dir):
            if "/" not in rel and rel.endswith(".json"):
                summary = json.loads(storage.read_text(storage.join(summaries_dir, rel)))
                found[summary["shard"]] = summary
        for work in (summaries_dir, out.path(".pools")):
            storage.delete_dir(work)
        total = shard_manifest.shard_count(options, counters.get("shards.document_tokens", 0))
        summaries = []
        for shard in range(total):     # a shard no instance reached is an empty file, still listed
            if shard not in found:
                found[shard] = shard_manifest.write_empty(out.tmp, shard, total, options)
            summaries.append(found[shard])
        tables = {name: table_rows(out.table(name)) for name in STAGE_TABLES["shards"]}
        kept = counters.get("shards.kept", 0)
        accounting = {"read": read, "kept": kept, "rejected": tables["rejected"], "duplicate": 0,
                      "quarantined": tables["quarantined"],
                      "balanced": read == kept + tables["rejected"] + tables["quarantined"]}
        manifest = shard_manifest.build(options, str(vocab), vocab_sha256(vocab), len(entries), summaries,
                                        documents=kept, document_tokens=counters.get("shards.document_tokens", 0),
                                        sources=mixing.summary(counters, options.weights, summaries))
        shard_manifest.write(out.tmp, manifest)
        weighted = counters.get("shards.weighted_document_tokens", 0)
        lost = weighted * options.dupe_factor - sum(
            s["own_tokens"] for s in found.values()) - manifest["truncated_tokens"]
        instances = manifest["instances"]
        stats = {
            "stage": "shards",
            "engine": config.engine,
            "version": __version__,
            "schemas": {"tfrecord_features": manifest["features_schema_version"],
                        "manifest": manifest["schema_version"],
                        **{name: int(schema.load(name).metadata[b"wwm.schema_version"]) for name in tables}},
            "seconds": round(seconds, 3),
            "engine_startup_seconds": round(startup, 3),
            "input": {"documents": str(source), "rows": read, "pools": pools,
                      "bytes": table_bytes(source)},
            "throughput": {"instances_per_s": round(instances / seconds, 1) if seconds else None,
                           "docs_per_s": round(read / seconds, 1) if seconds else None},
            "accounting": accounting,
            "tables": tables,
            "rejected_by_rule": count_by(out.table("rejected"), "rejected", "rule"),
            "shards": total,
            "instances": instances,
            "tokens_lost_untruncated": lost,
            "manifest": {k: v for k, v in manifest.items() if k not in ("shards", "settings")},
            "counters": counters,
            "progress": monitor.summary(),
        }
        if not accounting["balanced"]:
            raise AccountingError(f"shards: read {read} but kept {kept} and wrote {json.dumps(tables)}")
        if lost != 0:
            raise AccountingError(f"shards: {lost} document tokens are in no instance and were not counted as "
                                  f"truncated")
        final = out.publish(stats)
    share = manifest["next_sentence"]["random_share"]
    log(f"shards: read {read:,} -> {kept:,} documents, {instances:,} instances in {total} shards "
        f"({manifest['masked_tokens']:,} masked, {manifest['truncated_tokens']:,} truncated, random next "
        f"{share}) ({seconds:.1f} s, {stats['throughput']['instances_per_s']} instances/s) -> {final}")
    return stats


def run_all(config: Config, stages=BUILT, log=print, force: bool = False) -> dict:
    """Run stages in order, skipping those whose published output is up to date (all of them are run with
    ``force``); write ``OUTPUT/run.json`` with each stage's stats and the whole-run identity.

    The output directory is locked for the run, and what a killed run left there is cleaned up first
    (``pipeline.fingerprint``)."""
    with fingerprint.run_lock(config.output):
        fingerprint.recover(config.output, log)
        return _run_all(config, stages, log, force)


def _run_all(config: Config, stages, log, force: bool) -> dict:
    results = {}
    for stage in stages:
        made_from = fingerprint.made_from(config, stage)
        stats = None if force else fingerprint.up_to_date(config, stage, made_from)
        if stats is not None:
            log(f"{stage}: up to date, skipped")
        else:
            stats = run_stage(stage, config, log=log)
            fingerprint.record(config, stage, made_from)
        results[stage] = stats
    summary = {"stages": results}
    if stages and stages[0] == "ingest":   # each stage read what the one before kept
        total = {key: sum(r["accounting"][key] for r in results.values())
                 for key in ("rejected", "duplicate", "quarantined")}
        last = [s for s in stages if s != "vocab"][-1]   # vocab keeps what segment kept
        read, kept = results["ingest"]["accounting"]["read"], results[last]["accounting"]["kept"]
        summary["accounting"] = {"read": read, "kept": kept, **total,
                                 "balanced": read == kept + sum(total.values())}
    write_json(storage.join(config.output, "run.json"), summary)
    return summary
