"""Near-duplicate detection: MinHash signatures, LSH bands, candidate edges, clusters.

Pure NumPy; the engines call these functions around their grouping:

1. :meth:`MinHasher.signature` turns a document's normalised text (NFKC,
   simplified, lowercase, digits folded to 0, whitespace and punctuation
   removed) into character shingles (5-grams; 3-grams for texts shorter than
   ``short_length``; a text shorter than the shingle is one shingle, never
   dropped) hashed to 32 bits, and those into ``num_perm`` minimum hash values
   under seeded multiply-shift hash functions ``((a*x + b) mod 2**64) >> 32``
   (a odd; a universal family, and no division in the inner loop).
2. :meth:`MinHasher.band_keys` cuts the signature into ``bands`` x ``rows``
   (from :func:`optimal_param`); documents sharing a band key are candidates.
3. :func:`bucket_edges` turns one band bucket into edges from its smallest id
   to each other member, checked by the signature estimate; with exact
   verification (the default) each remaining edge is then checked on the
   two documents' shingle sets, which the engines bring together per edge
   (:func:`incident_keys`, :func:`exact_similarity`): a pair is a duplicate
   when their Jaccard reaches ``threshold``, or when their *containment*
   (shared shingles over the smaller set's size) reaches ``containment`` and
   their Jaccard ``containment_min_jaccard`` (an article and a copy truncated
   to 60% of it, or abridged, or the article inside a longer page).  With
   containment on, the bands are derived for the lower of the two Jaccard
   levels, so such pairs become candidates.
4. :func:`clusters` is union-find over the edges; in each component the
   smallest id is kept and every other member becomes a ``Duplicate``.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from pipeline.clean.normalize import ScriptConverter
from pipeline.counters import CountFn, no_count
from pipeline.dedup.exact import DocRef, code_tables, codes_text, key_codes
from pipeline.records import Duplicate

METHOD = "minhash"
MAX_HASH = np.uint32(0xFFFFFFFF)
_BLOCK = 2048                              # shingles per block when taking minima


def near_codes(text: str, convert: ScriptConverter) -> np.ndarray:
    """The code points (uint32) of :func:`near_key_text`."""
    return fold_digits(key_codes(text, convert))


def fold_digits(codes: np.ndarray) -> np.ndarray:
    """Exact-dedup key code points (:func:`key_codes`) with every decimal digit folded to 0."""
    digits = code_tables()[1][codes]
    return np.where(digits, np.uint32(ord("0")), codes) if digits.any() else codes


def near_key_text(text: str, convert: ScriptConverter) -> str:
    """The text near dedup shingles: the exact-dedup normal form with every digit folded to 0."""
    return codes_text(near_codes(text, convert))


def _integrate(f, a: float, b: float, points: int = 2001) -> np.ndarray:
    xs = np.linspace(a, b, points)
    ys = f(xs[:, None]) if callable(f) else f
    return np.trapezoid(ys, xs, axis=0) if hasattr(np, "trapezoid") else np.trapz(ys, xs, axis=0)


@lru_cache(maxsize=None)
def optimal_param(threshold: float, num_perm: int, false_positive_weight: float = 0.5,
                  false_negative_weight: float = 0.5) -> tuple[int, int]:
    """(bands, rows) with bands*rows <= num_perm minimising the weighted areas of false positives
    (below the threshold) and false negatives (above it) under P(s) = 1 - (1 - s**r)**b."""
    best, best_error = (1, 1), float("inf")
    for b in range(1, num_perm + 1):
        rows = np.arange(1, num_perm // b + 1, dtype=float)
        if rows.size == 0:
            break
        fp = _integrate(lambda s: 1 - (1 - s ** rows) ** b, 0.0, threshold)
        fn = _integrate(lambda s: (1 - s ** rows) ** b, threshold, 1.0)
        errors = false_positive_weight * fp + false_negative_weight * fn
        i = int(np.argmin(errors))
        if errors[i] < best_error - 1e-12:
            best_error, best = float(errors[i]), (b, int(rows[i]))
    return best


@dataclass(frozen=True, slots=True)
class Signed:
    """A document's reference and MinHash signature (what band buckets carry)."""

    ref: DocRef
    signature: bytes

    def values(self) -> np.ndarray:
        return np.frombuffer(self.signature, dtype=np.uint32)


class MinHasher:
    def __init__(self, num_perm: int = 128, threshold: float = 0.6, ngram: int = 5, short_ngram: int = 3,
                 short_length: int = 100, seed: int = 42, bands: int = 0, rows: int = 0,
                 convert: str = "t2s", false_positive_weight: float = 0.05,
                 false_negative_weight: float = 0.95, containment: float = 0.8,
                 containment_min_jaccard: float = 0.4) -> None:
        if not 0 < threshold < 1:
            raise ValueError(f"threshold must be between 0 and 1, got {threshold}")
        if not 0 <= containment <= 1:
            raise ValueError(f"containment must be between 0 and 1 (0: off), got {containment}")
        if containment and not 0 < containment_min_jaccard < 1:
            raise ValueError(f"containment_min_jaccard must be between 0 and 1, got {containment_min_jaccard}")
        self.containment, self.containment_min_jaccard = containment, containment_min_jaccard
        # the Jaccard level candidates must reach: the lower of the two rules' levels
        self.candidate_threshold = min(threshold, containment_min_jaccard) if containment else threshold
        if bands and rows and bands * rows > num_perm:
            raise ValueError(f"bands x rows ({bands} x {rows}) exceeds num_perm {num_perm}")
        self.num_perm, self.threshold, self.seed = num_perm, threshold, seed
        self.ngram, self.short_ngram, self.short_length = ngram, short_ngram, short_length
        self.bands, self.rows = (bands, rows) if bands and rows else optimal_param(
            self.candidate_threshold, num_perm, false_positive_weight, false_negative_weight)
        rng = np.random.default_rng(seed)
        self.a = rng.integers(0, 2**64, size=num_perm, dtype=np.uint64, endpoint=False) | np.uint64(1)
        self.b = rng.integers(0, 2**64, size=num_perm, dtype=np.uint64, endpoint=False)
        self.convert = ScriptConverter(convert)
        self._local = threading.local()

    @classmethod
    def from_options(cls, options) -> "MinHasher":
        return cls(num_perm=options.num_perm, threshold=options.threshold, ngram=options.ngram,
                   short_ngram=options.short_ngram, short_length=options.short_length, seed=options.seed,
                   bands=options.bands, rows=options.rows, convert=options.key_convert,
                   false_positive_weight=options.false_positive_weight,
                   false_negative_weight=options.false_negative_weight,
                   containment=options.containment if options.verify == "exact" else 0.0,
                   containment_min_jaccard=options.containment_min_jaccard)

    @property
    def rule(self) -> "Rule":
        """The verification rule of these settings (what :func:`near_duplicates` applies)."""
        return Rule(self.threshold, self.containment, self.containment_min_jaccard)

    def shingles(self, text: str) -> np.ndarray:
        """Sorted unique 32-bit hashes of the character shingles of a normalised text."""
        return self.shingles_of(np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32))

    def shingles_of(self, codes: np.ndarray) -> np.ndarray:
        """Sorted unique shingle hashes of a normalised text given as code points (:func:`near_codes`)."""
        return np.unique(self.shingle_hashes(codes))

    def shingle_hashes(self, codes: np.ndarray) -> np.ndarray:
        """The 32-bit hash of every shingle of a normalised text given as code points, in text order
        (repeats kept: the signature does not need them removed)."""
        if not len(codes):
            return np.empty(0, dtype=np.uint32)
        codes = codes.astype(np.uint64)
        n = self.ngram if len(codes) >= self.short_length else self.short_ngram
        n = min(n, len(codes))
        windows = len(codes) - n + 1
        hashes = codes[:windows].copy()
        base = np.uint64(1_000_003)
        for k in range(1, n):
            hashes *= base
            hashes += codes[k:k + windows]
        hashes ^= hashes >> np.uint64(29)
        hashes *= np.uint64(0xBF58476D1CE4E5B9)
        hashes ^= hashes >> np.uint64(32)
        return hashes.astype(np.uint32)      # the low 32 bits

    def signature_of(self, shingles: np.ndarray) -> np.ndarray:
        """``num_perm`` minimum permuted hashes of a shingle set (all MAX_HASH for an empty set).

        ``x >> 32`` is monotone, so the minimum of ``(a*x + b) >> 32`` is the
        minimum of ``a*x + b`` shifted once: one pass less over the
        shingles x permutations block, which is written into a reused buffer.
        """
        result = np.full(self.num_perm, np.uint64(0xFFFFFFFFFFFFFFFF), dtype=np.uint64)
        values = shingles.astype(np.uint64)
        buffer = self._buffer()
        for start in range(0, len(values), _BLOCK):
            block = values[start:start + _BLOCK, None]
            permuted = np.multiply(block, self.a, out=buffer[:len(block)])
            permuted += self.b
            np.minimum(result, permuted.min(axis=0), out=result)
        return (result >> np.uint64(32)).astype(np.uint32)

    def _buffer(self) -> np.ndarray:
        buffer = getattr(self._local, "buffer", None)
        if buffer is None:
            buffer = self._local.buffer = np.empty((_BLOCK, self.num_perm), dtype=np.uint64)
        return buffer

    def __getstate__(self):
        return {k: v for k, v in self.__dict__.items() if k != "_local"}

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._local = threading.local()

    def shingle_bytes(self, text: str) -> bytes:
        """The shingle set of a raw text, as bytes (for the exact check)."""
        return self.shingles_of(near_codes(text, self.convert)).tobytes()

    def signature_codes(self, codes: np.ndarray) -> bytes:
        """The signature (bytes) of a normalised text given as code points (:func:`near_codes`)."""
        return self.signature_of(self.shingle_hashes(codes)).tobytes()

    def sign(self, ref: DocRef, text: str) -> Signed:
        return Signed(ref, self.signature_codes(near_codes(text, self.convert)))

    def band_keys(self, signed: Signed | bytes) -> list[bytes]:
        """One key per band: the band's index (2 bytes) and its rows' values, so documents share a key
        exactly when they agree on a whole band.  None for a document with no shingles (it can only be an
        exact duplicate)."""
        signature = signed if isinstance(signed, bytes) else signed.signature
        width = 4 * self.rows
        if signature == _EMPTY_BYTES * self.num_perm:
            return []
        return [i.to_bytes(2, "big") + signature[i * width:(i + 1) * width] for i in range(self.bands)]


_EMPTY_BYTES = b"\xff\xff\xff\xff"


def estimated_jaccard(a: Signed, b: Signed) -> float:
    return float(np.count_nonzero(a.values() == b.values())) / len(a.values())


EXACT_PREFILTER = 0.15   # with exact verification, candidates estimated this far below the threshold are dropped


def bucket_edges(members, threshold: float, verify: str = "exact", count: CountFn = no_count
                 ) -> list[tuple[DocRef, DocRef, float]]:
    """Candidate edges (smallest id's ref, other ref, estimated similarity) of one band bucket.

    ``verify``: ``signature`` keeps an edge whose estimate (share of equal
    signature values) reaches the threshold; ``exact`` keeps it for the exact
    check (:func:`exact_similarity`) unless its estimate is more than
    ``EXACT_PREFILTER`` below the threshold (about four standard deviations at
    128 permutations); ``none`` keeps every candidate.
    """
    members = sorted(members, key=lambda s: s.ref.id)
    if len(members) < 2:
        return []
    floor = {"signature": threshold, "exact": threshold - EXACT_PREFILTER}.get(verify, 0.0)
    head, edges = members[0], []
    for other in members[1:]:
        if other.ref.id == head.ref.id:
            continue
        count("dedup.near.candidates")
        estimate = estimated_jaccard(head, other)
        if estimate >= floor:
            edges.append((head.ref, other.ref, round(estimate, 6)))
        else:
            count("dedup.near.candidates_rejected")
    return edges


BAND_SHARDS = 64          # LSH groups per band: (band, shard) is what the engines group by
BATCH_MEMBERS = 10_000    # members a worker holds before it sends their band values on


def band_batches(hasher: MinHasher, members, shards: int = BAND_SHARDS, batch: int = BATCH_MEMBERS):
    """(group, batch) pairs for the LSH shuffle, ``group`` being ``band * shards + shard``.

    ``members`` are tuples ``(id, source, file, position, title, signature)``.
    Each band value (the band's rows, bytes) goes to the shard its first row
    picks, so equal band values of a band always meet in one group.  A batch
    is four ``bytes``: the group's band values concatenated, the members'
    signatures in the same order, the offsets (uint32) of their references
    in the fourth, those references (JSON).  An engine then groups a few
    thousand batches of plain bytes instead of one element per document and
    band (or a member tuple per document and band: each member is in every
    band, and most of them share no bucket, so :func:`group_edges` decodes a
    reference only for a bucket with several members).  Members without
    shingles have no band values (they can only be exact duplicates).
    """
    chunk = []
    for member in members:
        if member[5] != _EMPTY_BYTES * hasher.num_perm:
            chunk.append(member)
        if len(chunk) >= batch:
            yield from _batches(hasher, chunk, shards)
            chunk = []
    if chunk:
        yield from _batches(hasher, chunk, shards)


def _batches(hasher: MinHasher, chunk: list, shards: int):
    r = hasher.rows
    signatures = np.frombuffer(b"".join(m[5] for m in chunk), dtype=np.uint32).reshape(len(chunk), hasher.num_perm)
    refs = [json.dumps(m[:5]).encode("ascii") for m in chunk]      # ASCII: lone surrogates escaped
    sizes = np.fromiter(map(len, refs), dtype=np.uint32, count=len(refs))
    for band in range(hasher.bands):
        values = np.ascontiguousarray(signatures[:, band * r:(band + 1) * r])
        shard = values[:, 0] % np.uint32(shards)
        order = np.argsort(shard, kind="stable")
        bounds = np.searchsorted(shard[order], np.arange(shards + 1))
        for s in np.flatnonzero(np.diff(bounds)).tolist():
            rows = order[bounds[s]:bounds[s + 1]]
            offsets = np.zeros(len(rows) + 1, dtype=np.uint32)
            np.cumsum(sizes[rows], out=offsets[1:])
            yield band * shards + s, (values[rows].tobytes(), signatures[rows].tobytes(), offsets.tobytes(),
                                      b"".join([refs[i] for i in rows.tolist()]))


def edge_threshold(hasher: MinHasher, threshold: float, verify: str) -> float:
    """The threshold :func:`bucket_edges` is given: with exact verification the prefilter works at the hasher's
    ``candidate_threshold`` (lower than ``threshold`` when containment is on)."""
    return min(threshold, hasher.candidate_threshold) if verify == "exact" else threshold


def group_edges(hasher: MinHasher, batches, threshold: float, verify: str = "exact", count: CountFn = no_count
                ) -> list[tuple[DocRef, DocRef, float]]:
    """Candidate edges of one (band, shard) group's batches (:func:`band_batches`): members with equal band
    values form a bucket, whose edges are :func:`bucket_edges`' (the same buckets as grouping by
    :meth:`MinHasher.band_keys`).  With exact verification the prefilter works at the hasher's
    ``candidate_threshold`` (lower than ``threshold`` when containment is on)."""
    threshold = edge_threshold(hasher, threshold, verify)
    width, signature_width = 4 * hasher.rows, 4 * hasher.num_perm
    batches = list(batches)
    buckets: dict[bytes, list] = {}
    for b, (values, _, _, _) in enumerate(batches):
        for i in range(len(values) // width):
            buckets.setdefault(values[i * width:(i + 1) * width], []).append((b, i))
    offsets: dict[int, np.ndarray] = {}

    def member(b: int, i: int) -> Signed:
        _, signatures, offset_bytes, refs = batches[b]
        if b not in offsets:
            offsets[b] = np.frombuffer(offset_bytes, dtype=np.uint32)
        start, end = offsets[b][i:i + 2].tolist()
        return Signed(DocRef(*json.loads(refs[start:end])),
                      signatures[i * signature_width:(i + 1) * signature_width])

    edges = []
    for bucket in buckets.values():
        if len(bucket) > 1:
            edges += bucket_edges([member(b, i) for b, i in bucket], threshold, verify, count)
    return edges


def unique_edges(edges) -> list[tuple[DocRef, DocRef, float]]:
    """Edges without the repeats that several bands produce, in a stable order."""
    seen: dict[tuple[str, str], tuple[DocRef, DocRef, float]] = {}
    for edge in edges:
        seen.setdefault((edge[0].id, edge[1].id), edge)
    return [seen[k] for k in sorted(seen)]


def edge_key(a: str, b: str) -> str:
    return f"{a}\x00{b}"


def incident_keys(edges) -> dict[str, list[str]]:
    """For every document on an edge, the keys of its edges (what the exact check needs of it)."""
    index: dict[str, list[str]] = {}
    for a, b, _ in edges:
        key = edge_key(a.id, b.id)
        index.setdefault(a.id, []).append(key)
        index.setdefault(b.id, []).append(key)
    return index


def exact_similarity(members) -> list[float]:
    """``[Jaccard, containment]`` of the two shingle sets ``[(doc id, shingle bytes), ...]`` of one edge;
    containment is the shared shingles over the smaller set's size (a list: it travels as JSON)."""
    sets = [np.frombuffer(shingles, dtype=np.uint32) for _, shingles in sorted(members)]
    if len(sets) != 2:
        raise ValueError(f"an edge needs two shingle sets, got {len(sets)}")
    a, b = sets
    if not len(a) or not len(b):
        return [1.0, 1.0] if not len(a) and not len(b) else [0.0, 0.0]
    inter = len(np.intersect1d(a, b, assume_unique=True))
    return [inter / (len(a) + len(b) - inter), inter / min(len(a), len(b))]


@dataclass(frozen=True, slots=True)
class Rule:
    """When a verified pair is a near duplicate: Jaccard >= ``threshold``, or containment >= ``containment``
    (0: off) with Jaccard >= ``containment_min_jaccard``."""

    threshold: float
    containment: float = 0.0
    containment_min_jaccard: float = 0.4

    @classmethod
    def of(cls, options) -> "Rule":
        return cls(options.threshold, options.containment if options.verify == "exact" else 0.0,
                   options.containment_min_jaccard)

    def why(self, jaccard: float, containment: float) -> str | None:
        """``jaccard``, ``containment`` or None (not a duplicate)."""
        if jaccard >= self.threshold:
            return "jaccard"
        if self.containment and containment >= self.containment and jaccard >= self.containment_min_jaccard:
            return "containment"
        return None


def verified(edges, similarities: dict, rule: "Rule | float", count: CountFn = no_count
             ) -> list[tuple[DocRef, DocRef, float]]:
    """Edges whose exact similarities pass the rule, carrying their Jaccard.  ``similarities`` maps an edge
    key to ``[Jaccard, containment]`` (a bare Jaccard is read as containment unknown)."""
    rule = rule if isinstance(rule, Rule) else Rule(rule)
    kept = []
    for a, b, _ in edges:
        value = similarities[edge_key(a.id, b.id)]
        jaccard, containment = (value, 0.0) if isinstance(value, (int, float)) else value
        why = rule.why(jaccard, containment)
        if why is not None:
            kept.append((a, b, round(jaccard, 6)))
            if why == "containment":
                count("dedup.near.by_containment")
        else:
            count("dedup.near.candidates_rejected")
    return kept


class UnionFind:
    """Union-find whose root is always the smallest id of its component."""

    def __init__(self) -> None:
        self.parent: dict[str, str] = {}

    def find(self, x: str) -> str:
        parent = self.parent
        root = parent.setdefault(x, x)
        while root != parent[root]:
            root = parent[root]
        while x != root:
            parent[x], x = root, parent[x]
        return root

    def union(self, a: str, b: str) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            if rb < ra:
                ra, rb = rb, ra
            self.parent[rb] = ra


def clusters(edges, count: CountFn = no_count) -> list[Duplicate]:
    """Near duplicates from verified edges: per component the smallest id is kept.

    ``similarity`` of a dropped document is the estimate of its edge to the kept
    one where they share an edge, else the highest estimate on its own edges
    (it joined the cluster through a chain).  An engine that finds the components
    itself (``pipeline.dedup.components``) gives :func:`cluster_duplicates` the same
    figures per component.
    """
    uf = UnionFind()
    best: dict[str, float] = {}
    direct: dict[tuple[str, str], float] = {}
    refs: dict[str, DocRef] = {}
    for ref_a, ref_b, similarity in edges:
        a, b = ref_a.id, ref_b.id
        refs[a], refs[b] = ref_a, ref_b
        uf.union(a, b)
        direct[(a, b) if a < b else (b, a)] = similarity
        for node in (a, b):
            best[node] = max(best.get(node, 0.0), similarity)
    members: dict[str, list[str]] = {}
    for node in uf.parent:
        members.setdefault(uf.find(node), []).append(node)
    duplicates = []
    for root, nodes in sorted(members.items()):
        duplicates += cluster_duplicates(refs[root], [(refs[n], direct.get((root, n), best[n]))
                                                      for n in nodes if n != root], count)
    return duplicates


def cluster_duplicates(kept: DocRef, members, count: CountFn = no_count) -> list[Duplicate]:
    """One component's duplicates: ``members`` are (reference, similarity) of every document but the kept one
    (the smallest id), with the similarity :func:`clusters` gives it; ordered by id."""
    members = sorted(members, key=lambda m: m[0].id)
    count("dedup.near.clusters")
    count(f"dedup.near.cluster_size.{_size_bucket(len(members) + 1)}")
    duplicates = []
    for ref, similarity in members:
        duplicates.append(Duplicate(id=ref.id, source=ref.source, duplicate_of=kept.id,
                                    duplicate_of_source=kept.source, method=METHOD,
                                    similarity=similarity, file=ref.file, position=ref.position,
                                    title=ref.title))
        count("dedup.duplicates")
        count("dedup.near.duplicates")
        count(f"dedup.duplicates.source.{ref.source}")
    return duplicates


def _size_bucket(size: int) -> str:
    for limit in (2, 3, 5, 10, 100):
        if size <= limit:
            return f"le{limit}"
    return "gt100"


def edge_to_json(edge: tuple[DocRef, DocRef, float]) -> list:
    """An edge as a JSON-able list (for engines that pass edges through files)."""
    a, b, similarity = edge
    return [a.id, a.source, a.file, a.position, a.title, b.id, b.source, b.file, b.position, b.title, similarity]


def edge_from_json(item: list) -> tuple[DocRef, DocRef, float]:
    return DocRef(*item[0:5]), DocRef(*item[5:10]), float(item[10])


def near_duplicates(edges, verify: str, threshold: "float | Rule", exact_check, count: CountFn = no_count
                    ) -> list[Duplicate]:
    """Duplicates from the candidate edges of every bucket: repeats removed, the exact check run
    (``exact_check(edges) -> {edge_key: [Jaccard, containment]}``, done by the engine) when ``verify`` is
    ``exact`` and the :class:`Rule` applied (a bare threshold: the Jaccard rule with the default
    containment rule of :class:`pipeline.config.DedupOptions`), then clustered."""
    if not isinstance(threshold, Rule):
        from pipeline.config import DedupOptions

        default = DedupOptions()
        threshold = Rule(threshold, default.containment, default.containment_min_jaccard)
    edges = unique_edges(edges)
    if verify == "exact" and edges:
        edges = verified(edges, exact_check(edges), threshold, count)
    return clusters(edges, count)
