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
import math
from operator import add

import pyarrow as pa

from pipeline import faults, storage
from pipeline.clean.stage import Cleaner
from pipeline.config import Config
from pipeline.counters import Counters, merge
from pipeline.dedup.idfilter import IdFilter
from pipeline.dedup.minhash import edge_key
from pipeline.dedup.stage import COLUMNS as DEDUP_COLUMNS, DROPPED_TABLES, Deduplicator
from pipeline.engine import Counts, Job
from pipeline.ingest.readers import read_file
from pipeline.outputs import TableWriter, read_row_group, read_row_group_table, row_groups, table_bytes
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


def _persisted(rdd):
    from pyspark import StorageLevel

    return rdd.persist(StorageLevel.MEMORY_AND_DISK)


def _split_counts(tagged):
    """An RDD of ("counts", dict) and (kind, item) pairs (tasks' counters beside their items) -> (the items'
    RDD, persisted, the counters summed): tasks return counters so that a retried task is counted once."""
    tagged = _persisted(tagged)
    counters = merge(*tagged.filter(lambda kv: kv[0] == "counts").values().collect())
    items = _persisted(tagged.filter(lambda kv: kv[0] != "counts").values())
    items.count()
    tagged.unpersist()
    return items, counters


def _id_filter(ids, context):
    """A broadcast :class:`IdFilter` of an RDD of ids, sized from their count (16 bits an id, so about 0.2% of
    other ids pass); None when there are none.  The driver holds the filter: bits, not ids."""
    total = ids.count()
    if not total:
        return None
    bits = min(max(16 * total, 1 << 16), 1 << 30)
    bits = (bits + 7) // 8 * 8
    merged = ids.mapPartitions(lambda part: [IdFilter.of(part, bits)]).treeReduce(IdFilter.merge)
    return context.broadcast(merged)


def _near_clusters(edges, out, options, partitions: int) -> Counts:
    """Verified edges -> the near duplicates, written by tasks: components on the cluster
    (:mod:`pipeline.spark.graph`), each dropped document's figures joined to it, one component per group."""
    from pipeline.spark.graph import components

    if edges.isEmpty():
        return {}
    labels, _ = components(edges.map(lambda e: (e[0].id, e[1].id)), partitions)
    refs = edges.flatMap(lambda e: ((e[0].id, e[0]), (e[1].id, e[1]))).reduceByKey(lambda x, y: x, partitions)
    best = edges.flatMap(lambda e: ((e[0].id, e[2]), (e[1].id, e[2]))).reduceByKey(max, partitions)
    direct = edges.map(lambda e: (tuple(sorted((e[0].id, e[1].id))), e[2]))
    clustered = (labels.join(refs.join(best, partitions), partitions)     # (node, (root, (ref, best)))
                 .map(lambda kv: ((kv[1][0], kv[0]), kv[1][1]))
                 .leftOuterJoin(direct, partitions)                         # ((root, node), ((ref, best), direct))
                 .map(lambda kv: (kv[0][0], (kv[1][0][0], kv[1][0][1] if kv[1][1] is None else kv[1][1])))
                 .groupByKey(partitions).join(refs, partitions))           # (root, (members, root's ref))

    def write(items, count):
        for _, (members, kept) in sorted(items, key=lambda kv: kv[0]):
            yield from Deduplicator.cluster_duplicates(kept, members, count)

    counters = _run_parts(clustered, write, out, (Duplicate,), "near")
    labels.unpersist()
    return counters


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
    def _partitions(config: Config, source: str | None = None) -> int:
        """Tasks per stage: the configured number, else two per core Spark has; with ``source`` (a table) at least
        one per ``spark.partition_mb`` of its Parquet files, so a task's share does not grow with the input."""
        if config.spark.partitions:
            return config.spark.partitions
        cores = 2 * get_session(config).sparkContext.defaultParallelism
        if source is None or config.spark.partition_mb <= 0:
            return cores
        return max(cores, math.ceil(table_bytes(source) / (config.spark.partition_mb * 2**20)))

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

    def shared_ids(self, job: Job) -> list[str]:
        """The ids of ``job.source`` taken more than once: counted by id in Spark's shuffle; only those come back."""
        def ids(items):
            for table in _tables(items, "documents", ["id"]):
                yield from ((doc_id, 1) for doc_id in table.column("id").to_pylist())

        partitions = self._partitions(job.config)
        return sorted(self._row_groups(job, partitions).mapPartitions(ids).reduceByKey(add, partitions)
                      .filter(lambda kv: kv[1] > 1).keys().collect())

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
        group keeps goes on to the band shuffle without a second read.  Candidate edges stay on the cluster:
        repeats dropped by key, checked (:meth:`_checked`), clustered (:func:`_near_clusters`) and written by
        tasks; the kept documents are the input minus every dropped id (:meth:`_kept`).  The driver holds
        counters, a fixed-size id filter and the list of row groups, nothing per document.
        """
        from pyspark import StorageLevel

        config, out, options, report = job.config, job.out, job.config.dedup, job.progress_dir
        partitions = self._partitions(config, job.source)
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
            tagged = members.mapPartitions(banded).groupByKey(partitions).mapPartitions(edges)
            found_edges, found = _split_counts(tagged)
            # a pair sharing several bands is an edge of each: keep one (they are equal)
            candidates = _persisted(found_edges.map(lambda e: ((e[0].id, e[1].id), e))
                                    .reduceByKey(lambda x, y: x, partitions).values())
            candidates.count()
            found_edges.unpersist()
            counters = merge(counters, found)
            if grouped is not None:
                grouped.unpersist()
            if options.verify == "exact":
                candidates, found = self._checked(job, candidates, partitions)
                counters = merge(counters, found)
            counters = merge(counters, _near_clusters(candidates, out, options, partitions))
            candidates.unpersist()

        counters = merge(counters, self._kept(job, partitions))
        return counters

    def _checked(self, job: Job, candidates, partitions: int):
        """The candidate edges whose exact similarity passes the rule, checked on the cluster: the documents on
        an edge are found through a fixed-size id filter (the driver holds that, not the edges), their shingle
        sets joined to the edges by id, each edge's pair compared where it lands."""
        options, context = job.config.dedup, get_session(job.config).sparkContext
        keyed = candidates.map(lambda e: (edge_key(e[0].id, e[1].id), e))
        ends = _persisted(keyed.flatMap(lambda ke: ((ke[1][0].id, ke[0]), (ke[1][1].id, ke[0]))))
        wanted = _id_filter(ends.keys(), context)
        if wanted is None:
            ends.unpersist()
            return candidates, {}

        def shingled(items):
            dedup = Deduplicator(options)
            for table in _tables(items, "documents", ["id", "text"]):
                yield from dedup.shingles_of(table, wanted.value)

        shingles = self._row_groups(job, partitions).mapPartitions(shingled)
        similarities = (ends.join(shingles, partitions).map(lambda kv: (kv[1][0], (kv[0], kv[1][1])))
                        .groupByKey(partitions).mapValues(lambda m: Deduplicator.similarity(list(m))))

        def check(items):
            dedup, count = Deduplicator(options), Counters()
            items = list(items)
            for edge in dedup.verified([e for _, (e, _) in items], {k: v for k, (_, v) in items}, count):
                yield "edge", edge
            yield "counts", count.as_dict()

        checked, found = _split_counts(keyed.join(similarities, partitions).mapPartitions(check))
        ends.unpersist()
        wanted.unpersist()
        candidates.unpersist()
        return checked, found

    def _kept(self, job: Job, partitions: int) -> Counts:
        """The documents table without the dropped ids, row group by row group.  The dropped ids stay on the
        cluster: a fixed-size id filter passes most rows at once, the rows it names are joined with the dropped
        ids, and each row group's task gets the dropped ids of its own rows."""
        config, out, options = job.config, job.out, job.config.dedup
        context = get_session(config).sparkContext
        groups = list(enumerate(row_groups(job.source)))
        slices = max(min(partitions, len(groups)), 1)
        dropped_groups = [g for t in DROPPED_TABLES for g in row_groups(out.table(t))]
        dropped = _persisted(context.parallelize(dropped_groups, max(min(partitions, len(dropped_groups)), 1))
                             .mapPartitions(lambda items: (i for t in _tables(items, "dropped", ["id"])
                                                           for i in t.column("id").to_pylist() if i is not None)))
        wanted = _id_filter(dropped, context)
        placed = context.parallelize(groups, slices).map(lambda ig: (ig[0], ("group", ig[1])))
        if wanted is not None:
            def suspects(items):
                for index, (path, group) in items:
                    ids = read_row_group_table(path, group, "documents", ["id"]).column("id").to_pylist()
                    yield from ((doc_id, index) for doc_id in ids if doc_id in wanted.value)

            confirmed = (context.parallelize(groups, slices).mapPartitions(suspects)
                         .join(dropped.map(lambda i: (i, None)), partitions)
                         .map(lambda kv: (kv[1][0], ("drop", kv[0]))))
            placed = placed.union(confirmed)
        count_of = len(groups) or 1
        placed = placed.partitionBy(slices, lambda index: index * slices // count_of)

        def kept(items, count):
            dedup, found, drops = Deduplicator(options), {}, {}
            for index, (kind, value) in items:
                if kind == "group":
                    found[index] = value
                else:
                    drops.setdefault(index, set()).add(value)
            for index in sorted(found):
                path, group = found[index]
                yield dedup.kept(read_row_group_table(path, group, "documents"), drops.get(index, ()), count)

        counters = _run_parts(placed, kept, out, (Document,), "kept")
        dropped.unpersist()
        if wanted is not None:
            wanted.unpersist()
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
