"""Beam adapters: one composite PTransform per stage, around the core.

The transforms only read, group and write; every decision is made by the core
(``read_file``, ``Cleaner.process``, ``ExactKey`` / ``resolve_group``).
Counters go to Beam metrics (namespace ``wwm``).  Models and converters are
built in ``DoFn.setup``, once per worker, never pickled.

Local tables are read and written with Beam's own Parquet and text IO.  For an
object-store path (``gs://``; :mod:`pipeline.storage`) the same transforms read
row groups and write parts through pyarrow instead (Beam's ``gs://`` file system
needs the ``apache_beam[gcp]`` extra and cannot be pointed at an emulator).  A
table is written the way Beam's own file sinks do it: each bundle writes one
part under a unique name in ``<table>/.parts/`` and emits that name; one
finalizing step copies the parts of the bundles that committed to
``part-NNNNN-of-MMMMM.parquet`` (numbered in name order) and deletes
``.parts/``, with whatever a failed or retried bundle attempt left there (its
names were never emitted).  No record goes through a shuffle to be written.
"""

from __future__ import annotations

import json
import typing
import uuid
import zlib
from collections import Counter

import apache_beam as beam
import pyarrow as pa
from apache_beam.coders import coder_impl
from apache_beam.metrics import Metrics
from apache_beam.transforms.window import GlobalWindow
from apache_beam.utils.timestamp import MIN_TIMESTAMP
from apache_beam.utils.windowed_value import WindowedValue

from pipeline import faults, schema, storage
from pipeline.clean.stage import Cleaner
from pipeline.config import CleanOptions
from pipeline.dedup.exact import DocRef, exact_key, key_codes, resolve_group
from pipeline.dedup.minhash import (BATCH_MEMBERS, MinHasher, band_batches, edge_from_json, edge_key, exact_similarity,
                                    fold_digits, group_edges)
from pipeline.ingest.readers import read_file
from pipeline.outputs import TableWriter, parquet_file, parquet_files, read_row_group, row_groups
from pipeline.progress import reporter, text_size
from pipeline.records import RECORD_TYPES, Document, Quarantined, Rejected, excerpt, from_row, to_row
from pipeline.segment.stage import COLUMNS as SEGMENT_COLUMNS, Segmentation, slices, text_bytes
from pipeline.shards import builder as shard_builder
from pipeline.shards.manifest import shard_count
from pipeline.shards.seeds import pool_of
from pipeline.vocab.counting import PreTokenCounter

NAMESPACE = "wwm"
# Row groups are read back whole (and turned into Python records) by the next stage, so their size
# bounds that stage's memory; 16 MB keeps it flat without making files of tiny groups.
ROW_GROUP_BYTES = 16 * 1024 * 1024
WRITE_PARTS = 16     # files per small text output (dedup's edges, vocab's counts) written to an object store
PARTS = ".parts"     # where the bundles of a table written to an object store put their parts first


class ArrowTableCoder(beam.coders.Coder):
    """Arrow tables between Beam steps: Arrow IPC streams (not pickles), sized by their buffers.

    Beam measures the first elements of every PCollection (and a sample of the
    rest) with the PCollection's coder; for an element of unknown type that
    means pickling it.  The elements here are whole row groups, few of them, so
    each was pickled once for every step it went through (hundreds of MB in the
    segment stage) only to be measured.  PCollections of tables are given this
    coder (:func:`tables_of`).
    """

    def encode(self, table):
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table)
        return sink.getvalue().to_pybytes()

    def decode(self, data):
        return pa.ipc.open_stream(pa.py_buffer(data)).read_all()

    def is_deterministic(self) -> bool:
        return False

    def to_type_hint(self):
        return pa.Table

    def _create_impl(self):
        return coder_impl.CallbackCoderImpl(self.encode, self.decode, size_estimator=_table_size)


def _table_size(table) -> int:
    return table.get_total_buffer_size()


beam.coders.registry.register_coder(pa.Table, ArrowTableCoder)


def tables_of(pcoll):
    """``pcoll`` (of Arrow tables), its elements declared ``pa.Table``: they go through :class:`ArrowTableCoder`."""
    pcoll.element_type = pa.Table
    return pcoll


def _part_of(text: str) -> int:
    return zlib.crc32(text.encode("utf-8", "surrogatepass")) % WRITE_PARTS


class _WriteBundleFn(beam.DoFn):
    """Records -> one Parquet part per bundle, ``<directory>/.parts/<unique>.parquet``; its path out."""

    def __init__(self, directory: str, table: str) -> None:
        self.directory, self.table = directory, table

    def start_bundle(self):
        self.writer = None

    def process(self, record):
        if self.writer is None:
            self.writer = TableWriter(storage.join(self.directory, PARTS), self.table, uuid.uuid4().hex,
                                      row_group_bytes=ROW_GROUP_BYTES, direct=True)   # a name per attempt
        self.writer.add(record)

    def finish_bundle(self):
        if self.writer is not None:
            self.writer.close()
            yield WindowedValue(str(self.writer.final), MIN_TIMESTAMP, [GlobalWindow()])
            self.writer = None

    def teardown(self):
        if getattr(self, "writer", None) is not None:
            self.writer.abort()


class _FinalizePartsFn(beam.DoFn):
    """The committed bundles' parts -> ``<directory>/part-NNNNN-of-MMMMM.parquet``; ``.parts/`` deleted."""

    def __init__(self, directory: str) -> None:
        self.directory = directory

    def process(self, paths):
        paths = sorted(paths)
        fs, _ = storage.resolve(self.directory)
        for index, path in enumerate(paths):
            final = storage.join(self.directory, f"part-{index:05d}-of-{len(paths):05d}.parquet")
            if storage.exists(path):           # else a retry of this step after it had copied and deleted it
                fs.copy_file(storage.resolve(path)[1], storage.resolve(final)[1])
        storage.delete_dir(storage.join(self.directory, PARTS))
        return []


class _WriteLinesFn(beam.DoFn):
    """(part, lines) -> ``<prefix>-PPPPP-of-NNNNN<suffix>`` through pyarrow (object stores)."""

    def __init__(self, prefix: str, suffix: str) -> None:
        self.prefix, self.suffix = prefix, suffix

    def process(self, group):
        part, lines = group
        storage.write_text(f"{self.prefix}-{part:05d}-of-{WRITE_PARTS:05d}{self.suffix}",
                           "".join(line + "\n" for line in lines))
        return []


class WriteLines(beam.PTransform):
    """Text lines -> files ``<prefix>-SSSSS-of-NNNNN<suffix>`` (Beam's ``WriteToText`` locally)."""

    def __init__(self, prefix: str, suffix: str) -> None:
        super().__init__()
        self.prefix, self.suffix = str(prefix), suffix

    def expand(self, lines):
        if not storage.is_remote(self.prefix):
            return lines | "Write" >> beam.io.WriteToText(self.prefix, file_name_suffix=self.suffix)
        return (lines
                | "Part" >> beam.Map(lambda line: (_part_of(line), line))
                | "GroupParts" >> beam.GroupByKey()
                | "WriteParts" >> beam.ParDo(_WriteLinesFn(self.prefix, self.suffix)))


def _read_lines(path: str):
    return [line for line in storage.read_text(path).split("\n") if line]


class RowGroups(beam.PTransform):
    """A table directory on an object store -> one element per row group: an Arrow table of ``columns``
    (``as_table``), else its rows as dicts (all columns of table ``name``, or ``columns``)."""

    def __init__(self, directory: str, name: str, columns: list[str] | None = None, as_table: bool = False) -> None:
        super().__init__()
        self.directory, self.name, self.columns, self.as_table = directory, name, columns, as_table

    def expand(self, pbegin):
        name, columns, as_table = self.name, self.columns, self.as_table

        def read(item):
            path, index = item
            if as_table:
                return [parquet_file(path).read_row_group(index, columns=columns)]
            return read_row_group(path, index, name, columns)

        return (pbegin
                | "RowGroups" >> beam.Create(row_groups(self.directory), reshuffle=True)
                | "ReadRowGroup" >> beam.FlatMap(read))


class BeamCount:
    """``count(name, n)`` onto Beam metrics counters."""

    def __init__(self) -> None:
        self._counters = {}

    def __call__(self, name: str, n: int = 1) -> None:
        counter = self._counters.get(name)
        if counter is None:
            counter = self._counters[name] = Metrics.counter(NAMESPACE, name)
        counter.inc(n)


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
            yield WindowedValue(pa.Table.from_pylist(self.rows, schema=self.schema), MIN_TIMESTAMP, [GlobalWindow()])
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

    def __init__(self, options, progress_dir: str | None) -> None:
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
            self.first = table.column("id")[0].as_py()   # bundle's first id
            faults.task_started("segment", self.first)
        for piece in slices(table):
            rows, quarantined = self.segmentation.process_table(piece, self.count)
            if rows.num_rows:
                yield rows
            for record in quarantined:
                yield beam.pvalue.TaggedOutput("quarantined", record)
            self.progress.update(piece.num_rows, text_bytes(piece))

    def finish_bundle(self):
        if self.first is not None:
            faults.task_ending("segment", self.first)

    def teardown(self):
        self.progress.close()


class SegmentDocuments(beam.PTransform):
    """A documents table -> {'segmented': Arrow tables of segmented rows, 'quarantined': records}."""

    def __init__(self, documents_dir: str, options, progress_dir: str | None = None) -> None:
        super().__init__()
        self.documents_dir = documents_dir
        self.options = options
        self.progress_dir = progress_dir

    def expand(self, pbegin):
        if parquet_files(self.documents_dir) and storage.is_remote(self.documents_dir):
            tables = pbegin | "ReadDocuments" >> RowGroups(self.documents_dir, "documents", SEGMENT_COLUMNS,
                                                           as_table=True)
        elif parquet_files(self.documents_dir):
            tables = pbegin | "ReadDocuments" >> beam.io.ReadFromParquetBatched(
                f"{self.documents_dir}/*.parquet", columns=SEGMENT_COLUMNS)
        else:
            tables = pbegin | "NoDocuments" >> beam.Create([])
        result = tables_of(tables) | "Segment" >> beam.ParDo(_SegmentFn(self.options, self.progress_dir)).with_outputs(
            "quarantined", main="segmented")
        tables_of(result.segmented)
        return result


class _CountPreTokensFn(beam.DoFn):
    """Segmented rows -> (pre-token, count) pairs, summed over the bundle before they are emitted."""

    def __init__(self, options) -> None:
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
            yield WindowedValue((token, n), MIN_TIMESTAMP, [GlobalWindow()])
        self.rows, self.counts = [], Counter()


class CountPreTokens(beam.PTransform):
    """A segmented table -> (pre-token, count) over the documents not held out (core: ``PreTokenCounter``)."""

    def __init__(self, directory: str, options, progress_dir: str | None = None) -> None:
        super().__init__()
        self.directory = directory
        self.options = options
        self.progress_dir = progress_dir

    def expand(self, pbegin):
        if not parquet_files(self.directory):
            return pbegin | "Empty" >> beam.Create([])
        if storage.is_remote(self.directory):
            rows = pbegin | "Read" >> RowGroups(self.directory, "segmented", ["id", "sentences"])
        else:
            rows = pbegin | "Read" >> beam.io.ReadFromParquet(f"{self.directory}/*.parquet",
                                                              columns=["id", "sentences"])
        return (rows
                | "Progress" >> tick("vocab", self.progress_dir)
                | "Count" >> beam.ParDo(_CountPreTokensFn(self.options))
                | "Sum" >> beam.CombinePerKey(sum))


SHARD_COLUMNS = ["id", "source", "title", "sentences", "words", "file", "position"]


@beam.typehints.with_output_types(typing.Any)   # (pool, documents reference) pairs and tagged rejected/quarantined
class _TokenizeFn(beam.DoFn):
    """A row group -> its documents tokenized, written to a file a section per pool; (pool, reference) out, so
    the runner holds references, not the documents of the whole input."""

    def __init__(self, options, vocab: str, pools: int, spill_dir: str) -> None:
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
    """A pool's documents -> its instances, written to a spill file; (first shard, reference) out."""

    def __init__(self, options, vocab: str, spill_dir: str) -> None:
        self.options, self.vocab, self.spill_dir = options, vocab, spill_dir

    def setup(self):
        self.builder = shard_builder.ShardBuilder.shared(self.options, self.vocab)
        self.count = BeamCount()

    def process(self, pool, shards):
        docs = [doc for section in pool[1] for doc in shard_builder.load_documents(section)]
        items = self.builder.pool_instances(docs, self.count, shards)
        yield from shard_builder.pool_sections(pool[0], items, shards, self.spill_dir)


class _SplitShardFn(beam.DoFn):
    """Pool file sections of one first shard -> (destination, Kept reference or surplus records) out."""

    def process(self, group, plan):
        shard, sections = group
        targets, moves = plan
        yield from shard_builder.split_shard(shard, list(sections), targets, moves).items()


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
        if self.first is None:      # test-only fault injection (pipeline.faults), keyed by the bundle's first shard
            self.first = shard
            faults.task_started("shards.write", shard)
        summary = shard_builder.write_shard(self.directory, shard, shards, list(parts), self.options)
        if shard == self.first:
            faults.task_ending("shards.write", shard)      # the shard file is written: a retry must replace it
        storage.makedirs(self.summaries)
        storage.write_text(storage.join(self.summaries, f"{shard:05d}.json"), json.dumps(summary))
        yield summary


class BuildShards(beam.PTransform):
    """Segmented row groups (Arrow tables) -> shard files in ``directory`` (summaries in ``summaries``);
    returns {'rejected', 'quarantined'} records."""

    def __init__(self, options, vocab: str, pools: int, directory: str, summaries: str) -> None:
        super().__init__()
        self.options, self.vocab, self.pools = options, vocab, pools
        self.directory, self.summaries = directory, summaries

    def expand(self, rows):
        options = self.options
        pools_dir = storage.join(storage.parent(self.summaries), ".pools")   # instance bytes go through files
        tokenized = rows | "Tokenize" >> beam.ParDo(
            _TokenizeFn(options, self.vocab, self.pools, pools_dir)).with_outputs("rejected", "quarantined", main="docs")
        docs = tokenized.docs
        shards = beam.pvalue.AsSingleton(
            docs
            | "DocumentTokens" >> beam.Map(lambda kv: kv[1][4])
            | "SumTokens" >> beam.CombineGlobally(sum)
            | "ShardCount" >> beam.Map(lambda tokens: shard_count(options, tokens)))
        keyed = (docs
                 | "ByPool" >> beam.GroupByKey()
                 | "Instances" >> beam.ParDo(_PoolFn(options, self.vocab, pools_dir), shards))
        plan = beam.pvalue.AsSingleton(
            keyed
            | "Sizes" >> beam.Map(lambda kv: (kv[0], kv[1][3]))
            | "PerShard" >> beam.CombinePerKey(sum)
            | "AllShards" >> beam.combiners.ToList()
            | "Plan" >> beam.Map(_plan, shards))
        (keyed
         | "ByShard" >> beam.GroupByKey()
         | "Split" >> beam.ParDo(_SplitShardFn(), plan)
         | "ByDestination" >> beam.GroupByKey()
         | "Write" >> beam.ParDo(_WriteShardFn(self.directory, self.summaries, options), shards))
        return tokenized


class _TickFn(beam.DoFn):
    """Pass elements through, reporting progress: a record with text is a document, an Arrow table its rows."""

    def __init__(self, label: str, progress_dir: str | None) -> None:
        self.label, self.progress_dir = label, progress_dir

    def setup(self):
        self.progress = reporter(self.label, self.progress_dir)

    def process(self, element):
        if hasattr(element, "num_rows"):
            self.progress.update(element.num_rows, element.nbytes)
        elif hasattr(element, "text"):
            self.progress.update(*text_size(element))
        else:
            self.progress.update(1)
        yield element

    def teardown(self):
        self.progress.close()


def tick(label: str, progress_dir: str | None):
    """A pass-through step reporting progress under ``label`` (nothing at all when progress is off)."""
    if progress_dir is None:
        return beam.Map(lambda element: element)
    return beam.ParDo(_TickFn(label, progress_dir))


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


DEDUP_COLUMNS = ["id", "source", "file", "position", "title", "text"]


def _ref(member) -> DocRef:
    """The :class:`DocRef` of a dedup member tuple ``(id, source, file, position, title, signature)``."""
    return DocRef(*member[:5])


class _KeyAndSignFn(beam.DoFn):
    """Arrow tables of documents -> (exact key, member) per document, member being the plain tuple
    ``(id, source, file, position, title, signature)`` (Beam encodes it without pickling).

    The normal form is computed once per document for both steps: its hash is
    the exact key, its digit-folded code points are shingled for the MinHash
    signature (only with ``near``; without ``exact`` the key is the id).  A
    document whose key cannot be computed is quarantined.
    """

    def __init__(self, options, progress_dir: str | None) -> None:
        self.options, self.progress_dir = options, progress_dir

    def setup(self):
        self.hasher = MinHasher.from_options(self.options)
        self.count = BeamCount()
        labels = ["dedup"] * self.options.exact + ["dedup/minhash"] * self.options.near
        self.progress = [reporter(label, self.progress_dir) for label in labels]

    def teardown(self):
        for progress in self.progress:
            progress.close()

    def process(self, table):
        for progress in self.progress:
            progress.update(table.num_rows, table.nbytes)
        exact, near, hasher = self.options.exact, self.options.near, self.hasher
        columns = [table.column(name).to_pylist() for name in DEDUP_COLUMNS]
        for doc_id, source, file, position, title, text in zip(*columns):
            if exact:
                try:
                    codes = key_codes(text, hasher.convert)
                    key = exact_key(codes)
                except Exception as exc:
                    self.count("dedup.read")
                    self.count("dedup.quarantined")
                    yield beam.pvalue.TaggedOutput("quarantined", Quarantined(
                        stage="dedup", source=source, file=file, position=position, id=doc_id,
                        error=f"{type(exc).__name__}: {exc}", excerpt=excerpt(text)))
                    continue
            else:
                codes, key = key_codes(text, hasher.convert), doc_id
            signature = hasher.signature_codes(fold_digits(codes)) if near else b""
            yield key, (doc_id, source, file, position, title, signature)


class _ResolveFn(beam.DoFn):
    """One exact-key group -> its duplicates, and (tagged ``kept``) the member of the one it keeps."""

    def setup(self):
        self.count = BeamCount()

    def process(self, group):
        _, members = group
        members = list(members)
        kept, duplicates = resolve_group([_ref(m) for m in members], self.count)
        yield from duplicates
        yield beam.pvalue.TaggedOutput("kept", next(m for m in members if m[0] == kept.id))


class DedupKeys(beam.PTransform):
    """Arrow tables of documents -> {'duplicates', 'quarantined', 'signed'}: the exact duplicates (all but the
    smallest id of each normalised content), and the members near dedup compares (what exact dedup kept).

    Grouping moves only keys and member tuples (reference + signature), never the text.
    """

    def __init__(self, options, progress_dir: str | None = None) -> None:
        super().__init__()
        self.options, self.progress_dir = options, progress_dir

    def expand(self, tables):
        keyed = tables | "KeyAndSign" >> beam.ParDo(_KeyAndSignFn(self.options, self.progress_dir)).with_outputs(
            "quarantined", main="keyed")
        if not self.options.exact:
            signed = keyed.keyed | "Members" >> beam.Values()
            none = tables.pipeline | "NoDuplicates" >> beam.Create([])
            return {"duplicates": none, "quarantined": keyed.quarantined, "signed": signed}
        resolved = (keyed.keyed | "Group" >> beam.GroupByKey()
                    | "Resolve" >> beam.ParDo(_ResolveFn()).with_outputs("kept", main="duplicates"))
        return {"duplicates": resolved.duplicates, "quarantined": keyed.quarantined, "signed": resolved.kept}


class _BandBatchFn(beam.DoFn):
    """Members -> (LSH group, batch of bytes) pairs (:func:`band_batches`), per bundle."""

    def __init__(self, options) -> None:
        self.options = options

    def setup(self):
        self.hasher = MinHasher.from_options(self.options)

    def start_bundle(self):
        self.members = []

    def process(self, member):
        self.members.append(member)
        if len(self.members) >= BATCH_MEMBERS:
            yield from band_batches(self.hasher, self.members)
            self.members = []

    def finish_bundle(self):
        for element in band_batches(self.hasher, self.members):
            yield WindowedValue(element, MIN_TIMESTAMP, [GlobalWindow()])
        self.members = []


class _GroupEdgesFn(beam.DoFn):
    def __init__(self, options) -> None:
        self.options = options

    def setup(self):
        self.hasher = MinHasher.from_options(self.options)
        self.count = BeamCount()

    def process(self, group):
        _, batches = group
        yield from group_edges(self.hasher, batches, self.options.threshold, self.options.verify, self.count)


class NearDuplicateEdges(beam.PTransform):
    """Members (:class:`DedupKeys` ``signed``) -> candidate edges (smallest id's ref, other ref, estimate).

    Band values travel in batches per (band, shard) group, not one element per document and band.
    """

    def __init__(self, options) -> None:
        super().__init__()
        self.options = options

    def expand(self, members):
        return (members
                | "BandBatches" >> beam.ParDo(_BandBatchFn(self.options))
                | "GroupBands" >> beam.GroupByKey()
                | "Edges" >> beam.ParDo(_GroupEdgesFn(self.options)))


class _ShinglesFn(beam.DoFn):
    """Arrow tables of (id, text) -> (edge key, (document id, shingle set)) for each candidate edge a
    document is on; documents on no edge are passed over before their text becomes a Python string."""

    def __init__(self, options) -> None:
        self.options = options

    def setup(self):
        self.hasher = MinHasher.from_options(self.options)

    def process(self, table, incident):
        ids = table.column("id").to_pylist()
        rows = [i for i, doc_id in enumerate(ids) if doc_id in incident]
        if not rows:
            return
        texts = table.column("text").take(rows).to_pylist()
        for i, text in zip(rows, texts):
            shingles = self.hasher.shingle_bytes(text)
            for key in incident[ids[i]]:
                yield key, (ids[i], shingles)


class ExactSimilarities(beam.PTransform):
    """Document tables + candidate edges (JSON lines files) -> (edge key, Jaccard of the shingle sets)."""

    def __init__(self, options, edges_pattern: str) -> None:
        super().__init__()
        self.options = options
        self.edges_pattern = edges_pattern

    def expand(self, tables):
        if storage.is_remote(self.edges_pattern):
            candidates = (tables.pipeline | "Candidates" >> beam.Create([self.edges_pattern])
                          | "ReadCandidates" >> beam.FlatMap(_read_lines))
        else:
            candidates = tables.pipeline | "ReadCandidates" >> beam.io.ReadFromText(self.edges_pattern)
        incident = (candidates
                    | "Incident" >> beam.FlatMap(_incident_pairs)
                    | "GroupIncident" >> beam.GroupByKey()
                    | "KeyList" >> beam.MapTuple(lambda doc_id, keys: (doc_id, sorted(keys))))
        return (tables
                | "Shingles" >> beam.ParDo(_ShinglesFn(self.options), beam.pvalue.AsDict(incident))
                | "GroupEdges" >> beam.GroupByKey()
                | "Jaccard" >> beam.MapTuple(lambda key, members: (key, exact_similarity(list(members)))))


def _incident_pairs(line: str):
    a, b, _ = edge_from_json(json.loads(line))
    key = edge_key(a.id, b.id)
    return [(a.id, key), (b.id, key)]


class DroppedIds(beam.PTransform):
    """(id, None) pairs of every row of the given tables (for an ``AsDict`` side input)."""

    def __init__(self, tables: dict[str, type]) -> None:
        super().__init__()
        self.tables = tables

    def expand(self, pbegin):
        parts = [pbegin | f"Read{cls.__name__}" >> ReadTable(directory, cls)
                 | f"Id{cls.__name__}" >> beam.Map(lambda r: (r.id, None))
                 for directory, cls in self.tables.items()]
        return parts | "Flatten" >> beam.Flatten() if parts else pbegin | "None" >> beam.Create([])


class _KeepFn(beam.DoFn):
    """Arrow tables of documents -> the same tables without the rows whose id is a key of ``dropped``,
    in the table's schema (the rows never become Python records)."""

    def __init__(self, table: str, count_read: bool) -> None:
        self.table, self.count_read = table, count_read

    def setup(self):
        self.schema = schema.load(self.table)
        self.count = BeamCount()

    def process(self, table, dropped):
        if self.count_read:
            self.count("dedup.read", table.num_rows)
        if dropped:
            table = table.filter(pa.array([doc_id not in dropped for doc_id in table.column("id").to_pylist()],
                                          type=pa.bool_()))
        if table.num_rows:
            yield table.select(self.schema.names).cast(self.schema)


def read_tables(pbegin, label: str, directory: str, columns: list[str] | None = None):
    """The Parquet row groups of a table directory as Arrow tables (none when it has no files)."""
    if not parquet_files(directory):
        return pbegin | label >> beam.Create([])
    if storage.is_remote(directory):
        return tables_of(pbegin | label >> RowGroups(directory, "documents", columns, as_table=True))
    return tables_of(pbegin | label >> beam.io.ReadFromParquetBatched(f"{directory}/*.parquet", columns=columns))


def write_kept(tables, dropped, directory: str, count_read: bool = False):
    """Documents tables minus the ids of the ``dropped`` PCollection, written as the documents table."""
    kept = tables_of(tables | "Keep" >> beam.ParDo(_KeepFn("documents", count_read), beam.pvalue.AsDict(dropped)))
    if storage.is_remote(directory):
        return (kept
                | "Rows" >> beam.FlatMap(lambda table: table.to_pylist())
                | "FromRow" >> beam.Map(lambda row: from_row(Document, row))
                | "Write" >> WriteTable(directory, "documents"))
    return (kept
            | "Write" >> beam.io.WriteToParquetBatched(f"{directory}/part", schema.load("documents"),
                                                       codec="snappy", file_name_suffix=".parquet"))


class WriteTable(beam.PTransform):
    """Records -> Parquet files ``<directory>/part-SSSSS-of-NNNNN.parquet`` with the table's schema."""

    def __init__(self, directory: str, table: str) -> None:
        super().__init__()
        self.directory = directory
        self.table = table

    def expand(self, records):
        if storage.is_remote(self.directory):
            return (records
                    | "WriteParts" >> beam.ParDo(_WriteBundleFn(self.directory, self.table))
                    | "AllParts" >> beam.combiners.ToList()
                    | "Finalize" >> beam.ParDo(_FinalizePartsFn(self.directory)))
        return (records
                | "ToRow" >> beam.Map(to_row)
                | "Write" >> beam.io.WriteToParquet(
                    f"{self.directory}/part", schema.load(self.table), file_name_suffix=".parquet",
                    codec="snappy", row_group_buffer_size=ROW_GROUP_BYTES))


class WriteArrowTable(beam.PTransform):
    """Arrow tables of a table's rows -> Parquet files ``<directory>/part-SSSSS-of-NNNNN.parquet``, each table a
    row group."""

    def __init__(self, directory: str, table: str) -> None:
        super().__init__()
        self.directory = directory
        self.table = table

    def expand(self, tables):
        target = schema.load(self.table)
        if storage.is_remote(self.directory):      # object stores: records through WriteTable's part writers
            record_type = next(cls for cls in RECORD_TYPES if cls.TABLE == self.table)
            return (tables
                    | "ToRecords" >> beam.FlatMap(lambda t: [from_row(record_type, r) for r in t.to_pylist()])
                    | "WriteRecords" >> WriteTable(self.directory, self.table))
        return (tables_of(tables | "Conform" >> beam.Map(lambda t: t.select(target.names).cast(target)))
                | "Write" >> beam.io.WriteToParquetBatched(
                    f"{self.directory}/part", target, file_name_suffix=".parquet", codec="snappy"))


class ReadTable(beam.PTransform):
    """Parquet files of a table directory -> records of ``record_type``."""

    def __init__(self, directory: str, record_type=Document) -> None:
        super().__init__()
        self.directory = directory
        self.record_type = record_type

    def expand(self, pbegin):
        record_type = self.record_type
        if not parquet_files(self.directory):
            return pbegin | "Empty" >> beam.Create([])
        if storage.is_remote(self.directory):
            return (pbegin
                    | "Read" >> RowGroups(self.directory, record_type.TABLE)
                    | "FromRow" >> beam.Map(lambda row: from_row(record_type, row)))
        return (pbegin
                | "Read" >> beam.io.ReadFromParquet(f"{self.directory}/*.parquet")
                | "FromRow" >> beam.Map(lambda row: from_row(record_type, row)))


__all__ = ["BeamCount", "tick", "ReadInputs", "CleanDocuments", "DedupKeys", "NearDuplicateEdges", "DroppedIds",
           "read_tables", "write_kept", "ExactSimilarities", "SegmentDocuments", "BuildShards", "SHARD_COLUMNS",
           "CountPreTokens", "WriteTable", "ReadTable", "RowGroups", "WriteLines",
           "WriteArrowTable", "ArrowTableCoder", "tables_of"]
