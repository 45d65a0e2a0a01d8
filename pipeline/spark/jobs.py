"""The Spark engine: one method per stage, around the core.

Spark schedules, partitions and shuffles; the Python tasks read their input
row groups and write their output parts with pyarrow (``TableWriter``), so
records never make the Python-to-JVM round trip.  Each task returns its
counters as its result: the driver sums what successful tasks returned, so a
retried task is never counted twice.  Converters are built inside the task,
once per partition, never pickled.

Paths may be local or object-store URIs (``gs://``; :mod:`pipeline.storage`):
the tasks read and write through pyarrow either way, so no Hadoop connector is
needed.
"""

from __future__ import annotations

import contextlib
from operator import add

import pyarrow as pa

from pipeline import faults, storage
from pipeline.clean.stage import Cleaner
from pipeline.config import Config
from pipeline.counters import Counters, merge
from pipeline.dedup.stage import COLUMNS as DEDUP_COLUMNS, DROPPED_TABLES, Deduplicator, dropped_ids
from pipeline.engine import Counts, Job
from pipeline.ingest.readers import read_file
from pipeline.outputs import TableWriter, read_row_group, read_row_group_table, row_groups
from pipeline.progress import reporter, text_size
from pipeline.records import Document, Duplicate, Quarantined, Rejected, Segmented, from_row
from pipeline.segment.stage import COLUMNS as SEGMENT_COLUMNS, Segmentation, slices, text_bytes
from pipeline.shards import stage as shard_stage
from pipeline.spark.session import get_session
from pipeline.vocab.counting import PreTokenCounter



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


def _run_parts(rdd, process, out, outputs: tuple[type, ...], part: str) -> Counts:
    """Run ``process(items, count)`` over each partition, writing each record type to its table (an Arrow
    table yielded is rows of the first output table)."""
    dirs = {cls: out.table(cls.TABLE) for cls in outputs}
    for directory in dirs.values():
        storage.makedirs(directory)
    step = out.stage

    def run(index, items):
        count = Counters()
        with _table_writers(dirs, f"{part}-{index:05d}") as writers, faults.attempt(step, index):
            for record in process(items, count):
                if isinstance(record, pa.Table):
                    writers[outputs[0]].add_table(record)
                else:
                    writers[type(record)].add(record)
        yield count.as_dict()

    return merge(*rdd.mapPartitionsWithIndex(run).collect())


def _tables(items, name: str, columns: list[str] | None = None):
    """The (file, row group) pairs of a partition, each as an Arrow table."""
    for path, index in items:
        yield read_row_group_table(path, index, name, columns)


def _warm(_):
    """Import what the stage tasks use, in a Python worker."""
    import pipeline.clean.stage  # noqa: F401
    import pipeline.dedup.stage  # noqa: F401
    import pipeline.ingest.readers  # noqa: F401
    import pipeline.segment.stage  # noqa: F401
    import pipeline.shards.builder  # noqa: F401
    import pipeline.vocab.counting  # noqa: F401

    return 0


class SparkEngine:
    """The stages on Spark (:class:`pipeline.engine.Engine`)."""

    def start(self, config: Config) -> None:
        """Start (or reuse) the Spark session and its Python workers, so stage timings do not include the JVM
        start or the workers' imports (workers are reused across jobs)."""
        spark = get_session(config)
        slots = spark.sparkContext.defaultParallelism
        spark.sparkContext.parallelize(range(slots), slots).map(_warm).collect()

    @staticmethod
    def _partitions(config: Config) -> int:
        """Tasks per stage: the configured number, else two per core Spark has."""
        return config.spark.partitions or 2 * get_session(config).sparkContext.defaultParallelism

    def _row_groups(self, job: Job, partitions: int | None = None):
        """(file, row group) pairs of the job's input table, spread over at most ``partitions`` tasks."""
        groups = row_groups(job.source)
        partitions = partitions or self._partitions(job.config)
        return get_session(job.config).sparkContext.parallelize(groups, max(min(partitions, len(groups)), 1))

    def ingest(self, job: Job) -> Counts:
        files, max_bytes, report = list(job.files), job.config.ingest.max_record_bytes, job.progress_dir
        total = sum(f.size for f in files)

        def read(part, count):
            progress = reporter("ingest", report, total)
            for file in part:
                yield from read_file(file, max_bytes, count, progress)
            progress.close()

        rdd = get_session(job.config).sparkContext.parallelize(files, max(len(files), 1))
        return _run_parts(rdd, read, job.out, (Document, Quarantined), "part")

    def clean(self, job: Job) -> Counts:
        options, report = job.config.clean, job.progress_dir

        def run(items, count):
            cleaner = Cleaner(options)
            rows = (row for table in _tables(items, "documents") for row in table.to_pylist())
            for doc in reporter("clean", report).track((from_row(Document, row) for row in rows), text_size):
                yield cleaner.process(doc, count)

        return _run_parts(self._row_groups(job), run, job.out, (Document, Rejected, Quarantined), "part")

    def dedup(self, job: Job) -> Counts:
        """Exact duplicates and near-duplicate candidates from one read, the exact check, then the kept documents.

        Keys with member tuples (reference, signature) go through the exact-key shuffle, never the text; the
        grouped keys are kept (memory, then disk) so that the duplicates are written from them and what each
        group keeps goes on to the band shuffle without a second read.  Candidate edges are collected to the
        driver for the near-duplicate step; the kept documents are the input minus every dropped id.
        """
        from pyspark import StorageLevel

        config, out, options, report = job.config, job.out, job.config.dedup, job.progress_dir
        context, partitions = get_session(config).sparkContext, self._partitions(config)
        for cls in (Duplicate, Quarantined):
            storage.makedirs(out.table(cls.TABLE))
        counters: dict[str, int] = {}

        def keyed(items):
            dedup = Deduplicator(options)
            progress = [reporter(label, report) for label in dedup.progress_labels]
            for table in _tables(items, "documents", DEDUP_COLUMNS):
                for p in progress:
                    p.update(table.num_rows, table.nbytes)
                yield from dedup.keyed(table)
            for p in progress:
                p.close()

        def resolve(groups, count):
            dedup = Deduplicator(options)
            for key, members in groups:
                yield from dedup.resolve(key, members, count)[1]

        pairs = self._row_groups(job, partitions).mapPartitions(keyed)
        grouped = None
        if options.exact:
            grouped = pairs.groupByKey(partitions)
            if options.near:
                grouped = grouped.persist(StorageLevel.MEMORY_AND_DISK)
            counters = _run_parts(grouped, resolve, out, (Duplicate, Quarantined), "part")

        if options.near:
            def banded(members):
                yield from Deduplicator(options).band_batches(members)

            def edges(groups):
                dedup, count = Deduplicator(options), Counters()
                for _, batches in groups:
                    for edge in dedup.edges(batches, count):
                        yield "edge", edge
                yield "counts", count.as_dict()

            members = (grouped.map(lambda group: Deduplicator.kept_member(*group)).filter(lambda m: m is not None)
                       if options.exact else pairs.values())
            results = members.mapPartitions(banded).groupByKey(partitions).mapPartitions(edges).collect()
            if grouped is not None:
                grouped.unpersist()

            def exact_check(candidates):
                incident = context.broadcast(Deduplicator.incident(candidates))

                def shingled(items):
                    dedup = Deduplicator(options)
                    for table in _tables(items, "documents", ["id", "text"]):
                        yield from dedup.shingles(table, incident.value)

                similarities = dict(self._row_groups(job, partitions).mapPartitions(shingled)
                                    .groupByKey(partitions).mapValues(lambda m: Deduplicator.similarity(list(m)))
                                    .collect())
                incident.unpersist()
                return similarities

            local = Counters()
            writer = TableWriter(out.table("duplicates"), "duplicates", "near-00000")
            for duplicate in Deduplicator(options).near_duplicates(
                    [value for kind, value in results if kind == "edge"], exact_check, local):
                writer.add(duplicate)
            writer.close()
            counters = merge(counters, *(value for kind, value in results if kind == "counts"), local.as_dict())

        gone = context.broadcast(dropped_ids(out.table(t) for t in DROPPED_TABLES))

        def kept(items, count):
            dedup = Deduplicator(options)
            for table in _tables(items, "documents"):
                yield dedup.kept(table, gone.value, count)

        counters = merge(counters, _run_parts(self._row_groups(job, partitions), kept, out, (Document,), "kept"))
        gone.unpersist()
        return counters

    def segment(self, job: Job) -> Counts:
        options, report = job.config.segment, job.progress_dir

        def run(items, count):
            segmentation = Segmentation(options)       # the model loads once per worker process
            progress = reporter("segment", report)
            for table in _tables(items, "documents", SEGMENT_COLUMNS):
                for piece in slices(table):
                    rows, quarantined = segmentation.process_table(piece, count)
                    yield rows
                    yield from quarantined
                    progress.update(piece.num_rows, text_bytes(piece))
            progress.close()

        return _run_parts(self._row_groups(job), run, job.out, (Segmented, Quarantined), "part")

    def vocab(self, job: Job) -> Counts:
        """Pre-token counts of the segmented table (``reduceByKey``), written as ``token<TAB>count`` files under
        the job's work directory by the reducing tasks; the counters.

        Each task counts its row groups with the core's ``PreTokenCounter`` and
        emits (pre-token, count) pairs plus its counters under tuple keys
        (``("counter", name)``), so one shuffle sums both and a retried task's
        output replaces, never adds to, the first attempt's.
        """
        options, report, work = job.config.vocab, job.progress_dir, job.work
        partitions = self._partitions(job.config)

        def run(items):
            counter, count = PreTokenCounter(options), Counters()

            def rows():
                for path, index in items:
                    yield from read_row_group(path, index, "segmented", ["id", "sentences"])

            yield from counter.count_rows(reporter("vocab", report).track(rows(), lambda row: (1, 0)), count).items()
            for name, n in count.as_dict().items():
                yield ("counter", name), n

        def write(index, pairs):
            counters, lines = {}, []
            for key, n in pairs:
                if isinstance(key, tuple):
                    counters[key[1]] = n
                else:
                    lines.append(f"{key}\t{n}\n")
            if lines:
                with storage.atomic_output(storage.join(work, f"counts-{index:05d}.tsv")) as f:
                    f.write("".join(lines).encode("utf-8"))
            yield counters

        storage.makedirs(work)
        summed = self._row_groups(job).mapPartitions(run).reduceByKey(add, partitions)
        return dict(sorted(merge(*summed.mapPartitionsWithIndex(write).collect()).items()))

    def shards(self, job: Job) -> Counts:
        """Tokenize (writing rejected/quarantined parts) -> pools -> keyed instances in pool files -> by first
        shard: a reference to the kept part, the surplus records out -> by destination shard -> one file per
        shard."""
        from pyspark import StorageLevel

        from pipeline.shards import builder as shard_builder
        from pipeline.shards.seeds import pool_of
        from pipeline.shards.stage import pools_dir, shard_total, summaries_dir, write_summary

        options, vocab, pools, out, report = job.config.shards, job.vocab, job.pools, job.out, job.progress_dir
        directory, summaries, spill = str(out.tmp), summaries_dir(out), pools_dir(out)
        tables = {cls: out.table(cls.TABLE) for cls in (Rejected, Quarantined)}
        partitions = self._partitions(job.config)

        def tokenize(index, items):
            count = Counters()
            make = shard_builder.ShardBuilder.shared(options, vocab)    # the vocab loads once per worker process
            progress = reporter("shards", report)
            with _table_writers(tables, f"part-{index:05d}") as writers, faults.attempt("shards.tokenize", index):
                for table in _tables(items, "segmented", shard_stage.COLUMNS):
                    progress.update(table.num_rows, table.nbytes)
                    docs = []
                    for result in make.tokenize_table(table, count):
                        if isinstance(result, (Rejected, Quarantined)):
                            writers[type(result)].add(result)
                        else:
                            docs.append((pool_of(options.seed, result.id, pools), result))
                    # the documents go to a file, a section per pool; the shuffle moves (pool, reference) pairs
                    yield from shard_builder.document_sections(docs, spill)
            progress.close()
            yield None, count.as_dict()

        tokenized = self._row_groups(job).mapPartitionsWithIndex(tokenize).persist(StorageLevel.DISK_ONLY)
        counters = merge(*tokenized.filter(lambda kv: kv[0] is None).values().collect())
        total_shards = shard_total(options, counters.get("shards.document_tokens", 0))

        def instances(items):
            make = shard_builder.ShardBuilder.shared(options, vocab)
            for pool, sections in items:
                docs = [doc for section in sections for doc in shard_builder.load_documents(section)]
                yield from shard_builder.pool_sections(pool, make.pool_instances(docs, shards=total_shards),
                                                       total_shards, spill)

        docs = tokenized.filter(lambda kv: kv[0] is not None)
        keyed = (docs.groupByKey(max(1, min(pools, partitions)))
                 .mapPartitions(instances).persist(StorageLevel.DISK_ONLY))

        def sizes(items):           # instances per first shard, summed in each task (no shuffle for a few numbers)
            totals: dict[int, int] = {}
            for shard, section in items:
                totals[shard] = totals.get(shard, 0) + section.instances
            yield totals

        per_shard = merge(*keyed.mapPartitions(sizes).collect())
        targets = shard_builder.shard_targets(sum(per_shard.values()), total_shards)
        moves = shard_builder.rebalance(dict(per_shard), total_shards)

        def split(shard, batches):      # batches: (shard, pool file reference) pairs
            yield from shard_builder.split_shard(shard, [section for _, section in batches], targets, moves).items()

        def write(shard, batches):      # batches: (shard, Kept reference or surplus records) pairs
            with faults.attempt("shards.write", shard):     # the shard file is written: a retry must replace it
                summary = shard_builder.write_shard(directory, shard, total_shards, [part for _, part in batches],
                                                    options)
            write_summary(summaries, summary)
            yield summary

        written = (keyed.partitionBy(total_shards, lambda shard: shard).mapPartitionsWithIndex(split)
                   .partitionBy(total_shards, lambda shard: shard).mapPartitionsWithIndex(write).collect())
        keyed.unpersist()
        tokenized.unpersist()
        counters["shards.instances"] = sum(s["instances"] for s in written)
        return counters


ENGINE = SparkEngine()
