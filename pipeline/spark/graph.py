"""Connected components on Spark: the rounds of :mod:`pipeline.dedup.components` as shuffles.

Each step groups the edge RDD by node and applies the core's step to each
group; the driver holds only the round count and a yes/no per round, whatever
the size of the graph.
"""

from __future__ import annotations

from pyspark import StorageLevel

from pipeline.dedup.components import MAX_ROUNDS, large_star, oriented, small_star


def _both_ways(pair):
    return (pair[0], pair[1]), (pair[1], pair[0])


def _ends(pair):
    """A (child, parent) edge as what each end says of itself: the child names its parent, the parent says it
    is one."""
    child, parent = pair
    return (child, ("child", parent)), (parent, ("parent", None))


def _not_star(values) -> bool:
    parents = {value for kind, value in values if kind == "child"}
    return len(parents) > 1 or (bool(parents) and any(kind == "parent" for kind, _ in values))


def is_star_forest(pairs, partitions: int) -> bool:
    """:func:`pipeline.dedup.components.is_star_forest` over an RDD of (child, parent) pairs, in one shuffle."""
    return pairs.flatMap(_ends).groupByKey(partitions).filter(lambda kv: _not_star(kv[1])).isEmpty()


def components(edges, partitions: int):
    """An RDD of undirected (a, b) edges -> (RDD of (node, its component's smallest node) for every node but
    that smallest one, rounds taken).  The RDD returned is persisted; the caller unpersists it."""
    pairs = (edges.map(lambda e: oriented(*e)).filter(lambda p: p is not None).distinct(partitions)
             .persist(StorageLevel.MEMORY_AND_DISK))
    rounds = 0
    while not is_star_forest(pairs, partitions):
        if rounds == MAX_ROUNDS:
            raise RuntimeError(f"connected components: no star forest after {MAX_ROUNDS} rounds")
        large = pairs.flatMap(_both_ways).groupByKey(partitions).flatMap(lambda kv: large_star(kv[0], kv[1]))
        small = (large.groupByKey(partitions).flatMap(lambda kv: small_star(kv[0], kv[1])).distinct(partitions)
                 .persist(StorageLevel.MEMORY_AND_DISK))
        small.count()
        pairs.unpersist()
        pairs, rounds = small, rounds + 1
    return pairs, rounds


__all__ = ["components", "is_star_forest"]
