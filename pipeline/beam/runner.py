"""The Beam engine: each stage a pipeline (dedup three) built from :mod:`pipeline.beam.transforms` and
:mod:`pipeline.beam.io`, run, its counters collected.

The local default is the in-process ``FnApiRunner`` (multi-process with
``direct_num_workers`` and ``direct_running_mode=multi_processing``), chosen
explicitly because Beam's ``DirectRunner`` first tries to download Prism.
"""

from __future__ import annotations

import json

import apache_beam as beam
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.options.pipeline_options import DirectOptions, PipelineOptions
from apache_beam.runners.portability.fn_api_runner import FnApiRunner

from pipeline import guard, storage
from pipeline.beam.io import NAMESPACE, RowGroups, WriteLines, WriteTable, read_lines, read_tables, tables_of, tick
from pipeline.beam.transforms import (DEDUP_COLUMNS, SEGMENT_COLUMNS, BuildShards, CleanDocuments,
                                      CountPreTokens, DedupKeys, ExactSimilarities, KeptDocuments, NearDuplicateEdges,
                                      ReadInputs, SegmentDocuments, SpilledDedup, _SpillSimilaritiesFn)
from pipeline.config import Config
from pipeline.counters import Counters, merge
from pipeline.dedup.minhash import edge_from_json, edge_to_json
from pipeline.dedup.spill import DiskDedup, spill_partitions
from pipeline.dedup.stage import Deduplicator
from pipeline.engine import Counts, Job
from pipeline.ingest.ids import shared_ids_on_disk
from pipeline.outputs import TableWriter, table_rows
from pipeline.records import Duplicate, Quarantined
from pipeline.runtime import export_worker_environment
from pipeline.shards import stage as shard_stage
from pipeline.shards.stage import pools_dir, summaries_dir


def pipeline_options(config: Config) -> PipelineOptions:
    options = PipelineOptions(list(config.beam.pipeline_args))
    direct = options.view_as(DirectOptions)
    direct.direct_num_workers = config.beam.direct_num_workers
    direct.direct_running_mode = config.beam.direct_running_mode
    return options


def _runner(config: Config):
    return FnApiRunner() if config.beam.runner == "FnApiRunner" else config.beam.runner


def _run(config: Config, build) -> Counts:
    export_worker_environment()
    with guard.beam_local_temp(config.output):     # its beam-pipeline-temp* under OUTPUT, not /tmp
        pipeline = beam.Pipeline(runner=_runner(config), options=pipeline_options(config))
    try:
        build(pipeline)
        result = pipeline.run()
        result.wait_until_finish()
    finally:
        guard.release_beam_temp(config.output)
    counters: dict[str, int] = {}
    for metric in result.metrics().query(MetricsFilter().with_namespace(NAMESPACE))["counters"]:
        value = metric.committed if metric.committed is not None else metric.attempted
        counters[metric.key.metric.name] = counters.get(metric.key.metric.name, 0) + int(value or 0)
    return dict(sorted(counters.items()))


def _in_process(config: Config) -> bool:
    """Whether the pipelines run in this process's runner (its groupings in this machine's memory)."""
    return config.beam.runner in ("FnApiRunner", "DirectRunner", "BundleBasedDirectRunner", "PrismRunner")


def _write(result, out, *tables: str) -> None:
    """Each named output of ``result`` to the stage's table of that name."""
    for table in tables:
        result[table] | f"Write{table.title()}" >> WriteTable(out.table(table), table)


class BeamEngine:
    """The stages on Beam (:class:`pipeline.engine.Engine`)."""

    def start(self, config: Config) -> None:
        """Nothing to start ahead: the in-process runner starts with each pipeline."""

    def ingest(self, job: Job) -> Counts:
        def build(p):
            read = p | "Ingest" >> ReadInputs(job.files, job.config.ingest.max_record_bytes, job.progress_dir)
            _write(read, job.out, "documents", "quarantined")
        return _run(job.config, build)

    def shared_ids(self, job: Job) -> list[str]:
        """The ids of ``job.source`` taken more than once.  The in-process runner would hold every id in one
        group by, so there they are hash-partitioned to local disk and counted a partition at a time
        (``pipeline.ingest.ids.shared_ids_on_disk``); a distributed runner counts them in a pipeline."""
        if _in_process(job.config):
            import tempfile

            with tempfile.TemporaryDirectory(prefix="wwm-ids-") as work:
                return shared_ids_on_disk(job.source, work)
        out = storage.join(job.work, "shared-ids")

        def build(p):
            (read_tables(p, "ReadIds", job.source, ["id"])
             | "Ids" >> beam.FlatMap(lambda table: table.column("id").to_pylist())
             | "Count" >> beam.combiners.Count.PerElement()
             | "Shared" >> beam.Filter(lambda kv: kv[1] > 1)
             | "Keys" >> beam.Keys()
             | "Write" >> WriteLines(out, ".txt"))
        _run(job.config, build)
        return sorted(read_lines(job.work, "shared-ids"))

    def clean(self, job: Job) -> Counts:
        def build(p):
            tables = read_tables(p, "ReadDocuments", job.source)
            _write(tables | "Clean" >> CleanDocuments(job.config.clean, job.progress_dir), job.out,
                   "documents", "rejected", "quarantined")
        return _run(job.config, build)

    def dedup(self, job: Job) -> Counts:
        """Exact duplicates and near-duplicate candidates in one pass, the exact check, then the kept documents.

        The first pipeline reads each document once (``Deduplicator.keyed``); exact keys are grouped and
        resolved, and what each group keeps goes on to the LSH bands; candidate edges are written to work
        files and read back here for the driver's step.  The exact check (a second pipeline, only with
        candidates) shingles the documents on a candidate edge alone.  The last pipeline filters the
        documents table's row groups by the dropped ids.
        """
        config, out, options = job.config, job.out, job.config.dedup
        counters: dict[str, int] = {}
        partitions = spill_partitions(table_rows(job.source), options) if options.exact or options.near else 0
        if partitions:
            counters = self._dedup_spilled(job, partitions)
        elif options.exact or options.near:
            def build_keys(p):
                result = (read_tables(p, "ReadDocuments", job.source, DEDUP_COLUMNS)
                          | "Keys" >> DedupKeys(options, job.progress_dir))
                dropped = result["dropped"]
                (dropped | "Duplicates" >> beam.Filter(lambda r: isinstance(r, Duplicate))
                 | "WriteDuplicates" >> WriteTable(out.table("duplicates"), "duplicates"))
                (dropped | "Quarantined" >> beam.Filter(lambda r: isinstance(r, Quarantined))
                 | "WriteQuarantined" >> WriteTable(out.table("quarantined"), "quarantined"))
                if options.near:
                    (result["members"]
                     | "NearEdges" >> NearDuplicateEdges(options)
                     # a pair sharing several bands is an edge of each: write it once
                     | "EdgeTuples" >> beam.Map(lambda edge: tuple(edge_to_json(edge)))
                     | "UniqueEdges" >> beam.Distinct()
                     | "ToJson" >> beam.Map(lambda edge: json.dumps(list(edge), ensure_ascii=False))
                     | "WriteEdges" >> WriteLines(storage.join(job.work, "edges"), ".jsonl"))
            counters = _run(config, build_keys)
        for table in ("duplicates", "quarantined"):
            storage.makedirs(out.table(table))

        if options.near and not partitions:
            dedup, local = Deduplicator(options), Counters()
            edges = [edge_from_json(json.loads(line)) for line in read_lines(job.work, "edges")]

            def exact_check(candidates):
                nonlocal counters
                incident = sorted(dedup.incident(candidates).items())

                def build_exact_check(p):
                    (read_tables(p, "ReadDocuments", job.source, ["id", "text"])
                     | "Similarities" >> ExactSimilarities(options, p | "Incident" >> beam.Create(incident))
                     | "ToJson" >> beam.Map(lambda kv: json.dumps(list(kv), ensure_ascii=False))
                     | "Write" >> WriteLines(storage.join(job.work, "similarities"), ".jsonl"))
                counters = merge(counters, _run(config, build_exact_check))
                return dict(json.loads(line) for line in read_lines(job.work, "similarities"))

            writer = TableWriter(out.table("duplicates"), "duplicates", "near-00000")
            for duplicate in dedup.near_duplicates(edges, exact_check, local):
                writer.add(duplicate)
            writer.close()
            counters = merge(counters, local.as_dict())

        def build_kept(p):
            dropped = {out.table("duplicates"): Duplicate, out.table("quarantined"): Quarantined}
            (read_tables(p, "ReadDocuments", job.source)
             | "Kept" >> KeptDocuments(options, dropped)
             | "WriteDocuments" >> WriteTable(out.table("documents"), "documents"))
        return merge(counters, _run(config, build_kept))

    def _dedup_spilled(self, job: Job, partitions: int) -> Counts:
        """The dedup stage's groupings through spill files (``pipeline.dedup.spill``): memory bounded by one
        partition; the same tables as the in-memory route."""
        config, out, options = job.config, job.out, job.config.dedup
        spill = storage.join(job.work, "spill")
        storage.makedirs(spill)

        def build_keys(p):
            dropped = (read_tables(p, "ReadDocuments", job.source, DEDUP_COLUMNS)
                       | "Spilled" >> SpilledDedup(options, spill, partitions, job.progress_dir))
            (dropped | "Duplicates" >> beam.Filter(lambda r: isinstance(r, Duplicate))
             | "WriteDuplicates" >> WriteTable(out.table("duplicates"), "duplicates"))
            (dropped | "Quarantined" >> beam.Filter(lambda r: isinstance(r, Quarantined))
             | "WriteQuarantined" >> WriteTable(out.table("quarantined"), "quarantined"))
        counters = _run(config, build_keys)
        for table in ("duplicates", "quarantined"):
            storage.makedirs(out.table(table))
        if options.near:
            disk, local = DiskDedup(options, spill, partitions), Counters()
            edges, places = disk.read_edges()

            def exact_check(candidates):
                nonlocal counters
                chunks = disk.write_checks(candidates, places)

                def build_exact_check(p):
                    (p | "Chunks" >> beam.Create(chunks, reshuffle=True)
                     | "Similarities" >> beam.ParDo(_SpillSimilaritiesFn(options, spill)))
                counters = merge(counters, _run(config, build_exact_check))
                return disk.read_similarities([c.replace("check-", "result-") for c in chunks])

            writer = TableWriter(out.table("duplicates"), "duplicates", "near-00000")
            for duplicate in disk.dedup.near_duplicates(edges, exact_check, local):
                writer.add(duplicate)
            writer.close()
            counters = merge(counters, local.as_dict())
        return counters

    def segment(self, job: Job) -> Counts:
        def build(p):
            tables = read_tables(p, "ReadDocuments", job.source, SEGMENT_COLUMNS)
            _write(tables | "Segment" >> SegmentDocuments(job.config.segment, job.progress_dir), job.out,
                   "segmented", "quarantined")
        return _run(job.config, build)

    def vocab(self, job: Job) -> Counts:
        """Pre-token counts of the segmented table (summed by ``CombinePerKey``), written as
        ``token<TAB>count`` files under the job's work directory; the counters."""
        def build(p):
            (p
             | "Read" >> RowGroups(job.source, "segmented", ["id", "sentences"], as_table=False)
             | "CountPreTokens" >> CountPreTokens(job.config.vocab, job.progress_dir)
             | "ToLine" >> beam.MapTuple(lambda token, n: f"{token}\t{n}")
             | "WriteCounts" >> WriteLines(storage.join(job.work, "counts"), ".tsv"))
        return _run(job.config, build)

    def shards(self, job: Job) -> Counts:
        def build(p):
            rows = read_tables(p, "ReadSegmented", job.source, shard_stage.COLUMNS, "segmented")
            rows = tables_of(rows | "Progress" >> tick("shards", job.progress_dir))
            result = rows | "Shards" >> BuildShards(job.config.shards, job.vocab, job.pools, job.out.tmp,
                                                    summaries_dir(job.out), pools_dir(job.out))
            _write(result, job.out, "rejected", "quarantined")
        return _run(job.config, build)


ENGINE = BeamEngine()
