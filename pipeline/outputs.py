"""Stage output directories: written to a temporary place, published by rename.

A stage writes its tables under ``OUTPUT/.tmp-<stage>-<token>/<table>/`` and
its ``stats.json`` beside them; only when everything is written is the
directory renamed to ``OUTPUT/<stage>``, so a later stage never reads a
half-written output.  A failed stage leaves the previous output in place.
"""

from __future__ import annotations

import ctypes
import errno
import json
import os
import shutil
import uuid
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from pipeline import schema
from pipeline.records import to_row

ROW_GROUP_BYTES = 16 * 1024 * 1024


def parquet_files(table_dir: str | Path) -> list[str]:
    """Data files of a table directory (names starting with '.' or '_' are not data)."""
    table_dir = Path(table_dir)
    if not table_dir.is_dir():
        return []
    return sorted(str(p) for p in table_dir.iterdir()
                  if p.suffix == ".parquet" and not p.name.startswith((".", "_")))


def table_rows(table_dir: str | Path) -> int:
    """Row count of a table directory, from the Parquet footers."""
    return sum(pq.ParquetFile(f).metadata.num_rows for f in parquet_files(table_dir))


def read_table(table_dir: str | Path, name: str, columns: list[str] | None = None) -> pa.Table:
    """A whole table (for tests, stats and reports; stages stream through their engine)."""
    target = schema.load(name)
    if columns:
        target = pa.schema([target.field(c) for c in columns])
    parts = [pq.read_table(f, columns=target.names).select(target.names).cast(target)
             for f in parquet_files(table_dir)]
    if not parts:
        return target.empty_table()
    return pa.concat_tables(parts)


def count_by(table_dir: str | Path, name: str, column: str) -> dict[str, int]:
    """Rows per value of one column."""
    counts: dict[str, int] = {}
    for value in read_table(table_dir, name, [column]).column(column).to_pylist():
        counts[value] = counts.get(value, 0) + 1
    return dict(sorted(counts.items()))


def documents_dir(path: str | Path) -> Path:
    """A documents table given either the table directory or the stage directory holding it."""
    path = Path(path)
    if (path / "documents").is_dir():
        return path / "documents"
    return path


_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths atomically (``renameat2`` with ``RENAME_EXCHANGE``); False where the system or the
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


def _remove(path: Path) -> None:
    if path.is_symlink():
        path.unlink()
    else:
        shutil.rmtree(path, ignore_errors=True)


def _sweep_temporary_files(directory: Path) -> None:
    """Remove the hidden ``.*.tmp`` files a killed task attempt left (a retry wrote the part again)."""
    for path in directory.rglob(".*.tmp"):
        if path.is_file():
            path.unlink(missing_ok=True)


class StageOutput:
    """The temporary directory a stage writes into, and its publication."""

    def __init__(self, output_root: str | Path, stage: str) -> None:
        self.root = Path(output_root)
        self.stage = stage
        self.final = self.root / stage
        token = uuid.uuid4().hex[:12]
        self.tmp = self.root / f".tmp-{stage}-{token}"
        # where workers report their progress (set by the stage runner when progress is on); outside tmp,
        # so it is never published
        self.progress_dir: str | None = None
        self._progress_root = self.root / f".progress-{stage}-{token}"

    def report_progress(self, on: bool) -> str | None:
        """Turn workers' progress reports on (returns their directory) or off."""
        self.progress_dir = str(self._progress_root) if on else None
        return self.progress_dir

    def __enter__(self) -> "StageOutput":
        self.root.mkdir(parents=True, exist_ok=True)
        self.tmp.mkdir()
        return self

    def table(self, name: str) -> str:
        """Directory for table ``name`` inside the temporary output."""
        return str(self.tmp / name)

    def publish(self, stats: dict) -> Path:
        """Write stats.json and move the finished output to its final place."""
        _sweep_temporary_files(self.tmp)
        (self.tmp / "stats.json").write_text(json.dumps(stats, indent=2, ensure_ascii=False) + "\n",
                                             encoding="utf-8")
        if self.final.exists() or self.final.is_symlink():
            if _exchange(self.tmp, self.final):      # self.tmp now holds the old output
                _remove(self.tmp)
                return self.final
            old = self.root / f".old-{self.stage}-{uuid.uuid4().hex[:12]}"
            os.replace(self.final, old)
            os.replace(self.tmp, self.final)
            _remove(old)
            return self.final
        os.replace(self.tmp, self.final)
        return self.final

    def __exit__(self, exc_type, exc, tb) -> None:
        for path in (self.tmp, self._progress_root):
            if path.exists():
                shutil.rmtree(path, ignore_errors=True)


def write_json(path: str | Path, value) -> Path:
    """A JSON file written under a temporary name and renamed: readers see the old file or the new one."""
    path = Path(path)
    tmp = path.parent / f".{path.name}.{uuid.uuid4().hex[:12]}.tmp"
    tmp.write_text(json.dumps(value, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path


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

    The file is written under a temporary name and renamed to ``<part>.parquet``
    on :meth:`close`, so a retried task that writes the same part replaces it
    whole and a crashed one leaves nothing a reader would take for data.  No
    file is written for a part that received no record.
    """

    def __init__(self, table_dir: str | Path, table: str, part: str,
                 row_group_bytes: int = ROW_GROUP_BYTES) -> None:
        self.dir = Path(table_dir)
        self.schema = schema.load(table)
        self.final = self.dir / f"{part}.parquet"
        self.tmp = self.dir / f".{part}.{uuid.uuid4().hex[:12]}.tmp"
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
        if self._writer is None:
            self.dir.mkdir(parents=True, exist_ok=True)
            self._writer = pq.ParquetWriter(str(self.tmp), self.schema, compression="snappy")
        self._writer.write_table(pa.Table.from_pylist(self.rows, schema=self.schema))
        self.written += len(self.rows)
        self.rows, self.pending = [], 0

    def close(self) -> int:
        """Publish the file; returns the number of rows written."""
        self._flush()
        if self._writer is not None:
            self._writer.close()
            os.replace(self.tmp, self.final)
        return self.written

    def abort(self) -> None:
        if self._writer is not None:
            self._writer.close()
        self.tmp.unlink(missing_ok=True)


def row_groups(table_dir: str | Path) -> list[tuple[str, int]]:
    """(file, row group index) of every row group of a table, for splitting reads."""
    return [(f, i) for f in parquet_files(table_dir) for i in range(pq.ParquetFile(f).num_row_groups)]


def read_row_group(path: str, index: int, name: str, columns: list[str] | None = None) -> list[dict]:
    """One row group of a table file as rows (all columns of the schema, or just ``columns``)."""
    names = columns or schema.load(name).names
    return pq.ParquetFile(path).read_row_group(index, columns=names).select(names).to_pylist()
