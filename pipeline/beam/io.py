"""Beam I/O: tables read by row group and written by part writers, through pyarrow, for every path.

Every path is a local path or an object-store URI (``gs://``; :mod:`pipeline.storage`); both go the same
way.  A table is read as one element per row group (an Arrow table, or its rows).  A table is written the
way Beam's own file sinks do it: each bundle writes one part (``TableWriter``, the writer Spark's tasks use)
under a unique name in ``<table>/.parts/`` and emits that name; one finalizing step moves the parts of the
bundles that committed to ``part-NNNNN-of-MMMMM.parquet`` (numbered in name order) and deletes ``.parts/``,
with whatever a failed or retried bundle attempt left there (its names were never emitted).  No record goes
through a shuffle to be written.
"""

from __future__ import annotations

import uuid
import zlib

import apache_beam as beam
import pyarrow as pa
from apache_beam.coders import coder_impl
from apache_beam.metrics import Metrics
from apache_beam.transforms.window import GlobalWindow
from apache_beam.utils.timestamp import MIN_TIMESTAMP
from apache_beam.utils.windowed_value import WindowedValue

from pipeline import storage
from pipeline.outputs import TableWriter, parquet_file, read_row_group, row_groups
from pipeline.progress import reporter, text_size
from pipeline.records import Document, from_row

NAMESPACE = "wwm"
# Row groups are read back whole (and turned into Python records) by the next stage, so their size
# bounds that stage's memory; 16 MB keeps it flat without making files of tiny groups.
ROW_GROUP_BYTES = 16 * 1024 * 1024
WRITE_PARTS = 16     # files per small text output (dedup's edges, vocab's counts)
PARTS = ".parts"     # where the bundles of a table put their parts first


class ArrowTableCoder(beam.coders.Coder):
    """Arrow tables between Beam steps: Arrow IPC streams (not pickles), sized by their buffers.

    Beam measures the first elements of every PCollection (and a sample of the
    rest) with the PCollection's coder; for an element of unknown type that
    means pickling it.  The elements here are whole row groups, few of them, so
    each was pickled once for every step it went through (hundreds of MB in the
    segment stage) only to be measured.  PCollections of tables are given this
    coder (:func:`tables_of`).
    """

    def encode(self, table):
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table)
        return sink.getvalue().to_pybytes()

    def decode(self, data):
        return pa.ipc.open_stream(pa.py_buffer(data)).read_all()

    def is_deterministic(self) -> bool:
        return False

    def to_type_hint(self):
        return pa.Table

    def _create_impl(self):
        return coder_impl.CallbackCoderImpl(self.encode, self.decode, size_estimator=_table_size)


def _table_size(table) -> int:
    return table.get_total_buffer_size()


beam.coders.registry.register_coder(pa.Table, ArrowTableCoder)


def tables_of(pcoll):
    """``pcoll`` (of Arrow tables), its elements declared ``pa.Table``: they go through :class:`ArrowTableCoder`."""
    pcoll.element_type = pa.Table
    return pcoll


def windowed(element):
    """An element emitted from ``finish_bundle``."""
    return WindowedValue(element, MIN_TIMESTAMP, [GlobalWindow()])


class BeamCount:
    """``count(name, n)`` onto Beam metrics counters."""

    def __init__(self) -> None:
        self._counters = {}

    def __call__(self, name: str, n: int = 1) -> None:
        counter = self._counters.get(name)
        if counter is None:
            counter = self._counters[name] = Metrics.counter(NAMESPACE, name)
        counter.inc(n)


# -- reading --------------------------------------------------------------------------------------------------------

class RowGroups(beam.PTransform):
    """A table directory -> one element per row group: an Arrow table of ``columns`` (``as_table``), else its
    rows as dicts (all columns of table ``name``, or ``columns``).  Nothing for a table with no files."""

    def __init__(self, directory: str, name: str, columns: list[str] | None = None, as_table: bool = True) -> None:
        super().__init__()
        self.directory, self.name, self.columns, self.as_table = directory, name, columns, as_table

    def expand(self, pbegin):
        name, columns, as_table = self.name, self.columns, self.as_table

        def read(item):
            path, index = item
            if as_table:
                return [parquet_file(path).read_row_group(index, columns=columns)]
            return read_row_group(path, index, name, columns)

        groups = pbegin | "RowGroups" >> beam.Create(row_groups(self.directory), reshuffle=True)
        rows = groups | "ReadRowGroup" >> beam.FlatMap(read)
        return tables_of(rows) if as_table else rows


def read_tables(pbegin, label: str, directory: str, columns: list[str] | None = None, name: str = "documents"):
    """The row groups of a table as Arrow tables."""
    return pbegin | label >> RowGroups(directory, name, columns)


class ReadTable(beam.PTransform):
    """A table directory -> records of ``record_type``."""

    def __init__(self, directory: str, record_type=Document) -> None:
        super().__init__()
        self.directory, self.record_type = directory, record_type

    def expand(self, pbegin):
        record_type = self.record_type
        return (pbegin
                | "Read" >> RowGroups(self.directory, record_type.TABLE, as_table=False)
                | "FromRow" >> beam.Map(lambda row: from_row(record_type, row)))


def _read_lines(path: str):
    return [line for line in storage.read_text(path).split("\n") if line]


class ReadLines(beam.PTransform):
    """The lines of one text file."""

    def __init__(self, path: str) -> None:
        super().__init__()
        self.path = path

    def expand(self, pbegin):
        return pbegin | "File" >> beam.Create([self.path]) | "Lines" >> beam.FlatMap(_read_lines)


# -- writing --------------------------------------------------------------------------------------------------------

class _WriteBundleFn(beam.DoFn):
    """Records or Arrow tables of a table's rows -> one Parquet part per bundle,
    ``<directory>/.parts/<unique>.parquet`` (each Arrow table a row group); its path out."""

    def __init__(self, directory: str, table: str) -> None:
        self.directory, self.table = directory, table

    def start_bundle(self):
        self.writer = None

    def process(self, element):
        if self.writer is None:
            self.writer = TableWriter(storage.join(self.directory, PARTS), self.table, uuid.uuid4().hex,
                                      row_group_bytes=ROW_GROUP_BYTES, direct=True)   # a name per attempt
        if isinstance(element, pa.Table):
            self.writer.add_table(element)
        else:
            self.writer.add(element)

    def finish_bundle(self):
        if self.writer is not None:
            self.writer.close()
            if self.writer.written:
                yield windowed(str(self.writer.final))
            self.writer = None

    def teardown(self):
        if getattr(self, "writer", None) is not None:
            self.writer.abort()


class _FinalizePartsFn(beam.DoFn):
    """The committed bundles' parts -> ``<directory>/part-NNNNN-of-MMMMM.parquet``; ``.parts/`` deleted."""

    def __init__(self, directory: str) -> None:
        self.directory = directory

    def process(self, paths):
        paths = sorted(paths)
        storage.makedirs(self.directory)        # an empty table is an empty directory (locally)
        for index, path in enumerate(paths):
            if storage.exists(path):           # else a retry of this step after it had moved it
                storage.commit(path, storage.join(self.directory, f"part-{index:05d}-of-{len(paths):05d}.parquet"))
        storage.delete_dir(storage.join(self.directory, PARTS))
        return []


class WriteTable(beam.PTransform):
    """Records, or Arrow tables of a table's rows, -> Parquet files ``<directory>/part-SSSSS-of-NNNNN.parquet``
    in the table's schema."""

    def __init__(self, directory: str, table: str) -> None:
        super().__init__()
        self.directory, self.table = directory, table

    def expand(self, elements):
        return (elements
                | "WriteParts" >> beam.ParDo(_WriteBundleFn(self.directory, self.table))
                | "AllParts" >> beam.combiners.ToList()
                | "Finalize" >> beam.ParDo(_FinalizePartsFn(self.directory)))


def _part_of(text: str) -> int:
    return zlib.crc32(text.encode("utf-8", "surrogatepass")) % WRITE_PARTS


class _WriteLinesFn(beam.DoFn):
    """(part, lines) -> ``<prefix>-PPPPP-of-NNNNN<suffix>``."""

    def __init__(self, prefix: str, suffix: str) -> None:
        self.prefix, self.suffix = prefix, suffix

    def process(self, group):
        part, lines = group
        with storage.atomic_output(f"{self.prefix}-{part:05d}-of-{WRITE_PARTS:05d}{self.suffix}") as f:
            f.write("".join(line + "\n" for line in lines).encode("utf-8"))
        return []


class WriteLines(beam.PTransform):
    """Text lines -> files ``<prefix>-SSSSS-of-NNNNN<suffix>`` (a line's file chosen by its hash)."""

    def __init__(self, prefix: str, suffix: str) -> None:
        super().__init__()
        self.prefix, self.suffix = str(prefix), suffix

    def expand(self, lines):
        return (lines
                | "Part" >> beam.Map(lambda line: (_part_of(line), line))
                | "GroupParts" >> beam.GroupByKey()
                | "WriteParts" >> beam.ParDo(_WriteLinesFn(self.prefix, self.suffix)))


def read_lines(directory: str, prefix: str) -> list[str]:
    """Lines of the text files a pipeline wrote as ``directory/prefix*``."""
    return [line for rel, _, _ in storage.walk(directory) if "/" not in rel and rel.startswith(prefix)
            for line in _read_lines(storage.join(directory, rel))]


# -- progress -------------------------------------------------------------------------------------------------------

class _TickFn(beam.DoFn):
    """Pass elements through, reporting progress: a record with text is a document, an Arrow table its rows."""

    def __init__(self, label: str, progress_dir: str | None) -> None:
        self.label, self.progress_dir = label, progress_dir

    def setup(self):
        self.progress = reporter(self.label, self.progress_dir)

    def process(self, element):
        if hasattr(element, "num_rows"):
            self.progress.update(element.num_rows, element.nbytes)
        elif hasattr(element, "text"):
            self.progress.update(*text_size(element))
        else:
            self.progress.update(1)
        yield element

    def teardown(self):
        self.progress.close()


def tick(label: str, progress_dir: str | None):
    """A pass-through step reporting progress under ``label`` (nothing at all when progress is off)."""
    if progress_dir is None:
        return beam.Map(lambda element: element)
    return beam.ParDo(_TickFn(label, progress_dir))


__all__ = ["NAMESPACE", "ROW_GROUP_BYTES", "ArrowTableCoder", "tables_of", "windowed", "BeamCount", "RowGroups",
           "read_tables", "ReadTable", "ReadLines", "WriteTable", "WriteLines", "read_lines", "tick"]
