"""Spark adapters: one function per stage, around the core.

Spark schedules, partitions and shuffles; the Python tasks read their input
row groups and write their output parts with pyarrow (``TableWriter``), so
records never make the Python-to-JVM round trip.  Each task returns its
counters as its result: the driver sums what successful tasks returned, so a
retried task is never counted twice.  Converters are built inside the task,
once per partition, never pickled.

Paths may be local or object-store URIs (``gs://``; :mod:`pipeline.storage`):
the tasks read and write through pyarrow either way.  Dedup's kept documents
are the one table Spark's own Parquet reader and writer handle, locally (a
left anti join in the JVM); for an object-store output the same step runs in
the Python tasks instead (the dropped ids broadcast, as near dedup already
does), so no Hadoop GCS connector is needed and the path is tested here
against a GCS emulator.
"""

from __future__ import annotations

import contextlib
import json
from operator import add

import pyarrow as pa

from pipeline import faults, storage
from pipeline.clean.stage import Cleaner
from pipeline.config import Config
from pipeline.counters import Counters, merge
from pipeline.dedup.exact import DocRef, exact_key, key_codes, resolve_group
from pipeline.dedup.minhash import (MinHasher, band_batches, exact_similarity, fold_digits, group_edges, incident_keys,
                                    near_duplicates)
from pipeline.ingest.readers import read_file
from pipeline.outputs import TableWriter, parquet_file, read_row_group, read_row_group_table, row_groups, table_rows
from pipeline.progress import reporter, text_size
from pipeline.records import Document, Duplicate, Quarantined, Rejected, Segmented, excerpt, from_row
from pipeline.segment.stage import COLUMNS as SEGMENT_COLUMNS, Segmentation, slices, text_bytes
from pipeline.vocab.counting import PreTokenCounter
from pipeline.spark.session import get_session, spark_schema
from pipeline import schema

SHARD_COLUMNS = ["id", "source", "title", "sentences", "words", "file", "position"]


@contextlib.contextmanager
def _table_writers(dirs: dict[type, str], part: str):
    """A ``TableWriter`` per record type for one task's part: published when the block ends, aborted (nothing
    left behind) when it raises."""
    writers = {cls: TableWriter(path, cls.TABLE, part) for cls, path in dirs.items()}
    try:
        yield writers
    except BaseException:
        for writer in writers.values():
            writer.abort()
        raise
    for writer in writers.values():
        writer.close()


def _run_parts(rdd, process, out, outputs: tuple[type, ...], part: str) -> dict[str, int]:
    """Run ``process(items, count)`` over each partition, writing each record type to its table."""
    dirs = {cls: out.table(cls.TABLE) for cls in outputs}
    for directory in dirs.values():
        storage.makedirs(directory)

    step = out.stage

    def run(index, items):
        faults.task_started(step, index)
        count = Counters()
        with _table_writers(dirs, f"{part}-{index:05d}") as writers:
            for record in process(items, count):
                if isinstance(record, pa.Table):      # rows of the first output table, in Arrow form
                    writers[outputs[0]].add_table(record)
                else:
                    writers[type(record)].add(record)
            faults.task_ending(step, index)
        yield count.as_dict()

    return merge(*rdd.mapPartitionsWithIndex(run).collect())


def _documents(items, columns: list[str] | None = None):
    """Documents of the (file, row group) pairs of a partition (columns not read are None)."""
    for path, index in items:
        for row in read_row_group(path, index, "documents", columns):
            yield from_row(Document, row)


def _partitions(spark, config: Config) -> int:
    """Tasks per stage: the configured number, else two per core Spark has."""
    return config.spark.partitions or 2 * spark.sparkContext.defaultParallelism


def _row_group_rdd(spark, documents_dir: str, partitions: int):
    """(file, row group) pairs of a table, spread over at most ``partitions`` tasks."""
    groups = row_groups(documents_dir)
    return spark.sparkContext.parallelize(groups, max(min(partitions, len(groups)), 1))


def _warm(_):
    """Import what the stage tasks use, in a Python worker."""
    import pipeline.clean.stage  # noqa: F401
    import pipeline.dedup.minhash  # noqa: F401
    import pipeline.ingest.readers  # noqa: F401
    import pipeline.segment.stage  # noqa: F401
    import pipeline.shards.builder  # noqa: F401
    import pipeline.vocab.counting  # noqa: F401

    return 0


def start(config: Config) -> None:
    """Start (or reuse) the Spark session and its Python workers, so stage timings do not include the JVM
    start or the workers' imports (workers are reused across jobs)."""
    spark = get_session(config)
    slots = spark.sparkContext.defaultParallelism
    spark.sparkContext.parallelize(range(slots), slots).map(_warm).collect()


def ingest(config: Config, files, out) -> dict[str, int]:
    spark = get_session(config)
    max_bytes, report, total = config.ingest.max_record_bytes, out.progress_dir, sum(f.size for f in files)

    def read(part, count):
        progress = reporter("ingest", report, total)
        for file in part:
            yield from read_file(file, max_bytes, count, progress)
        progress.close()

    rdd = spark.sparkContext.parallelize(files, max(len(files), 1))
    return _run_parts(rdd, read, out, (Document, Quarantined), "part")


def clean(config: Config, documents_dir: str, out) -> dict[str, int]:
    spark = get_session(config)
    options, report = config.clean, out.progress_dir

    def run(items, count):
        cleaner = Cleaner(options)
        for doc in reporter("clean", report).track(_documents(items), text_size):
            yield cleaner.process(doc, count)

    rdd = _row_group_rdd(spark, documents_dir, _partitions(spark, config))
    return _run_parts(rdd, run, out, (Document, Rejected, Quarantined), "part")


def _dropped_ids(out) -> frozenset:
    """Ids written so far to the duplicates and quarantined tables of this stage (read with pyarrow)."""
    from pipeline.outputs import read_table

    return frozenset(i for t in ("duplicates", "quarantined")
                     for i in read_table(out.table(t), t, ["id"]).column("id").to_pylist() if i is not None)


def _dropped_frame(spark, out):
    """Ids written so far to the duplicates and quarantined tables of this stage, as a DataFrame."""
    frames = [spark.read.schema(spark_schema(t)).parquet(out.table(t)).select("id")
              for t in ("duplicates", "quarantined")]
    return frames[0].union(frames[1]).where("id is not null")


def dedup(config: Config, documents_dir: str, out) -> dict[str, int]:
    """Exact duplicates and near-duplicate candidates from one read, the exact check, then the kept documents.

    Each document is read and normalised once: the normal form gives its exact
    key and its MinHash signature.  Keys with (reference, signature) tuples go
    through the exact-key shuffle, never the text; the grouped keys are kept
    (memory, then disk) so that the duplicates are written from them and what
    each group keeps goes on to the band shuffle without a second read.
    Near-dedup edges are collected to the driver and clustered with
    union-find; the kept documents are the input minus every dropped id, a left
    anti join done in the JVM.
    """
    from pyspark import StorageLevel

    spark = get_session(config)
    options = config.dedup
    partitions = _partitions(spark, config)
    remote = storage.is_remote(documents_dir) or storage.is_remote(out.tmp)
    frame = None if remote else spark.read.schema(spark_schema("documents")).parquet(documents_dir)
    for cls in (Duplicate, Quarantined):
        storage.makedirs(out.table(cls.TABLE))
    counters: dict[str, int] = {}
    key_columns = ["id", "source", "file", "position", "title", "text"]
    report = out.progress_dir
    exact, near = options.exact, options.near

    def keyed(items):
        """(exact key, member) per document, member = (id, source, file, position, title, signature);
        (None, Quarantined) for a document whose key cannot be computed; the id is the key without exact."""
        hasher = MinHasher.from_options(options)
        labels = ["dedup"] * exact + ["dedup/minhash"] * near
        progress = [reporter(label, report) for label in labels]
        for doc in _documents(items, key_columns):
            for p in progress:
                p.update(*text_size(doc))
            try:
                codes = key_codes(doc.text, hasher.convert)
                key = exact_key(codes) if exact else doc.id
            except Exception as exc:  # counted where it is written, below
                if not exact:
                    raise
                yield None, Quarantined(stage="dedup", source=doc.source, file=doc.file,
                                        position=doc.position, id=doc.id,
                                        error=f"{type(exc).__name__}: {exc}", excerpt=excerpt(doc.text))
                continue
            signature = hasher.signature_codes(fold_digits(codes)) if near else b""
            yield key, (doc.id, doc.source, doc.file, doc.position, doc.title, signature)
        for p in progress:
            p.close()

    def resolve(groups, count):
        for key, group in groups:
            if key is None:
                for bad in group:
                    count("dedup.read")
                    count("dedup.quarantined")
                    yield bad
            else:
                yield from resolve_group([DocRef(*m[:5]) for m in group], count)[1]

    def kept_members(group):
        key, members = group
        if key is not None:
            yield min(members, key=lambda m: m[0])      # the one resolve_group keeps

    pairs = _row_group_rdd(spark, documents_dir, partitions).mapPartitions(keyed)
    grouped = None
    if exact:
        grouped = pairs.groupByKey(partitions)
        if near:
            grouped = grouped.persist(StorageLevel.MEMORY_AND_DISK)
        counters = _run_parts(grouped, resolve, out, (Duplicate, Quarantined), "part")
    else:
        counters = {"dedup.read": table_rows(documents_dir) if remote else frame.count()}

    if near:
        def banded(members):
            yield from band_batches(MinHasher.from_options(options), members)

        def edges(groups):
            hasher, count = MinHasher.from_options(options), Counters()
            for _, batches in groups:
                for edge in group_edges(hasher, batches, options.threshold, options.verify, count):
                    yield "edge", edge
            yield "counts", count.as_dict()

        members = grouped.flatMap(kept_members) if exact else pairs.values()
        results = members.mapPartitions(banded).groupByKey(partitions).mapPartitions(edges).collect()
        if grouped is not None:
            grouped.unpersist()
        found = [value for kind, value in results if kind == "edge"]

        def exact_check(candidates):
            incident = spark.sparkContext.broadcast(incident_keys(candidates))

            def shingled(items):
                hasher = MinHasher.from_options(options)
                for path, index in items:
                    for row in read_row_group(path, index, "documents", ["id", "text"]):
                        keys = incident.value.get(row["id"])
                        if keys:
                            shingles = hasher.shingle_bytes(row["text"])
                            for key in keys:
                                yield key, (row["id"], shingles)

            similarities = dict(_row_group_rdd(spark, documents_dir, partitions).mapPartitions(shingled)
                                .groupByKey(partitions).mapValues(lambda m: exact_similarity(list(m))).collect())
            incident.unpersist()
            return similarities

        local = Counters()
        writer = TableWriter(out.table("duplicates"), "duplicates", "near-00000")
        for duplicate in near_duplicates(found, options.verify, options.threshold, exact_check, local):
            writer.add(duplicate)
        writer.close()
        counters = merge(counters, *(value for kind, value in results if kind == "counts"), local.as_dict())

    if remote:
        gone = spark.sparkContext.broadcast(_dropped_ids(out))

        def kept_documents(items, count):
            for doc in _documents(items):
                if doc.id not in gone.value:
                    yield doc

        _run_parts(_row_group_rdd(spark, documents_dir, partitions), kept_documents, out, (Document,), "kept")
        gone.unpersist()
        return counters
    kept = frame.join(_dropped_frame(spark, out), on="id", how="left_anti").select(*schema.field_names("documents"))
    kept.write.mode("overwrite").parquet(out.table("documents"))
    return counters


def segment(config: Config, documents_dir: str, out) -> dict[str, int]:
    spark = get_session(config)
    options, report = config.segment, out.progress_dir

    def run(items, count):
        segmentation = Segmentation(options)       # the model loads once per worker process
        progress = reporter("segment", report)
        for path, index in items:
            for piece in slices(read_row_group_table(path, index, "documents", SEGMENT_COLUMNS)):
                rows, quarantined = segmentation.process_table(piece, count)
                yield rows
                yield from quarantined
                progress.update(piece.num_rows, text_bytes(piece))
        progress.close()

    rdd = _row_group_rdd(spark, documents_dir, _partitions(spark, config))
    return _run_parts(rdd, run, out, (Segmented, Quarantined), "part")


def vocab(config: Config, segmented_dir: str, out) -> tuple[dict[str, int], dict[str, int]]:
    """Pre-token counts of the segmented table (``reduceByKey``), collected on the driver, and the counters.

    Each task counts its row groups with the core's ``PreTokenCounter`` and
    emits (pre-token, count) pairs plus its counters under tuple keys
    (``("counter", name)``), so one shuffle sums both and a retried task's
    output replaces, never adds to, the first attempt's.
    """
    spark = get_session(config)
    options, report = config.vocab, out.progress_dir

    def run(items):
        counter = PreTokenCounter(options)
        count = Counters()

        def rows():
            for path, index in items:
                yield from read_row_group(path, index, "segmented", ["id", "sentences"])

        yield from counter.count_rows(reporter("vocab", report).track(rows(), lambda row: (1, 0)), count).items()
        for name, n in count.as_dict().items():
            yield ("counter", name), n

    pairs = _row_group_rdd(spark, segmented_dir, _partitions(spark, config)).mapPartitions(run)
    counts: dict[str, int] = {}
    counters: dict[str, int] = {}
    for key, n in pairs.reduceByKey(add, _partitions(spark, config)).collect():
        if isinstance(key, tuple):
            counters[key[1]] = n
        else:
            counts[key] = n
    return counts, dict(sorted(counters.items()))



def shards(config: Config, segmented_dir: str, out, vocab: str, pools: int, summaries: str) -> dict[str, int]:
    """Tokenize (writing rejected/quarantined parts) -> pools -> keyed instances in pool files -> by first shard:
    a reference to the kept part, the surplus records out -> by destination shard -> one file per shard."""
    from pyspark import StorageLevel

    from pipeline.shards import builder as shard_builder
    from pipeline.shards.manifest import shard_count
    from pipeline.shards.seeds import pool_of

    spark = get_session(config)
    options, directory, report = config.shards, str(out.tmp), out.progress_dir
    tables = {cls: out.table(cls.TABLE) for cls in (Rejected, Quarantined)}

    def tokenize(index, items):
        faults.task_started("shards.tokenize", index)
        count = Counters()
        make = shard_builder.ShardBuilder.shared(options, vocab)    # the vocab loads once per worker process
        progress = reporter("shards", report)
        with _table_writers(tables, f"part-{index:05d}") as writers:
            for path, group in items:
                table = parquet_file(path).read_row_group(group, columns=SHARD_COLUMNS)
                progress.update(table.num_rows, table.nbytes)
                docs = []
                for result in make.tokenize_table(table, count):
                    if isinstance(result, (Rejected, Quarantined)):
                        writers[type(result)].add(result)
                    else:
                        docs.append((pool_of(options.seed, result.id, pools), result))
                # the documents go to a file, a section per pool; the shuffle moves (pool, reference) pairs
                yield from shard_builder.document_sections(docs, pools_dir)
            faults.task_ending("shards.tokenize", index)
        progress.close()
        yield None, count.as_dict()

    pools_dir = storage.join(storage.parent(summaries), ".pools")    # documents and instance bytes go through files

    rdd = _row_group_rdd(spark, segmented_dir, _partitions(spark, config))
    tokenized = rdd.mapPartitionsWithIndex(tokenize).persist(StorageLevel.DISK_ONLY)
    counters = merge(*tokenized.filter(lambda kv: kv[0] is None).values().collect())
    total_shards = shard_count(options, counters.get("shards.document_tokens", 0))

    def instances(items):
        make = shard_builder.ShardBuilder.shared(options, vocab)
        for pool, sections in items:
            docs = [doc for section in sections for doc in shard_builder.load_documents(section)]
            yield from shard_builder.pool_sections(pool, make.pool_instances(docs, shards=total_shards), total_shards,
                                                   pools_dir)

    docs = tokenized.filter(lambda kv: kv[0] is not None)
    keyed = (docs.groupByKey(max(1, min(pools, _partitions(spark, config))))
             .mapPartitions(instances).persist(StorageLevel.DISK_ONLY))

    def sizes(items):               # instances per first shard, summed in each task (no shuffle for a few numbers)
        totals: dict[int, int] = {}
        for shard, section in items:
            totals[shard] = totals.get(shard, 0) + section[3]
        yield totals

    per_shard = merge(*keyed.mapPartitions(sizes).collect())
    targets = shard_builder.shard_targets(sum(per_shard.values()), total_shards)
    moves = shard_builder.rebalance(dict(per_shard), total_shards)

    def split(shard, batches):      # batches: (shard, pool file reference) pairs
        yield from shard_builder.split_shard(shard, [section for _, section in batches], targets, moves).items()

    def write(shard, batches):      # batches: (shard, Kept reference or surplus records) pairs
        faults.task_started("shards.write", shard)
        summary = shard_builder.write_shard(directory, shard, total_shards, [part for _, part in batches],
                                            options)
        faults.task_ending("shards.write", shard)     # the shard file is written: a retry must replace it
        storage.makedirs(summaries)
        storage.write_text(storage.join(summaries, f"{shard:05d}.json"), json.dumps(summary))
        yield summary

    written = (keyed.partitionBy(total_shards, lambda shard: shard).mapPartitionsWithIndex(split)
               .partitionBy(total_shards, lambda shard: shard).mapPartitionsWithIndex(write).collect())
    keyed.unpersist()
    tokenized.unpersist()
    counters["shards.instances"] = sum(s["instances"] for s in written)
    return counters


__all__ = ["start", "ingest", "clean", "dedup", "segment", "vocab", "shards"]
