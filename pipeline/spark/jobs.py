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
from pipeline.dedup.exact import ExactKey, resolve_group
from pipeline.ingest.readers import read_file
from pipeline.progress import Progress
from pipeline.records import Document, Duplicate, Quarantined, Rejected, from_row
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
    spark = get_session(config)
    counts = spark.sparkContext.accumulator(Counter(), _CounterParam())
    key_convert = config.dedup.key_convert
    docs = _read(spark, documents_dir, config.spark.partitions)
    if not config.dedup.exact:
        _split_write(spark, docs, out, {"documents": Document, "duplicates": Duplicate,
                                        "quarantined": Quarantined})
        return {}

    def keyed(part, count):
        key = ExactKey(key_convert)
        for doc in part:
            try:
                yield key(doc), doc
            except Exception as exc:
                count("dedup.read")
                count("dedup.quarantined")
                yield None, Quarantined(stage="dedup", source=doc.source, file=doc.file, position=doc.position,
                                        id=doc.id, error=f"{type(exc).__name__}: {exc}")

    def resolve(groups, count):
        for key, group in groups:
            if key is None:
                yield from group
                continue
            kept, duplicates = resolve_group(group, count)
            yield kept
            yield from duplicates

    pairs = docs.mapPartitions(_counted(counts, keyed))
    resolved = pairs.groupByKey().mapPartitions(_counted(counts, resolve))
    _split_write(spark, resolved, out, {"documents": Document, "duplicates": Duplicate,
                                        "quarantined": Quarantined})
    return dict(sorted(counts.value.items()))


__all__ = ["ingest", "clean", "dedup"]
