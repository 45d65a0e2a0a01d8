"""Beam stage transforms: one composite PTransform per stage, around the core.

The transforms only read, group and write; every decision is made by the core
(``read_file``, ``Cleaner.process``, ``Deduplicator``, ``Segmentation``,
``PreTokenCounter``, ``ShardBuilder``).  Counters go to Beam metrics (namespace
``wwm``).  Models and converters are built in ``DoFn.setup``, once per worker,
never pickled.  Reading and writing tables is in :mod:`pipeline.beam.io`.
"""

from __future__ import annotations

import typing
from collections import Counter

import apache_beam as beam
import pyarrow as pa

from pipeline import faults, schema
from pipeline.beam.io import ROW_GROUP_BYTES, BeamCount, ReadTable, tables_of, tick, windowed
from pipeline.clean.stage import Cleaner
from pipeline.config import CleanOptions, DedupOptions, SegmentOptions, ShardOptions, VocabOptions
from pipeline.dedup.minhash import BATCH_MEMBERS
from pipeline.dedup.spill import DiskDedup
from pipeline.dedup.stage import COLUMNS as DEDUP_COLUMNS, Deduplicator
from pipeline.ingest.readers import read_file
from pipeline.progress import reporter, text_size
from pipeline.records import Document, Quarantined, Rejected, from_row, to_row
from pipeline.segment.stage import COLUMNS as SEGMENT_COLUMNS, Segmentation, slices, text_bytes
from pipeline.shards import builder as shard_builder
from pipeline.shards.stage import shard_total, write_summary
from pipeline.shards.seeds import pool_of
from pipeline.vocab.counting import PreTokenCounter


class _ReadFileFn(beam.DoFn):
    """Input files -> Arrow tables of their documents (about ``ROW_GROUP_BYTES`` of UTF-8 text each, over the
    files of a bundle; a row group each when written), and tagged quarantined records."""

    def __init__(self, max_record_bytes: int, total_bytes: int, progress_dir: str | None) -> None:
        self.max_record_bytes = max_record_bytes
        self.total_bytes = total_bytes
        self.progress_dir = progress_dir

    def setup(self):
        self.count = BeamCount()
        self.progress = reporter("ingest", self.progress_dir, self.total_bytes)
        self.schema = schema.load("documents")

    def start_bundle(self):
        self.rows, self.size = [], 0

    def process(self, file):
        for record in read_file(file, self.max_record_bytes, self.count, self.progress):
            if isinstance(record, Document):
                self.rows.append(to_row(record))
                self.size += text_size(record)[1]
                if self.size >= ROW_GROUP_BYTES:
                    yield pa.Table.from_pylist(self.rows, schema=self.schema)
                    self.rows, self.size = [], 0
            else:
                yield beam.pvalue.TaggedOutput("quarantined", record)

    def finish_bundle(self):
        if self.rows:
            yield windowed(pa.Table.from_pylist(self.rows, schema=self.schema))
        self.rows, self.size = [], 0

    def teardown(self):
        self.progress.close()


class _CleanFn(beam.DoFn):
    """Arrow tables of documents -> Arrow tables of the documents kept (in the documents schema), and tagged
    rejected and quarantined records: one Beam element per row group, not per document."""

    def __init__(self, options: CleanOptions, progress_dir: str | None) -> None:
        self.options = options
        self.progress_dir = progress_dir

    def setup(self):
        self.cleaner = Cleaner(self.options)
        self.count = BeamCount()
        self.progress = reporter("clean", self.progress_dir)
        self.schema = schema.load("documents")

    def teardown(self):
        self.progress.close()

    def process(self, table):
        kept = []
        for row in table.to_pylist():
            doc = from_row(Document, row)
            self.progress.update(*text_size(doc))
            result = self.cleaner.process(doc, self.count)
            if isinstance(result, Document):
                kept.append(to_row(result))
            elif isinstance(result, Rejected):
                yield beam.pvalue.TaggedOutput("rejected", result)
            else:
                yield beam.pvalue.TaggedOutput("quarantined", result)
        if kept:
            yield pa.Table.from_pylist(kept, schema=self.schema)


class _SegmentFn(beam.DoFn):
    """Row groups of a documents table (Arrow tables) -> segmented rows (Arrow tables) and quarantined records."""

    def __init__(self, options: SegmentOptions, progress_dir: str | None) -> None:
        self.options = options
        self.progress_dir = progress_dir

    def setup(self):
        self.segmentation = Segmentation(self.options)   # the model loads once per worker
        self.count = BeamCount()
        self.progress = reporter("segment", self.progress_dir)

    def start_bundle(self):
        self.first = None

    def process(self, table):
        if self.first is None and table.num_rows:    # test-only fault injection (pipeline.faults), keyed by the
            self.first = faults.attempt("segment", table.column("id")[0].as_py()).started()   # bundle's first id
        for piece in slices(table):
            rows, quarantined = self.segmentation.process_table(piece, self.count)
            if rows.num_rows:
                yield rows
            for record in quarantined:
                yield beam.pvalue.TaggedOutput("quarantined", record)
            self.progress.update(piece.num_rows, text_bytes(piece))

    def finish_bundle(self):
        if self.first is not None:
            self.first.ending()

    def teardown(self):
        self.progress.close()



class _CountPreTokensFn(beam.DoFn):
    """Segmented rows -> (pre-token, count) pairs, summed over the bundle before they are emitted."""

    def __init__(self, options: VocabOptions) -> None:
        self.options = options

    def setup(self):
        self.counter = PreTokenCounter(self.options)
        self.count = BeamCount()

    def start_bundle(self):
        self.rows = []
        self.counts = Counter()

    def process(self, row):
        self.rows.append(row)
        if len(self.rows) >= 256:
            self.counts.update(self.counter.count_rows(self.rows, self.count))
            self.rows = []

    def finish_bundle(self):
        if self.rows:
            self.counts.update(self.counter.count_rows(self.rows, self.count))
        for token, n in self.counts.items():
            yield windowed((token, n))
        self.rows, self.counts = [], Counter()



POOL_GROUP = 16      # pools per task of the shards stage's instance step (see _PoolFn)


@beam.typehints.with_output_types(typing.Any)   # (pool, documents reference) pairs and tagged rejected/quarantined
class _TokenizeFn(beam.DoFn):
    """A row group -> its documents tokenized, written to a file a section per pool; (pool, reference) out, so
    the runner holds references, not the documents of the whole input."""

    def __init__(self, options: ShardOptions, vocab: str, pools: int, spill_dir: str) -> None:
        self.options, self.vocab, self.pools, self.spill_dir = options, vocab, pools, spill_dir

    def setup(self):
        self.builder = shard_builder.ShardBuilder.shared(self.options, self.vocab)   # once per worker process
        self.count = BeamCount()

    def process(self, table):
        docs = []
        for result in self.builder.tokenize_table(table, self.count):     # a row group at a time
            if isinstance(result, Quarantined):
                yield beam.pvalue.TaggedOutput("quarantined", result)
            elif isinstance(result, Rejected):
                yield beam.pvalue.TaggedOutput("rejected", result)
            else:
                docs.append((pool_of(self.options.seed, result.id, self.pools), result))
        yield from shard_builder.document_sections(docs, self.spill_dir)


class _PoolFn(beam.DoFn):
    """A group of ``POOL_GROUP`` pools' documents -> their instances, one pool at a time, each written to its pool
    file; ``(first shard, ((pool, offset, size, instances), ...))`` out, one per first shard the group reaches.

    An in-process runner holds what goes into a grouping in memory: one small tuple per first shard and
    group of pools is ``POOL_GROUP`` times fewer elements than one ``PoolSection`` (with its path) per
    first shard and pool, and pools and shards both grow with the input."""

    def __init__(self, options: ShardOptions, vocab: str, spill_dir: str) -> None:
        self.options, self.vocab, self.spill_dir = options, vocab, spill_dir

    def setup(self):
        self.builder = shard_builder.ShardBuilder.shared(self.options, self.vocab)
        self.count = BeamCount()

    def process(self, group, shards):
        by_pool: dict[int, list] = {}
        for pool, section in group[1]:
            by_pool.setdefault(pool, []).append(section)
        ranges: dict[int, list] = {}
        for pool in sorted(by_pool):            # one pool's documents and instances in memory at a time
            docs = [doc for section in by_pool[pool] for doc in shard_builder.load_documents(section)]
            items = self.builder.pool_instances(docs, self.count, shards)
            shard_builder.pool_group_ranges(
                shard_builder.pool_sections(pool, items, shards, self.spill_dir), pool, ranges)
        for shard in sorted(ranges):
            yield shard, tuple(ranges[shard])


class _SplitShardFn(beam.DoFn):
    """Pool file ranges of one first shard -> (destination, Kept reference or surplus records) out."""

    def __init__(self, spill_dir: str) -> None:
        self.spill_dir = spill_dir

    def process(self, group, plan):
        shard, ranges = group
        targets, moves = plan
        sections = shard_builder.sections_of_ranges([r for part in ranges for r in part], self.spill_dir)
        yield from shard_builder.split_shard(shard, sections, targets, moves).items()


def _plan(counts, shards):
    counts = dict(counts)
    return shard_builder.shard_targets(sum(counts.values()), shards), shard_builder.rebalance(counts, shards)


class _WriteShardFn(beam.DoFn):
    def __init__(self, directory: str, summaries: str, options=None) -> None:
        self.directory, self.summaries, self.options = directory, summaries, options

    def start_bundle(self):
        self.first = None

    def process(self, group, shards):
        shard, parts = group
        first = self.first is None      # test-only fault injection (pipeline.faults), keyed by the bundle's first shard
        if first:
            self.first = faults.attempt("shards.write", shard).started()
        summary = shard_builder.write_shard(self.directory, shard, shards, list(parts), self.options)
        if first:
            self.first.ending()      # the shard file is written: a retry must replace it
        write_summary(self.summaries, summary)
        yield summary


class BuildShards(beam.PTransform):
    """Segmented row groups (Arrow tables) -> shard files in ``directory`` (summaries in ``summaries``);
    returns {'rejected', 'quarantined'} records."""

    def __init__(self, options: ShardOptions, vocab: str, pools: int, directory: str, summaries: str,
                 pools_dir: str) -> None:
        super().__init__()
        self.options, self.vocab, self.pools = options, vocab, pools
        self.directory, self.summaries, self.pools_dir = directory, summaries, pools_dir

    def expand(self, rows):
        options, pools_dir = self.options, self.pools_dir      # documents and instance bytes go through files
        tokenized = rows | "Tokenize" >> beam.ParDo(
            _TokenizeFn(options, self.vocab, self.pools, pools_dir)).with_outputs("rejected", "quarantined", main="docs")
        docs = tokenized.docs
        shards = beam.pvalue.AsSingleton(
            docs
            | "DocumentTokens" >> beam.Map(lambda kv: kv[1].tokens)
            | "SumTokens" >> beam.CombineGlobally(sum)
            | "ShardCount" >> beam.Map(lambda tokens: shard_total(options, tokens)))
        keyed = (docs
                 | "PoolGroup" >> beam.MapTuple(lambda pool, section: (pool // POOL_GROUP, (pool, section)))
                 | "ByPool" >> beam.GroupByKey()
                 | "Instances" >> beam.ParDo(_PoolFn(options, self.vocab, pools_dir), shards))
        plan = beam.pvalue.AsSingleton(
            keyed
            | "Sizes" >> beam.Map(lambda kv: (kv[0], sum(r[3] for r in kv[1])))
            | "PerShard" >> beam.CombinePerKey(sum)
            | "AllShards" >> beam.combiners.ToList()
            | "Plan" >> beam.Map(_plan, shards))
        (keyed
         | "ByShard" >> beam.GroupByKey()
         | "Split" >> beam.ParDo(_SplitShardFn(pools_dir), plan)
         | "ByDestination" >> beam.GroupByKey()
         | "Write" >> beam.ParDo(_WriteShardFn(self.directory, self.summaries, options), shards))
        return tokenized



class ReadInputs(beam.PTransform):
    """Input files -> {'documents': Arrow tables of documents, 'quarantined'}."""

    def __init__(self, files, max_record_bytes: int, progress_dir: str | None) -> None:
        super().__init__()
        self.files = list(files)
        self.max_record_bytes = max_record_bytes
        self.progress = progress_dir

    def expand(self, pbegin):
        total = sum(f.size for f in self.files)
        result = (pbegin
                  | "Files" >> beam.Create(self.files, reshuffle=True)
                  | "Read" >> beam.ParDo(_ReadFileFn(self.max_record_bytes, total, self.progress))
                  .with_outputs("quarantined", main="documents"))
        tables_of(result.documents)
        return result


class CleanDocuments(beam.PTransform):
    """Arrow tables of documents -> {'documents': Arrow tables of the kept ones, 'rejected', 'quarantined'}."""

    def __init__(self, options: CleanOptions, progress_dir: str | None = None) -> None:
        super().__init__()
        self.options = options
        self.progress = progress_dir

    def expand(self, docs):
        result = docs | "Clean" >> beam.ParDo(_CleanFn(self.options, self.progress)).with_outputs(
            "rejected", "quarantined", main="documents")
        tables_of(result.documents)
        return result




class SegmentDocuments(beam.PTransform):
    """Arrow tables of documents -> {'segmented': Arrow tables of segmented rows, 'quarantined': records}."""

    def __init__(self, options: SegmentOptions, progress_dir: str | None = None) -> None:
        super().__init__()
        self.options, self.progress_dir = options, progress_dir

    def expand(self, tables):
        result = tables | "Segment" >> beam.ParDo(_SegmentFn(self.options, self.progress_dir)).with_outputs(
            "quarantined", main="segmented")
        tables_of(result.segmented)
        return result


class CountPreTokens(beam.PTransform):
    """Segmented rows -> (pre-token, count) over the documents not held out (core: ``PreTokenCounter``)."""

    def __init__(self, options: VocabOptions, progress_dir: str | None = None) -> None:
        super().__init__()
        self.options, self.progress_dir = options, progress_dir

    def expand(self, rows):
        return (rows
                | "Progress" >> tick("vocab", self.progress_dir)
                | "Count" >> beam.ParDo(_CountPreTokensFn(self.options))
                | "Sum" >> beam.CombinePerKey(sum))


class _KeyedFn(beam.DoFn):
    """Arrow tables of documents -> (exact key, member) per document (``Deduplicator.keyed``)."""

    def __init__(self, options: DedupOptions, progress_dir: str | None) -> None:
        self.options, self.progress_dir = options, progress_dir

    def setup(self):
        self.dedup = Deduplicator(self.options)
        self.progress = [reporter(label, self.progress_dir) for label in self.dedup.progress_labels]

    def teardown(self):
        for progress in self.progress:
            progress.close()

    def process(self, table):
        for progress in self.progress:
            progress.update(table.num_rows, table.nbytes)
        yield from self.dedup.keyed(table)


class _ResolveFn(beam.DoFn):
    """One exact-key group -> its duplicates (or quarantined records), and (tagged ``kept``) the member it
    keeps."""

    def __init__(self, options: DedupOptions) -> None:
        self.options = options

    def setup(self):
        self.dedup, self.count = Deduplicator(self.options), BeamCount()

    def process(self, group):
        kept, written = self.dedup.resolve(*group, self.count)
        yield from written
        if kept is not None:
            yield beam.pvalue.TaggedOutput("kept", kept)


class DedupKeys(beam.PTransform):
    """Arrow tables of documents -> {'dropped': duplicates and quarantined records, 'members': what near dedup
    compares (the members exact dedup kept, or every member without exact dedup)}.

    Grouping moves only keys and member tuples (reference + signature), never the text.
    """

    def __init__(self, options: DedupOptions, progress_dir: str | None = None) -> None:
        super().__init__()
        self.options, self.progress_dir = options, progress_dir

    def expand(self, tables):
        keyed = tables | "Keyed" >> beam.ParDo(_KeyedFn(self.options, self.progress_dir))
        if not self.options.exact:
            return {"dropped": tables.pipeline | "NoDuplicates" >> beam.Create([]),
                    "members": keyed | "Members" >> beam.Values()}
        resolved = (keyed | "Group" >> beam.GroupByKey()
                    | "Resolve" >> beam.ParDo(_ResolveFn(self.options)).with_outputs("kept", main="dropped"))
        return {"dropped": resolved.dropped, "members": resolved.kept}


class _BandBatchFn(beam.DoFn):
    """Members -> (LSH group, batch of bytes) pairs, per bundle."""

    def __init__(self, options: DedupOptions) -> None:
        self.options = options

    def setup(self):
        self.dedup = Deduplicator(self.options)

    def start_bundle(self):
        self.members = []

    def process(self, member):
        self.members.append(member)
        if len(self.members) >= BATCH_MEMBERS:
            yield from self.dedup.band_batches(self.members)
            self.members = []

    def finish_bundle(self):
        for element in self.dedup.band_batches(self.members):
            yield windowed(element)
        self.members = []


class _EdgesFn(beam.DoFn):
    def __init__(self, options: DedupOptions) -> None:
        self.options = options

    def setup(self):
        self.dedup, self.count = Deduplicator(self.options), BeamCount()

    def process(self, group):
        yield from self.dedup.edges(group[1], self.count)


class NearDuplicateEdges(beam.PTransform):
    """Members -> candidate edges (smallest id's ref, other ref, estimate).

    Band values travel in batches per (band, shard) group, not one element per document and band.
    """

    def __init__(self, options: DedupOptions) -> None:
        super().__init__()
        self.options = options

    def expand(self, members):
        return (members
                | "BandBatches" >> beam.ParDo(_BandBatchFn(self.options))
                | "GroupBands" >> beam.GroupByKey()
                | "Edges" >> beam.ParDo(_EdgesFn(self.options)))


class _ShinglesFn(beam.DoFn):
    def __init__(self, options: DedupOptions) -> None:
        self.options = options

    def setup(self):
        self.dedup = Deduplicator(self.options)

    def process(self, table, incident):
        yield from self.dedup.shingles(table, incident)


class ExactSimilarities(beam.PTransform):
    """Tables of (id, text) + (document id, edge keys) pairs -> (edge key, Jaccard of the shingle sets)."""

    def __init__(self, options: DedupOptions, incident) -> None:
        super().__init__()
        self.options, self.incident = options, incident

    def expand(self, tables):
        return (tables
                | "Shingles" >> beam.ParDo(_ShinglesFn(self.options), beam.pvalue.AsDict(self.incident))
                | "GroupEdges" >> beam.GroupByKey()
                | "Jaccard" >> beam.MapTuple(lambda key, members: (key, Deduplicator.similarity(list(members)))))


class _SpillKeysFn(beam.DoFn):
    """Row groups -> quarantined records, and tagged ``keys``/``bands`` (partition, section) references: the
    members, keys, band values and shingles go to spill files (``DiskDedup.keyed``)."""

    def __init__(self, options: DedupOptions, directory: str, partitions: int, progress_dir: str | None) -> None:
        self.options, self.directory, self.partitions, self.progress_dir = options, directory, partitions, progress_dir

    def setup(self):
        self.disk = DiskDedup(self.options, self.directory, self.partitions)
        self.progress = [reporter(label, self.progress_dir) for label in self.disk.dedup.progress_labels]

    def teardown(self):
        for progress in self.progress:
            progress.close()

    def process(self, table):
        for progress in self.progress:
            progress.update(table.num_rows, table.nbytes)
        for item in self.disk.keyed(table):
            if isinstance(item, tuple):
                yield beam.pvalue.TaggedOutput(item[0], (item[1], item[2]))
            else:
                yield item


class _SpillResolveFn(beam.DoFn):
    """One key partition's sections -> its duplicates, and tagged ``bands`` references of what it keeps."""

    def __init__(self, options: DedupOptions, directory: str, partitions: int) -> None:
        self.options, self.directory, self.partitions = options, directory, partitions

    def setup(self):
        self.disk, self.count = DiskDedup(self.options, self.directory, self.partitions), BeamCount()

    def process(self, group):
        self.count("dedup.spill.key_partitions")
        for item in self.disk.resolve(list(group[1]), self.count):
            if isinstance(item, tuple):
                yield beam.pvalue.TaggedOutput("bands", (item[1], item[2]))
            else:
                yield item


class _SpillEdgesFn(beam.DoFn):
    def __init__(self, options: DedupOptions, directory: str, partitions: int) -> None:
        self.options, self.directory, self.partitions = options, directory, partitions

    def setup(self):
        self.disk, self.count = DiskDedup(self.options, self.directory, self.partitions), BeamCount()

    def process(self, group):
        self.count("dedup.spill.band_partitions")
        self.disk.edges(group[0], list(group[1]), self.count)
        return []


class SpilledDedup(beam.PTransform):
    """Row groups -> duplicates and quarantined records; candidate edges to ``directory/edges-*.parquet``.
    Only references to spill-file sections are grouped (``pipeline.dedup.spill``)."""

    def __init__(self, options: DedupOptions, directory: str, partitions: int, progress_dir: str | None) -> None:
        super().__init__()
        self.options, self.directory, self.partitions, self.progress_dir = options, directory, partitions, progress_dir

    def expand(self, tables):
        o, d, n = self.options, self.directory, self.partitions
        keyed = tables | "SpillKeys" >> beam.ParDo(_SpillKeysFn(o, d, n, self.progress_dir)).with_outputs(
            "keys", "bands", main="dropped")
        dropped, bands = [keyed.dropped], [keyed.bands]
        if o.exact:
            resolved = (keyed.keys | "GroupKeyPartitions" >> beam.GroupByKey()
                        | "ResolveSpilled" >> beam.ParDo(_SpillResolveFn(o, d, n)).with_outputs("bands", main="dropped"))
            dropped.append(resolved.dropped)
            bands.append(resolved.bands)
        if o.near:
            (bands | "AllBands" >> beam.Flatten() | "GroupBandPartitions" >> beam.GroupByKey()
             | "SpilledEdges" >> beam.ParDo(_SpillEdgesFn(o, d, n)))
        return dropped | "AllDropped" >> beam.Flatten()


class _SpillSimilaritiesFn(beam.DoFn):
    def __init__(self, options: DedupOptions, directory: str) -> None:
        self.options, self.directory = options, directory

    def setup(self):
        self.disk = DiskDedup(self.options, self.directory, 1)

    def process(self, path):
        yield self.disk.similarities(path)


class _KeepFn(beam.DoFn):
    """Arrow tables of documents -> the same tables without the dropped ids (``Deduplicator.kept``)."""

    def __init__(self, options: DedupOptions) -> None:
        self.options = options

    def setup(self):
        self.dedup, self.count = Deduplicator(self.options), BeamCount()

    def process(self, table, dropped):
        table = self.dedup.kept(table, dropped, self.count)
        if table.num_rows:
            yield table


class KeptDocuments(beam.PTransform):
    """Arrow tables of documents minus the ids in the given duplicates and quarantined tables."""

    def __init__(self, options: DedupOptions, dropped_tables: dict[str, type]) -> None:
        super().__init__()
        self.options, self.dropped_tables = options, dropped_tables

    def expand(self, tables):
        parts = [tables.pipeline | f"Read{cls.__name__}" >> ReadTable(directory, cls)
                 | f"Id{cls.__name__}" >> beam.Map(lambda r: (r.id, None))
                 for directory, cls in self.dropped_tables.items()]
        dropped = parts | "Dropped" >> beam.Flatten()
        return tables_of(tables | "Keep" >> beam.ParDo(_KeepFn(self.options), beam.pvalue.AsDict(dropped)))


__all__ = ["ReadInputs", "CleanDocuments", "DedupKeys", "SpilledDedup", "NearDuplicateEdges", "ExactSimilarities",
           "KeptDocuments", "SegmentDocuments", "CountPreTokens", "BuildShards", "DEDUP_COLUMNS", "SEGMENT_COLUMNS"]
