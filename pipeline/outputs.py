"""Stage output directories: written to a temporary place, published by rename (or, on an object store, by
copy with ``stats.json`` last).

A stage writes its tables under ``OUTPUT/.tmp-<stage>-<token>/<table>/`` and
its ``stats.json`` beside them; only when everything is written is the
directory renamed to ``OUTPUT/<stage>``, so a later stage never reads a
half-written output.  A failed stage leaves the previous output in place.

On an object store (``OUTPUT`` is a ``gs://`` or other ``pyarrow.fs`` URI, see
:mod:`pipeline.storage`) there is no rename, of directories or of objects.  The
commit protocol there is **``stats.json`` written last is the commit marker**:

1. the tasks write their parts under ``OUTPUT/.tmp-<stage>-<token>/``, each
   under a hidden temporary name first and then copied (server-side) to its
   final name, as locally they are renamed: a retried task replaces a part
   whole, and a failed attempt never leaves a partial part under a final name;
2. on success the driver deletes ``OUTPUT/<stage>/stats.json`` first (from then
   on the old output counts as absent), deletes the rest of the old output,
   copies the temporary tree to ``OUTPUT/<stage>/`` (server-side copies) and
   writes ``stats.json`` there last, then deletes the temporary tree.

Readers treat a stage directory without ``stats.json`` as absent
(:func:`committed`), and so does the up-to-date check (it reads ``stats.json``);
``wwm run`` deletes such a directory, and every ``.tmp-*``, before it starts
(``pipeline.fingerprint.recover``).  A run killed at any point therefore leaves
either the old output, the new one, or nothing (and the stage is redone), never
a mix that a later stage would read.  This was chosen over a pointer object
naming the finished attempt because it keeps one layout (``OUTPUT/<stage>/...``)
for local and remote outputs, which the runner, the report and users read by
path; the price is one copy of the stage's bytes inside the bucket (server-side,
no download) and a window during publication in which the stage is absent.
"""

from __future__ import annotations

import ctypes
import errno
import json
import os
import shutil
import uuid

import pyarrow as pa
import pyarrow.parquet as pq

from pipeline import guard, schema, storage
from pipeline.records import to_row

ROW_GROUP_BYTES = 16 * 1024 * 1024


def parquet_files(table_dir: str) -> list[str]:
    """Data files of a table directory (names starting with '.' or '_' are not data), sorted."""
    return [storage.join(table_dir, rel) for rel, _, _ in storage.walk(table_dir)
            if "/" not in rel and rel.endswith(".parquet") and not rel.startswith((".", "_"))]


def parquet_file(path: str) -> pq.ParquetFile:
    """A Parquet file to read from (random-access reads: footer, row groups)."""
    return pq.ParquetFile(storage.open_input_file(path))


def table_rows(table_dir: str) -> int:
    """Row count of a table directory, from the Parquet footers."""
    return sum(parquet_file(f).metadata.num_rows for f in parquet_files(table_dir))


def table_bytes(table_dir: str) -> int:
    """Bytes of a table directory's Parquet files."""
    return sum(storage.size(f) for f in parquet_files(table_dir))


def read_table(table_dir: str, name: str, columns: list[str] | None = None) -> pa.Table:
    """A whole table (for tests, stats and reports; stages stream through their engine)."""
    target = schema.load(name)
    if columns:
        target = pa.schema([target.field(c) for c in columns])
    parts = [parquet_file(f).read(columns=target.names).select(target.names).cast(target)
             for f in parquet_files(table_dir)]
    if not parts:
        return target.empty_table()
    return pa.concat_tables(parts)


def count_by(table_dir: str, name: str, column: str) -> dict[str, int]:
    """Rows per value of one column."""
    counts: dict[str, int] = {}
    for value in read_table(table_dir, name, [column]).column(column).to_pylist():
        counts[value] = counts.get(value, 0) + 1
    return dict(sorted(counts.items()))


def committed(stage_dir: str) -> bool:
    """Whether a published stage directory is whole: always locally (published by rename); on an object store
    only once its ``stats.json`` (written last) is there."""
    if storage.is_local(stage_dir):
        return storage.is_dir(stage_dir)
    return storage.is_file(storage.join(stage_dir, "stats.json"))


def table_exists(table_dir: str) -> bool:
    """A table directory that is there (on an object store, where an empty prefix is nothing: one with files)."""
    return storage.is_dir(table_dir) or bool(storage.walk(table_dir))


def inner_table(path: str, table: str) -> str:
    """A table given either its directory or the stage directory holding it (``path/table``)."""
    inner = storage.join(path, table)
    return inner if table_exists(inner) else str(path)


_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


def _exchange(a: str, b: str) -> bool:
    """Swap two local paths atomically (``renameat2`` with ``RENAME_EXCHANGE``); False where the system or the
    filesystem cannot."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
        return False
    raise OSError(code, os.strerror(code), str(a), None, str(b))


def _remove(path: str) -> None:
    if os.path.islink(path):
        os.unlink(path)
    else:
        shutil.rmtree(path, ignore_errors=True)


def _sweep_temporary_files(directory: str) -> None:
    """Remove the hidden ``.*.tmp`` files a killed task attempt left (a retry wrote the part again)."""
    for rel, _, _ in storage.walk(directory):
        name = rel.rsplit("/", 1)[-1]
        if name.startswith(".") and name.endswith(".tmp"):
            storage.delete_file(storage.join(directory, rel))


class StageOutput:
    """The temporary directory a stage writes into, and its publication: a rename on the local file system,
    a copy with ``stats.json`` last on an object store (see the module's docstring)."""

    def __init__(self, output_root: str, stage: str) -> None:
        self.stage = stage
        self.root = str(output_root).rstrip("/") or "/"
        self.local = storage.is_local(self.root)
        token = uuid.uuid4().hex[:12]
        self.final = storage.join(self.root, stage)
        self.tmp = storage.join(self.root, f".tmp-{stage}-{token}")
        # where workers report their progress (set by the stage runner when progress is on); outside tmp,
        # so it is never published
        self.progress_dir: str | None = None
        self._progress_root = storage.join(self.root, f".progress-{stage}-{token}") if self.local else None

    def report_progress(self, on: bool) -> str | None:
        """Turn workers' progress reports on (returns their directory) or off.  Always off for an object-store
        output: the reports are small files rewritten every two seconds, which object stores are not for (the
        engine's own job page shows progress there)."""
        self.progress_dir = self._progress_root if on else None
        return self.progress_dir

    def __enter__(self) -> "StageOutput":
        guard.refuse_foreign_output(self.final, self.stage)     # never replace a folder wwm did not write
        storage.makedirs(self.tmp)
        return self

    def table(self, name: str) -> str:
        """Directory for table ``name`` inside the temporary output."""
        return storage.join(self.tmp, name)

    def path(self, name: str) -> str:
        """A file or directory inside the temporary output."""
        return storage.join(self.tmp, name)

    def publish(self, stats: dict) -> str:
        """Write stats.json and move the finished output to its final place."""
        text = json.dumps(stats, indent=2, ensure_ascii=False) + "\n"
        if not self.local:
            return self._publish_remote(text)
        _sweep_temporary_files(self.tmp)
        storage.write_text(storage.join(self.tmp, "stats.json"), text)
        if os.path.lexists(self.final):
            if _exchange(self.tmp, self.final):      # self.tmp now holds the old output
                _remove(self.tmp)
                return self.final
            old = storage.join(self.root, f".old-{self.stage}-{uuid.uuid4().hex[:12]}")
            os.replace(self.final, old)
            os.replace(self.tmp, self.final)
            _remove(old)
            return self.final
        os.replace(self.tmp, self.final)
        return self.final

    def _publish_remote(self, stats_text: str) -> str:
        """Object stores: uncommit the old output (its stats.json first), replace it by a copy of the temporary
        tree, commit with stats.json last."""
        storage.delete_file(storage.join(self.final, "stats.json"))
        storage.delete_dir(self.final)
        storage.copy_tree(self.tmp, self.final, skip=lambda rel: any(
            part.startswith(".") for part in rel.split("/")) or rel == "stats.json")
        storage.write_text(storage.join(self.final, "stats.json"), stats_text)
        storage.delete_dir(self.tmp)
        return self.final

    def __exit__(self, exc_type, exc, tb) -> None:
        for path in (self.tmp, self._progress_root):
            if path is not None:
                storage.delete_dir(path)


def write_json(path: str, value) -> str:
    """A JSON file that readers see whole: the old file or the new one (written under a temporary name and
    put in place, :func:`pipeline.storage.atomic_output`)."""
    with storage.atomic_output(path) as f:
        f.write((json.dumps(value, indent=2, ensure_ascii=False) + "\n").encode("utf-8"))
    return str(path)


def _row_bytes(row: dict) -> int:
    size = 0
    for value in row.values():
        if isinstance(value, str):
            size += len(value)
        elif isinstance(value, list):
            size += sum(len(v) for v in value if v is not None)
    return 3 * size + 64


class TableWriter:
    """Records of one table into one Parquet file, written in row groups.

    The file is written under a temporary name and put in place as
    ``<part>.parquet`` on :meth:`close` (``storage.commit``: a rename locally,
    a server-side copy and a delete on an object store), so a retried task
    that writes the same part replaces it whole and a crashed one leaves
    nothing a reader would take for data.  No file is written for a part that
    received no record.  ``direct=True`` writes the final name straight away
    (for callers whose part names are already unique to the attempt, like
    Beam's bundles).
    """

    def __init__(self, table_dir: str, table: str, part: str,
                 row_group_bytes: int = ROW_GROUP_BYTES, direct: bool = False) -> None:
        self.dir = str(table_dir)
        self.schema = schema.load(table)
        self.final = storage.join(self.dir, f"{part}.parquet")
        self.tmp = self.final if direct else storage.temporary_name(self.final)
        self.row_group_bytes = row_group_bytes
        self.rows: list[dict] = []
        self.pending = 0
        self.written = 0
        self._writer = None

    def add(self, record) -> None:
        row = to_row(record)
        self.rows.append(row)
        self.pending += _row_bytes(row)
        if self.pending >= self.row_group_bytes:
            self._flush()

    def _flush(self) -> None:
        if not self.rows:
            return
        rows, self.rows, self.pending = self.rows, [], 0
        self._write(pa.Table.from_pylist(rows, schema=self.schema))

    def _write(self, table: pa.Table) -> None:
        if self._writer is None:
            self._sink = storage.open_output_stream(self.tmp)
            self._writer = pq.ParquetWriter(self._sink, self.schema, compression="snappy")
        self._writer.write_table(table)
        self.written += table.num_rows

    def add_table(self, table: pa.Table) -> None:
        """Rows already in Arrow form (the table's columns, in any order), written as one row group after the
        records added before them."""
        if not table.num_rows:
            return
        self._flush()
        self._write(table.select(self.schema.names).cast(self.schema))

    def close(self) -> int:
        """Publish the file; returns the number of rows written."""
        self._flush()
        if self._writer is not None:
            self._writer.close()
            self._sink.close()
            if self.tmp != self.final:
                storage.commit(self.tmp, self.final)
        return self.written

    def abort(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._sink.close()
        storage.delete_file(self.tmp)


def row_groups(table_dir: str) -> list[tuple[str, int]]:
    """(file, row group index) of every row group of a table, for splitting reads."""
    return [(f, i) for f in parquet_files(table_dir) for i in range(parquet_file(f).num_row_groups)]


def read_row_group_table(path: str, index: int, name: str, columns: list[str] | None = None) -> pa.Table:
    """One row group of a table file as an Arrow table (all columns of the schema, or just ``columns``)."""
    names = columns or schema.load(name).names
    return parquet_file(path).read_row_group(index, columns=names).select(names)


def read_row_group(path: str, index: int, name: str, columns: list[str] | None = None) -> list[dict]:
    """One row group of a table file as rows (all columns of the schema, or just ``columns``)."""
    return read_row_group_table(path, index, name, columns).to_pylist()
