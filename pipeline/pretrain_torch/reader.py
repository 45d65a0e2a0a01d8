"""The shards read without TensorFlow (and without torch): TFRecord framing, ``tf.train.Example`` decoding,
Parquet instances, and the seeded, sharded, resumable record stream the PyTorch runner batches.

TFRecord: length (uint64 LE), masked CRC32C of the length, the data, masked CRC32C of the data; both CRCs
are checked. An Example is decoded as protobuf (``Example.features`` -> map entries of name ->
``Feature`` with ``Int64List`` / ``FloatList``), packed or not, so any writer's Examples of the shards'
fixed layout parse; the packed payloads of a batch are joined per feature and decoded with NumPy at once.

Every error names the file and the record (its index in the file): a corrupt shard is found, not
trained on.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

import google_crc32c
import numpy as np

from pipeline.shards.tfrecord import _MASK_DELTA

MASKED_OUTPUTS = ("input_ids", "input_mask", "segment_ids", "masked_lm_positions", "masked_lm_ids",
                  "masked_lm_weights", "next_sentence_labels")


class ShardError(ValueError):
    """A corrupt or unreadable record: ``file`` and ``record`` (index in the file) say where."""

    def __init__(self, file: str, record: int | None, message: str) -> None:
        where = f"{file}: record {record}" if record is not None else file
        super().__init__(f"{where}: {message}")
        self.file, self.record = file, record


def _masked_crc(data) -> int:
    crc = google_crc32c.value(data)
    return (((crc >> 15) | (crc << 17)) + _MASK_DELTA) & 0xFFFFFFFF


def tfrecords(path: str, start: int = 0, check: bool = True, buffer: int = 1 << 20):
    """(index, data) of each record of a TFRecord file, from record ``start`` (earlier ones are framed and
    skipped without checking their data), streaming; a bad length, CRC or truncation raises ShardError."""
    index = 0
    with open(path, "rb", buffering=buffer) as f:
        while True:
            header = f.read(12)
            if not header:
                return
            if len(header) < 12:
                raise ShardError(path, index, f"truncated record header ({len(header)} of 12 bytes)")
            (length,) = struct.unpack("<Q", header[:8])
            if _masked_crc(header[:8]) != struct.unpack("<I", header[8:])[0]:
                raise ShardError(path, index, "bad length checksum")
            if index < start:
                f.seek(length + 4, 1)
                index += 1
                continue
            data = f.read(length)
            footer = f.read(4)
            if len(data) < length or len(footer) < 4:
                raise ShardError(path, index, f"truncated record ({len(data)} of {length} bytes)")
            if check and _masked_crc(data) != struct.unpack("<I", footer)[0]:
                raise ShardError(path, index, "bad data checksum")
            yield index, data
            index += 1


# ---- protobuf
def _varint(buf, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(buf):
            raise ValueError("truncated varint")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise ValueError("varint too long")


def _fields(buf, start: int, end: int):
    """(field number, wire type, value or (begin, end) of a length-delimited field) of one message."""
    pos = start
    while pos < end:
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 2:
            size, pos = _varint(buf, pos)
            if pos + size > end:
                raise ValueError(f"field {number} runs past its message")
            yield number, wire, (pos, pos + size)
            pos += size
        elif wire == 0:
            value, pos = _varint(buf, pos)
            yield number, wire, value
        elif wire == 5:
            yield number, wire, (pos, pos + 4)
            pos += 4
        elif wire == 1:
            yield number, wire, (pos, pos + 8)
            pos += 8
        else:
            raise ValueError(f"unsupported wire type {wire}")
    if pos != end:
        raise ValueError("message runs past its end")


def example_features(buf: bytes) -> dict[str, tuple[str, bytes | list]]:
    """An Example's features: name -> ("int64", packed varint bytes or a list of values) or ("float", packed
    little-endian float32 bytes or a list); a bytes_list feature raises."""
    out = {}
    for number, wire, span in _fields(buf, 0, len(buf)):
        if number != 1 or wire != 2:
            continue
        for n2, w2, entry in _fields(buf, *span):                       # Features.feature map entries
            if n2 != 1 or w2 != 2:
                continue
            name, feature = None, None
            for n3, w3, part in _fields(buf, *entry):
                if n3 == 1 and w3 == 2:
                    name = bytes(buf[part[0]:part[1]]).decode("utf-8")
                elif n3 == 2 and w3 == 2:
                    feature = part
            if name is None:
                raise ValueError("a feature map entry without a name")
            kind, values = "int64", b""
            if feature is not None:
                for n4, w4, lst in _fields(buf, *feature):
                    if n4 == 1:
                        raise ValueError(f"feature {name}: bytes_list, expected int64 or float")
                    kind = "int64" if n4 == 3 else "float"
                    packed, loose = [], []
                    for n5, w5, value in _fields(buf, *lst):
                        if n5 != 1:
                            continue
                        if w5 == 2:
                            packed.append(bytes(buf[value[0]:value[1]]))
                        elif w5 == 0:
                            loose.append(value)
                        elif w5 == 5:
                            loose.append(struct.unpack("<f", bytes(buf[value[0]:value[1]]))[0])
                    values = b"".join(packed) if not loose else _merge(kind, packed, loose)
            out[name] = (kind, values)
    return out


def _merge(kind: str, packed: list[bytes], loose: list) -> list:
    values = []
    for p in packed:
        values += decode_varints(p).tolist() if kind == "int64" else np.frombuffer(p, "<f4").tolist()
    return values + loose


def decode_varints(data: bytes) -> np.ndarray:
    """Packed protobuf varints -> int64 (two's complement for negative int64)."""
    raw = np.frombuffer(data, np.uint8)
    if not len(raw):
        return np.zeros(0, np.int64)
    ends = raw < 0x80
    if ends.all():
        return raw.astype(np.int64)
    if not ends[-1]:
        raise ValueError("truncated varint")
    group = np.concatenate([[0], np.cumsum(ends)[:-1]])
    starts = np.concatenate([[0], np.flatnonzero(ends)[:-1] + 1])
    shift = (np.arange(len(raw)) - starts[group]).astype(np.uint64) * np.uint64(7)
    if int(shift.max()) > 63:
        raise ValueError("varint too long")
    parts = (raw & 0x7F).astype(np.uint64) << shift
    return np.bitwise_or.reduceat(parts, starts).view(np.int64)


@dataclass(frozen=True)
class Feature:
    name: str
    dtype: str          # int64 | float
    length: int


def layout(manifest: dict) -> list[Feature]:
    """The features of the manifest's variant (``schemas/tfrecord_features``), with their lengths."""
    from pipeline.shards.manifest import feature_lengths

    return [Feature(*f) for f in feature_lengths(manifest["features"] == "unmasked", manifest["max_seq_length"],
                                                 manifest["max_predictions_per_seq"])]


def decode_batch(items: list, features: list[Feature]) -> dict[str, np.ndarray]:
    """Records -> ``{name: [n, length]}`` (int64 / float32), ``next_sentence_labels`` as [n].

    ``items`` are (file, record index, payload) with payload the Example bytes (TFRecord) or a dict of
    arrays (Parquet); a record without a feature, or of another length, raises ShardError naming it."""
    n = len(items)
    out = {}
    if n and isinstance(items[0][2], dict):
        for f in features:
            rows = []
            for file, record, row in items:
                value = row.get(f.name)
                if value is None or len(value) != f.length:
                    raise ShardError(file, record, f"feature {f.name}: "
                                     + ("missing" if value is None else f"{len(value)} values, expected {f.length}"))
                rows.append(value)
            out[f.name] = np.asarray(rows, np.int64 if f.dtype == "int64" else np.float32).reshape(n, f.length)
    else:
        parsed = []
        for file, record, data in items:
            try:
                parsed.append(example_features(data))
            except (ValueError, UnicodeDecodeError) as e:
                raise ShardError(file, record, f"not a tf.train.Example: {e}") from None
        for f in features:
            chunks = []
            for (file, record, _), example in zip(items, parsed):
                got = example.get(f.name)
                if got is None:
                    raise ShardError(file, record, f"feature {f.name} missing")
                kind, values = got
                if kind != f.dtype:
                    raise ShardError(file, record, f"feature {f.name} is {kind}, expected {f.dtype}")
                chunks.append(values)
            if all(isinstance(c, bytes) for c in chunks):
                joined = b"".join(chunks)
                try:
                    flat = decode_varints(joined) if f.dtype == "int64" else np.frombuffer(joined, "<f4")
                except ValueError as e:
                    raise ShardError(items[0][0], items[0][1], f"feature {f.name}: {e}") from None
            else:
                flat = np.concatenate([np.asarray(decode_varints(c) if isinstance(c, bytes) and f.dtype == "int64"
                                                  else np.frombuffer(c, "<f4") if isinstance(c, bytes) else c)
                                       for c in chunks])
            if len(flat) != n * f.length:
                for (file, record, _), c in zip(items, chunks):         # find the record with the wrong length
                    size = (len(decode_varints(c)) if f.dtype == "int64" else len(c) // 4) \
                        if isinstance(c, bytes) else len(c)
                    if size != f.length:
                        raise ShardError(file, record, f"feature {f.name}: {size} values, expected {f.length}")
            out[f.name] = flat.astype(np.int64 if f.dtype == "int64" else np.float32, copy=False).reshape(n, f.length)
    if "next_sentence_labels" in out:
        out["next_sentence_labels"] = out["next_sentence_labels"].reshape(-1)
    return out


def parquet_rows(path: str, names: list[str], start: int = 0, batch_rows: int = 4096):
    """(index, {name: values}) of each row of a Parquet file of instances (columns named as the features;
    list columns, or scalars for one-value features), from row ``start``."""
    import pyarrow.parquet as pq

    try:
        f = pq.ParquetFile(path)
    except Exception as e:  # noqa: BLE001 - pyarrow raises several types for a bad file
        raise ShardError(path, None, f"not a Parquet file: {e}") from None
    missing = [n for n in names if n not in f.schema_arrow.names]
    if missing:
        raise ShardError(path, None, f"no column {', '.join(missing)} (columns: {', '.join(f.schema_arrow.names)})")
    index = 0
    try:
        for group in range(f.num_row_groups):
            rows = f.metadata.row_group(group).num_rows
            if index + rows <= start:
                index += rows
                continue
            table = f.read_row_group(group, columns=names)
            columns = {}
            for name in names:
                column = table.column(name).combine_chunks()
                if hasattr(column, "flatten") and hasattr(column, "offsets"):     # list<...>
                    values = column.flatten().to_numpy(zero_copy_only=False)
                    offsets = column.offsets.to_numpy()
                    columns[name] = [values[offsets[i]:offsets[i + 1]] for i in range(len(column))]
                elif hasattr(column, "flatten"):                                  # fixed_size_list<...>
                    width = column.type.list_size
                    values = column.flatten().to_numpy(zero_copy_only=False)
                    columns[name] = list(values.reshape(len(column), width))
                else:
                    columns[name] = [np.asarray([v]) for v in column.to_numpy(zero_copy_only=False)]
            for k in range(rows):
                if index >= start:
                    yield index, {name: columns[name][k] for name in names}
                index += 1
    except ShardError:
        raise
    except Exception as e:  # noqa: BLE001
        raise ShardError(path, index, f"unreadable Parquet row group: {e}") from None


def records(path: str, names: list[str], start: int = 0):
    """(index, payload) of a shard file of either format, by its name."""
    if str(path).endswith(".parquet"):
        return parquet_rows(path, names, start)
    return tfrecords(path, start)


# ---- the stream
def _rng(*keys: int) -> np.random.Generator:
    return np.random.default_rng([int(k) & 0xFFFFFFFF for k in keys] + [int(k) >> 32 for k in keys])


@dataclass
class Stream:
    """The records of stream ``stream`` of ``streams`` (one per rank x dataloader worker), epoch after epoch.

    Epoch ``e``: the files in an order drawn from ``(seed, e)``; with at least as many files as streams each
    stream reads every ``streams``-th file of that order, else every ``streams``-th record of them all; the
    records go through a shuffle buffer drawn from ``(seed, e, stream)``. Each item is (epoch, index in the
    stream's epoch, file, record index, payload): the position fixes the item, so skipping ``n`` items
    (``items(skip=n)``) gives what reading them would. Whole epochs are skipped by arithmetic on the record
    counts; the rest of an epoch is read without decoding.
    """

    files: list[str]
    counts: list[int]               # records per file (the manifest's)
    names: list[str]                # feature names (Parquet columns)
    seed: int = 12345
    stream: int = 0
    streams: int = 1
    shuffle_buffer: int = 10_000

    def __post_init__(self):
        if not self.files:
            raise ValueError("no shard holds any instance")
        if len(self.counts) != len(self.files):
            raise ValueError("one record count per file")
        if self.epoch_size(0) <= 0:
            raise ValueError(f"stream {self.stream} of {self.streams} gets no record")

    def _order(self, epoch: int) -> list[int]:
        return _rng(self.seed, epoch, 1).permutation(len(self.files)).tolist()

    def _mine(self, epoch: int):
        """(file index, records to take: None for all, else (first, step)) of this stream in this epoch."""
        order = self._order(epoch)
        if len(self.files) >= self.streams:
            return [(f, None) for f in order[self.stream::self.streams]]
        out, before = [], 0
        for f in order:                             # record k of the epoch's concatenation goes to k % streams
            first = (self.stream - before) % self.streams
            out.append((f, first))
            before += self.counts[f]
        return out

    def epoch_size(self, epoch: int) -> int:
        total = 0
        for f, first in self._mine(epoch):
            n = self.counts[f]
            total += n if first is None else max(0, (n - first + self.streams - 1) // self.streams)
        return total

    def _epoch_records(self, epoch: int):
        for f, first in self._mine(epoch):
            path = self.files[f]
            for index, payload in records(path, self.names, 0 if first is None else first):
                if first is None or (index - first) % self.streams == 0:
                    yield path, index, payload

    def items(self, skip: int = 0):
        epoch = 0
        while skip and skip >= self.epoch_size(epoch):
            skip -= self.epoch_size(epoch)
            epoch += 1
        while True:
            rng = _rng(self.seed, epoch, 2, self.stream)
            buffer: list = []
            k = 0
            size = max(1, self.shuffle_buffer)
            for record in self._epoch_records(epoch):
                if len(buffer) < size:
                    buffer.append(record)
                    continue
                j = int(rng.integers(size))
                out, buffer[j] = buffer[j], record
                if k >= skip:
                    yield (epoch, k, *out)
                k += 1
            for j in rng.permutation(len(buffer)).tolist():
                if k >= skip:
                    yield (epoch, k, *buffer[j])
                k += 1
            skip = 0
            epoch += 1


def shard_files(directory: str | Path, manifest: dict) -> tuple[list[str], list[int]]:
    """The manifest's shard files that hold instances, and their instance counts."""
    directory = Path(directory)
    shards = [s for s in manifest["shards"] if s["instances"] > 0]
    return [str(directory / s["file"]) for s in shards], [int(s["instances"]) for s in shards]


def read_manifest(directory: str | Path) -> dict:
    import json

    from pipeline.shards.manifest import MANIFEST

    path = Path(directory) / MANIFEST
    if not path.exists():
        raise FileNotFoundError(f"{path}: no manifest.json (a shards directory is OUTPUT/shards)")
    return json.loads(path.read_text(encoding="utf-8"))
