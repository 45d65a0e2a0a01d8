"""Parquet shards: the instances of a TFRecord shard as columns, for readers without TensorFlow.

The records of a shard are the only copy of its instances (``write_shard`` gets framed TFRecords), so the
Parquet shard is decoded from them: the framing is walked record by record (each record's CRCs checked), each
Example's entries are split into their feature's packed payload, and every feature's payloads of the whole
shard are decoded at once (varints with NumPy, floats as little-endian float32).  So a Parquet shard holds,
by construction, exactly what its TFRecord shard holds; the columns are in ``schemas/parquet_instances``.
"""

from __future__ import annotations

import io
import struct

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline import schema, storage
from pipeline.shards.tfrecord import masked_crc

SCHEMA = "parquet_instances"


def variant(unmasked: bool) -> list[dict]:
    return schema.spec(SCHEMA)["variants"]["unmasked" if unmasked else "masked"]


def arrow_schema(unmasked: bool, max_seq_length: int, max_predictions: int) -> pa.Schema:
    spec = schema.spec(SCHEMA)
    fields = [pa.field(column["name"], schema.arrow_type(column["type"]), nullable=False)
              for column in variant(unmasked)]
    return pa.schema(fields, metadata={"wwm.schema": SCHEMA, "wwm.schema_version": str(spec["version"]),
                                       "wwm.max_seq_length": str(max_seq_length),
                                       "wwm.max_predictions_per_seq": str(max_predictions)})


def _varint(buffer, at: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = buffer[at]
        at += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, at
        shift += 7


def decode_varints(data: np.ndarray) -> np.ndarray:
    """Packed protobuf varints (uint8 array) -> their values (int64)."""
    if not len(data):
        return np.zeros(0, np.int64)
    last = data < 0x80                                   # the last byte of each value
    value_of = np.zeros(len(data), np.int64)
    value_of[1:] = np.cumsum(last[:-1])
    starts = np.flatnonzero(np.concatenate([[True], last[:-1]]))
    shift = (np.arange(len(data)) - starts[value_of]) * 7
    parts = (data & 0x7F).astype(np.int64) << shift
    return np.add.reduceat(parts, starts)


def split_records(chunks) -> list[memoryview]:
    """The Example bytes of each framed TFRecord in ``chunks`` (bytes-likes, records whole or split anywhere);
    ValueError on a bad checksum or a truncated record."""
    blob = b"".join(bytes(chunk) for chunk in chunks)
    view, out, at = memoryview(blob), [], 0
    while at < len(blob):
        if at + 12 > len(blob):
            raise ValueError("truncated record header")
        (length,) = struct.unpack_from("<Q", blob, at)
        if masked_crc(blob[at:at + 8]) != struct.unpack_from("<I", blob, at + 8)[0]:
            raise ValueError("bad length checksum")
        data = view[at + 12:at + 12 + length]
        if len(data) < length or at + 16 + length > len(blob):
            raise ValueError("truncated record")
        if masked_crc(bytes(data)) != struct.unpack_from("<I", blob, at + 12 + length)[0]:
            raise ValueError("bad data checksum")
        out.append(data)
        at += 16 + length
    return out


def columns(examples: list, unmasked: bool, max_seq_length: int, max_predictions: int) -> dict[str, np.ndarray]:
    """The features of Examples (``tf.train.Example`` bytes as written by ``batch``/``tfrecord``) as n × length
    arrays (int64, or float32 for float features), by name."""
    spec = {column["name"]: column for column in variant(unmasked)}
    sizes = {"L": max_seq_length, "P": max_predictions}
    payloads: dict[str, list] = {name: [] for name in spec}
    for example in examples:
        buffer = bytes(example)
        tag, at = buffer[0], 1
        if tag != 0x0A:
            raise ValueError("not an Example")
        size, at = _varint(buffer, at)
        end = at + size
        while at < end:
            at += 1                                       # map entry tag
            size, at = _varint(buffer, at)
            entry_end = at + size
            at += 1                                       # key tag
            size, at = _varint(buffer, at)
            key = buffer[at:at + size].decode("utf-8")
            at += size + 1                                # value tag
            size, at = _varint(buffer, at)
            at += 1                                       # Int64List / FloatList tag
            size, at = _varint(buffer, at)
            at += 1                                       # packed field tag
            size, at = _varint(buffer, at)
            if key not in payloads:
                raise ValueError(f"unexpected feature {key!r}")
            payloads[key].append(buffer[at:at + size])
            at = entry_end
    n = len(examples)
    out = {}
    for name, column in spec.items():
        length = sizes.get(column["length"], column["length"])
        if len(payloads[name]) != n:
            raise ValueError(f"feature {name!r} missing from some records")
        data = np.frombuffer(b"".join(payloads[name]), np.uint8)
        if column["type"] == "list<float>":
            values = data.view("<f4").astype(np.float32)
        else:
            values = decode_varints(data)
        if len(values) != n * length:
            raise ValueError(f"feature {name!r}: {len(values)} values for {n} records of {length}")
        out[name] = values.reshape(n, length)
    return out


def table(cols: dict[str, np.ndarray], unmasked: bool, max_seq_length: int, max_predictions: int) -> pa.Table:
    target = arrow_schema(unmasked, max_seq_length, max_predictions)
    arrays = []
    for field in target:
        values = cols[field.name]
        if pa.types.is_list(field.type):
            n, length = values.shape
            offsets = pa.array(np.arange(n + 1, dtype=np.int32) * length, pa.int32())
            arrays.append(pa.ListArray.from_arrays(offsets, pa.array(values.reshape(-1), field.type.value_type)))
        else:
            arrays.append(pa.array(values.reshape(-1), field.type))
    return pa.Table.from_arrays(arrays, schema=target)


def shard_name(shard: int, shards: int) -> str:
    return f"part-{shard:05d}-of-{shards:05d}.parquet"


def write(path: str, chunks, options) -> tuple[int, str]:
    """Write the Parquet shard of these framed records (bytes-likes); returns (bytes, sha256)."""
    import hashlib

    examples = split_records(chunks)
    cols = columns(examples, options.unmasked, options.max_seq_length, options.max_predictions_per_seq)
    sink = io.BytesIO()
    pq.write_table(table(cols, options.unmasked, options.max_seq_length, options.max_predictions_per_seq), sink,
                   compression="zstd")
    data = sink.getvalue()
    with storage.atomic_output(path) as f:
        f.write(data)
    return len(data), hashlib.sha256(data).hexdigest()
