"""Build and run the Beam pipeline of one stage; collect its counters.

The local default is the in-process ``FnApiRunner`` (multi-process with
``direct_num_workers`` and ``direct_running_mode=multi_processing``), chosen
explicitly because Beam's ``DirectRunner`` first tries to download Prism.
"""

from __future__ import annotations

import fnmatch
import json
from collections import Counter

import apache_beam as beam
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.options.pipeline_options import DirectOptions, PipelineOptions
from apache_beam.runners.portability.fn_api_runner import FnApiRunner

from pipeline.beam.transforms import (DEDUP_COLUMNS, NAMESPACE, SHARD_COLUMNS, BeamCount, BuildShards,
                                     CleanDocuments, CountPreTokens, DedupKeys, DroppedIds, ExactSimilarities,
                                     NearDuplicateEdges, SegmentDocuments, ReadInputs, RowGroups, WriteArrowTable,
                                     WriteLines,
                                     WriteTable,
                                     read_tables, tables_of, tick, write_kept)
from pipeline import storage
from pipeline.config import Config
from pipeline.counters import Counters, merge
from pipeline.dedup.minhash import Rule, edge_from_json, edge_to_json, near_duplicates
from pipeline.outputs import TableWriter, parquet_files
from pipeline.records import Duplicate, Quarantined
from pipeline.vocab.training import read_counts
from pipeline.runtime import export_worker_environment


def pipeline_options(config: Config) -> PipelineOptions:
    options = PipelineOptions(list(config.beam.pipeline_args))
    direct = options.view_as(DirectOptions)
    direct.direct_num_workers = config.beam.direct_num_workers
    direct.direct_running_mode = config.beam.direct_running_mode
    return options


def _runner(config: Config):
    return FnApiRunner() if config.beam.runner == "FnApiRunner" else config.beam.runner


def _run(config: Config, build) -> dict[str, int]:
    export_worker_environment()
    pipeline = beam.Pipeline(runner=_runner(config), options=pipeline_options(config))
    build(pipeline)
    result = pipeline.run()
    result.wait_until_finish()
    counters: dict[str, int] = {}
    for metric in result.metrics().query(MetricsFilter().with_namespace(NAMESPACE))["counters"]:
        value = metric.committed if metric.committed is not None else metric.attempted
        counters[metric.key.metric.name] = counters.get(metric.key.metric.name, 0) + int(value or 0)
    return dict(sorted(counters.items()))


class _CountFn(beam.DoFn):
    """Pass elements through, counting them."""

    def __init__(self, name: str) -> None:
        self.name = name

    def setup(self):
        self.count = BeamCount()

    def process(self, element):
        self.count(self.name)
        yield element


def _files(directory: str, pattern: str) -> list[str]:
    """Files directly in ``directory`` whose names match ``pattern``, sorted (local or object store)."""
    return [storage.join(directory, rel) for rel, _, _ in storage.walk(directory)
            if "/" not in rel and fnmatch.fnmatchcase(rel, pattern)]


def _lines(directory: str, prefix: str) -> list[str]:
    """Lines of the text files a pipeline wrote as ``directory/prefix*.jsonl``."""
    return [line for path in _files(directory, f"{prefix}*.jsonl")
            for line in storage.read_text(path).splitlines() if line]


def start(config: Config) -> None:
    """Nothing to start ahead: the in-process runner starts with each pipeline."""


def ingest(config: Config, files, out) -> dict[str, int]:
    def build(p):
        read = p | "Ingest" >> ReadInputs(files, config.ingest.max_record_bytes, out.progress_dir)
        read.documents | "WriteDocuments" >> WriteArrowTable(out.table("documents"), "documents")
        read.quarantined | "WriteQuarantined" >> WriteTable(out.table("quarantined"), "quarantined")
    return _run(config, build)


def clean(config: Config, documents_dir: str, out) -> dict[str, int]:
    def build(p):
        tables = read_tables(p, "ReadDocuments", documents_dir)
        cleaned = tables | "Clean" >> CleanDocuments(config.clean, out.progress_dir)
        cleaned.documents | "WriteDocuments" >> WriteArrowTable(out.table("documents"), "documents")
        cleaned.rejected | "WriteRejected" >> WriteTable(out.table("rejected"), "rejected")
        cleaned.quarantined | "WriteQuarantined" >> WriteTable(out.table("quarantined"), "quarantined")
    return _run(config, build)


def dedup(config: Config, documents_dir: str, out) -> dict[str, int]:
    """Exact duplicates and near-duplicate candidates in one pass, the exact check, then the kept documents.

    The first pipeline reads each document once: its normal form gives both the
    exact key and the MinHash signature; exact keys are grouped, and what each
    group keeps goes on to the LSH bands as a plain tuple (reference and
    signature, no text); candidate edges are written to a work file and
    clustered here with union-find.  The exact check (a second pipeline, only
    with candidates) turns text into shingles for the documents on a candidate
    edge alone.  The last pipeline filters the documents table's Arrow row
    groups by the dropped ids and writes them as they are.
    """
    options = config.dedup
    work = storage.join(out.tmp, "_work")
    counters: dict[str, int] = {}
    dropped = {out.table("duplicates"): Duplicate, out.table("quarantined"): Quarantined}

    if options.exact or options.near:
        def build_keys(p):
            tables = read_tables(p, "ReadDocuments", documents_dir, DEDUP_COLUMNS)
            result = tables | "Keys" >> DedupKeys(options, out.progress_dir)
            result["duplicates"] | "WriteDuplicates" >> WriteTable(out.table("duplicates"), "duplicates")
            result["quarantined"] | "WriteQuarantined" >> WriteTable(out.table("quarantined"), "quarantined")
            if options.near:
                (result["signed"]
                 | "NearEdges" >> NearDuplicateEdges(options)
                 # a pair sharing several bands is an edge of each: write it once
                 | "EdgeTuples" >> beam.Map(lambda edge: tuple(edge_to_json(edge)))
                 | "UniqueEdges" >> beam.Distinct()
                 | "ToJson" >> beam.Map(lambda edge: json.dumps(list(edge), ensure_ascii=False))
                 | "WriteEdges" >> WriteLines(storage.join(work, "edges"), ".jsonl"))
        counters = merge(counters, _run(config, build_keys))

    if options.near:
        edges = [edge_from_json(json.loads(line)) for line in _lines(work, "edges")]
        exact_counts: dict[str, int] = {}

        def exact_check(candidates):
            nonlocal exact_counts
            storage.write_text(storage.join(work, "candidates.jsonl"),
                               "".join(json.dumps(edge_to_json(e), ensure_ascii=False) + "\n" for e in candidates))

            def build_exact_check(p):
                (read_tables(p, "ReadDocuments", documents_dir, ["id", "text"])
                 | "Similarities" >> ExactSimilarities(options, storage.join(work, "candidates.jsonl"))
                 | "ToJson" >> beam.Map(lambda kv: json.dumps(list(kv), ensure_ascii=False))
                 | "Write" >> WriteLines(storage.join(work, "similarities"), ".jsonl"))
            exact_counts = _run(config, build_exact_check)
            return dict(json.loads(line) for line in _lines(work, "similarities"))

        local = Counters()
        writer = TableWriter(out.table("duplicates"), "duplicates", "near-00000")
        for duplicate in near_duplicates(edges, options.verify, Rule.of(options), exact_check, local):
            writer.add(duplicate)
        writer.close()
        counters = merge(counters, exact_counts, local.as_dict())
        storage.delete_dir(work)

    def build_kept(p):
        tables = read_tables(p, "ReadDocuments", documents_dir)
        # without exact dedup nothing else counted what was read
        write_kept(tables, p | "Dropped" >> DroppedIds(dropped), out.table("documents"), count_read=not options.exact)
    for table in ("duplicates", "quarantined"):
        storage.makedirs(out.table(table))
    return merge(counters, _run(config, build_kept))


def segment(config: Config, documents_dir: str, out) -> dict[str, int]:
    def build(p):
        result = p | "Segment" >> SegmentDocuments(documents_dir, config.segment, out.progress_dir)
        result.segmented | "WriteSegmented" >> WriteArrowTable(out.table("segmented"), "segmented")
        result.quarantined | "WriteQuarantined" >> WriteTable(out.table("quarantined"), "quarantined")
    return _run(config, build)


def vocab(config: Config, segmented_dir: str, out) -> tuple[dict[str, int], dict[str, int]]:
    """Pre-token counts of the segmented table (summed by ``CombinePerKey``), and the counters.

    The sums are written as ``token<TAB>count`` text files under the stage's
    temporary directory and read back on the driver (distinct pre-tokens: small).
    """
    work = storage.join(out.tmp, "_work")

    def build(p):
        (p
         | "CountPreTokens" >> CountPreTokens(segmented_dir, config.vocab, out.progress_dir)
         | "ToLine" >> beam.MapTuple(lambda token, n: f"{token}\t{n}")
         | "WriteCounts" >> WriteLines(storage.join(work, "counts"), ".tsv"))
    counters = _run(config, build)
    counts: Counter = Counter()
    for path in _files(work, "counts*.tsv"):
        counts.update(read_counts(path))
    storage.delete_dir(work)
    return counts, counters


def shards(config: Config, segmented_dir: str, out, vocab: str, pools: int, summaries: str) -> dict[str, int]:
    def build(p):
        if parquet_files(segmented_dir) and storage.is_remote(segmented_dir):
            rows = p | "ReadSegmented" >> RowGroups(segmented_dir, "segmented", SHARD_COLUMNS, as_table=True)
        elif parquet_files(segmented_dir):
            rows = p | "ReadSegmented" >> beam.io.ReadFromParquetBatched(f"{segmented_dir}/*.parquet",
                                                                         columns=SHARD_COLUMNS)
        else:
            rows = p | "NoSegmented" >> beam.Create([])
        rows = tables_of(tables_of(rows) | "Progress" >> tick("shards", out.progress_dir))
        result = rows | "Shards" >> BuildShards(config.shards, vocab, pools, out.tmp, summaries)
        result.rejected | "WriteRejected" >> WriteTable(out.table("rejected"), "rejected")
        result.quarantined | "WriteQuarantined" >> WriteTable(out.table("quarantined"), "quarantined")
    return _run(config, build)
