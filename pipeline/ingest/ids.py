"""Unique document ids after ingest.

A document's id is ``<source>:<native id>`` where its format has one (see
``readers``).  Native ids are unique within one dataset, not across datasets:
a zhwiki ``<doc>`` extraction and wiki2019zh read as one source both call the
article 数学 ``13``.  Every later stage names documents by id (the dedup
union-find, the ``duplicates`` table, the shards' seeds), so two documents
sharing one would be taken for one: near-duplicates between them go unseen and
their instances draw the same random choices.

``make_unique`` runs on the driver once the engine has written the ingest
table: it reads the id, source, file and position columns, and when an id is
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


def make_unique(table_dir: str, files: list[InputFile]) -> int:
    """Give every document of the ingest table ``table_dir`` an id of its own; returns how many were renamed."""
    parts = parquet_files(table_dir)
    if not parts:
        return 0
    files_ids = [parquet_file(path).read(columns=["id"]).column("id").combine_chunks() for path in parts]
    ids = pa.chunked_array(files_ids, pa.string())
    counts = pc.value_counts(ids)
    shared = counts.field("values").filter(pc.greater(counts.field("counts"), 1))
    if not len(shared):
        return 0
    relpaths = {f.path: f.relpath for f in files}
    holders = []          # (file, position, id, source, part, row) of every document whose id is shared
    for part, (path, part_ids) in enumerate(zip(parts, files_ids)):
        rows = pc.indices_nonzero(pc.is_in(part_ids, value_set=shared)).to_pylist()
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
    new = _unused([base for _, _, base in later], ids)
    renames: dict[int, dict[int, str]] = {}
    for (part, row, _), doc_id in zip(later, new):
        renames.setdefault(part, {})[row] = doc_id
    for part, rows in renames.items():
        _rewrite(parts[part], rows)
    return sum(len(rows) for rows in renames.values())


def _unused(bases: list[str], ids: pa.ChunkedArray) -> list[str]:
    """``bases`` made distinct from each other and from ``ids``: ``#2``, ``#3``, ... appended where needed."""
    out = list(bases)
    n = 1
    while True:
        clash = pc.is_in(pa.array(out, pa.string()), value_set=ids).to_pylist()
        seen: set[str] = set()
        for k, doc_id in enumerate(out):
            clash[k] = clash[k] or doc_id in seen
            seen.add(doc_id)
        if not any(clash):
            return out
        n += 1
        out = [f"{base}#{n}" if hit else doc_id for base, doc_id, hit in zip(bases, out, clash)]


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
