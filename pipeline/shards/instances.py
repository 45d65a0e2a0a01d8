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
from dataclasses import dataclass

import numpy as np

from pipeline.shards.tokens import START, TokenizedDocument


@dataclass
class PoolTokens:
    """The documents of a pool in one array: ids, group flags, and each document's sentences as (start, end)."""

    ids: np.ndarray
    flags: np.ndarray
    sentences: list[list[tuple[int, int]]]
    doc_ids: list[str]


def pool_tokens(docs: list[TokenizedDocument]) -> PoolTokens:
    ids = np.concatenate([doc.ids for doc in docs]).astype(np.int64) if docs else np.zeros(0, np.int64)
    flags = np.frombuffer(b"".join(doc.flags for doc in docs), dtype=np.uint8)
    sentences, at = [], 0
    for doc in docs:
        ends = (doc.ends.astype(np.int64) + at).tolist()
        sentences.append(list(zip([at, *ends[:-1]], ends)))
        at += len(doc.ids)
    return PoolTokens(ids, flags, sentences, [d.id for d in docs])


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


def _cut_sentence(pool: PoolTokens, span: tuple[int, int], rng: random.Random):
    """A random group start inside a sentence (not its first token); None when the sentence is one group."""
    start, end = span
    cuts = np.flatnonzero(pool.flags[start + 1:end] == START)
    if not len(cuts):
        return None
    return start + 1 + int(cuts[rng._randbelow(len(cuts))])


def _truncate(a: tuple[int, int], b: tuple[int, int], max_tokens: int, rng: random.Random, b_borrowed: bool):
    """google's truncate_seq_pair on two ranges: while too long, drop one token of the longer side (B on a tie)
    from its front or its back at random.  Returns the ranges, own tokens cut, borrowed tokens cut.

    The sides are known in advance: the longer side until both are as long, then B, A, B, ... in turn; so
    the draws (one per token, front below 0.5) are taken in one go and counted per side."""
    la, lb = a[1] - a[0], b[1] - b[0]
    excess = la + lb - max_tokens
    if excess <= 0:
        return a, b, 0, 0
    random_ = rng.random
    front = [random_() < 0.5 for _ in range(excess)]
    lead = min(excess, abs(la - lb))           # cuts on the longer side before both are as long
    head, b_turns, a_turns = front[:lead], front[lead::2], front[lead + 1::2]
    if la > lb:
        a_front, a_cuts, b_front, b_cuts = sum(head) + sum(a_turns), lead + len(a_turns), sum(b_turns), len(b_turns)
    else:
        a_front, a_cuts, b_front, b_cuts = sum(a_turns), len(a_turns), sum(head) + sum(b_turns), lead + len(b_turns)
    a = (a[0] + a_front, a[1] - (a_cuts - a_front))
    b = (b[0] + b_front, b[1] - (b_cuts - b_front))
    if b_borrowed:
        return a, b, excess - b_cuts, b_cuts
    return a, b, excess, 0


def bert_instances(pool: PoolTokens, doc: int, partners: list[int], copy: int, rng: random.Random,
                   max_seq_length: int, short_seq_prob: float) -> list[Instance]:
    """Instances of one copy of pool document ``doc``; ``partners`` are the documents random B may come from."""
    max_tokens = max_seq_length - 3
    # rng.randint(lo, hi) and rng.randrange(n) are lo + _randbelow(hi - lo + 1) and _randbelow(n) for n > 0:
    # the same draws, without their argument checks (this loop runs for every instance)
    randbelow, random_ = rng._randbelow, rng.random
    target = max_tokens
    if random_() < short_seq_prob:
        target = 2 + randbelow(max_tokens - 1)
    sentences = pool.sentences[doc]
    doc_id = pool.doc_ids[doc]
    instances: list[Instance] = []
    chunk: list[tuple[int, int]] = []
    length = 0
    i = 0
    while i < len(sentences):
        size = sentences[i][1] - sentences[i][0]
        full = bool(chunk) and length + size > max_tokens
        if not full:       # a full chunk is closed first; this sentence starts the next one
            chunk.append(sentences[i])
            length += size
            i += 1
        if full or i == len(sentences) or length >= target:
            pieces = chunk
            random_next = random_() < 0.5
            if not random_next and len(pieces) == 1:
                cut = _cut_sentence(pool, pieces[0], rng)
                if cut is None:
                    random_next = True
                else:
                    pieces = [(pieces[0][0], cut), (cut, pieces[0][1])]
            single = False
            if random_next and not partners:
                single = len(pieces) == 1
                random_next = False
            a_end = 1 + randbelow(len(pieces) - 1) if len(pieces) >= 2 else 1
            a = (pieces[0][0], pieces[a_end - 1][1])
            if random_next:
                other = pool.sentences[partners[randbelow(len(partners))]]
                b_target = max(1, target - (a[1] - a[0]))
                start = rng.randrange(len(other))
                last, taken = start, 0
                for k in range(start, len(other)):
                    taken += other[k][1] - other[k][0]
                    last = k
                    if taken >= b_target:
                        break
                b = (other[start][0], other[last][1])
                i -= len(chunk) - a_end        # the chunk's unused sentences start the next chunk
                own = a[1] - a[0]
            else:
                b = (pieces[a_end][0], pieces[-1][1]) if len(pieces) > a_end else (a[1], a[1])
                own = (a[1] - a[0]) + (b[1] - b[0])
            a, b, truncated, borrowed = _truncate(a, b, max_tokens, rng, b_borrowed=random_next)
            ranges = [(a[0], a[1], 0)]
            if b[1] > b[0]:
                ranges.append((b[0], b[1], 1))
            instances.append(Instance(ranges, random_next, doc_id, copy, len(instances),
                                      own_tokens=own - truncated, truncated=truncated,
                                      truncated_borrowed=borrowed, single_segment=single))
            chunk = []
            length = 0
    return instances


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
