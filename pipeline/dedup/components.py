"""Connected components of the verified near-duplicate edges, by rounds of large-star and small-star.

Union-find over every edge on one machine holds every node on an edge; at
corpus scale that is the driver's memory growing with the corpus.  The rounds
here need only a group-by-node per step, so an engine runs them as shuffles
(``pipeline.spark.jobs``) and nothing grows on the driver; :func:`components`
runs the same steps in memory (tests, small inputs).

A graph is a set of undirected edges between labels (document ids, ordered
as strings).  One round is two steps, each a function of one node and its
neighbours (Kiveris et al., "Connected Components in MapReduce and Beyond",
2014):

- :func:`large_star`: node ``u`` with neighbours ``N``: every neighbour larger
  than ``u`` is linked to ``m = min(N + [u])`` instead of to ``u``.
- :func:`small_star`: node ``u`` with its neighbours smaller than it ``S``:
  ``u`` and every node of ``S`` are linked to ``m = min(S + [u])``.

Both keep each component connected and never join two components.  The
rounds stop when the edges form stars around each component's smallest label
(:func:`is_star_forest`: every child has one parent, and no parent is a child),
which the two steps reach in O(log n) rounds; the star's centre is then the
label of every node of the component, which is the root union-find gives
(:class:`pipeline.dedup.minhash.UnionFind` keeps the smallest id as root).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Hashable, Iterable, Iterator

Pair = tuple[Hashable, Hashable]      # (child, parent): child > parent

MAX_ROUNDS = 64     # far above what the two steps need (O(log n)); reaching it means a bug, and raises


def oriented(a, b) -> Pair | None:
    """The edge ``a``-``b`` as (larger, smaller); None for a loop."""
    if a == b:
        return None
    return (a, b) if a > b else (b, a)


def large_star(node, neighbours: Iterable) -> Iterator[Pair]:
    """The large-star step at one node: each larger neighbour linked to the smallest of the node and its
    neighbours."""
    neighbours = set(neighbours)
    low = min(neighbours | {node})
    for other in sorted(neighbours):
        if other > node and other != low:
            yield other, low


def small_star(node, smaller: Iterable) -> Iterator[Pair]:
    """The small-star step at one node with its smaller neighbours: the node and each of them linked to the
    smallest of them."""
    group = set(smaller) | {node}
    low = min(group)
    for other in sorted(group):
        if other != low:
            yield other, low


def neighbours_both_ways(pairs: Iterable[Pair]) -> Iterator[tuple]:
    """(node, neighbour) both ways of each edge: what :func:`large_star` is grouped from."""
    for a, b in pairs:
        yield a, b
        yield b, a


def is_star_forest(pairs: Iterable[Pair]) -> bool:
    """Whether oriented edges are stars around their smallest node: each child has one parent, and no parent is
    also a child."""
    parent: dict = {}
    for child, up in pairs:
        if parent.setdefault(child, up) != up:
            return False
    return not (set(parent.values()) & parent.keys())


def _group(pairs: Iterable[tuple]) -> dict:
    grouped: dict = defaultdict(set)
    for key, value in pairs:
        grouped[key].add(value)
    return grouped


def large_star_round(pairs: Iterable[Pair]) -> set[Pair]:
    """One large-star step over the whole graph, in memory."""
    return {pair for node, near in sorted(_group(neighbours_both_ways(pairs)).items())
            for pair in large_star(node, near)}


def small_star_round(pairs: Iterable[Pair]) -> set[Pair]:
    """One small-star step over the whole graph, in memory (each edge is grouped under its larger end)."""
    return {pair for node, smaller in sorted(_group(pairs).items()) for pair in small_star(node, smaller)}


def components(edges: Iterable[tuple]) -> tuple[dict, int]:
    """{node: its component's smallest node} for every node on an edge, and the rounds it took, by the same
    steps an engine runs as shuffles."""
    pairs = {p for p in (oriented(a, b) for a, b in edges) if p is not None}
    rounds = 0
    while not is_star_forest(pairs):
        if rounds == MAX_ROUNDS:
            raise RuntimeError(f"connected components: no star forest after {MAX_ROUNDS} rounds")
        pairs = small_star_round(large_star_round(pairs))
        rounds += 1
    labels = {child: parent for child, parent in pairs}
    labels.update({parent: parent for parent in set(labels.values())})
    return labels, rounds


__all__ = ["components", "large_star", "small_star", "is_star_forest", "oriented", "neighbours_both_ways",
           "large_star_round", "small_star_round", "MAX_ROUNDS"]
