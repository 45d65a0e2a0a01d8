"""TensorBoard scalars without TensorFlow or the tensorboard package: ``events.out.tfevents.*`` files are
TFRecords of ``Event`` protobufs (``wall_time`` 1: double, ``step`` 2: int64, ``file_version`` 3: string,
``summary`` 5: ``Summary`` of ``Value`` entries, ``tag`` 1 and ``simple_value`` 2: float), written by hand as
the shards' Examples are. (``torch.utils.tensorboard`` imports TensorFlow when it is installed, which this
process must never do.)
"""

from __future__ import annotations

import os
import socket
import struct
import time
from pathlib import Path

from pipeline.shards.tfrecord import frame, varint


def _field(number: int, wire: int) -> bytes:
    return varint(number << 3 | wire)


def _bytes(number: int, data: bytes) -> bytes:
    return _field(number, 2) + varint(len(data)) + data


def event(step: int, wall_time: float, scalars: dict[str, float] | None = None, file_version: str = "") -> bytes:
    out = _field(1, 1) + struct.pack("<d", wall_time) + _field(2, 0) + varint(int(step))
    if file_version:
        out += _bytes(3, file_version.encode())
    if scalars:
        values = b"".join(_bytes(1, _bytes(1, tag.encode("utf-8")) + _field(2, 5) + struct.pack("<f", float(v)))
                          for tag, v in scalars.items())
        out += _bytes(5, values)
    return out


class EventWriter:
    """Appends scalar events to a new ``events.out.tfevents.<time>.<host>`` file in ``directory``."""

    def __init__(self, directory: str | Path) -> None:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        now = time.time()
        self.path = directory / f"events.out.tfevents.{int(now)}.{socket.gethostname()}.{os.getpid()}.torch"
        self.file = open(self.path, "ab")
        self.file.write(frame(event(0, now, file_version="brain.Event:2")))

    def scalars(self, step: int, values: dict[str, float]) -> None:
        self.file.write(frame(event(step, time.time(), values)))
        self.file.flush()

    def close(self) -> None:
        self.file.close()
