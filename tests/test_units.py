"""Masking units (n-gram, span), mixing weights and Parquet decoding: the core functions, no engine, no TensorFlow."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.config import ConfigError, Config, load, parse_input, source_weights
from pipeline.shards import mixing, units
from pipeline.shards.seeds import document_values, uniform


def _batch(rng, n, max_words=60):
    """n instances of words (1-3 tokens each), each instance two runs (A, B) of words."""
    group_len, group_row, adjacent = [], [], []
    for row in range(n):
        words = int(rng.integers(2, max_words))
        cut = int(rng.integers(1, words))
        for w in range(words):
            group_len.append(int(rng.choice([1, 1, 2, 2, 2, 3])))
            group_row.append(row)
            adjacent.append(w != cut - 1 and w != words - 1)
    return np.array(group_len), np.array(group_row), np.array(adjacent)


def _runs(adjacent):
    run, out = 0, []
    for a in adjacent:
        out.append(run)
        run += 0 if a else 1
    return np.array(out)


@pytest.mark.parametrize("scheme", ["ngram", "span"])
def test_units_are_free_consecutive_words_of_one_run_under_the_cap(scheme):
    rng = np.random.default_rng(3)
    group_len, group_row, adjacent = _batch(rng, 400)
    n = 400
    seeds = rng.integers(0, 2**63, n).astype(np.uint64)
    index = np.arange(len(group_len)) - np.searchsorted(group_row, group_row)
    priority = uniform(seeds[group_row], index, 1)
    wanted = rng.integers(1, 20, n)
    cap = wanted + rng.integers(0, 5, n)
    dist = units.unit_distribution(scheme)
    first, size = units.choose_units(group_len, group_row, adjacent, priority, seeds, wanted, dist, uniform, cap)
    run = _runs(adjacent)
    covered = np.zeros(len(group_len), int)
    tokens = np.zeros(n, int)
    for f, s in zip(first.tolist(), size.tolist()):
        assert 1 <= s <= len(dist)
        assert run[f] == run[f + s - 1], "a unit crosses a run (segment) boundary"
        covered[f:f + s] += 1
        tokens[group_row[f]] += group_len[f:f + s].sum()
    assert covered.max() == 1, "units overlap"
    assert (tokens <= cap).all()
    # nothing masked only where no word fits under the cap
    smallest = np.full(n, 99)
    np.minimum.at(smallest, group_row, group_len)
    assert ((tokens > 0) | (smallest > cap)).all()


def test_an_instance_gets_the_same_units_whatever_the_batch():
    """Draws are per instance seed and round: an instance alone or among others gets the same units."""
    rng = np.random.default_rng(5)
    group_len, group_row, adjacent = _batch(rng, 50)
    seeds = rng.integers(0, 2**63, 50).astype(np.uint64)
    index = np.arange(len(group_len)) - np.searchsorted(group_row, group_row)
    priority = uniform(seeds[group_row], index, 1)
    wanted = np.full(50, 12)
    dist = units.unit_distribution("ngram")
    first, size = units.choose_units(group_len, group_row, adjacent, priority, seeds, wanted, dist, uniform)
    for row in (0, 17, 49):
        mine = group_row == row
        offset = int(np.flatnonzero(mine)[0])
        f1, s1 = units.choose_units(group_len[mine], np.zeros(mine.sum(), np.int64), adjacent[mine], priority[mine],
                                    seeds[row:row + 1], wanted[row:row + 1], dist, uniform)
        theirs = group_row[first] == row
        assert sorted(zip((first[theirs] - offset).tolist(), size[theirs].tolist())) == \
            sorted(zip(f1.tolist(), s1.tolist()))


def test_unit_distributions():
    assert units.unit_distribution("wwm") is None
    assert np.allclose(units.unit_distribution("ngram"), [0.4, 0.3, 0.2, 0.1])
    assert np.allclose(units.unit_distribution("ngram", "1,1"), [0.5, 0.5])
    span = units.unit_distribution("span")
    assert len(span) == 10 and abs(units.mean_length(span) - 3.797) < 0.001     # SpanBERT's 3.8
    for bad in ("", "a,b", "-1,2", "0,0"):
        with pytest.raises(ValueError):
            units.unit_distribution("ngram", bad)
    with pytest.raises(ValueError):
        units.unit_distribution("span", span_p=0)
    u = np.linspace(0, 1, 100_000, endpoint=False)
    counts = np.bincount(units.draw_lengths(u, np.array([0.4, 0.3, 0.2, 0.1])))[1:] / len(u)
    assert np.allclose(counts, [0.4, 0.3, 0.2, 0.1], atol=1e-4)


def test_weighted_copies_follow_the_weight_and_the_document_alone():
    values = document_values(12345, [f"doc-{k}" for k in range(20_000)])
    for weight in (0.0, 0.5, 1.0, 2.0, 2.5):
        copies = mixing.copies(values, np.full(len(values), weight))
        assert set(copies.tolist()) <= {int(np.floor(weight)), int(np.floor(weight)) + 1}
        assert abs(copies.mean() - weight) < 0.02, (weight, copies.mean())
    # a document's copies depend on its value and weight only
    some = mixing.copies(values[100:200], np.full(100, 2.5))
    assert np.array_equal(some, mixing.copies(values, np.full(len(values), 2.5))[100:200])


def test_weights_in_inputs_and_options(tmp_path):
    spec = parse_input("wiki=/data/wiki.jsonl@2.5")
    assert (spec.path, spec.source, spec.weight) == ("/data/wiki.jsonl", "wiki", 2.5)
    assert parse_input("wiki=/data/wiki@home.jsonl").path == "/data/wiki@home.jsonl"
    assert parse_input({"path": "p", "source": "web", "weight": 0.5}).weight == 0.5
    with pytest.raises(ConfigError, match="source name"):
        parse_input({"path": "p", "weight": 2})
    with pytest.raises(ConfigError):
        parse_input("wiki=/data/wiki.jsonl@-1")
    config_file = tmp_path / "c.yaml"
    config_file.write_text("inputs:\n  - {path: a, source: wiki, weight: 2.0}\n  - {path: b, source: web}\n"
                           "shards:\n  weights: {web: 0.5, news: 3}\n", encoding="utf-8")
    config = load(config_file)
    assert source_weights(config) == {"wiki": 2.0, "web": 0.5, "news": 3.0}
    config = Config(inputs=["a=x@1", "a=y@2"])
    with pytest.raises(ConfigError, match="different weights"):
        source_weights(config)
    config = Config()
    config.shards.weights = {"web": "lots"}
    with pytest.raises(ConfigError):
        source_weights(config)


def test_source_summary_shares():
    counters = {"shards.source:wiki:tokens": 300, "shards.source:web:tokens": 100,
                "shards.source:wiki:weighted_tokens": 600, "shards.source:web:weighted_tokens": 50,
                "shards.source:a:b:documents": 1, "shards.kept": 3}
    out = mixing.summary(counters, {"wiki": 2.0, "web": 0.5})
    assert out["wiki"]["tokens_share"] == 0.75 and out["web"]["weighted_tokens_share"] == round(50 / 650, 6)
    assert out["wiki"]["weight"] == 2.0 and out["a:b"]["documents"] == 1 and out["a:b"]["weight"] == 1.0


def test_varints_decode():
    from pipeline.shards.parquet import decode_varints
    from pipeline.shards.tfrecord import varint

    values = [0, 1, 127, 128, 300, 16383, 16384, 2**21 - 1, 2**35 + 7]
    data = np.frombuffer(b"".join(varint(v) for v in values), np.uint8)
    assert decode_varints(data).tolist() == values


@pytest.mark.parametrize("scheme", ["wwm", "ngram", "span"])
def test_mask_instances_from_word_ids_masks_whole_words_of_one_segment(scheme):
    from pipeline.config import ShardOptions
    from pipeline.shards.batch import flags_from_word_ids, mask_instances
    from pipeline.shards.tokens import CONT, SPECIAL, START

    word_ids = np.array([[0, 1, 1, 2, 3, 3, 3, 0, 4, 5, 0, 0]])
    assert flags_from_word_ids(word_ids).tolist() == [[SPECIAL, START, CONT, START, START, CONT, CONT, SPECIAL,
                                                       START, START, SPECIAL, SPECIAL]]
    rng = np.random.default_rng(1)
    words = np.zeros((300, 64), np.int64)
    lengths = np.zeros(300, np.int64)
    for row in range(300):
        n, at, w = int(rng.integers(10, 64)), 1, 0
        sep = n // 2
        while at < n - 1:
            if at == sep:
                at += 1
                continue
            size = min(int(rng.integers(1, 4)), n - 1 - at, (sep - at) if at < sep else n)
            w += 1
            words[row, at:at + size] = w
            at += size
        lengths[row] = n
    ids = 1000 + words
    options = ShardOptions(masking=scheme, max_seq_length=64, max_predictions_per_seq=10)
    masked, positions, labels, counts, _ = mask_instances(ids, flags_from_word_ids(words), lengths,
                                                          np.arange(300, dtype=np.uint64), options, 103, [7, 8])
    for row in range(300):
        chosen = positions[row][:counts[row]]
        assert counts[row] >= 1 and (words[row, chosen] > 0).all()
        assert np.isin(words[row], words[row, chosen]).sum() == counts[row]       # whole words
        assert np.array_equal(labels[row][:counts[row]], ids[row, chosen])


def test_weights_flag_on_the_command_line():
    from pipeline import cli

    args = cli.build_parser().parse_args(["shards", "-o", "x", "--shards-weights", "wiki=2.5",
                                          "--shards-weights", "web=0.5", "--shards-masking", "span"])
    config = cli.config_from_args(args)
    assert source_weights(config) == {"wiki": 2.5, "web": 0.5} and config.shards.masking == "span"
