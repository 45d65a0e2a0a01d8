"""A pool of documents -> keyed, masked, serialized instances; the shard balancing plan; the shard writer.

The engines run three steps around this module:

1. every segmented row group is tokenized (``ShardBuilder.tokenize_table``), each
   document assigned its pool (``seeds.pool_of``: a hash of the document id), and the
   documents written to a file a section per pool (``document_sections``): the engines
   group references by pool, not documents, so no step holds the whole input;
2. each pool yields its instances (``ShardBuilder.pool_instances``): for every copy
   (``dupe_factor``), every document with its own counter-based draws seeded from
   (seed, document id, copy), all copies of all documents at once (``instances.bert_table``);
   the instances come out as ``Records`` (``spill``): framed TFRecords with their shuffle keys and figures, column-wise, written to a
   pool file a section per first shard (``pool_sections``);
3. the global shuffle: instances sorted by key; shard ``key % shards`` first, then the
   instances over a shard's even share (``shard_targets``) move, by key order, to the
   shards under it (``rebalance``), so shard sizes differ by at most
   one and every byte depends only on the input, the vocab and the settings.  The part
   a shard keeps stays in the pool files (``split_shard`` reads only the keys and
   passes a ``Kept`` reference on) and only the surplus takes a second trip through the
   engine; ``write_shard`` merges both.  Spill files are in ``spill``'s binary formats,
   never pickles: they live in the output directory.
"""

from __future__ import annotations

import hashlib
import uuid
from pathlib import Path
from typing import NamedTuple

import numpy as np

from pipeline import storage
from pipeline.counters import CountFn, no_count
from pipeline.records import Quarantined, Rejected, excerpt
from pipeline.shards.batch import BatchEncoder, replacement_ids
from pipeline.shards.instances import InstanceTable, bert_table, pool_tokens, roberta_instances
from pipeline.shards import mixing
from pipeline.shards.mixing import count_source
from pipeline.shards.seeds import SLOT_KEY, SLOT_MASK, copy_seeds, counter, derive, document_values, mix
from pipeline.shards.spill import (
    DocumentSection,
    PoolSection,
    Records,
    Selection,
    documents_bytes,
    documents_from_bytes,
    merge_order,
    read_bytes,
    read_section,
    read_section_keys,
    read_section_records,
    write_parts,
    write_sections,
)
from pipeline.shards.tokens import DocumentTokenizer, TokenizedDocument
from pipeline.vocab.wordpiece import read_vocab

STAGE = "shards"

_SHARED: dict[tuple, ShardBuilder] = {}

# Figures carried by each instance, summed per shard for the manifest.
STAT_FIELDS = ("tokens", "masked", "masked_words", "random_next", "own_tokens", "truncated",
               "truncated_borrowed", "single_segment", "source")
# what a shard's summary sums; ``source`` is the id of the instance's source (``mixing.source_id``), by which
# the summary gives instances, tokens and own tokens per source instead
SUMMED_FIELDS = STAT_FIELDS[:-1]


class ShardBuilder:
    """Everything a worker needs to turn documents into shard records; built once per worker."""

    def __init__(self, options, vocab_path: str) -> None:
        self.options = options
        entries = read_vocab(vocab_path)
        self.max_tokens = options.max_seq_length - 3
        split = options.long_sentence_tokens if options.long_sentence_tokens >= 0 else 0
        if options.long_sentence_tokens == 0:
            split = max(1, self.max_tokens // 2) if options.mode == "bert" else 0
        self.tokenizer = DocumentTokenizer(entries, lowercase=options.lowercase, whole_word=options.wwm,
                                           long_sentence_tokens=split)
        index = {entry: i for i, entry in enumerate(entries)}
        self.replacements = replacement_ids(entries, lowercase=options.lowercase)
        self.encoder = BatchEncoder(options, len(entries), cls=index["[CLS]"], sep=index["[SEP]"],
                                    mask=index["[MASK]"], replacements=self.replacements)

    @classmethod
    def shared(cls, options, vocab_path: str) -> ShardBuilder:
        """One builder per process for these settings and vocab file: Spark tasks and Beam DoFns of one worker
        process reuse it instead of loading the vocab and building the tokenizer each time."""
        key = (repr(options), storage.absolute(vocab_path), storage.size(vocab_path), storage.mtime_ns(vocab_path))
        builder = _SHARED.get(key)
        if builder is None:
            _SHARED.clear()                 # one set of settings at a time is what a worker runs
            builder = _SHARED[key] = cls(options, vocab_path)
        return builder

    def tokenize_table(self, table, count: CountFn = no_count):
        """Every row of a segmented Arrow table (a row group), as ``tokenize`` does, in row order: the sentences
        of many documents tokenized in one call (``TOKENIZE_CHARS`` at a time), the word boundaries taken
        column-wise (no Python string per word).  A row with a null sentence goes through ``tokenize`` alone
        (and is quarantined there)."""
        n = table.num_rows
        if not n:
            return
        docs = table.column("sentences").to_pylist()
        good = [index for index, sentences in enumerate(docs)
                if sentences is not None and all(isinstance(s, str) for s in sentences)]
        results: dict[int, object] = {}
        if good:
            words = _word_columns(table)
            doc_ids = table.column("id").to_pylist()
            sources = (table.column("source").to_pylist() if "source" in table.column_names
                       else [""] * n)
            chunk, chars = [], 0
            for index in good:
                chunk.append(index)
                chars += sum(map(len, docs[index]))
                if chars >= TOKENIZE_CHARS or index == good[-1]:
                    self._tokenize_rows(chunk, docs, doc_ids, words, results, count, sources)
                    chunk, chars = [], 0
        rows = None
        for index in range(n):
            result = results.get(index, False)
            if result is False or result is None:
                if rows is None:
                    rows = table.drop_columns(["words"]) if "words" in table.column_names else table
                row = rows.slice(index, 1).to_pylist()[0]
                if result is None:      # read and counted already: nothing of it is a token
                    result = self._no_tokens(row, row["sentences"] or [], count)
                else:
                    result = self.tokenize(row, count)
            yield result

    def _tokenize_rows(self, rows: list[int], docs: list, doc_ids: list, words, results: dict, count: CountFn,
                       sources: list | None = None):
        """Tokenize the documents of ``rows`` together; ``results[row]`` is the document, or None when nothing
        of it is a token."""
        sentences = [s for index in rows for s in docs[index]]
        per_doc = np.fromiter((len(docs[index]) for index in rows), np.int64, len(rows))
        ok, word_starts = _word_starts(words, rows, per_doc, sentences)
        ids, flags, piece_bounds, first_piece = self.tokenizer.tokenize_joined(sentences, ok, word_starts, count)
        sentence_at = np.zeros(len(rows) + 1, np.int64)
        np.cumsum(per_doc, out=sentence_at[1:])
        pieces_at = first_piece[sentence_at].tolist()
        count("shards.read", len(rows))
        count("shards.sentences", int(first_piece[-1]))
        kept = tokens = 0
        for k, index in enumerate(rows):
            p0, p1 = pieces_at[k], pieces_at[k + 1]
            if p0 == p1:
                results[index] = None
                continue
            t0, t1 = int(piece_bounds[p0]), int(piece_bounds[p1])
            source = (sources[index] if sources else "") or ""
            results[index] = doc = TokenizedDocument(doc_ids[index], ids[t0:t1].copy(), flags[t0:t1].tobytes(),
                                                     (piece_bounds[p0 + 1:p1 + 1] - t0).astype(np.int32), source)
            kept += 1
            tokens += t1 - t0
            self.count_document(doc, count)
        if kept:
            count("shards.kept", kept)
            count("shards.document_tokens", tokens)

    def tokenize(self, row: dict, count: CountFn = no_count):
        """A segmented row -> ``TokenizedDocument``; ``Rejected`` (rule ``no_tokens``) when nothing of it is
        a token; ``Quarantined`` when it cannot be read."""
        count("shards.read")
        try:
            sentences = row["sentences"] or []
            doc = self.tokenizer.tokenize(row["id"], sentences, row.get("words"), count)
        except Exception as exc:  # one bad document must not end the job
            count("shards.quarantined")
            return Quarantined(stage=STAGE, source=row.get("source") or "", file=row.get("file") or "",
                               position=row.get("position") or 0, id=row.get("id"),
                               error=f"{type(exc).__name__}: {exc}",
                               excerpt=excerpt("\n".join(str(x) for x in row.get("sentences") or [])))
        if not doc.tokens:
            return self._no_tokens(row, sentences, count)
        doc.source = row.get("source") or ""
        count("shards.kept")
        count("shards.document_tokens", doc.tokens)
        self.count_document(doc, count)
        return doc

    @staticmethod
    def _no_tokens(row: dict, sentences: list[str], count: CountFn) -> Rejected:
        count("shards.rejected.no_tokens")
        return Rejected(id=row["id"], source=row.get("source") or "", stage=STAGE, rule="no_tokens",
                        text="\n".join(sentences), file=row.get("file") or "", position=row.get("position") or 0,
                        detail="no sentence has a WordPiece token", title=row.get("title"))

    def pool_instances(self, docs: list[TokenizedDocument], count: CountFn = no_count,
                       shards: int | None = None) -> Records:
        """The keyed, framed records of every instance of every copy of the pool's documents, with their
        figures (``STAT_FIELDS``).  With ``shards``, grouped by first shard (``key % shards``, a stable
        order): each of ``pool_sections``' sections is then one run of the records, written without
        gathering them one by one."""
        options = self.options
        docs = sorted(docs, key=lambda d: d.id)
        values = document_values(options.seed, [doc.id for doc in docs])
        weighted = np.ones(len(docs), np.int64)
        if options.weights:
            weighted = mixing.copies(values, [float(options.weights.get(doc.source, 1.0)) for doc in docs])
            kept = weighted > 0                         # weight < 1: a document may get no copy at all
            docs = [doc for doc, keep in zip(docs, kept.tolist()) if keep]
            values, weighted = values[kept], weighted[kept]
        pool = pool_tokens(docs)
        copies_of = weighted * options.dupe_factor     # each weighted copy gets its dupe_factor copies
        ids_of = {source: mixing.source_id(source) for source in {doc.source for doc in docs}}
        source_of = np.asarray([ids_of[doc.source] for doc in docs], np.int64)
        if options.mode == "bert":
            # (copy, document) lanes, copy-major: copy c of every document that has more than c copies
            most = int(copies_of.max()) if len(docs) else 0
            lane_copy = np.repeat(np.arange(most), len(docs))
            lane_doc = np.tile(np.arange(len(docs)), most)
            present = copies_of[lane_doc] > lane_copy
            lane_copy, lane_doc = lane_copy[present], lane_doc[present]
            seeds = copy_seeds(values[lane_doc], lane_copy)
            table = bert_table(pool, seeds, options.max_seq_length, options.short_seq_prob, 
                               overflow=options.chunk_overflow, lane_doc=lane_doc, lane_copy=lane_copy)
        else:
            instances = []
            for copy in range(int(copies_of.max()) if len(docs) else 0):
                members = [d for d in range(len(docs)) if copies_of[d] > copy]
                order = sorted(members, key=lambda d: derive(options.seed, "pack", copy, docs[d].id))
                instances += roberta_instances(pool, order, copy, options.max_seq_length)
            table = InstanceTable.of_instances(instances)
        count("shards.instances", len(table))
        keys, mask_seeds = instance_keys(options.seed, table.runs, dict(zip(pool.doc_ids, values.tolist())))
        position = {doc_id: d for d, doc_id in enumerate(pool.doc_ids)}
        instance_source = np.repeat(np.asarray([source_of[position[run[0]]] for run in table.runs], np.int64),
                                    np.asarray([run[2] for run in table.runs], np.int64)) if len(table) else \
            np.zeros(0, np.int64)
        if shards is not None and len(table):
            grouped = np.argsort(keys % np.uint64(shards), kind="stable")
            table, keys, mask_seeds = table.take(grouped), keys[grouped], mask_seeds[grouped]
            instance_source = instance_source[grouped]
        step = max(1, ENCODE_CELLS // options.max_seq_length)     # instances masked and encoded at once
        batches = []
        for begin in range(0, len(table), step):
            chunk = table.rows(begin, begin + step)
            data, offsets, figures = self.encoder.encode(pool, chunk, mask_seeds[begin:begin + step])
            own = np.concatenate([chunk.is_random_next[:, None], chunk.figures,
                                  instance_source[begin:begin + step, None]], axis=1)
            batches.append(Records(keys[begin:begin + step], offsets, data, np.concatenate([figures, own], axis=1)))
        return Records.concat(batches, len(STAT_FIELDS))

    def count_document(self, doc: TokenizedDocument, count: CountFn) -> None:
        """A tokenized document's figures per source, before and after weighting (``mixing``)."""
        count_source(count, doc.source, doc.tokens)
        copies = 1
        if self.options.weights:
            weight = float(self.options.weights.get(doc.source, 1.0))
            copies = int(mixing.copies(document_values(self.options.seed, [doc.id]), [weight])[0])
        count("shards.weighted_document_tokens", copies * doc.tokens)
        count(mixing.name(doc.source, "weighted_documents"), copies)
        count(mixing.name(doc.source, "weighted_tokens"), copies * doc.tokens)


# Characters of sentences tokenized in one call: large enough for NumPy to pay, small enough that the
# per-character arrays stay a few MB whatever the size of a row group.
TOKENIZE_CHARS = 1 << 18


def _word_columns(table):
    """The segmenter words of a table, column-wise: per row the range of its sentences' word lists, per word
    list the range of its words, each word's length (characters), validity of rows and word lists; None when
    the table has no words."""
    import pyarrow.compute as pc

    if "words" not in table.column_names:
        return None
    words = table.column("words").combine_chunks()
    sentence_lists = words.values
    lengths = pc.utf8_length(sentence_lists.values).to_numpy(zero_copy_only=False).astype(np.int64)
    total = np.zeros(len(lengths) + 1, np.int64)        # characters before each word
    np.cumsum(lengths, out=total[1:])
    empty = np.zeros(len(lengths) + 1, np.int32)        # words of no character before each word
    np.cumsum(lengths <= 0, out=empty[1:])
    return (words.offsets.to_numpy().astype(np.int64), sentence_lists.offsets.to_numpy().astype(np.int64), total,
            empty, words.is_valid().to_numpy(zero_copy_only=False),
            sentence_lists.is_valid().to_numpy(zero_copy_only=False))


def _word_starts(words, rows: list[int], per_doc: np.ndarray, sentences: list[str]):
    """For the sentences of ``rows`` (in order): whether their words join back to them (all of positive
    length, adding up to the sentence; else WordPiece groups only, as ``tokenize`` does), and the first
    character of each of those words in the sentences joined."""
    count = len(sentences)
    if words is None or not count:
        return np.zeros(count, dtype=bool), np.zeros(0, np.int64)
    doc_offsets, sentence_offsets, total, empty, valid_docs, valid_sentences = words
    doc = np.repeat(np.asarray(rows, dtype=np.int64), per_doc)
    within = np.arange(count) - np.repeat(np.cumsum(per_doc) - per_doc, per_doc)
    has = valid_docs[doc] & (within < doc_offsets[doc + 1] - doc_offsets[doc])
    lists = np.where(has, doc_offsets[doc] + within, 0)
    if len(valid_sentences):
        has &= valid_sentences[lists]
    first = sentence_offsets[lists]
    last = sentence_offsets[np.minimum(lists + 1, len(sentence_offsets) - 1)]
    sentence_lengths = np.fromiter(map(len, sentences), np.int64, count)
    ok = has & (last > first) & (total[last] - total[first] == sentence_lengths) & (empty[last] == empty[first])
    words_of = np.where(ok, last - first, 0)
    word = np.repeat(first, words_of) + np.arange(int(words_of.sum())) - np.repeat(np.cumsum(words_of) - words_of,
                                                                                   words_of)
    owner = np.repeat(np.arange(count), words_of)
    sentence_start = np.cumsum(sentence_lengths) - sentence_lengths
    return ok, sentence_start[owner] + total[word] - total[first[owner]]


# Cells (instances × max_seq_length) masked and encoded in one batch: big enough that NumPy's per-call cost
# is small, small enough that the batch's matrices stay a few tens of MB.
ENCODE_CELLS = 1 << 19


def instance_keys(seed: int, runs: list[tuple[str, int, int, int]],
                  values: dict[str, int] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Each instance's shuffle key and mask seed, as two uint64 arrays, for ``runs`` of instances (document id,
    copy, how many, first index; see ``InstanceTable``): ``seeds.mix`` of its document copy's seed
    (``seeds.copy_seeds``) and the counters of its index's key and mask seed slots.  ``values``: documents'
    ``seeds.document_values`` known already (the others are derived here)."""
    values = dict(values or {})
    for doc_id in {run[0] for run in runs} - values.keys():
        values[doc_id] = int(document_values(seed, [doc_id])[0])
    count = len(runs)
    run_values = np.fromiter((values[run[0]] for run in runs), np.uint64, count)
    copies = np.fromiter((run[1] for run in runs), np.int64, count)
    sizes = np.fromiter((run[2] for run in runs), np.int64, count)
    firsts = np.fromiter((run[3] for run in runs), np.int64, count)
    seeds = np.repeat(copy_seeds(run_values, copies), sizes)
    index = np.arange(int(sizes.sum()), dtype=np.int64) - np.repeat(np.cumsum(sizes) - sizes - firsts, sizes)
    return mix(seeds, counter(index, SLOT_KEY)), mix(seeds, counter(index, SLOT_MASK))


def pool_file(spill_dir: str | Path, pool: int) -> str:
    """The file ``pool_sections`` writes a pool's records to."""
    return str(storage.join(spill_dir, f"pool-{pool:06d}.bin"))


def pool_group_ranges(sections: list[tuple[int, PoolSection]], pool: int,
                      into: dict[int, list[tuple[int, int, int, int]]]) -> None:
    """Add one pool's ``pool_sections`` to ``into`` (first shard -> ``(pool, offset, size, instances)``
    ranges): the compact form in which an engine moves the sections of several pools, with no path (the
    pool number names the file, :func:`pool_file`); :func:`sections_of_ranges` turns them back."""
    for shard, section in sections:
        into.setdefault(shard, []).append((pool, section.offset, section.size, section.instances))


def sections_of_ranges(ranges, spill_dir: str | Path) -> list[PoolSection]:
    """``(pool, offset, size, instances)`` ranges (:func:`pool_group_ranges`) -> the ``PoolSection`` of each."""
    return [PoolSection(pool_file(spill_dir, pool), offset, size, n) for pool, offset, size, n in ranges]


def pool_sections(pool: int, records: Records, shards: int, spill_dir: str | Path) -> list[tuple[int, PoolSection]]:
    """Write a pool's records to one file, a section per first shard (``key % shards``); returns
    ``(shard, PoolSection)`` per section, so the engines move these small references instead
    of the records.  Written under a temporary name and renamed: a retried task writes the same file."""
    first = records.keys % np.uint64(shards)
    order = np.argsort(first, kind="stable")
    present, starts = np.unique(first[order], return_index=True)
    bounds = [*starts.tolist(), len(order)]
    final = pool_file(spill_dir, pool)
    sections = [Selection([records], np.zeros(bounds[k + 1] - bounds[k], np.int64), order[bounds[k]:bounds[k + 1]])
                for k in range(len(present))]
    placed = write_sections(final, sections)
    return [(int(shard), PoolSection(str(final), offset, size, n))
            for shard, (offset, size, n) in zip(present.tolist(), placed)]


def load_section(section: PoolSection) -> Records:
    """The records of one ``pool_sections`` reference."""
    path, offset, size, _ = PoolSection._make(section)
    return read_section(path, offset, size)


class Kept(NamedTuple):
    """The records a first shard keeps: the first ``keep``, in shuffle order, of the records of its pool file
    ``sections`` (references, see ``pool_sections``); ``write_shard`` reads them there."""

    sections: tuple
    keep: int


class _Keys:
    """The keys of a section, standing for it where only the order is needed."""

    def __init__(self, keys: np.ndarray) -> None:
        self.keys = keys

    def __len__(self) -> int:
        return len(self.keys)


def split_shard(shard: int, sections: list[tuple], targets: list[int], plan: dict) -> dict[int, object]:
    """All the pool file sections of one first shard (references, any order) -> what each shard gets of them:
    ``{shard: Kept}`` for the records it keeps (the first ``targets[shard]`` in key order; always there, so the
    shard is written even if nothing moves to it) and ``{destination: Records}`` for its surplus.

    Only the keys of the sections are read (all of the sections when two keys are equal: the order is then
    by the record bytes), and the bytes of the surplus records: the kept records stay in the pool files until
    ``write_shard`` reads them, and only the surplus (a few records per shard) goes through the engine.
    """
    sections = [s for s in map(PoolSection._make, sections) if s.instances]
    batches = [_Keys(read_section_keys(s.path, s.offset, s.size)) for s in sections]
    if batches:
        keys = np.concatenate([batch.keys for batch in batches])
        if len(np.unique(keys)) < len(keys):
            batches = [load_section(section) for section in sections]
    which, index = merge_order(batches)
    keep = min(len(which), targets[shard])
    out: dict[int, object] = {shard: Kept(tuple(sections), keep)}
    at = keep
    for dest, n in plan.get(shard) or ():
        part_which, part_index = which[at:at + n], index[at:at + n]
        present = np.unique(part_which)
        parts, position = [], np.zeros(n, np.int64)
        for k in present.tolist():
            mine = np.flatnonzero(part_which == k)
            parts.append(read_section_records(sections[k].path, sections[k].offset, sections[k].size,
                                              part_index[mine]))
            position[mine] = np.arange(len(mine))
        out[dest] = (Selection(parts, np.searchsorted(present, part_which), position).records() if n
                     else Records.empty(len(STAT_FIELDS)))
        at += n
    return out


def shard_targets(total: int, shards: int) -> list[int]:
    """How many instances each shard gets: an even share, the first ``total % shards`` one more."""
    base, extra = divmod(total, shards)
    return [base + (1 if s < extra else 0) for s in range(shards)]


def rebalance(counts: dict[int, int], shards: int) -> dict[int, list[tuple[int, int]]]:
    """For each shard over its target: where its surplus goes, as [(destination, how many), ...] in key order.

    ``counts`` are instances per shard after ``key % shards``.  Surplus shards are visited in shard order
    and fill the shards under target in shard order, so the plan is the same wherever it is computed.
    """
    targets = shard_targets(sum(counts.values()), shards)
    needs = [(s, targets[s] - counts.get(s, 0)) for s in range(shards) if counts.get(s, 0) < targets[s]]
    plan: dict[int, list[tuple[int, int]]] = {}
    cursor = 0
    for s in range(shards):
        surplus = counts.get(s, 0) - targets[s]
        moves = []
        while surplus > 0:
            dest, need = needs[cursor]
            n = min(need, surplus)
            moves.append((dest, n))
            surplus -= n
            need -= n
            if need:
                needs[cursor] = (dest, need)
            else:
                cursor += 1
        if moves:
            plan[s] = moves
    return plan


def shard_name(shard: int, shards: int) -> str:
    return f"part-{shard:05d}-of-{shards:05d}.tfrecord"


def write_shard(directory: str | Path, shard: int, shards: int, parts, options=None) -> dict:
    """Write one shard: the records of ``parts`` (``Kept`` references and ``Records`` batches, any order) in
    key order; returns its summary.

    Written under a temporary name and renamed (on an object store copied), so a retried task replaces the
    shard whole.  With ``options.format`` parquet or both, the Parquet shard of the same records too
    (``parquet``); parquet alone writes no TFRecord file (its summary's ``file`` is then the Parquet one).
    """
    kind = getattr(options, "format", "tfrecord") if options is not None else "tfrecord"
    batches: list[Records] = []
    which, index = [np.zeros(0, np.int64)], [np.zeros(0, np.int64)]
    kept = False
    for part in parts:
        if isinstance(part, Kept):
            kept = True
            loaded = [load_section(section) for section in part.sections]
            kept_which, kept_index = merge_order(loaded)
            which.append(kept_which[:part.keep] + len(batches))
            index.append(kept_index[:part.keep])
            batches += loaded
        elif len(part):
            which.append(np.full(len(part), len(batches), np.int64))
            index.append(np.arange(len(part), dtype=np.int64))
            batches.append(part)
    if len(which) == 2 and kept:                 # the one part is a Kept prefix, in key order already
        records = Selection(batches, which[1], index[1])
    else:
        records = Selection(batches, *merge_order(batches, np.concatenate(which), np.concatenate(index)))
    digest = hashlib.sha256()
    size = 0
    if kind != "parquet":
        with storage.atomic_output(storage.join(directory, shard_name(shard, shards))) as f:
            for chunk in records.chunks():
                f.write(chunk)
                digest.update(chunk)
                size += memoryview(chunk).nbytes
    figures = records.figures() if len(records) else np.zeros((0, len(STAT_FIELDS)), np.int64)
    totals = figures.sum(axis=0).tolist()
    summary = {"file": shard_name(shard, shards), "shard": shard, "instances": len(records), "bytes": size,
               "sha256": digest.hexdigest(), **dict(zip(SUMMED_FIELDS, (int(t) for t in totals)))}
    ids, which = np.unique(figures[:, -1], return_inverse=True)
    tokens, own = STAT_FIELDS.index("tokens"), STAT_FIELDS.index("own_tokens")
    summary["by_source"] = {str(source): [int(n), int(t), int(o)] for source, n, t, o in zip(
        ids.tolist(), np.bincount(which, minlength=len(ids)).tolist(),
        np.bincount(which, figures[:, tokens], len(ids)).astype(np.int64).tolist(),
        np.bincount(which, figures[:, own], len(ids)).astype(np.int64).tolist())}
    if kind != "tfrecord":
        from pipeline.shards import parquet

        name = parquet.shard_name(shard, shards)
        parquet_bytes, parquet_sha = parquet.write(storage.join(directory, name), records.chunks(), options)
        if kind == "parquet":
            summary.update(file=name, bytes=parquet_bytes, sha256=parquet_sha)
        else:
            summary.update(parquet_file=name, parquet_bytes=parquet_bytes, parquet_sha256=parquet_sha)
    return summary


def document_sections(docs: list[tuple[int, TokenizedDocument]], spill_dir: str | Path
                      ) -> list[tuple[int, DocumentSection]]:
    """Tokenized documents with their pools -> one file, a section per pool; ``(pool, DocumentSection)`` per
    section, what the engines group by pool instead of the documents."""
    by_pool: dict[int, list[TokenizedDocument]] = {}
    for pool, doc in docs:
        by_pool.setdefault(pool, []).append(doc)
    if not by_pool:
        return []
    pools = sorted(by_pool)
    path = storage.join(spill_dir, f"docs-{uuid.uuid4().hex}.bin")
    placed = write_parts(path, [documents_bytes(by_pool[pool]) for pool in pools])
    return [(pool, DocumentSection(str(path), offset, size, len(by_pool[pool]),
                                   sum(doc.tokens for doc in by_pool[pool])))
            for pool, (offset, size) in zip(pools, placed)]


def load_documents(section: DocumentSection) -> list[TokenizedDocument]:
    """The documents of one ``document_sections`` reference."""
    path, offset, size = section[:3]       # (a plain tuple of the three is read too)
    return documents_from_bytes(read_bytes(path, offset, size), TokenizedDocument)
