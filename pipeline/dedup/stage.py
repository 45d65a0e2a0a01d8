"""The dedup stage's core: what an engine runs per document, per key group, per LSH group, and on the driver.

Both engines run the same four steps, each a method of :class:`Deduplicator`;
the adapters only read row groups, group by key, shuffle and write:

1. :meth:`Deduplicator.keyed`, per row group of the documents table: each
   document's normal form is computed once and gives both its exact key and
   its MinHash signature; a document whose key cannot be computed is
   quarantined (key ``None``).  What travels on is a :data:`Member` (a plain
   tuple: reference and signature, never the text).
2. :meth:`Deduplicator.resolve`, per exact-key group: the duplicates to write
   and the member the group keeps (the one near dedup compares).
3. :meth:`Deduplicator.band_batches` per worker, :meth:`Deduplicator.edges`
   per LSH group: candidate edges, collected on the driver.
4. :meth:`Deduplicator.near_duplicates` on the driver: the candidate edges
   checked (``verify=exact``: the engine runs :meth:`Deduplicator.shingles` over
   the documents on an edge and :func:`exact_similarity` per edge) and
   clustered.

The kept documents are then every row of the input whose id is in neither the
duplicates nor the quarantined table (:meth:`Deduplicator.kept`, per row group).

Every step streams (a row group, a group, a batch at a time) except step 4
when it runs whole on the driver (Beam), which holds the candidate edges.  The
Spark adapter runs step 4 in pieces on the cluster instead: the edges checked
where they land (:meth:`Deduplicator.verified`), the components found by
:mod:`pipeline.dedup.components`' rounds, each component's duplicates written
by :meth:`Deduplicator.cluster_duplicates` (the same records).
"""

from __future__ import annotations

from collections import Counter
from typing import Callable, Iterable, Iterator, Tuple, Union

import numpy as np
import pyarrow as pa

from pipeline.config import DedupOptions
from pipeline.counters import CountFn, no_count
from pipeline.dedup.exact import DocRef, exact_key, key_codes, resolve_group
from pipeline.dedup.minhash import (Rule, band_batches, bucket_edges, cluster_duplicates, edge_threshold,
                                    exact_similarity, fold_digits, group_edges, incident_keys, near_duplicates,
                                    verified, MinHasher)
from pipeline.outputs import read_table
from pipeline.records import Duplicate, Quarantined, excerpt

STAGE = "dedup"
COLUMNS = ["id", "source", "file", "position", "title", "text"]     # what the keys and signatures read

# (id, source, file, position, title, signature): a plain tuple, so that Beam and Spark encode it without pickling
Member = Tuple[str, str, str, int, str, bytes]
Edge = Tuple[DocRef, DocRef, float]
ExactCheck = Callable[[list], dict]


def ref(member: Member) -> DocRef:
    """The :class:`DocRef` of a member."""
    return DocRef(*member[:5])


class Deduplicator:
    """The dedup decisions, built once per worker (its ``MinHasher`` converter is made there, never pickled)."""

    def __init__(self, options: DedupOptions) -> None:
        self.options = options
        self.hasher = MinHasher.from_options(options)

    @property
    def progress_labels(self) -> list[str]:
        """The progress lines the per-document step reports under."""
        return ["dedup"] * self.options.exact + ["dedup/minhash"] * self.options.near

    def keyed(self, table: pa.Table) -> Iterator[tuple[str | None, Union[Member, Quarantined]]]:
        """(exact key, member) per document of an Arrow table with :data:`COLUMNS`; (None, Quarantined) for a
        document whose key cannot be computed.  Without ``exact`` the key is the id (and a failure raises: there
        is no group to resolve it in)."""
        for key, member, _ in self.keyed_with_shingles(table, False):
            yield key, member

    def keyed_with_shingles(self, table: pa.Table, shingles: bool
                            ) -> Iterator[tuple[str | None, Union[Member, Quarantined], bytes]]:
        """:meth:`keyed`, each with the document's shingle set (what :meth:`shingles` gives, from the same read
        of the text) when ``shingles`` and near dedup are on, else ``b""``."""
        exact, near, hasher = self.options.exact, self.options.near, self.hasher
        columns = [table.column(name).to_pylist() for name in COLUMNS]
        for doc_id, source, file, position, title, text in zip(*columns):
            try:
                codes = key_codes(text, hasher.convert)
                key = exact_key(codes) if exact else doc_id
            except Exception as exc:   # counted where it is resolved
                if not exact:
                    raise
                yield None, Quarantined(stage=STAGE, source=source, file=file, position=position, id=doc_id,
                                        error=f"{type(exc).__name__}: {exc}", excerpt=excerpt(text)), b""
                continue
            signature, shingle_set = b"", b""
            if near:
                hashes = hasher.shingle_hashes(fold_digits(codes))
                signature = hasher.signature_of(hashes).tobytes()
                if shingles:
                    shingle_set = np.unique(hashes).tobytes()
            yield key, (doc_id, source, file, position, title, signature), shingle_set

    def resolve(self, key: str | None, members: Iterable, count: CountFn = no_count
                ) -> tuple[Member | None, list[Duplicate | Quarantined]]:
        """One exact-key group -> (the member it keeps, the records to write: its duplicates); the ``None``
        group holds the quarantined documents (none kept)."""
        members = list(members)
        if key is None:
            count("dedup.read", len(members))
            count("dedup.quarantined", len(members))
            return None, members
        kept, duplicates = resolve_group([ref(m) for m in members], count)
        return next(m for m in members if m[0] == kept.id), duplicates

    @staticmethod
    def kept_member(key: str | None, members: Iterable[Member]) -> Member | None:
        """The member :meth:`resolve` keeps of a group (the smallest id), without resolving it again."""
        return None if key is None else min(members, key=lambda m: m[0])

    def band_batches(self, members: Iterable[Member]):
        """Members -> (LSH group, batch of bytes) pairs, the band values of a batch of members per group."""
        return band_batches(self.hasher, members)

    def bucket_edges(self, members, count: CountFn = no_count) -> list[Edge]:
        """The candidate edges of one LSH bucket (:class:`Signed` members sharing a band value)."""
        return bucket_edges(members, edge_threshold(self.hasher, self.options.threshold, self.options.verify),
                            self.options.verify, count)

    def edges(self, batches, count: CountFn = no_count) -> Iterator[Edge]:
        """The batches of one LSH group -> its candidate edges (smallest id's ref, other ref, estimate)."""
        yield from group_edges(self.hasher, batches, self.options.threshold, self.options.verify, count)

    @staticmethod
    def incident(candidates: list[Edge]) -> dict[str, list[str]]:
        """Document id -> keys of the candidate edges it is on (what :meth:`shingles` is given)."""
        return incident_keys(candidates)

    def shingles(self, table: pa.Table, incident: dict[str, list[str]]) -> Iterator[tuple[str, tuple[str, bytes]]]:
        """An Arrow table of (id, text) -> (edge key, (id, shingle set)) for each candidate edge a document is
        on; documents on no edge are passed over before their text becomes a Python string."""
        for doc_id, shingles in self.shingles_of(table, incident):
            for key in incident[doc_id]:
                yield key, (doc_id, shingles)

    def shingles_of(self, table: pa.Table, wanted) -> Iterator[tuple[str, bytes]]:
        """(id, shingle set) of each document of an Arrow table of (id, text) whose id is ``in wanted`` (a set, or
        an :class:`pipeline.dedup.idfilter.IdFilter`); the others are passed over before their text becomes a
        Python string."""
        ids = table.column("id").to_pylist()
        rows = [i for i, doc_id in enumerate(ids) if doc_id in wanted]
        if not rows:
            return
        texts = table.column("text").take(rows).to_pylist()
        for i, text in zip(rows, texts):
            yield ids[i], self.hasher.shingle_bytes(text)

    similarity = staticmethod(exact_similarity)     # the members of one edge -> Jaccard of their shingle sets

    def near_duplicates(self, edges: Iterable[Edge], exact_check: ExactCheck, count: CountFn = no_count
                        ) -> list[Duplicate]:
        """The driver's step: candidate edges -> near duplicates (``exact_check(edges) -> {edge key:
        similarity}`` is run by the engine when ``verify`` is ``exact``)."""
        return near_duplicates(edges, self.options.verify, Rule.of(self.options), exact_check, count)

    def verified(self, edges: Iterable[Edge], similarities: dict, count: CountFn = no_count) -> list[Edge]:
        """The candidate edges whose exact similarities (``{edge key: [Jaccard, containment]}``) pass the rule
        (for an engine that checks edges where they are, not on the driver)."""
        return verified(edges, similarities, Rule.of(self.options), count)

    cluster_duplicates = staticmethod(cluster_duplicates)   # one component -> its duplicates (engine-side clusters)

    def kept(self, table: pa.Table, dropped, count: CountFn = no_count) -> pa.Table:
        """A row group of the documents table without the rows whose id is in ``dropped``; without exact dedup
        nothing else counted what was read, so this step does."""
        if not self.options.exact:
            count("dedup.read", table.num_rows)
        if dropped:
            table = table.filter(pa.array([doc_id not in dropped for doc_id in table.column("id").to_pylist()],
                                          type=pa.bool_()))
        return table


DROPPED_TABLES = ("duplicates", "quarantined")


def duplicate_summary(duplicates_dir: str) -> dict:
    """Duplicates by source and by method, and clusters per method with how many have each size
    (kept document included), from one read of the table."""
    rows = read_table(duplicates_dir, "duplicates", ["source", "method", "duplicate_of"]).to_pylist()
    members: dict[str, Counter] = {}
    for row in rows:
        members.setdefault(row["method"], Counter())[row["duplicate_of"]] += 1
    clusters = {}
    for method, dropped in sorted(members.items()):
        histogram = Counter(n + 1 for n in dropped.values())
        clusters[method] = {"clusters": len(dropped),
                            "size_histogram": {str(k): v for k, v in sorted(histogram.items())}}
    return {"duplicates_by_source": dict(sorted(Counter(r["source"] for r in rows).items())),
            "duplicates_by_method": dict(sorted(Counter(r["method"] for r in rows).items())),
            "clusters": clusters}
