"""``tf.train.Example`` bytes and TFRecord framing, written without TensorFlow.

An Example is a protobuf ``Features`` map from feature name to ``Int64List`` or
``FloatList`` (packed).  Encoding it by hand is a few byte joins, much cheaper
than building protobuf objects; every shard is still parsed back with
``tf.data.TFRecordDataset`` and ``tf.io.parse_single_example`` in the tests.
A TFRecord is: length (uint64 LE), masked CRC32C of the length, the data,
masked CRC32C of the data.
"""

from __future__ import annotations

import struct

import google_crc32c

_MASK_DELTA = 0xA282EAD8


def varint(value: int) -> bytes:
    """Protobuf base-128 varint of a non-negative integer."""
    if value < 0:
        raise ValueError(f"negative value {value} (only non-negative int64 features are written)")
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


_LENGTHS = [varint(i) for i in range(1 << 14)]   # lengths of everything but very long sequences
_TAG1, _TAG2, _TAG3 = b"\x0a", b"\x12", b"\x1a"     # field 1, 2, 3, wire type 2 (length-delimited)


def _length(n: int) -> bytes:
    return _LENGTHS[n] if n < 16384 else varint(n)


def int64_feature(packed_varints: bytes) -> bytes:
    """A ``Feature`` (field 3: ``Int64List``) whose packed values are given."""
    inner = _TAG1 + _length(len(packed_varints)) + packed_varints
    return _TAG3 + _length(len(inner)) + inner


def float_feature(packed_floats: bytes) -> bytes:
    """A ``Feature`` (field 2: ``FloatList``) whose packed little-endian float32 values are given."""
    inner = _TAG1 + _length(len(packed_floats)) + packed_floats
    return _TAG2 + _length(len(inner)) + inner


def example(features: list[tuple[bytes, bytes]]) -> bytes:
    """An ``Example`` (field 1: ``Features``, a map of name -> ``Feature`` entries) from (UTF-8 name,
    encoded Feature) pairs, written in the order given (the torch runner's TensorBoard events and its tests
    write whole ones; shards are written from cached prefixes)."""
    parts = []
    for name, feature in features:
        entry = _TAG1 + _length(len(name)) + name + _TAG2 + _length(len(feature)) + feature
        parts.append(_TAG1 + _length(len(entry)) + entry)
    entries = b"".join(parts)
    return _TAG1 + _length(len(entries)) + entries


def floats(values) -> bytes:
    """Packed little-endian float32 values (a ``FloatList`` payload)."""
    return struct.pack(f"<{len(values)}f", *values)


def feature_prefix(name: bytes, kind: str, payload_size: int) -> bytes:
    """The bytes of a ``Features`` map entry that come before a feature's packed payload of ``payload_size``
    bytes (``kind``: int64 or float): constant for a given size, so encoders cache it."""
    feature = (int64_feature if kind == "int64" else float_feature)(b"\x00" * payload_size)
    entry = _TAG1 + _length(len(name)) + name + _TAG2 + _length(len(feature)) + feature
    part = _TAG1 + _length(len(entry)) + entry
    return part[:len(part) - payload_size]


def masked_crc(data: bytes) -> int:
    crc = google_crc32c.value(data)
    return (((crc >> 15) | (crc << 17)) + _MASK_DELTA) & 0xFFFFFFFF


def frame(record: bytes) -> bytes:
    """One whole TFRecord: length, its masked CRC, the record, the record's masked CRC (the torch runner's
    TensorBoard event files)."""
    length = struct.pack("<Q", len(record))
    return length + struct.pack("<I", masked_crc(length)) + record + struct.pack("<I", masked_crc(record))


def frame_head(body_size: int) -> tuple[bytes, int]:
    """For an ``Example`` whose ``Features`` body is ``body_size`` bytes: the bytes of its TFRecord up to the body
    (length, its masked CRC, the Example's tag and length) and the CRC32C of the Example's part of them, to
    ``google_crc32c.extend`` over the body."""
    head = _TAG1 + _length(body_size)
    length = struct.pack("<Q", len(head) + body_size)
    return length + struct.pack("<I", masked_crc(length)) + head, google_crc32c.value(head)


def read_records(path: str):
    """The records of a TFRecord file, each checked against its CRCs (a corrupt file raises ValueError)."""
    with open(path, "rb") as f:
        while True:
            header = f.read(12)
            if not header:
                return
            if len(header) < 12:
                raise ValueError(f"{path}: truncated record header")
            (length,), (length_crc,) = struct.unpack("<Q", header[:8]), struct.unpack("<I", header[8:])
            if masked_crc(header[:8]) != length_crc:
                raise ValueError(f"{path}: bad length checksum")
            data = f.read(length)
            footer = f.read(4)
            if len(data) < length or len(footer) < 4:
                raise ValueError(f"{path}: truncated record")
            if masked_crc(data) != struct.unpack("<I", footer)[0]:
                raise ValueError(f"{path}: bad data checksum")
            yield data
