"""Spark adapters: one function per stage over RDDs of core records.

They only read, partition, group and write; the core decides.  Counters are
gathered per partition into a plain dict and added to one accumulator when the
partition is done.  Converters are built inside ``mapPartitions``, once per
partition, never pickled.
"""

from __future__ import annotations

from collections import Counter

from pyspark import AccumulatorParam, StorageLevel

from pipeline import schema
from pipeline.clean.stage import Cleaner
from pipeline.config import Config
from pipeline.counters import Counters
from pipeline.dedup.exact import DocRef, ExactKey, resolve_group
from pipeline.ingest.readers import read_file
from pipeline.progress import Progress
from pipeline.records import Document, Duplicate, Quarantined, Rejected, excerpt, from_row
from pipeline.spark.session import get_session, spark_schema


class _CounterParam(AccumulatorParam):
    def zero(self, value):
        return Counter()

    def addInPlace(self, a, b):
        a.update(b)
        return a


def _counted(accumulator, fn):
    """Wrap ``fn(records, count)`` so its counts reach ``accumulator`` when the partition ends."""
    def run(records):
        local = Counters()
        try:
            yield from fn(records, local)
        finally:
            accumulator.add(local.values)
    return run


def _row(record) -> tuple:
    return tuple(getattr(record, name) for name in schema.field_names(record.TABLE))


def _write(spark, rdd, table: str, path: str) -> None:
    frame = spark.createDataFrame(rdd.map(_row), spark_schema(table), verifySchema=False)
    frame.write.mode("overwrite").parquet(path)


def _read(spark, directory: str, partitions: int):
    frame = spark.read.schema(spark_schema("documents")).parquet(directory)
    rdd = frame.rdd.map(lambda row: from_row(Document, row.asDict()))
    return rdd.repartition(partitions) if partitions else rdd


def _split_write(spark, records, out, kinds: dict) -> None:
    """Write each record type of one RDD to its table (the RDD is computed once)."""
    records.persist(StorageLevel.MEMORY_AND_DISK)
    try:
        for table, record_type in kinds.items():
            subset = records.filter(lambda r, t=record_type: isinstance(r, t))
            _write(spark, subset, table, out.table(table))
    finally:
        records.unpersist()


def ingest(config: Config, files, out) -> dict[str, int]:
    spark = get_session(config)
    counts = spark.sparkContext.accumulator(Counter(), _CounterParam())
    max_bytes, show, total = config.ingest.max_record_bytes, config.progress, sum(f.size for f in files)

    def read(part, count):
        progress = Progress("ingest", total, enabled=show)
        for file in part:
            yield from read_file(file, max_bytes, count, progress)
        progress.close()

    rdd = spark.sparkContext.parallelize(files, max(len(files), 1)).mapPartitions(_counted(counts, read))
    _split_write(spark, rdd, out, {"documents": Document, "quarantined": Quarantined})
    return dict(sorted(counts.value.items()))


def clean(config: Config, documents_dir: str, out) -> dict[str, int]:
    spark = get_session(config)
    counts = spark.sparkContext.accumulator(Counter(), _CounterParam())
    options = config.clean

    def run(part, count):
        cleaner = Cleaner(options)
        for doc in part:
            yield cleaner.process(doc, count)

    rdd = _read(spark, documents_dir, config.spark.partitions).mapPartitions(_counted(counts, run))
    _split_write(spark, rdd, out, {"documents": Document, "rejected": Rejected, "quarantined": Quarantined})
    return dict(sorted(counts.value.items()))


def dedup(config: Config, documents_dir: str, out) -> dict[str, int]:
    """Exact dedup: keys and :class:`DocRef` records go through the shuffle, never the text; the kept
    documents are the input minus the dropped ids (a left anti join, done in the JVM)."""
    spark = get_session(config)
    counts = spark.sparkContext.accumulator(Counter(), _CounterParam())
    key_convert = config.dedup.key_convert
    frame = spark.read.schema(spark_schema("documents")).parquet(documents_dir)
    if not config.dedup.exact:
        frame.write.mode("overwrite").parquet(out.table("documents"))
        empty = spark.sparkContext.emptyRDD()
        _write(spark, empty, "duplicates", out.table("duplicates"))
        _write(spark, empty, "quarantined", out.table("quarantined"))
        return {}

    def keyed(rows, count):
        key = ExactKey(key_convert)
        for row in rows:
            doc = from_row(Document, row.asDict())
            try:
                yield key(doc), DocRef.of(doc)
            except Exception as exc:
                count("dedup.read")
                count("dedup.quarantined")
                yield None, Quarantined(stage="dedup", source=doc.source, file=doc.file, position=doc.position,
                                        id=doc.id, error=f"{type(exc).__name__}: {exc}", excerpt=excerpt(doc.text))

    def resolve(groups, count):
        for key, group in groups:
            if key is None:
                yield from group
            else:
                yield from resolve_group(group, count)[1]

    columns = ["id", "source", "file", "position", "title", "text"]
    refs = frame.select(*columns).rdd
    if config.spark.partitions:
        refs = refs.repartition(config.spark.partitions)
    dropped = refs.mapPartitions(_counted(counts, keyed)).groupByKey().mapPartitions(_counted(counts, resolve))
    _split_write(spark, dropped, out, {"duplicates": Duplicate, "quarantined": Quarantined})
    dropped_ids = (spark.read.schema(spark_schema("duplicates")).parquet(out.table("duplicates")).select("id")
                   .union(spark.read.schema(spark_schema("quarantined")).parquet(out.table("quarantined"))
                          .select("id")))
    kept = frame.join(dropped_ids, on="id", how="left_anti").select(*schema.field_names("documents"))
    kept.write.mode("overwrite").parquet(out.table("documents"))
    return dict(sorted(counts.value.items()))


__all__ = ["ingest", "clean", "dedup"]
