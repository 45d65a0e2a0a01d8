"""Spark adapters: one function per stage, around the core.

Spark schedules, partitions and shuffles; the Python tasks read their input
row groups and write their output parts with pyarrow (``TableWriter``), so
records never make the Python-to-JVM round trip.  Each task returns its
counters as its result: the driver sums what successful tasks returned, so a
retried task is never counted twice.  Converters are built inside the task,
once per partition, never pickled.
"""

from __future__ import annotations

from pathlib import Path

from pipeline.clean.stage import Cleaner
from pipeline.config import Config
from pipeline.counters import Counters, merge
from pipeline.dedup.exact import DocRef, ExactKey, resolve_group
from pipeline.ingest.readers import read_file
from pipeline.outputs import TableWriter, read_row_group, row_groups
from pipeline.progress import Progress
from pipeline.records import Document, Duplicate, Quarantined, Rejected, excerpt, from_row
from pipeline.spark.session import get_session, spark_schema
from pipeline import schema


def _run_parts(rdd, process, out, outputs: tuple[type, ...], part: str) -> dict[str, int]:
    """Run ``process(items, count)`` over each partition, writing each record type to its table."""
    dirs = {cls: out.table(cls.TABLE) for cls in outputs}
    for directory in dirs.values():
        Path(directory).mkdir(parents=True, exist_ok=True)

    def run(index, items):
        count = Counters()
        writers = {cls: TableWriter(dirs[cls], cls.TABLE, f"{part}-{index:05d}") for cls in outputs}
        try:
            for record in process(items, count):
                writers[type(record)].add(record)
            for writer in writers.values():
                writer.close()
        except BaseException:
            for writer in writers.values():
                writer.abort()
            raise
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


def start(config: Config) -> None:
    """Start (or reuse) the Spark session, so stage timings do not include the JVM start."""
    get_session(config)


def ingest(config: Config, files, out) -> dict[str, int]:
    spark = get_session(config)
    max_bytes, show, total = config.ingest.max_record_bytes, config.progress, sum(f.size for f in files)

    def read(part, count):
        progress = Progress("ingest", total, enabled=show)
        for file in part:
            yield from read_file(file, max_bytes, count, progress)
        progress.close()

    rdd = spark.sparkContext.parallelize(files, max(len(files), 1))
    return _run_parts(rdd, read, out, (Document, Quarantined), "part")


def clean(config: Config, documents_dir: str, out) -> dict[str, int]:
    spark = get_session(config)
    options, show = config.clean, config.progress

    def run(items, count):
        cleaner = Cleaner(options)
        progress = Progress("clean", enabled=show)
        for doc in _documents(items):
            progress.update(1, len(doc.text.encode("utf-8", "surrogatepass")))
            yield cleaner.process(doc, count)
        progress.close()

    rdd = _row_group_rdd(spark, documents_dir, _partitions(spark, config))
    return _run_parts(rdd, run, out, (Document, Rejected, Quarantined), "part")


def dedup(config: Config, documents_dir: str, out) -> dict[str, int]:
    """Exact dedup: keys and :class:`DocRef` records go through the shuffle, never the text; the kept
    documents are the input minus the dropped ids (a left anti join, done in the JVM)."""
    spark = get_session(config)
    frame = spark.read.schema(spark_schema("documents")).parquet(documents_dir)
    if not config.dedup.exact:
        frame.write.mode("overwrite").parquet(out.table("documents"))
        for cls in (Duplicate, Quarantined):
            Path(out.table(cls.TABLE)).mkdir(parents=True, exist_ok=True)
        return {}
    key_convert = config.dedup.key_convert

    def keyed(items):
        key = ExactKey(key_convert)
        for doc in _documents(items, ["id", "source", "file", "position", "title", "text"]):
            try:
                yield key(doc), DocRef.of(doc)
            except Exception as exc:  # counted where it is written, below
                yield None, Quarantined(stage="dedup", source=doc.source, file=doc.file, position=doc.position,
                                        id=doc.id, error=f"{type(exc).__name__}: {exc}", excerpt=excerpt(doc.text))

    def resolve(groups, count):
        for key, group in groups:
            if key is None:
                for bad in group:
                    count("dedup.read")
                    count("dedup.quarantined")
                    yield bad
            else:
                yield from resolve_group(group, count)[1]

    partitions = _partitions(spark, config)
    pairs = _row_group_rdd(spark, documents_dir, partitions).mapPartitions(keyed)
    counters = _run_parts(pairs.groupByKey(partitions), resolve, out, (Duplicate, Quarantined), "part")
    dropped_ids = (spark.read.schema(spark_schema("duplicates")).parquet(out.table("duplicates")).select("id")
                   .union(spark.read.schema(spark_schema("quarantined")).parquet(out.table("quarantined"))
                          .select("id")))
    kept = frame.join(dropped_ids, on="id", how="left_anti").select(*schema.field_names("documents"))
    kept.write.mode("overwrite").parquet(out.table("documents"))
    return counters


__all__ = ["start", "ingest", "clean", "dedup"]
