"""Connected components by large-star / small-star rounds: equal to union-find, in memory and on Spark."""

from __future__ import annotations

import random

import pytest

from pipeline.dedup.components import components, is_star_forest, large_star, small_star
from pipeline.dedup.minhash import UnionFind


def hard_graph(seed: int = 7) -> list[tuple[str, str]]:
    """Long chains whose ids are shuffled (so the smallest id sits anywhere on the chain), stars whose centre is
    not the smallest id, a chain of stars, and pairs: a graph no single step resolves."""
    rng = random.Random(seed)
    edges, next_id = [], 0

    def ids(n):
        nonlocal next_id
        names = [f"d{k:06d}" for k in range(next_id, next_id + n)]
        next_id += n
        rng.shuffle(names)
        return names

    for length in (300, 64, 17):                          # chains
        chain = ids(length)
        edges += list(zip(chain, chain[1:]))
    for size in (50, 9):                                  # stars around a middle id
        nodes = ids(size)
        centre = sorted(nodes)[size // 2]
        edges += [(centre, n) for n in nodes if n != centre]
    centres = ids(12)                                     # stars joined in a chain through their centres
    edges += list(zip(centres, centres[1:]))
    for centre in centres:
        edges += [(centre, leaf) for leaf in ids(4)]
    for _ in range(20):                                   # pairs
        a, b = ids(2)
        edges.append((a, b))
    rng.shuffle(edges)
    return [(a, b) if rng.random() < 0.5 else (b, a) for a, b in edges]


def union_find_labels(edges) -> dict:
    uf = UnionFind()
    for a, b in edges:
        uf.union(a, b)
    return {node: uf.find(node) for node in uf.parent}


def test_steps_on_one_node():
    assert list(large_star("c", ["a", "d", "e"])) == [("d", "a"), ("e", "a")]
    assert list(large_star("a", ["c", "d"])) == [("c", "a"), ("d", "a")]
    assert list(small_star("e", ["b", "c"])) == [("c", "b"), ("e", "b")]
    assert is_star_forest([("b", "a"), ("c", "a"), ("e", "d")])
    assert not is_star_forest([("c", "b"), ("b", "a")])          # b is a child and a parent
    assert not is_star_forest([("c", "a"), ("c", "b")])          # c has two parents


def test_rounds_equal_union_find_on_chains_and_stars():
    edges = hard_graph()
    labels, rounds = components(edges)
    assert labels == union_find_labels(edges)
    assert rounds >= 3                                   # the shuffled 300-chain is not resolved in one or two
    assert len(set(labels.values())) == 3 + 2 + 1 + 20


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_rounds_equal_union_find_on_random_graphs(seed):
    rng = random.Random(seed)
    nodes = [f"n{k:04d}" for k in range(400)]
    edges = [tuple(rng.sample(nodes, 2)) for _ in range(300)]
    labels, _ = components(edges)
    assert labels == union_find_labels(edges)


def test_spark_rounds_equal_union_find(tmp_path):
    from pipeline.spark.graph import components as spark_components
    from pipeline.spark.session import get_session
    from conftest import make_config

    config = make_config(tmp_path / "out", [], engine="spark")
    context = get_session(config).sparkContext
    edges = hard_graph()
    labels, rounds = spark_components(context.parallelize(edges, 4), 4)
    found = dict(labels.collect())
    labels.unpersist()
    expected = union_find_labels(edges)
    assert found == {node: root for node, root in expected.items() if node != root}
    assert rounds == components(edges)[1] and rounds >= 3
