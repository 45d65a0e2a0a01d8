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
  word boundary instead of being forced to random next, so the labels stay near
  50/50 on corpora of short documents;
- a chunk stops before the sentence that would take it over the maximum length (google adds it and
  truncates), so an actual-next pair is never truncated;
- tokens lost to truncation are counted (own tokens and borrowed random-B tokens apart).

``roberta`` mode packs whole sentences of the documents of a pool, in a seeded
order, up to the maximum length, crossing document boundaries with a ``[SEP]``;
a sentence longer than an instance is split.  No next-sentence labels (all 0),
no token lost.
"""

from __future__ import annotations

import random
from bisect import bisect_left, bisect_right
from dataclasses import dataclass, field

import numpy as np

from pipeline.shards.tokens import START, TokenizedDocument


@dataclass
class PoolTokens:
    """The documents of a pool in one array: ids, group flags, and each document's sentences as (start, end)."""

    ids: np.ndarray
    flags: np.ndarray
    sentences: list[list[tuple[int, int]]]
    doc_ids: list[str]
    bounds: list[list[int]] = field(default_factory=list)      # per document: its sentences' bounds (m + 1)
    group_starts: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))   # where flags are START


def pool_tokens(docs: list[TokenizedDocument]) -> PoolTokens:
    ids = np.concatenate([doc.ids for doc in docs]).astype(np.int32) if docs else np.zeros(0, np.int32)
    flags = np.frombuffer(b"".join(doc.flags for doc in docs), dtype=np.uint8)
    sentences, bounds, at = [], [], 0
    for doc in docs:
        ends = (doc.ends.astype(np.int64) + at).tolist()
        sentences.append(list(zip([at, *ends[:-1]], ends)))
        bounds.append([at, *ends])
        at += len(doc.ids)
    return PoolTokens(ids, flags, sentences, [d.id for d in docs], bounds, np.flatnonzero(flags == START))


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

    @classmethod
    def of_bert_rows(cls, rows: list[tuple], runs: list[tuple[str, int, int, int]]) -> InstanceTable:
        """From ``bert_rows`` tuples: A, then B when it is not empty."""
        table = np.asarray(rows, dtype=np.int64).reshape(-1, len(BERT_COLUMNS))
        n = len(table)
        both = np.empty((n, 2, 3), np.int64)
        both[:, 0, 0], both[:, 0, 1], both[:, 0, 2] = table[:, 0], table[:, 1], 0
        both[:, 1, 0], both[:, 1, 1], both[:, 1, 2] = table[:, 2], table[:, 3], 1
        has_b = table[:, 3] > table[:, 2]
        present = np.stack([np.ones(n, dtype=bool), has_b], axis=1)
        return cls(both[present], 1 + has_b.astype(np.int64), table[:, 4].copy(), table[:, 5:9].copy(), runs)

    @classmethod
    def of_instances(cls, instances: list[Instance]) -> InstanceTable:
        ranges = np.asarray([r for inst in instances for r in inst.ranges], dtype=np.int64).reshape(-1, 3)
        return cls(ranges, np.asarray([len(inst.ranges) for inst in instances], dtype=np.int64),
                   np.asarray([inst.is_random_next for inst in instances], dtype=np.int64),
                   np.asarray([(inst.own_tokens, inst.truncated, inst.truncated_borrowed, inst.single_segment)
                               for inst in instances], dtype=np.int64).reshape(-1, 4),
                   [(inst.doc_id, inst.copy, 1, inst.index) for inst in instances])


def _cut_sentence(pool: PoolTokens, span: tuple[int, int], rng: random.Random):
    """A random group start inside a sentence (not its first token); None when the sentence is one group."""
    lo, hi = pool.group_starts.searchsorted((span[0] + 1, span[1])).tolist()
    if hi == lo:
        return None
    return int(pool.group_starts[lo + rng._randbelow(hi - lo)])


# Columns of a bert row (``bert_rows``): A and B as ranges of the pool array (B empty: no B), the next
# sentence label and the figures of ``Instance``.
BERT_COLUMNS = ("a_start", "a_end", "b_start", "b_end", "is_random_next", "own_tokens", "truncated",
                "truncated_borrowed", "single_segment")


def bert_rows(pool: PoolTokens, doc: int, partners: list[int], rng: random.Random, max_seq_length: int,
              short_seq_prob: float, out: list) -> int:
    """The instances of one copy of pool document ``doc``, appended to ``out`` as tuples (``BERT_COLUMNS``);
    ``partners`` are the documents random B may come from.  Returns how many.

    A chunk is a run of the document's sentences, which lie end to end in the pool array, so a chunk, A and
    an actual B are each one range, and where a chunk ends is found by bisection on the sentence bounds
    (the same chunks as adding sentence by sentence)."""
    max_tokens = max_seq_length - 3
    # rng.randint(lo, hi) and rng.randrange(n) are lo + _randbelow(hi - lo + 1) and _randbelow(n) for n > 0:
    # the same draws, without their argument checks (this loop runs for every instance)
    randbelow, random_ = rng._randbelow, rng.random
    target = max_tokens
    if random_() < short_seq_prob:
        target = 2 + randbelow(max_tokens - 1)
    bounds = pool.bounds[doc]                   # sentence k is bounds[k]:bounds[k + 1]
    m = len(bounds) - 1
    append = out.append
    made = 0
    c0 = 0                                      # the chunk's first sentence
    while c0 < m:
        base = bounds[c0]
        # the chunk ends after sentence i - 1: at the end of the document, once it holds target tokens, or
        # before the sentence that would take it over max_tokens (its first sentence is always taken)
        i = min(bisect_left(bounds, base + target, c0 + 1), bisect_right(bounds, base + max_tokens, c0 + 2) - 1, m)
        n_pieces = i - c0
        random_next = random_() < 0.5
        cut = None
        if not random_next and n_pieces == 1:
            cut = _cut_sentence(pool, (base, bounds[i]), rng)
            if cut is None:
                random_next = True
            else:
                n_pieces = 2
        single = False
        if random_next and not partners:
            single = n_pieces == 1
            random_next = False
        a_end = 1 + randbelow(n_pieces - 1) if n_pieces >= 2 else 1
        a0 = base
        a1 = cut if cut is not None and a_end == 1 else bounds[c0 + a_end]
        if random_next:
            other = pool.bounds[partners[randbelow(len(partners))]]
            b_target = target - (a1 - a0)
            if b_target < 1:
                b_target = 1
            start = randbelow(len(other) - 1)
            b0 = other[start]
            last = bisect_left(other, b0 + b_target, start + 1)
            b1 = other[last] if last < len(other) else other[-1]
            c0 += a_end                         # the chunk's unused sentences start the next chunk
            own = a1 - a0
        else:
            b0, b1 = a1, bounds[i]
            own = b1 - a0
            c0 = i
        excess = a1 - a0 + b1 - b0 - max_tokens
        if excess > 0:
            # google's truncate_seq_pair: while too long, drop one token of the longer side (B on a tie) from
            # its front or its back at random.  The sides are known in advance: the longer side until both are
            # as long, then B, A, B, ... in turn; so the draws (one per token, front below 0.5) are taken in
            # one go and counted per side
            front = [random_() < 0.5 for _ in range(excess)]
            la, lb = a1 - a0, b1 - b0
            lead = min(excess, abs(la - lb))
            b_front, b_cuts = sum(front[lead::2]), len(front[lead::2])
            a_front, a_cuts = sum(front[lead + 1::2]), excess - lead - b_cuts
            if la > lb:
                a_front += sum(front[:lead])
                a_cuts += lead
            else:
                b_front += sum(front[:lead])
                b_cuts += lead
            a0, a1 = a0 + a_front, a1 - (a_cuts - a_front)
            b0, b1 = b0 + b_front, b1 - (b_cuts - b_front)
            if random_next:
                truncated, borrowed = excess - b_cuts, b_cuts
            else:
                truncated, borrowed = excess, 0
        else:
            truncated = borrowed = 0
        append((a0, a1, b0, b1, random_next, own - truncated, truncated, borrowed, single))
        made += 1
    return made


def bert_instances(pool: PoolTokens, doc: int, partners: list[int], copy: int, rng: random.Random,
                   max_seq_length: int, short_seq_prob: float) -> list[Instance]:
    """Instances of one copy of pool document ``doc`` (``bert_rows`` as ``Instance`` records)."""
    rows: list[tuple] = []
    bert_rows(pool, doc, partners, rng, max_seq_length, short_seq_prob, rows)
    doc_id = pool.doc_ids[doc]
    return [Instance([(a0, a1, 0)] + ([(b0, b1, 1)] if b1 > b0 else []), random_next, doc_id, copy, index,
                     own_tokens=own, truncated=truncated, truncated_borrowed=borrowed, single_segment=single)
            for index, (a0, a1, b0, b1, random_next, own, truncated, borrowed, single) in enumerate(rows)]


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
