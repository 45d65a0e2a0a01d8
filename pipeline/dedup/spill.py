"""Dedup's grouping steps through disk: memory bounded by one partition, not by the corpus.

The in-memory route (``Deduplicator.keyed`` -> group by exact key -> band
batches -> group by LSH group -> edges) leaves the grouping to the engine; an
in-process runner holds every group in RAM.  This route writes what is grouped
to spill files instead (the sections of :mod:`pipeline.shards.spill`:
``Records`` with uint64 keys, framed bytes and int64 figures) and an engine
only groups *references* to file sections by partition:

1. :meth:`DiskDedup.keyed`, per row group: the text is read once.  Each
   document's member (signature, then its reference as JSON) and, with
   ``verify=exact``, its shingle set go to ``docs-<n>.members`` and
   ``docs-<n>.shingles`` (one section each, the document's place in them is its
   *location* ``(n, index)``); its exact key (32 hex bytes, then the member
   bytes) goes to ``keys-<n>.bin``, one section per key partition (a hash of the
   key).  Without exact dedup its band values go out at once (step 3).
2. :meth:`DiskDedup.resolve`, per key partition: its sections, sorted by key,
   are cut into groups of equal keys and each is resolved by
   :meth:`Deduplicator.resolve` (the same records as the in-memory route).
3. The members kept go on as band values: ``bands-<n>.bin``, one section per
   band partition (a hash of band index and values), a record per member and
   band: the band index (2 bytes) and the band's values, figures the location.
4. :meth:`DiskDedup.edges`, per band partition: sorted by band value, runs of
   equal values are the LSH buckets; only the members of a bucket of two or
   more are read back (their locations) and :func:`bucket_edges` gives the
   candidate edges, written as Parquet columns (``edges-<p>.parquet``, with the
   locations of both ends).
5. The driver reads the edges (repeats across bands dropped); with
   ``verify=exact``, :meth:`DiskDedup.similarities` reads the two shingle sets of
   each edge by location, a chunk of edges at a time.

A partition holds about ``SPILL_BYTES_PER_DOCUMENT`` per document in memory
while it is sorted; :func:`spill_partitions` picks how many there are from
``DedupOptions.memory_mb``.  Outputs do not depend on partitioning: every group
and bucket is the same set of members whatever partition or order it comes in,
and the core orders what it writes by id.
"""

from __future__ import annotations

import json
import math
import uuid

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline import storage
from pipeline.config import DedupOptions
from pipeline.counters import CountFn, no_count
from pipeline.dedup.exact import DocRef
from pipeline.dedup.minhash import _EMPTY_BYTES, Signed, edge_key
from pipeline.dedup.stage import Deduplicator
from pipeline.shards.spill import Records, read_section, read_section_records, select, write_sections

KEY_BYTES = 32                      # an exact key: 16 bytes as hex
SPILL_BYTES_PER_DOCUMENT = 16384    # what a partition holds per document (sorted band values, buckets, edges; measured)
EDGE_CHUNK = 50_000                 # edges per exact-check task
_FIELDS = 2                         # figures of a key or band record: the member's location (file number, index)

EDGE_SCHEMA = pa.schema([(f"{end}_{name}", kind) for end in ("a", "b") for name, kind in
                         (("id", pa.string()), ("source", pa.string()), ("file", pa.string()),
                          ("position", pa.int64()), ("title", pa.string()), ("n", pa.int64()), ("i", pa.int64()))]
                        + [("similarity", pa.float64())])


def spill_partitions(documents: int, options: DedupOptions) -> int:
    """How many partitions the grouping steps spill to (0: group in memory).  The in-memory route holds each
    member once per band (its signature in every band batch); it is kept while that fits ``memory_mb``."""
    if options.memory_mb <= 0:
        return 0
    budget = options.memory_mb * 2**20
    bands = Deduplicator(options).hasher.bands if options.near else 1
    if documents * bands * (4 * options.num_perm + 128) <= budget:
        return 0
    return max(1, math.ceil(documents * SPILL_BYTES_PER_DOCUMENT / budget))


class DiskDedup:
    """The spilled route's steps (see the module doc), over ``directory`` and ``partitions``."""

    def __init__(self, options: DedupOptions, directory: str, partitions: int) -> None:
        self.options, self.directory, self.partitions = options, str(directory), partitions
        self.dedup = Deduplicator(options)
        self.hasher = self.dedup.hasher
        self._sizes: dict[str, int] = {}

    # -- files ----------------------------------------------------------------------------------------------------

    def path(self, kind: str, n: int) -> str:
        return storage.join(self.directory, f"{kind}-{n:016x}.bin")

    def _size(self, path: str) -> int:
        if path not in self._sizes:
            with storage.open_input_file(path) as f:
                self._sizes[path] = f.size()
        return self._sizes[path]

    def _write_partitioned(self, kind: str, keys: np.ndarray, offsets: np.ndarray, data: bytes,
                           figures: np.ndarray) -> list:
        """Records into ``kind-<n>.bin``, a section per partition (``key % partitions``); (partition, section)."""
        if not len(keys):
            return []
        records = Records(keys, offsets, data, figures)
        part = (keys % np.uint64(self.partitions)).astype(np.int64)
        order = np.argsort(part, kind="stable")
        bounds = np.searchsorted(part[order], np.arange(self.partitions + 1))
        used = np.flatnonzero(np.diff(bounds)).tolist()
        sections = [records.take(order[bounds[p]:bounds[p + 1]]) for p in used]
        path = self.path(kind, uuid.uuid4().int >> 65)
        placed = write_sections(path, [select(s) for s in sections])
        return [(p, (path, offset, size)) for p, (offset, size, _) in zip(used, placed)]

    # -- step 1 -----------------------------------------------------------------------------------------------------

    def keyed(self, table: pa.Table):
        """A row group -> Quarantined records and ``("keys" | "bands", partition, section)`` references."""
        members, shingles, keys = [], [], []
        for key, member, shingle in self.dedup.keyed_with_shingles(table, self.options.verify == "exact"):
            if key is None:
                yield member
                continue
            keys.append(key)
            members.append(member)
            shingles.append(shingle)
        if not members:
            return
        n = uuid.uuid4().int >> 65
        member_bytes = [m[5] + json.dumps(m[:5]).encode("ascii") for m in members]
        self._write_single(self.path("members", n), member_bytes)
        if self.options.verify == "exact" and self.options.near:
            self._write_single(self.path("shingles", n), shingles)
        if self.options.exact:
            data = [k.encode("ascii") + b for k, b in zip(keys, member_bytes)]
            offsets = np.zeros(len(data) + 1, np.int64)
            np.cumsum([len(d) for d in data], out=offsets[1:])
            figures = np.stack([np.full(len(data), n, np.int64), np.arange(len(data), dtype=np.int64)], axis=1)
            hashes = np.array([int(k[:16], 16) for k in keys], dtype=np.uint64)
            for part, section in self._write_partitioned("keys", hashes, offsets, b"".join(data), figures):
                yield "keys", part, section
        elif self.options.near:
            yield from self._bands([(m[5], (n, i)) for i, m in enumerate(members)])

    def _write_single(self, path: str, data: list[bytes]) -> None:
        offsets = np.zeros(len(data) + 1, np.int64)
        np.cumsum([len(d) for d in data], out=offsets[1:])
        records = Records(np.arange(len(data), dtype=np.uint64), offsets, b"".join(data),
                          np.zeros((len(data), 0), np.int64))
        write_sections(path, [select(records)])

    def _bands(self, signed: list[tuple[bytes, tuple[int, int]]]):
        """(signature, location) pairs -> ``("bands", partition, section)``: a record per member and band, the
        band index (2 bytes, big-endian) and its values; keyed by its first two values (and the band), so equal
        band values meet in one partition."""
        empty = _EMPTY_BYTES * self.hasher.num_perm
        signed = [(signature, place) for signature, place in signed if signature != empty]
        if not signed:
            return
        r, bands, m = self.hasher.rows, self.hasher.bands, len(signed)
        signatures = np.frombuffer(b"".join(s for s, _ in signed), dtype=np.uint32).reshape(m, -1)
        places = np.array([place for _, place in signed], dtype=np.int64)
        width = 2 + 4 * r
        data = np.empty((bands, m, width), dtype=np.uint8)
        keys = np.empty((bands, m), dtype=np.uint64)
        for band in range(bands):
            values = np.ascontiguousarray(signatures[:, band * r:(band + 1) * r])
            data[band, :, 0], data[band, :, 1] = band >> 8, band & 0xFF
            data[band, :, 2:] = values.view(np.uint8).reshape(m, 4 * r)
            key = values[:, 0].astype(np.uint64)
            if r > 1:
                key |= values[:, 1].astype(np.uint64) << np.uint64(32)
            keys[band] = key ^ np.uint64((band * 0x9E3779B97F4A7C15) % 2**64)
        offsets = np.arange(bands * m + 1, dtype=np.int64) * width
        figures = np.tile(places, (bands, 1))
        for part, section in self._write_partitioned("bands", keys.reshape(-1), offsets, data.tobytes(), figures):
            yield "bands", part, section

    # -- step 2 -----------------------------------------------------------------------------------------------------

    @staticmethod
    def _read(sections) -> Records:
        return Records.concat([read_section(*s) for s in sections], _FIELDS)

    def resolve(self, sections, count: CountFn = no_count):
        """One key partition's sections -> its duplicates, then ``("bands", partition, section)`` references of
        what it keeps (with near dedup).  Sorted by the key's first 8 bytes; within a run of those, records are
        grouped by the whole key (so two keys sharing 8 bytes are still two groups)."""
        records = self._read(sections)
        order = np.argsort(records.keys, kind="stable")
        keys = records.keys[order]
        bounds = np.flatnonzero(np.concatenate([[True], keys[1:] != keys[:-1], [True]])).tolist()
        data, offsets = memoryview(records.data), records.offsets.tolist()
        signature_bytes = 4 * self.options.num_perm if self.options.near else 0
        kept = []
        for start, end in zip(bounds[:-1], bounds[1:]):
            groups: dict[bytes, list[int]] = {}
            for i in order[start:end].tolist():
                groups.setdefault(bytes(data[offsets[i]:offsets[i] + KEY_BYTES]), []).append(i)
            for key, rows in groups.items():
                members, places = [], {}
                for i in rows:
                    raw = bytes(data[offsets[i] + KEY_BYTES:offsets[i + 1]])
                    member = (*json.loads(raw[signature_bytes:]), raw[:signature_bytes])
                    members.append(member)
                    places[member[0]] = tuple(int(v) for v in records.figures[i])
                member, written = self.dedup.resolve(key.decode("ascii"), members, count)
                yield from written
                if self.options.near:
                    kept.append((member[5], places[member[0]]))
        if kept:
            yield from self._bands(kept)

    # -- step 4 -----------------------------------------------------------------------------------------------------

    def _members(self, locations) -> dict[tuple[int, int], Signed]:
        """Members by location, reading only those records of each members file."""
        by_file: dict[int, list[int]] = {}
        for n, i in locations:
            by_file.setdefault(n, []).append(i)
        found = {}
        signature_bytes = 4 * self.options.num_perm
        for n, indices in by_file.items():
            indices = sorted(set(indices))
            path = self.path("members", n)
            records = read_section_records(path, 0, self._size(path), np.array(indices, np.int64))
            for k, i in enumerate(indices):
                raw = records.record(k)
                found[(n, i)] = Signed(DocRef(*json.loads(raw[signature_bytes:])), raw[:signature_bytes])
        return found

    def edges(self, partition: int, sections, count: CountFn = no_count) -> int:
        """One band partition's sections -> its candidate edges in ``edges-<partition>.parquet``; how many."""
        records = self._read(sections)
        width = 2 + 4 * self.hasher.rows
        rows = np.frombuffer(records.data, dtype=np.uint8)[:len(records) * width].reshape(len(records), width)
        order = np.lexsort(rows.T[::-1])              # by band index, then the band's bytes: equal values meet
        ordered = rows[order]
        change = np.concatenate([[True], (ordered[1:] != ordered[:-1]).any(axis=1), [True]])
        bounds = np.flatnonzero(change)
        sizes = np.diff(bounds)
        figures = records.figures
        buckets = [[tuple(v) for v in figures[order[start:start + size]].tolist()]
                   for start, size in zip(bounds[:-1][sizes > 1].tolist(), sizes[sizes > 1].tolist())]
        del records, rows, ordered, order
        members = self._members({place for bucket in buckets for place in bucket})
        rows = []
        for bucket in buckets:
            where = {members[place].ref.id: place for place in bucket}
            for a, b, similarity in self.dedup.bucket_edges([members[place] for place in bucket], count):
                rows.append((a, where[a.id], b, where[b.id], similarity))
        columns = {name: [] for name in EDGE_SCHEMA.names}
        for a, pa_, b, pb, similarity in rows:
            for end, ref, (fn, fi) in (("a", a, pa_), ("b", b, pb)):
                for name in ("id", "source", "file", "position", "title"):
                    columns[f"{end}_{name}"].append(getattr(ref, name))
                columns[f"{end}_n"].append(fn)
                columns[f"{end}_i"].append(fi)
            columns["similarity"].append(similarity)
        path = storage.join(self.directory, f"edges-{partition:05d}.parquet")
        with storage.atomic_output(path) as f:
            pq.write_table(pa.table(columns, schema=EDGE_SCHEMA), f)
        return len(rows)

    # -- step 5 -----------------------------------------------------------------------------------------------------

    def read_edges(self):
        """The candidate edges of every band partition, repeats dropped: (edges, {document id: location})."""
        seen, places = {}, {}
        for rel, _, _ in storage.walk(self.directory):
            if not (rel.startswith("edges-") and rel.endswith(".parquet")):
                continue
            table = pq.read_table(storage.join(self.directory, rel)).to_pydict()
            for k in range(len(table["similarity"])):
                a, b = (DocRef(*(table[f"{end}_{name}"][k] for name in ("id", "source", "file", "position", "title")))
                        for end in ("a", "b"))
                seen.setdefault((a.id, b.id), (a, b, float(table["similarity"][k])))
                places[a.id] = (table["a_n"][k], table["a_i"][k])
                places[b.id] = (table["b_n"][k], table["b_i"][k])
        return [seen[k] for k in sorted(seen)], places

    def write_checks(self, edges, places) -> list[str]:
        """The edges to check, as Parquet chunks of ``EDGE_CHUNK`` (ids and locations); their paths."""
        paths = []
        for start in range(0, len(edges), EDGE_CHUNK):
            chunk = edges[start:start + EDGE_CHUNK]
            columns = {"a": [a.id for a, _, _ in chunk], "b": [b.id for _, b, _ in chunk]}
            for end in ("a", "b"):
                columns[f"{end}_n"] = [places[getattr(e[0 if end == "a" else 1], "id")][0] for e in chunk]
                columns[f"{end}_i"] = [places[getattr(e[0 if end == "a" else 1], "id")][1] for e in chunk]
            path = storage.join(self.directory, f"check-{start // EDGE_CHUNK:06d}.parquet")
            with storage.atomic_output(path) as f:
                pq.write_table(pa.table(columns), f)
            paths.append(path)
        return paths

    def similarities(self, path: str) -> str:
        """One chunk of edges -> ``result-*.parquet`` of (edge key, Jaccard, containment); its path."""
        chunk = pq.read_table(path).to_pydict()
        by_file: dict[int, set] = {}
        for end in ("a", "b"):
            for n, i in zip(chunk[f"{end}_n"], chunk[f"{end}_i"]):
                by_file.setdefault(n, set()).add(i)
        shingles = {}
        for n, indices in by_file.items():
            indices = sorted(indices)
            file = self.path("shingles", n)
            records = read_section_records(file, 0, self._size(file), np.array(indices, np.int64))
            for k, i in enumerate(indices):
                shingles[(n, i)] = records.record(k)
        keys, jaccard, containment = [], [], []
        for a, b, an, ai, bn, bi in zip(chunk["a"], chunk["b"], chunk["a_n"], chunk["a_i"], chunk["b_n"],
                                        chunk["b_i"]):
            value = self.dedup.similarity([(a, shingles[(an, ai)]), (b, shingles[(bn, bi)])])
            keys.append(edge_key(a, b))
            jaccard.append(value[0])
            containment.append(value[1])
        out = path.replace("check-", "result-")
        with storage.atomic_output(out) as f:
            pq.write_table(pa.table({"key": keys, "jaccard": jaccard, "containment": containment}), f)
        return out

    @staticmethod
    def read_similarities(paths) -> dict:
        found = {}
        for path in paths:
            table = pq.read_table(path).to_pydict()
            for key, j, c in zip(table["key"], table["jaccard"], table["containment"]):
                found[key] = [j, c]
        return found


__all__ = ["DiskDedup", "spill_partitions", "SPILL_BYTES_PER_DOCUMENT"]
