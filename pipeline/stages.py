"""Run a stage on the chosen engine, check its accounting, publish its output.

One runner for every stage, over the table :data:`SPECS`: a stage is its
input (the table of an earlier stage, or the input files), the tables it
writes, the table of what it keeps, the engine's method that writes them, and
a finish that turns what was written into the stage's stats (and may write
files of its own, as the shards and vocab stages do).

Every stage's ``stats.json`` carries the identity ``read = kept + rejected +
duplicate + quarantined``, computed from the tables the stage wrote (row counts
from the Parquet footers), next to the engine's counters.  A stage whose tables
do not add up fails and publishes nothing.
"""

from __future__ import annotations

import dataclasses
import json
import time
from typing import Callable

from pipeline import __version__, fingerprint, guard, schema, storage
from pipeline.config import Config, ConfigError
from pipeline.dedup.stage import duplicate_summary
from pipeline.engine import Counts, Engine, Job, Plan, Ran, engine
from pipeline.ingest.files import expand
from pipeline.ingest.ids import make_unique
from pipeline.outputs import (StageOutput, committed, count_by, inner_table, table_bytes, table_exists, table_rows,
                              write_json)
from pipeline.progress import StageMonitor


class AccountingError(RuntimeError):
    """A stage's outputs do not account for every document it read."""


@dataclasses.dataclass(frozen=True)
class StageSpec:
    """One stage for the runner.

    ``reads``: (stage, table) its input is, or None for the input files; ``tables``: the Parquet tables it
    writes; ``kept``: the table of the documents it keeps; ``run``: the engine method; ``plan``: the
    driver's look at the input before the engine starts (defaults to reading ``reads``); ``finish``: the
    stats from what the engine wrote; ``summary``: the lines logged once it is published.
    """

    name: str
    reads: tuple[str, str] | None
    tables: tuple[str, ...]
    run: Callable[[Engine, Job], Counts]
    kept: str = "documents"
    plan: Callable[["StageSpec", Config, str | None], Plan] | None = None
    finish: Callable[[Ran], dict] | None = None
    summary: Callable[[dict, str], list[str]] | None = None


# -- finding a stage's input ---------------------------------------------------------------------------------------

def stage_dir(config: Config, stage: str) -> str:
    """``OUTPUT/<stage>``."""
    return storage.join(config.output, stage)


def published(config: Config, stage: str, name: str) -> str | None:
    """``OUTPUT/<stage>/<name>`` (a table or a file); None unless that stage's output is committed."""
    directory = stage_dir(config, stage)
    return storage.join(directory, name) if committed(directory) else None


def input_table(spec: StageSpec, config: Config, input_dir: str | None, required: bool = True) -> str | None:
    """The table a stage reads: ``--input`` (the table, or a stage directory holding it), else the committed
    output of the stage before; None when it is absent and not ``required``."""
    stage, table = spec.reads
    if input_dir:
        path = inner_table(input_dir, table)
        found = table_exists(path)
    else:
        path = published(config, stage, table)
        # a committed stage's table is an input even when it is empty (on an object store: no object under it)
        found = path is not None
        path = path or storage.join(stage_dir(config, stage), table)
    if not found:
        if not required:
            return None
        raise FileNotFoundError(f"{spec.name}: input {path} does not exist (run {stage} first, or pass --input)")
    return path


def plan_table(spec: StageSpec, config: Config, input_dir: str | None) -> Plan:
    """The plan of a stage that reads an earlier stage's table."""
    source = input_table(spec, config, input_dir)
    read = table_rows(source)
    return Plan(source=source, read=read, monitor={"total_docs": read},
                input={spec.reads[1] if spec.reads[1] != "segmented" else "documents": source, "rows": read,
                       "bytes": table_bytes(source)})


def _plan_ingest(spec: StageSpec, config: Config, input_dir: str | None) -> Plan:
    specs = config.input_specs()
    if not specs:
        raise ConfigError("ingest: no inputs (pass paths, or 'inputs' in the config file)")
    files = tuple(f for s in specs for f in expand(s.path, s.source, s.format, config.output))
    size = sum(f.size for f in files)
    return Plan(files=files, monitor={"total_bytes": size},
                input={"files": len(files), "bytes": size, "inputs": [vars(s) for s in specs]})


def _plan_segment(spec: StageSpec, config: Config, input_dir: str | None) -> Plan:
    from pipeline.segment.segmenters import make_segmenter

    described = make_segmenter(config.segment).describe()    # a missing model fails here, not in a worker
    plan = plan_table(spec, config, input_dir)
    plan.info["segmenter"] = described
    return plan


# -- stats ---------------------------------------------------------------------------------------------------------

def accounting(read: int, kept: int, tables: dict[str, int]) -> dict:
    rejected, duplicate, quarantined = (tables.get(t, 0) for t in ("rejected", "duplicates", "quarantined"))
    return {"read": read, "kept": kept, "rejected": rejected, "duplicate": duplicate, "quarantined": quarantined,
            "balanced": read == kept + rejected + duplicate + quarantined}


def common_stats(ran: Ran) -> dict:
    """The entries every stage's stats start with."""
    return {"stage": ran.stage, "engine": ran.config.engine, "version": __version__,
            "schemas": {name: int(schema.load(name).metadata[b"wwm.schema_version"]) for name in ran.tables},
            "seconds": round(ran.seconds, 3), "engine_startup_seconds": round(ran.startup, 3),
            "input": ran.plan.input}


def per_second(amount: float, seconds: float, digits: int = 1):
    return round(amount / seconds, digits) if seconds else None


def _document_stats(spec: StageSpec) -> Callable[[Ran], dict]:
    """The finish of a per-document stage: accounting from its tables, documents by source, rejected by rule,
    quarantined by source (and the duplicates summary where there is a duplicates table)."""
    def finish(ran: Ran) -> dict:
        read = ran.plan.read
        seconds, size = ran.seconds, ran.plan.input["bytes"]
        stats = {**common_stats(ran),
                 "throughput": {"docs_per_s": per_second(read, seconds),
                                "mb_per_s": per_second(size / 1e6, seconds, 3)},
                 "accounting": accounting(read, ran.tables.get(spec.kept, 0), ran.tables),
                 "tables": ran.tables,
                 "documents_by_source": count_by(ran.out.table(spec.kept), spec.kept, "source")}
        if "rejected" in ran.tables:
            stats["rejected_by_rule"] = count_by(ran.out.table("rejected"), "rejected", "rule")
        if "duplicates" in ran.tables:
            stats.update(duplicate_summary(ran.out.table("duplicates")))
        stats["quarantined_by_source"] = count_by(ran.out.table("quarantined"), "quarantined", "source")
        stats.update(counters=ran.counters, progress=ran.progress)
        if not stats["accounting"]["balanced"]:
            raise AccountingError(f"{spec.name}: read {read} but wrote {json.dumps(ran.tables)}")
        return stats
    return finish


def _document_summary(stats: dict, final: str) -> list[str]:
    a = stats["accounting"]
    return [f"{stats['stage']}: read {a['read']:,} -> kept {a['kept']:,}, rejected {a['rejected']:,}, "
            f"duplicate {a['duplicate']:,}, quarantined {a['quarantined']:,} "
            f"({stats['seconds']:.1f} s, {stats['throughput']['mb_per_s']} MB/s) -> {final}"]


def _ingest(adapter: Engine, job: Job) -> Counts:
    """Ingest on the engine, then the engine's group by id: the ids taken more than once, kept for the finish
    (a file under ``job.work``)."""
    counters = adapter.ingest(job)
    shared = adapter.shared_ids(dataclasses.replace(job, source=job.out.table("documents")))
    write_json(storage.join(job.work, SHARED_IDS), shared)
    return counters


SHARED_IDS = "shared-ids.json"


def _ingest_ids(ran: Ran) -> dict:
    """Ingest's finish: ids made unique across the inputs (two datasets in one source may share ids), then the
    per-document stats."""
    shared = json.loads(storage.read_text(storage.join(ran.out.path("_work"), SHARED_IDS)))
    renamed = make_unique(ran.out.table("documents"), list(ran.plan.files), shared)
    if renamed:
        ran.counters["ingest.ids_renamed"] = renamed
    ran.plan.read = ran.counters.get("ingest.read", 0)       # what the engine read of the input files
    return _document_stats(SPECS["ingest"])(ran)


def _segment_stats(ran: Ran) -> dict:
    """Segment's finish: the per-document stats, the segmenter's description and its speed."""
    stats = _document_stats(SPECS["segment"])(ran)
    stats["segmenter"] = ran.plan.info["segmenter"]
    stats["throughput"]["segmented_chars_per_s"] = per_second(ran.counters.get("segment.chars", 0), ran.seconds)
    return stats


def _stage_specs() -> dict[str, StageSpec]:
    from pipeline.shards import stage as shards
    from pipeline.vocab import stage as vocab

    specs = [
        StageSpec("ingest", None, ("documents", "quarantined"), _ingest, plan=_plan_ingest,
                  finish=_ingest_ids),
        StageSpec("clean", ("ingest", "documents"), ("documents", "rejected", "quarantined"),
                  lambda e, job: e.clean(job)),
        StageSpec("dedup", ("clean", "documents"), ("documents", "duplicates", "quarantined"),
                  lambda e, job: e.dedup(job)),
        StageSpec("segment", ("dedup", "documents"), ("segmented", "quarantined"), lambda e, job: e.segment(job),
                  kept="segmented", plan=_plan_segment, finish=_segment_stats),
        # vocab.txt, counts.tsv: no Parquet table, and no document is dropped
        StageSpec("vocab", ("segment", "segmented"), (), lambda e, job: e.vocab(job), kept="",
                  plan=vocab.plan, finish=vocab.finish_stage, summary=vocab.summary),
        StageSpec("shards", ("segment", "segmented"), ("rejected", "quarantined"), lambda e, job: e.shards(job),
                  kept="", plan=shards.plan, finish=shards.finish, summary=shards.summary),
    ]
    return {spec.name: dataclasses.replace(spec, plan=spec.plan or plan_table,
                                           finish=spec.finish or _document_stats(spec),
                                           summary=spec.summary or _document_summary) for spec in specs}


SPECS = _stage_specs()
STAGES = tuple(SPECS)
DOCUMENT_STAGES = tuple(name for name, spec in SPECS.items() if spec.kept in ("documents", "segmented"))
STAGE_TABLES = {name: spec.tables for name, spec in SPECS.items()}
PREVIOUS = {name: spec.reads[0] for name, spec in SPECS.items() if spec.reads}


# -- the runner ----------------------------------------------------------------------------------------------------

def run_stage(stage: str, config: Config, input_dir: str | None = None, log=print) -> dict:
    """Run one stage; returns its stats (also written to ``OUTPUT/<stage>/stats.json``)."""
    if stage not in SPECS:
        raise ConfigError(f"unknown stage {stage!r} ({', '.join(STAGES)})")
    spec = SPECS[stage]
    plan = spec.plan(spec, config, input_dir)
    adapter, startup = None, 0.0
    if plan.engine:
        started = time.time()
        adapter = engine(config.engine)
        adapter.start(config)
        startup = time.time() - started
    config = plan.config or config
    with StageOutput(config.output, stage) as out:
        job = Job(config, out, plan.source, plan.files, plan.vocab, plan.pools)
        started = time.time()
        with StageMonitor(out.report_progress(config.progress and plan.engine), **plan.monitor) as monitor:
            counters = spec.run(adapter, job) if plan.engine else {}
        seconds = time.time() - started
        tables = {name: table_rows(out.table(name)) for name in spec.tables}
        stats = spec.finish(Ran(stage, config, plan, out, counters, tables, seconds, startup,
                                monitor.summary() if plan.engine else {}))
        storage.delete_dir(job.work)
        final = out.publish(stats)
    for line in spec.summary(stats, final):
        log(line)
    return stats


def run_all(config: Config, stages=STAGES, log=print, force: bool = False) -> dict:
    """Run stages in order, skipping those whose published output is up to date (all of them are run with
    ``force``); write ``OUTPUT/run.json`` with each stage's stats and the whole-run identity.

    The output directory is locked for the run, and what a killed run left there is cleaned up first
    (``pipeline.fingerprint``)."""
    with fingerprint.run_lock(config.output):
        fingerprint.recover(config.output, log)
        guard.refuse_foreign_outputs(config, stages)     # before the first stage runs
        return _run_all(config, stages, log, force)


def _run_all(config: Config, stages, log, force: bool) -> dict:
    results, skipped = {}, []
    for stage in stages:
        made_from = fingerprint.made_from(config, stage)
        stats = None if force else fingerprint.up_to_date(config, stage, made_from)
        if stats is not None:
            log(f"{stage}: up to date, skipped")
            skipped.append(stage)
        else:
            stats = run_stage(stage, config, log=log)
            fingerprint.record(config, stage, made_from)
        results[stage] = stats
    if skipped:
        log(fingerprint.skip_hint(config, skipped))
    summary = {"stages": results}
    if stages and SPECS[stages[0]].reads is None:   # each stage read what the one before kept
        total = {key: sum(r["accounting"][key] for r in results.values())
                 for key in ("rejected", "duplicate", "quarantined")}
        last = [s for s in stages if SPECS[s].tables][-1]   # a stage that writes no table keeps what it read
        read, kept = results[stages[0]]["accounting"]["read"], results[last]["accounting"]["kept"]
        summary["accounting"] = {"read": read, "kept": kept, **total,
                                 "balanced": read == kept + sum(total.values())}
    write_json(storage.join(config.output, "run.json"), summary)
    return summary
