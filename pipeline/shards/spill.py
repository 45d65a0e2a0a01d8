"""Keyed instance records, column-wise, and the binary file format they are spilled in.

The shards stage moves instances as ``Records``: the shuffle keys (uint64), the
framed TFRecords laid end to end in one buffer with their offsets, and the
figures of each instance (``STAT_FIELDS``, int64).  A batch of records is a few
arrays, not one Python object per instance, so grouping, sorting and writing
are NumPy operations.

Spill files live under the user's output directory, so nothing read back from
them is unpickled: a section is a fixed header and the raw arrays, and every
size in it is checked before the arrays are viewed.

Section layout (all integers little-endian)::

    magic   8 bytes   b"WWMREC1\\n"
    header  4 x u64   records n, figures per record f, data bytes d, reserved 0
    keys    n x u64
    offsets (n + 1) x i64   offsets[0] = 0, non-decreasing, offsets[n] = d
    figures n x f x i64
    data    d bytes   the framed TFRecords, one after another
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import NamedTuple

import numpy as np

from pipeline import storage

MAGIC = b"WWMREC1\n"
_HEADER = struct.Struct("<4Q")
_MAX_FIELDS = 64


class DocumentSection(NamedTuple):
    """Where one pool's tokenized documents of one task are: a section of a spill file, with its figures."""
    path: str
    offset: int
    size: int
    documents: int
    tokens: int


class PoolSection(NamedTuple):
    """Where the instances of one pool with one first shard are: a section of a pool file."""
    path: str
    offset: int
    size: int
    instances: int


class SpillError(ValueError):
    """A spill section that is not what ``Records.to_bytes`` wrote."""


class Records:
    """Keyed framed records: ``keys`` (n uint64), ``offsets`` (n + 1 int64) into ``data`` (bytes-like),
    ``figures`` (n × f int64)."""

    __slots__ = ("data", "figures", "keys", "offsets")

    def __init__(self, keys: np.ndarray, offsets: np.ndarray, data, figures: np.ndarray) -> None:
        self.keys, self.offsets, self.data, self.figures = keys, offsets, data, figures

    @classmethod
    def empty(cls, fields: int) -> Records:
        return cls(np.zeros(0, np.uint64), np.zeros(1, np.int64), b"", np.zeros((0, fields), np.int64))

    def __len__(self) -> int:
        return len(self.keys)

    def __eq__(self, other) -> bool:
        return (isinstance(other, Records) and len(self) == len(other)
                and bool((self.keys == other.keys).all()) and bool((self.offsets == other.offsets).all())
                and bytes(self.data) == bytes(other.data) and bool((self.figures == other.figures).all()))

    def __reduce__(self):       # what an engine pickles: plain bytes and arrays, never a memoryview
        return Records, (self.keys, self.offsets, bytes(self.data), self.figures)

    def record(self, i: int) -> bytes:
        return bytes(self.data[self.offsets[i]:self.offsets[i + 1]])

    def items(self):
        """(key, framed record, figures tuple) per record, in stored order (for tests and small batches)."""
        for i in range(len(self)):
            yield int(self.keys[i]), self.record(i), tuple(int(v) for v in self.figures[i])

    def take(self, index) -> Records:
        """The records at ``index``, in that order (a copy)."""
        return Selection([self], np.zeros(len(index), np.int64), np.asarray(index, dtype=np.int64)).records()

    def order(self) -> np.ndarray:
        """Indices in shuffle order (see ``merge_order``)."""
        return merge_order([self])[1]

    def sorted(self) -> Records:
        return self.take(self.order())

    @staticmethod
    def concat(batches: list[Records], fields: int) -> Records:
        batches = [b for b in batches if len(b)]
        if not batches:
            return Records.empty(fields)
        if len(batches) == 1:
            return batches[0]
        shifts = np.cumsum([0] + [int(b.offsets[-1]) for b in batches[:-1]])
        offsets = np.concatenate([np.zeros(1, np.int64)] + [b.offsets[1:] + s for b, s in zip(batches, shifts)])
        return Records(np.concatenate([b.keys for b in batches]), offsets,
                       b"".join(memoryview(b.data)[:int(b.offsets[-1])] for b in batches),
                       np.concatenate([b.figures for b in batches]))

    @classmethod
    def from_bytes(cls, buffer) -> Records:
        """A section written by ``write_sections``; ``SpillError`` if it is anything else."""
        view = memoryview(buffer)
        head = len(MAGIC) + _HEADER.size
        if len(view) < head or bytes(view[:len(MAGIC)]) != MAGIC:
            raise SpillError("not a records section (bad magic)")
        n, f, size, reserved = _HEADER.unpack(view[len(MAGIC):head])
        if reserved or f > _MAX_FIELDS or 8 * (n + (n + 1) + n * f) + size + head != len(view):
            raise SpillError("records section: sizes do not match its length")
        at = head
        keys = np.frombuffer(view, "<u8", n, at)
        at += 8 * n
        offsets = np.frombuffer(view, "<i8", n + 1, at)
        at += 8 * (n + 1)
        figures = np.frombuffer(view, "<i8", n * f, at).reshape(n, f)
        at += 8 * n * f
        if offsets[0] != 0 or offsets[-1] != size or (n and bool((np.diff(offsets) < 0).any())):
            raise SpillError("records section: bad offsets")
        return cls(keys.astype(np.uint64), offsets.astype(np.int64), view[at:at + size],
                   figures.astype(np.int64))


def _gathered(arrays: list[np.ndarray], which: np.ndarray, index: np.ndarray) -> np.ndarray:
    """``arrays[which[i]][index[i]]`` for every i: one gather from the arrays joined, not a pass per array."""
    if len(arrays) == 1:
        return arrays[0][index]
    if not len(index) or not arrays:
        return np.zeros(0, arrays[0].dtype if arrays else np.int64)
    first = np.zeros(len(arrays), np.int64)
    np.cumsum([len(a) for a in arrays[:-1]], out=first[1:])
    return np.concatenate(arrays)[first[which] + index]


def merge_order(batches: list[Records], which: np.ndarray | None = None,
                index: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(batch, index) of every record of the batches (or of the ones ``which`` and ``index`` name) in shuffle
    order: by key, then by the record bytes (two records sharing a 64-bit key land in one order, whatever
    order and batches they arrived in)."""
    if which is None:
        sizes = [len(b) for b in batches]
        which = np.repeat(np.arange(len(batches)), sizes)
        index = np.arange(sum(sizes)) - np.repeat(np.cumsum(sizes) - sizes, sizes)
    if not len(which):
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    keys = _gathered([batch.keys for batch in batches], which, index)
    order = np.argsort(keys, kind="stable")
    ordered = keys[order]
    same = np.flatnonzero(ordered[1:] == ordered[:-1])
    if len(same):
        # the records of every run of equal keys, in one sort of (run, record bytes, place): each run by its
        # records' bytes, equal records in the order they had (what a stable sort of each run by bytes gives)
        tied = np.zeros(len(order), dtype=bool)
        tied[same] = True
        tied[same + 1] = True
        at = np.flatnonzero(tied)
        new_run = np.ones(len(at), dtype=bool)
        new_run[1:] = ordered[at[1:]] != ordered[at[:-1]]
        picked = Selection(batches, which[order[at]], index[order[at]])
        views = [memoryview(batch.data) for batch in batches]
        data = [bytes(views[k][a:b]) for k, a, b in zip(picked.which.tolist(), picked.starts.tolist(),
                                                          picked.ends.tolist())]
        ranked = sorted(zip(np.cumsum(new_run).tolist(), data, at.tolist()))
        order[at] = order[np.fromiter((place for _, _, place in ranked), np.int64, len(at))]
    return which[order], index[order]


class Selection:
    """Records picked from batches, ``(batch, index)`` each, in that order: written or copied without
    first joining the batches."""

    def __init__(self, batches: list[Records], which: np.ndarray, index: np.ndarray) -> None:
        self.batches, self.which, self.index = batches, which, index
        self.starts = _gathered([batch.offsets[:-1] for batch in batches], which, index)
        self.ends = _gathered([batch.offsets[1:] for batch in batches], which, index)

    def __len__(self) -> int:
        return len(self.index)

    def _gather(self, attribute: str, empty: np.ndarray) -> np.ndarray:
        if not len(self.index):
            return empty
        return _gathered([getattr(batch, attribute) for batch in self.batches], self.which, self.index)

    def keys(self) -> np.ndarray:
        return self._gather("keys", np.zeros(0, np.uint64))

    def figures(self) -> np.ndarray:
        fields = self.batches[0].figures.shape[1] if self.batches else 0
        return self._gather("figures", np.zeros((0, fields), np.int64))

    def offsets(self) -> np.ndarray:
        offsets = np.zeros(len(self.index) + 1, np.int64)
        np.cumsum(self.ends - self.starts, out=offsets[1:])
        return offsets

    def chunks(self, size: int = 4096):
        """The records' bytes in order, joined a few thousand at a time."""
        views = [memoryview(b.data) for b in self.batches]
        starts, ends = self.starts.tolist(), self.ends.tolist()
        if len(views) == 1:
            view = views[0]
            if len(starts) and bool((self.index[1:] == self.index[:-1] + 1).all()):   # one contiguous run
                yield view[starts[0]:ends[-1]]
                return
            for begin in range(0, len(starts), size):
                yield b"".join([view[a:b] for a, b in zip(starts[begin:begin + size], ends[begin:begin + size])])
            return
        which = self.which.tolist()
        for begin in range(0, len(starts), size):
            end = begin + size
            yield b"".join([views[k][a:b] for k, a, b in zip(which[begin:end], starts[begin:end], ends[begin:end])])

    def records(self) -> Records:
        fields = self.batches[0].figures.shape[1] if self.batches else 0
        return Records(self.keys(), self.offsets(), b"".join(self.chunks()), self.figures()) if len(self) else \
            Records.empty(fields)

    def parts(self):
        """The bytes of this selection as a spill section (see the module doc), in pieces."""
        figures = self.figures()
        offsets = self.offsets()
        yield MAGIC
        yield _HEADER.pack(len(self), figures.shape[1], int(offsets[-1]), 0)
        yield self.keys().astype("<u8").tobytes()
        yield offsets.astype("<i8").tobytes()
        yield figures.astype("<i8").tobytes()
        yield from self.chunks()


def select(records: Records) -> Selection:
    """All of ``records``, in stored order."""
    return Selection([records], np.zeros(len(records), np.int64), np.arange(len(records)))


def write_sections(path: str | Path, sections: list[Selection]) -> list[tuple[int, int, int]]:
    """Write the sections to ``path`` (under a temporary name, then renamed, or copied on an object store: a
    retried task writes the same file whole); returns (offset, size, records) of each."""
    placed = write_parts(path, (section.parts() for section in sections))
    return [(offset, size, len(section)) for (offset, size), section in zip(placed, sections)]


def read_section(path: str | Path, offset: int, size: int) -> Records:
    return Records.from_bytes(read_bytes(path, offset, size, "records section"))


def _read_head(f, path, offset: int, size: int) -> tuple[int, int, int]:
    """(records, figures per record, data bytes) of the section at ``offset``, checked against its size."""
    head = len(MAGIC) + _HEADER.size
    f.seek(offset)
    raw = f.read(head)
    if len(raw) < head or raw[:len(MAGIC)] != MAGIC:
        raise SpillError(f"{path}: not a records section (bad magic)")
    n, fields, data, reserved = _HEADER.unpack(raw[len(MAGIC):])
    if reserved or fields > _MAX_FIELDS or 8 * (n + (n + 1) + n * fields) + data + head != size:
        raise SpillError(f"{path}: records section: sizes do not match its length")
    return n, fields, data


def read_section_keys(path: str | Path, offset: int, size: int) -> np.ndarray:
    """The keys of a section, without reading its records."""
    with storage.open_input_file(path) as f:
        n, _, _ = _read_head(f, path, offset, size)
        raw = f.read(8 * n)
    if len(raw) != 8 * n:
        raise SpillError(f"{path}: truncated records section")
    return np.frombuffer(raw, "<u8").astype(np.uint64)


def read_section_records(path: str | Path, offset: int, size: int, index: np.ndarray) -> Records:
    """The records at ``index`` of a section (in that order), reading only their bytes and the section's
    arrays."""
    with storage.open_input_file(path) as f:
        n, fields, data = _read_head(f, path, offset, size)
        raw = f.read(8 * (n + (n + 1) + n * fields))
        if len(raw) != 8 * (n + (n + 1) + n * fields):
            raise SpillError(f"{path}: truncated records section")
        keys = np.frombuffer(raw, "<u8", n).astype(np.uint64)
        offsets = np.frombuffer(raw, "<i8", n + 1, 8 * n).astype(np.int64)
        figures = np.frombuffer(raw, "<i8", n * fields, 8 * (2 * n + 1)).astype(np.int64).reshape(n, fields)
        if offsets[0] != 0 or offsets[-1] != data or (n and bool((np.diff(offsets) < 0).any())):
            raise SpillError(f"{path}: records section: bad offsets")
        index = np.asarray(index, dtype=np.int64)
        start = offset + len(MAGIC) + _HEADER.size + len(raw)
        chunks = []
        for i in index.tolist():
            f.seek(start + int(offsets[i]))
            chunk = f.read(int(offsets[i + 1] - offsets[i]))
            if len(chunk) != offsets[i + 1] - offsets[i]:
                raise SpillError(f"{path}: truncated records section")
            chunks.append(chunk)
    sizes = offsets[index + 1] - offsets[index]
    out = np.zeros(len(index) + 1, np.int64)
    np.cumsum(sizes, out=out[1:])
    return Records(keys[index], out, b"".join(chunks), figures[index])


# -- tokenized documents ------------------------------------------------------------------------------------------
#
# Between tokenizing and building instances the documents of a pool are gathered from every row group; the
# engines move references to them, not the documents (an in-process runner would otherwise hold every
# document of the input at once).  A section holds some documents of one pool (all integers little-endian):
#
#     magic   8 bytes   b"WWMDOC1\n"
#     header  4 x u64   documents n, tokens t, sentences s, id bytes b
#     id_offsets        (n + 1) x i64   into the ids' UTF-8 bytes
#     token_offsets     (n + 1) x i64   each document's first token
#     sentence_offsets  (n + 1) x i64   each document's first sentence end
#     ids               t x i32
#     ends              s x i32         where each sentence ends in its document's tokens
#     flags             t bytes
#     id bytes          b bytes

DOC_MAGIC = b"WWMDOC2\n"


def documents_bytes(docs) -> list:
    """The section of ``docs`` (``TokenizedDocument``: id, ids, flags, ends, source), in pieces."""
    names = [doc.id.encode("utf-8") for doc in docs]
    sources = [(getattr(doc, "source", "") or "").encode("utf-8") for doc in docs]
    counts = np.zeros((4, len(docs) + 1), np.int64)
    np.cumsum([len(name) for name in names], out=counts[0, 1:])
    np.cumsum([len(doc.ids) for doc in docs], out=counts[1, 1:])
    np.cumsum([len(doc.ends) for doc in docs], out=counts[2, 1:])
    np.cumsum([len(source) for source in sources], out=counts[3, 1:])
    ids = np.concatenate([doc.ids for doc in docs]).astype("<i4") if docs else np.zeros(0, "<i4")
    ends = np.concatenate([doc.ends for doc in docs]).astype("<i4") if docs else np.zeros(0, "<i4")
    return [DOC_MAGIC, _HEADER.pack(len(docs), len(ids), len(ends), int(counts[0, -1])), counts.astype("<i8").tobytes(),
            ids.tobytes(), ends.tobytes(), *(doc.flags for doc in docs), *names, *sources]


def documents_from_bytes(buffer, make) -> list:
    """The documents of a section written from ``documents_bytes``, each ``make(id, ids, flags, ends, source)``;
    ``SpillError`` if it is anything else."""
    view = memoryview(buffer)
    head = len(DOC_MAGIC) + _HEADER.size
    if len(view) < head or bytes(view[:len(DOC_MAGIC)]) != DOC_MAGIC:
        raise SpillError("not a documents section (bad magic)")
    n, t, s, b = _HEADER.unpack(view[len(DOC_MAGIC):head])
    if 32 * (n + 1) + head > len(view):
        raise SpillError("documents section: sizes do not match its length")
    counts = np.frombuffer(view, "<i8", 4 * (n + 1), head).reshape(4, n + 1)
    c = int(counts[3, -1])
    if 32 * (n + 1) + 5 * t + 4 * s + b + c + head != len(view):
        raise SpillError("documents section: sizes do not match its length")
    if (counts[:, 0] != 0).any() or (np.diff(counts, axis=1) < 0).any() or counts[:3, -1].tolist() != [b, t, s]:
        raise SpillError("documents section: bad offsets")
    at = head + 32 * (n + 1)
    ids = np.frombuffer(view, "<i4", t, at).astype(np.int32)
    ends = np.frombuffer(view, "<i4", s, at + 4 * t).astype(np.int32)
    flags = bytes(view[at + 4 * t + 4 * s:at + 5 * t + 4 * s])
    names = bytes(view[at + 5 * t + 4 * s:at + 5 * t + 4 * s + b])
    sources = bytes(view[at + 5 * t + 4 * s + b:])
    names_at, tokens_at, sentences_at, sources_at = (row.tolist() for row in counts)
    return [make(names[names_at[k]:names_at[k + 1]].decode("utf-8"), ids[tokens_at[k]:tokens_at[k + 1]],
                 flags[tokens_at[k]:tokens_at[k + 1]], ends[sentences_at[k]:sentences_at[k + 1]],
                 sources[sources_at[k]:sources_at[k + 1]].decode("utf-8"))
            for k in range(n)]


def write_parts(path: str | Path, sections) -> list[tuple[int, int]]:
    """Write sections, each an iterable of bytes-like pieces (consumed as they are written), to ``path``
    (temporary name, then renamed, or copied on an object store); (offset, size) of each."""
    placed, offset = [], 0
    with storage.atomic_output(path) as f:
        for pieces in sections:
            size = 0
            for piece in pieces:
                f.write(piece)
                size += memoryview(piece).nbytes
            placed.append((offset, size))
            offset += size
    return placed


def read_bytes(path: str | Path, offset: int, size: int, what: str = "section") -> bytes:
    """``size`` bytes at ``offset``; ``SpillError`` (naming ``what``) when the file ends before them."""
    with storage.open_input_file(path) as f:
        f.seek(offset)
        data = f.read(size)
    if len(data) != size:
        raise SpillError(f"{path}: truncated {what}")
    return data
