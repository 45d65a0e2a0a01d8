"""The shards stage's vectorised shortcuts against the plain definitions they replace (no TensorFlow needed)."""

from __future__ import annotations

import random
import numpy as np

from pipeline.shards.batch import BatchEncoder, _Uniform
from pipeline.shards.seeds import uniform
from pipeline.shards.spill import Records, Selection, merge_order


def _records(rng: random.Random, n: int) -> Records:
    keys = np.array([rng.choice([1, 2, 3, 2**63 + 1, rng.getrandbits(64)]) for _ in range(n)], np.uint64)
    data = [rng.choice([b"", b"a", b"aa", b"aa\x00", b"ab", b"b", b"abc"]) for _ in range(n)]
    offsets = np.zeros(n + 1, np.int64)
    np.cumsum([len(d) for d in data], out=offsets[1:])
    return Records(keys, offsets, b"".join(data), np.arange(2 * n, dtype=np.int64).reshape(n, 2))


def test_merge_order_is_by_key_then_bytes_stable_whatever_the_batches():
    rng = random.Random(7)
    for _ in range(200):
        batches = [_records(rng, rng.randint(0, 9)) for _ in range(rng.randint(1, 4))]
        places = [(k, i) for k, b in enumerate(batches) for i in range(len(b))]
        if places and rng.random() < 0.5:            # a subset, in any order
            places = rng.sample(places, rng.randint(1, len(places)))
            which = np.array([k for k, _ in places], np.int64)
            index = np.array([i for _, i in places], np.int64)
            got = merge_order(batches, which, index)
        else:
            got = merge_order(batches)
        expected = sorted(places, key=lambda p: (int(batches[p[0]].keys[p[1]]), batches[p[0]].record(p[1])))
        assert list(zip(got[0].tolist(), got[1].tolist())) == expected
        selection = Selection(batches, *got)
        assert b"".join(selection.chunks()) == b"".join(batches[k].record(i) for k, i in expected)
        if expected:
            assert selection.keys().tolist() == [int(batches[k].keys[i]) for k, i in expected]
            assert selection.figures().tolist() == [batches[k].figures[i].tolist() for k, i in expected]


def test_table_uniform_is_seeds_uniform():
    rng = np.random.default_rng(3)
    table = _Uniform(129, (1, 2, 3, 4))
    for size in (0, 1, 1000):
        seeds = rng.integers(0, 2**64 - 1, size, dtype=np.uint64, endpoint=True)
        for top in (129, 400):                       # past the table: computed, not looked up
            index = rng.integers(0, top, size)
            for salt in (1, 2, 3, 4):
                assert (table(seeds, index, salt) == uniform(seeds, index, salt)).all()


def _segments_by_marks(ranges, owner, offset, size, n, L):
    marks = np.zeros((n, L + 1), np.int8)
    second = ranges[:, 2] == 1
    np.add.at(marks, (owner[second], offset[second]), 1)
    np.add.at(marks, (owner[second], offset[second] + size[second] + 1), -1)
    return np.cumsum(marks[:, :L], axis=1, dtype=np.int8).astype(np.uint8)


def test_segment_ids_match_the_running_sum_of_marks():
    rng = np.random.default_rng(1)
    L = 24
    encoder = BatchEncoder.__new__(BatchEncoder)
    encoder.length = L
    for trial in range(500):
        n = int(rng.integers(1, 6))
        rows = []
        for row in range(n):
            at = 1
            for size in rng.integers(0, 5, int(rng.integers(1, 4))).tolist():
                # odd trials: any segment per range (segment-1 cells not always one run); even: A then B
                segment = int(rng.integers(0, 2)) if trial % 2 else int(at > 1)
                rows.append((row, at, size, segment))
                at += size + 1
        table = np.array(rows, np.int64)
        ranges = np.stack([np.zeros(len(table), np.int64), table[:, 2], table[:, 3]], axis=1)
        owner, offset, size = table[:, 0], table[:, 1], table[:, 2]
        got = encoder._segments(ranges, owner, offset, size, n)
        assert (got == _segments_by_marks(ranges, owner, offset, size, n, L)).all()


def test_segment_ids_without_ranges_are_zero():
    encoder = BatchEncoder.__new__(BatchEncoder)
    encoder.length = 4
    none = np.zeros(0, np.int64)
    got = encoder._segments(np.zeros((0, 3), np.int64), none, none, none, 2)
    assert got.shape == (2, 4) and not got.any()
