"""Unique document ids after ingest.

A document's id is ``<source>:<native id>`` where its format has one (see
``readers``).  Native ids are unique within one dataset, not across datasets:
a zhwiki ``<doc>`` extraction and wiki2019zh read as one source both call the
article 数学 ``13``.  Every later stage names documents by id (the dedup
union-find, the ``duplicates`` table, the shards' seeds), so two documents
sharing one would be taken for one: near-duplicates between them go unseen and
their instances draw the same random choices.

Which ids are taken more than once is an engine step (``Engine.shared_ids``:
a group by id on Spark; on an in-process runner :func:`shared_ids_on_disk`,
ids hash-partitioned to disk and counted one partition at a time), so no
process holds the id column.  ``make_unique`` then runs on the driver with
those ids alone, reading the ingest table one file at a time: when an id is
taken more than once the first holder in (file, position) order keeps it and
each later one takes the id of a format without native ids,
``<source>:<relpath>:<position>`` (with ``#2``, ``#3``, ... appended in the
pathological case that this is taken too).  Only the files holding a renamed
document are rewritten, row group by row group.  The choice depends on the
input alone, not on the engine or how it split the work.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from pipeline.ingest.files import InputFile
from pipeline.outputs import TableWriter, parquet_file, parquet_files

TABLE = "documents"
_COLUMNS = ["id", "source", "file", "position"]


def fallback_id(source: str, relpath: str, position: int) -> str:
    """The id of a document of a format without native ids (``readers``)."""
    return f"{source}:{relpath}:{position:09d}"


def make_unique(table_dir: str, files: list[InputFile], shared: list[str] | None = None) -> int:
    """Give every document of the ingest table ``table_dir`` an id of its own; returns how many were renamed.
    ``shared``: the ids taken more than once (an engine's ``shared_ids``); None counts them here, one table
    file at a time through disk (:func:`shared_ids_on_disk` in a temporary directory)."""
    parts = parquet_files(table_dir)
    if not parts:
        return 0
    if shared is None:
        import tempfile

        with tempfile.TemporaryDirectory(prefix="wwm-ids-") as work:
            shared = shared_ids_on_disk(table_dir, work)
    if not shared:
        return 0
    shared_ids = pa.array(sorted(shared), pa.string())
    relpaths = {f.path: f.relpath for f in files}
    holders = []          # (file, position, id, source, part, row) of every document whose id is shared
    for part, path in enumerate(parts):
        part_ids = _ids(path)
        rows = pc.indices_nonzero(pc.is_in(part_ids, value_set=shared_ids)).to_pylist()
        if not rows:
            continue
        picked = parquet_file(path).read(columns=_COLUMNS).take(rows).to_pydict()
        holders += [(picked["file"][k], picked["position"][k], picked["id"][k], picked["source"][k], part, row)
                    for k, row in enumerate(rows)]
    holders.sort(key=lambda h: (h[0], h[1], h[4], h[5]))
    first_seen: set[str] = set()
    later = []                         # (part, row, fallback id) of every holder after the first
    for file, position, doc_id, source, part, row in holders:
        if doc_id in first_seen:
            later.append((part, row, fallback_id(source, relpaths.get(file, file), position)))
        else:
            first_seen.add(doc_id)
    new = _unused([base for _, _, base in later], parts)
    renames: dict[int, dict[int, str]] = {}
    for (part, row, _), doc_id in zip(later, new):
        renames.setdefault(part, {})[row] = doc_id
    for part, rows in renames.items():
        _rewrite(parts[part], rows)
    return sum(len(rows) for rows in renames.values())


def _ids(path: str) -> pa.Array:
    return parquet_file(path).read(columns=["id"]).column("id").combine_chunks()


def _unused(bases: list[str], parts: list[str]) -> list[str]:
    """``bases`` made distinct from each other and from every id of the table files ``parts`` (read one at a
    time): ``#2``, ``#3``, ... appended where needed."""
    out = list(bases)
    n = 1
    while True:
        candidates = pa.array(out, pa.string())
        clash = [False] * len(out)
        for path in parts:
            hits = pc.is_in(candidates, value_set=_ids(path)).to_pylist()
            clash = [c or h for c, h in zip(clash, hits)]
        seen: set[str] = set()
        for k, doc_id in enumerate(out):
            clash[k] = clash[k] or doc_id in seen
            seen.add(doc_id)
        if not any(clash):
            return out
        n += 1
        out = [f"{base}#{n}" if hit else doc_id for base, doc_id, hit in zip(bases, out, clash)]


IDS_PER_PARTITION = 1_000_000     # ids counted at once by shared_ids_on_disk (about 100 MB of memory)


def shared_ids_on_disk(table_dir: str, work_dir: str, ids_per_partition: int = IDS_PER_PARTITION) -> list[str]:
    """The ids taken by more than one row of the table ``table_dir``, without holding its id column: each
    file's ids are hash-partitioned into Arrow files under ``work_dir`` (a local directory), then each partition
    is counted on its own.  Memory: one table file's ids, then one partition's."""
    import os

    import pyarrow.ipc as ipc

    parts = parquet_files(table_dir)
    rows = sum(parquet_file(path).metadata.num_rows for path in parts)
    partitions = max(1, -(-rows // ids_per_partition))
    if partitions == 1:
        counts = pc.value_counts(pa.chunked_array([_ids(path) for path in parts], pa.string()))
        return sorted(counts.field("values").filter(pc.greater(counts.field("counts"), 1)).to_pylist())
    schema = pa.schema([("id", pa.string())])
    paths = [os.path.join(work_dir, f"ids-{n:05d}.arrow") for n in range(partitions)]
    writers = [ipc.new_file(path, schema) for path in paths]
    try:
        for path in parts:
            ids = _ids(path)
            which = _hash(ids) % partitions
            for n in range(partitions):
                chosen = ids.filter(pa.array(which == n))
                if len(chosen):
                    writers[n].write_table(pa.table({"id": chosen}, schema=schema))
    finally:
        for writer in writers:
            writer.close()
    shared: list[str] = []
    for path in paths:
        with pa.memory_map(path) as source:
            ids = ipc.open_file(source).read_all().column("id")
        counts = pc.value_counts(ids)
        shared += counts.field("values").filter(pc.greater(counts.field("counts"), 1)).to_pylist()
        os.remove(path)
    return sorted(shared)


def _hash(ids: pa.Array):
    """A stable hash of each id (crc32 of its UTF-8 bytes), as a numpy array."""
    import zlib

    import numpy as np

    return np.array([zlib.crc32(i.encode("utf-8", "surrogatepass")) if i is not None else 0
                     for i in ids.to_pylist()], np.int64)


def _rewrite(path: str, renames: dict[int, str]) -> None:
    """Rewrite one Parquet file of the table with new ids at the given rows (row numbers in the file), row group
    by row group, under a temporary name that then replaces it."""
    source = parquet_file(path)
    directory, name = path.rsplit("/", 1)
    writer = TableWriter(directory, TABLE, name[:-len(".parquet")])
    start = 0
    for index in range(source.num_row_groups):
        group = source.read_row_group(index)
        ids = group.column("id").to_pylist()
        for row, new in renames.items():
            if start <= row < start + len(ids):
                ids[row - start] = new
        start += len(ids)
        writer.add_table(group.set_column(group.schema.get_field_index("id"), "id", pa.array(ids, pa.string())))
    writer.close()
