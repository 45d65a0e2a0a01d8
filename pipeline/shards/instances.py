"""Training instances from a pool of tokenized documents, before masking, as ranges of token positions.

A pool's documents are laid end to end in one token array (``PoolTokens``);
an instance is a list of ranges of it, each followed by ``[SEP]``, after a
``[CLS]``: ``[CLS] A [SEP] B [SEP]`` in bert mode, ``[CLS] doc1 [SEP] doc2
[SEP] …`` in roberta mode.  Sentences of a document are adjacent in the array,
so A, an actual B, a random B and what truncation leaves are each one range.

``bert`` mode follows google-research/bert's ``create_instances_from_document``:
a target length (``short_seq_prob`` of the time a shorter one, drawn once per
document copy), sentences gathered into a chunk until it is reached, the chunk
cut into A and B at a random sentence, B replaced half of the time by sentences
of another document (label 1 = random next; the sentences of the chunk that B
would have held are put back), then the pair truncated token by token from a
random end of the longer side.  Differences, each to avoid a bug or a loss:

- a random B always comes from another document of the pool (never the same one);
- a one-sentence chunk that draws "actual next" is cut into A and B at a random
  word boundary in the middle half of the sentence (each side at least
  ``LONE_CUT_SIDE`` tokens) instead of being forced to random next, so the labels
  stay near 50/50 on corpora of short documents (a sentence too short to cut is
  random next, as google's);
- a chunk stops before the sentence that would take it over the maximum length (google adds it and
  truncates), so an actual-next pair is never truncated (``overflow="truncate"`` does as google);
- tokens lost to truncation are counted (own tokens and borrowed random-B tokens apart);
- the draws are counter-based (``seeds.uniform_at``: the copy's seed and a counter naming the chunk, by its
  first sentence, and the choice) instead of one ``random.Random`` stream per copy, so every copy of every
  document of a pool is built at once (``bert_table``).

``roberta`` mode packs whole sentences of the documents of a pool, in a seeded
order, up to the maximum length, crossing document boundaries with a ``[SEP]``;
a sentence longer than an instance is split.  No next-sentence labels (all 0),
no token lost.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from pipeline.shards.seeds import (
    SLOT_A_END,
    SLOT_CUT,
    SLOT_NEXT,
    SLOT_PARTNER,
    SLOT_SHORT,
    SLOT_START,
    SLOT_TARGET,
    SLOT_TRUNCATE,
    below,
    counter,
    uniform_at,
)
from pipeline.shards.tokens import START, TokenizedDocument


@dataclass
class PoolTokens:
    """The documents of a pool in one array: ids, group flags, and each document's sentences as (start, end)."""

    ids: np.ndarray
    flags: np.ndarray
    sentences: list[list[tuple[int, int]]]
    doc_ids: list[str]
    group_starts: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))   # where flags are START
    # every sentence of the pool, end to end: sentence g is sentence_bounds[g]:sentence_bounds[g + 1]; document d
    # has sentences first_sentence[d]:first_sentence[d + 1]
    sentence_bounds: np.ndarray = field(default_factory=lambda: np.zeros(1, np.int64))
    first_sentence: np.ndarray = field(default_factory=lambda: np.zeros(1, np.int64))


def pool_tokens(docs: list[TokenizedDocument]) -> PoolTokens:
    ids = np.concatenate([doc.ids for doc in docs]).astype(np.int32) if docs else np.zeros(0, np.int32)
    flags = np.frombuffer(b"".join(doc.flags for doc in docs), dtype=np.uint8)
    sentences, all_ends, at = [], [np.zeros(1, np.int64)], 0
    for doc in docs:
        ends = doc.ends.astype(np.int64) + at
        all_ends.append(ends)
        ends = ends.tolist()
        sentences.append(list(zip([at, *ends[:-1]], ends)))
        at += len(doc.ids)
    first = np.zeros(len(docs) + 1, np.int64)
    np.cumsum([len(doc.ends) for doc in docs], out=first[1:])
    return PoolTokens(ids, flags, sentences, [d.id for d in docs], np.flatnonzero(flags == START),
                      np.concatenate(all_ends), first)


@dataclass
class Instance:
    """One sequence as ranges of the pool array: ``[CLS]``, then each range followed by ``[SEP]``."""

    ranges: list[tuple[int, int, int]]     # (start, end, segment id)
    is_random_next: bool
    doc_id: str
    copy: int
    index: int
    own_tokens: int = 0          # tokens of the instance's own document(s) it holds
    truncated: int = 0           # own tokens cut by truncation (lost for this copy)
    truncated_borrowed: int = 0  # random-B tokens cut (borrowed from another document, not lost)
    single_segment: bool = False


@dataclass
class InstanceTable:
    """Many instances column-wise (what the batch encoder takes).

    ``ranges`` (k × 3: start, end, segment id) of all instances end to end, ``range_counts`` how many are each
    instance's; per instance its next-sentence label and ``figures`` (own tokens, truncated, truncated
    borrowed, single segment); ``runs``: (document id, copy, instances, first index) of consecutive
    instances whose seeds come from one document copy, numbered from the first index."""

    ranges: np.ndarray
    range_counts: np.ndarray
    is_random_next: np.ndarray
    figures: np.ndarray
    runs: list[tuple[str, int, int, int]]

    def __len__(self) -> int:
        return len(self.range_counts)

    def rows(self, begin: int, end: int) -> InstanceTable:
        """Instances ``begin:end`` (``runs`` not kept: keys are made for the whole table)."""
        first = int(self.range_counts[:begin].sum())
        last = first + int(self.range_counts[begin:end].sum())
        return InstanceTable(self.ranges[first:last], self.range_counts[begin:end], self.is_random_next[begin:end],
                             self.figures[begin:end], [])

    def take(self, index: np.ndarray) -> InstanceTable:
        """The instances at ``index``, in that order (``runs`` not kept)."""
        index = np.asarray(index, dtype=np.int64)
        first = np.zeros(len(self.range_counts) + 1, np.int64)
        np.cumsum(self.range_counts, out=first[1:])
        counts = self.range_counts[index]
        total = int(counts.sum())
        at = np.repeat(first[index] - (np.cumsum(counts) - counts), counts) + np.arange(total)
        return InstanceTable(self.ranges[at], counts, self.is_random_next[index], self.figures[index], [])

    @classmethod
    def of_instances(cls, instances: list[Instance]) -> InstanceTable:
        ranges = np.asarray([r for inst in instances for r in inst.ranges], dtype=np.int64).reshape(-1, 3)
        return cls(ranges, np.asarray([len(inst.ranges) for inst in instances], dtype=np.int64),
                   np.asarray([inst.is_random_next for inst in instances], dtype=np.int64),
                   np.asarray([(inst.own_tokens, inst.truncated, inst.truncated_borrowed, inst.single_segment)
                               for inst in instances], dtype=np.int64).reshape(-1, 4),
                   [(inst.doc_id, inst.copy, 1, inst.index) for inst in instances])


LONE_CUT_SIDE = 3      # the fewest tokens A and B each keep when a one-sentence chunk is cut in two


def lone_cut_side(length):
    """The fewest tokens each side keeps when a one-sentence chunk of ``length`` tokens is cut into A and B: a
    quarter of the sentence and at least ``LONE_CUT_SIDE`` (so neither is a lone character or its ``。``)."""
    return np.maximum(LONE_CUT_SIDE, -(-np.asarray(length) // 4))


def bert_table(pool: PoolTokens, seeds: np.ndarray, max_seq_length: int, short_seq_prob: float,
               overflow: str = "stop", lane_doc: np.ndarray | None = None,
               lane_copy: np.ndarray | None = None) -> InstanceTable:
    """The instances of ``len(seeds) // documents`` copies of every document of the pool, copy-major, each
    copy drawing from its seed (``seeds[copy * documents + document]``, see ``seeds.copy_seeds``); a random B
    comes from any other document of the pool.  Instances are in (copy, document, index) order, ``runs`` one
    per document copy.  ``overflow``: ``stop`` (a chunk stops before the sentence that would take it over the
    maximum length) or ``truncate`` (it takes that sentence and the pair is truncated, as google's).

    All at once with NumPy.  A chunk is a run of the document's sentences, which lie end to end in the pool
    array, so a chunk, A and an actual B are each one range, and where a chunk ends is found by bisection on
    the sentence bounds (the same chunks as adding sentence by sentence).  An instance's draws are
    ``seeds.uniform_at`` at ``seeds.counter(c, slot)``, ``c`` its chunk's first sentence in the document (each
    sentence starts at most one chunk of a copy); an integer in [0, n) is ``seeds.below``.  So where the
    next chunk starts is known, for every copy, from every sentence that could start one: that is worked out
    for all of them, each copy's chunks are followed from its first sentence, and the instances of the
    chunks on that path are built together.

    ``lane_doc`` / ``lane_copy``: the document and copy number of each seed, when the copies are not
    ``len(seeds) // documents`` of every document (mixing weights give documents different copy counts);
    ``runs`` are then one per lane, in lane order."""
    docs = len(pool.doc_ids)
    lanes = len(seeds)                          # one per (copy, document)
    max_tokens = max_seq_length - 3
    bounds, first = pool.sentence_bounds, pool.first_sentence     # sentence g is bounds[g]:bounds[g + 1]
    seeds = np.asarray(seeds, dtype=np.uint64)
    by_lane = lane_doc is not None
    lane_doc = (np.asarray(lane_doc, np.int64) if by_lane else np.arange(lanes, dtype=np.int64) % max(docs, 1))
    target = np.full(lanes, max_tokens, np.int64)
    short = uniform_at(seeds, counter(-1, SLOT_SHORT)) < short_seq_prob
    target[short] = 2 + below(uniform_at(seeds[short], counter(-1, SLOT_TARGET)), max_tokens - 1)

    # every (copy, sentence) as a possible chunk start, copy by copy, sentences in order
    sizes = first[lane_doc + 1] - first[lane_doc]
    lane = np.repeat(np.arange(lanes, dtype=np.int64), sizes)
    lane_at = np.cumsum(sizes) - sizes          # each copy's first element
    local = np.arange(len(lane), dtype=np.int64) - lane_at[lane]     # the sentence's index in its document
    c0 = first[lane_doc[lane]] + local
    stop = first[lane_doc[lane] + 1]
    s, tg = seeds[lane], target[lane]
    base = bounds[c0]
    # the chunk ends after sentence i - 1: at the end of the document, once it holds target tokens, or (overflow
    # "stop") before the sentence that would take it over max_tokens (its first sentence is always taken)
    i = np.minimum(bounds.searchsorted(base + tg, "left"), stop)
    if overflow == "stop":
        i = np.minimum(i, np.maximum(c0 + 2, bounds.searchsorted(base + max_tokens, "right")) - 1)
    elif overflow != "truncate":
        raise ValueError(f"overflow must be 'stop' or 'truncate', not {overflow!r}")
    n_pieces = i - c0
    random_next = uniform_at(s, counter(local, SLOT_NEXT)) < 0.5
    many = np.flatnonzero(n_pieces >= 2)
    a_end = np.ones(len(lane), np.int64)
    a_end[many] = 1 + below(uniform_at(s[many], counter(local[many], SLOT_A_END)), n_pieces[many] - 1)
    # a random next gives the chunk's unused sentences to the next chunk; a one-sentence chunk is one
    # sentence whatever it draws (cut or not)
    # (with one document in the pool there is no random next)
    after = np.where(random_next & (n_pieces >= 2) & (docs > 1), c0 + a_end, i)

    # each copy's chunks: from its first sentence, chunk after chunk
    taken = np.zeros(len(lane), dtype=bool)
    at = lane_at[sizes > 0]
    while len(at):
        taken[at] = True
        going = after[at] < stop[at]
        at = at[going] + (after[at[going]] - c0[at[going]])
    pick = np.flatnonzero(taken)
    lane, local, c0, s, tg, base, i, n_pieces, random_next, a_end = (
        column[pick] for column in (lane, local, c0, s, tg, base, i, n_pieces, random_next, a_end))
    n = len(pick)

    cut = np.full(n, -1, np.int64)
    lone = np.flatnonzero(~random_next & (n_pieces == 1))
    if len(lone):
        # a one-sentence chunk drawing actual next is cut at a random group start in the middle of its sentence
        # (leaving A and B each at least LONE_CUT_SIDE tokens and a quarter of it); random next when there is none
        side = lone_cut_side(bounds[i[lone]] - base[lone])
        lo = pool.group_starts.searchsorted(base[lone] + side, "left")
        hi = pool.group_starts.searchsorted(bounds[i[lone]] - side, "right")
        can = hi > lo
        where = lone[can]
        cut[where] = pool.group_starts[lo[can] + below(uniform_at(s[where], counter(local[where], SLOT_CUT)),
                                                       hi[can] - lo[can])]
        random_next[lone[~can]] = True
    single = np.zeros(n, dtype=bool)
    if docs == 1:               # nobody to borrow B from: A alone when the chunk is one sentence (not cut)
        single = random_next & (n_pieces == 1)
        random_next[:] = False
    a0 = base
    a1 = np.where(cut >= 0, cut, bounds[c0 + a_end])
    b0, b1 = a1.copy(), bounds[i]
    own = b1 - a0
    borrow = np.flatnonzero(random_next)
    if len(borrow):
        doc = lane_doc[lane[borrow]]
        sb, lb_ = s[borrow], local[borrow]
        partner = below(uniform_at(sb, counter(lb_, SLOT_PARTNER)), docs - 1)
        partner += partner >= doc                # any document but its own
        start = first[partner] + below(uniform_at(sb, counter(lb_, SLOT_START)), first[partner + 1] - first[partner])
        b_target = np.maximum(tg[borrow] - (a1[borrow] - a0[borrow]), 1)
        b0[borrow] = bounds[start]
        b1[borrow] = bounds[np.minimum(bounds.searchsorted(bounds[start] + b_target, "left"), first[partner + 1])]
        own[borrow] = a1[borrow] - a0[borrow]
    truncated = np.zeros(n, np.int64)
    borrowed = np.zeros(n, np.int64)
    la, lb = a1 - a0, b1 - b0
    over = np.flatnonzero(la + lb > max_tokens)
    if len(over):
        # google's truncate_seq_pair: while too long, drop one token of the longer side (B on a tie) from its
        # front or its back at random.  The sides are known in advance: the longer side until both are as
        # long, then B, A, B, ... in turn; so the draws (one per token, front below 0.5) are taken in one go
        # and counted per side
        excess = la[over] + lb[over] - max_tokens
        owner = np.repeat(np.arange(len(over)), excess)
        k = np.arange(len(owner)) - np.repeat(np.cumsum(excess) - excess, excess)
        front = uniform_at(s[over][owner], counter(local[over][owner], SLOT_TRUNCATE + k)) < 0.5
        lead = np.minimum(excess, np.abs(la[over] - lb[over]))[owner]
        to_a = np.where(k < lead, (la[over] > lb[over])[owner], (k - lead) % 2 == 1)
        a_cuts = np.bincount(owner, to_a, len(over)).astype(np.int64)
        a_front = np.bincount(owner, to_a & front, len(over)).astype(np.int64)
        b_front = np.bincount(owner, ~to_a & front, len(over)).astype(np.int64)
        b_cuts = excess - a_cuts
        a0[over] += a_front
        a1[over] -= a_cuts - a_front
        b0[over] += b_front
        b1[over] -= b_cuts - b_front
        borrowing = random_next[over]
        truncated[over] = np.where(borrowing, excess - b_cuts, excess)
        borrowed[over] = np.where(borrowing, b_cuts, 0)
    own -= truncated

    made = np.bincount(lane, minlength=lanes).tolist()
    if by_lane:
        runs = [(pool.doc_ids[d], copy, count, 0) for d, copy, count in zip(lane_doc.tolist(),
                                                                            np.asarray(lane_copy).tolist(), made)]
    else:
        runs = [(pool.doc_ids[d], copy, made[copy * docs + d], 0) for copy in range(lanes // max(docs, 1))
                for d in range(docs)]
    both = np.empty((n, 2, 3), np.int64)
    both[:, 0, 0], both[:, 0, 1], both[:, 0, 2] = a0, a1, 0
    both[:, 1, 0], both[:, 1, 1], both[:, 1, 2] = b0, b1, 1
    has_b = b1 > b0
    present = np.stack([np.ones(n, dtype=bool), has_b], axis=1)
    figures = np.stack([own, truncated, borrowed, single.astype(np.int64)], axis=1).reshape(n, 4)
    return InstanceTable(both[present], 1 + has_b.astype(np.int64), random_next.astype(np.int64), figures, runs)


def roberta_instances(pool: PoolTokens, order: list[int], copy: int, max_seq_length: int) -> list[Instance]:
    """Instances packing the sentences of the pool's documents in ``order`` (this copy's order)."""
    capacity = max_seq_length - 2          # tokens and the [SEP]s between documents
    instances: list[Instance] = []
    per_doc: dict[str, int] = {}
    ranges: list[list[int]] = []
    used = 0
    pending_sep = False
    first_doc = None

    def close():
        nonlocal ranges, used, pending_sep, first_doc
        if ranges:
            index = per_doc.get(first_doc, 0)
            per_doc[first_doc] = index + 1
            own = sum(end - start for start, end in ranges)
            instances.append(Instance([(start, end, 0) for start, end in ranges], False, first_doc, copy, index,
                                      own_tokens=own))
        ranges, used, pending_sep, first_doc = [], 0, False, None

    for doc in order:
        for start, end in pool.sentences[doc]:
            at = start
            while at < end:
                room = capacity - used - (1 if pending_sep else 0)
                rest = end - at
                if rest <= room:
                    take = rest
                elif ranges:
                    close()
                    continue
                else:
                    take = room
                if first_doc is None:
                    first_doc = pool.doc_ids[doc]
                if pending_sep:
                    used += 1
                    pending_sep = False
                    ranges.append([at, at + take])
                elif ranges and ranges[-1][1] == at:
                    ranges[-1][1] = at + take
                else:
                    ranges.append([at, at + take])
                used += take
                at += take
        if ranges:
            if used < capacity:
                pending_sep = True
            else:
                close()
    close()
    return instances
