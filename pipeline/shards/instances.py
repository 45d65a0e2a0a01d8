"""Training instances from tokenized documents, before masking.

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
from dataclasses import dataclass, field

from pipeline.shards.tokens import CONT, SPECIAL, START, TokenizedDocument


@dataclass
class Instance:
    """One sequence: ids with ``[CLS]``/``[SEP]``, segment ids, group flags, label, where its tokens came from."""

    ids: list[int]
    segment_ids: list[int]
    flags: bytearray
    is_random_next: bool
    doc_id: str
    copy: int
    index: int
    own_tokens: int = 0          # tokens of the instance's own document(s) it holds
    truncated: int = 0           # own tokens cut by truncation (lost for this copy)
    truncated_borrowed: int = 0  # random-B tokens cut (borrowed from another document, not lost)
    single_segment: bool = False
    extra: dict = field(default_factory=dict)


@dataclass
class Specials:
    cls: int
    sep: int
    mask: int


def _join(sentences) -> tuple[list[int], bytearray]:
    ids: list[int] = []
    flags = bytearray()
    for sentence_ids, sentence_flags in sentences:
        ids.extend(sentence_ids)
        flags.extend(sentence_flags)
    return ids, flags


def _cut_sentence(sentence, rng: random.Random):
    """Cut one sentence in two at a random group start; None when it is one group."""
    ids, flags = sentence
    cuts = [p for p in range(1, len(ids)) if flags[p] == START]
    if not cuts:
        return None
    at = cuts[rng.randrange(len(cuts))]
    return (ids[:at], flags[:at]), (ids[at:], flags[at:])


def _truncate(a, b, max_tokens: int, rng: random.Random, b_borrowed: bool):
    """google's truncate_seq_pair: while too long, drop one token of the longer side (B on a tie) from its front
    or its back at random.  Returns the (ids, flags) pairs cut to size, own tokens cut, borrowed tokens cut."""
    la, lb = len(a[0]), len(b[0])
    excess = la + lb - max_tokens
    if excess <= 0:
        return a, b, 0, 0
    cuts = [[0, 0], [0, 0]]                 # (front, back) of a, of b
    random_ = rng.random
    for _ in range(excess):
        side = 0 if la > lb else 1
        cuts[side][0 if random_() < 0.5 else 1] += 1
        if side:
            lb -= 1
        else:
            la -= 1
    out = []
    for (ids, flags), (front, back) in zip((a, b), cuts):
        end = len(ids) - back
        ids, flags = ids[front:end], flags[front:end]
        if flags and flags[0] == CONT:      # the head of a word was cut: what is left is the group
            flags[0] = START
        out.append((ids, flags))
    cut_b = cuts[1][0] + cuts[1][1]
    cut_a = excess - cut_b
    if b_borrowed:
        return out[0], out[1], cut_a, cut_b
    return out[0], out[1], excess, 0


def bert_instances(doc: TokenizedDocument, partners: list[TokenizedDocument], copy: int, rng: random.Random,
                   max_seq_length: int, short_seq_prob: float, specials: Specials) -> list[Instance]:
    """Instances of one copy of one document; ``partners`` are the other documents random B may come from."""
    max_tokens = max_seq_length - 3
    target = max_tokens
    if rng.random() < short_seq_prob:
        target = rng.randint(2, max_tokens)
    sentences = doc.sentences
    instances: list[Instance] = []
    chunk: list = []
    length = 0
    i = 0
    while i < len(sentences):
        full = bool(chunk) and length + len(sentences[i][0]) > max_tokens
        if not full:       # a full chunk is closed first; this sentence starts the next one
            chunk.append(sentences[i])
            length += len(sentences[i][0])
            i += 1
        if full or i == len(sentences) or length >= target:
            random_next = rng.random() < 0.5
            if not random_next and len(chunk) == 1:
                halves = _cut_sentence(chunk[0], rng)
                if halves is None:
                    random_next = True
                else:
                    chunk = list(halves)
            single = False
            if random_next and not partners:
                if len(chunk) == 1:
                    single = True
                random_next = False
            a_end = rng.randint(1, len(chunk) - 1) if len(chunk) >= 2 else 1
            a = _join(chunk[:a_end])
            if random_next:
                partner = partners[rng.randrange(len(partners))]
                b_target = max(1, target - len(a[0]))
                start = rng.randrange(len(partner.sentences))
                taken = []
                taken_length = 0
                for sentence in partner.sentences[start:]:
                    taken.append(sentence)
                    taken_length += len(sentence[0])
                    if taken_length >= b_target:
                        break
                b = _join(taken)
                i -= len(chunk) - a_end        # the chunk's unused sentences start the next chunk
                own = len(a[0])
            else:
                b = _join(chunk[a_end:])
                own = len(a[0]) + len(b[0])
            a, b, truncated, borrowed = _truncate(a, b, max_tokens, rng, b_borrowed=random_next)
            ids = [specials.cls, *a[0], specials.sep]
            flags = bytearray([SPECIAL]) + a[1] + bytearray([SPECIAL])
            segment_ids = [0] * len(ids)
            if b[0]:
                ids += [*b[0], specials.sep]
                flags += b[1] + bytearray([SPECIAL])
                segment_ids += [1] * (len(b[0]) + 1)
            instances.append(Instance(ids, segment_ids, flags, random_next, doc.id, copy, len(instances),
                                      own_tokens=own - truncated, truncated=truncated,
                                      truncated_borrowed=borrowed, single_segment=single))
            chunk = []
            length = 0
    return instances


def roberta_instances(docs: list[TokenizedDocument], copy: int, max_seq_length: int,
                      specials: Specials) -> list[Instance]:
    """Instances packing the sentences of ``docs`` (already in this copy's order)."""
    capacity = max_seq_length - 2
    instances: list[Instance] = []
    counters: dict[str, int] = {}
    ids: list[int] = []
    flags = bytearray()
    first_doc = None

    def close():
        nonlocal ids, flags, first_doc
        if ids and ids[-1] == specials.sep and flags[-1] == SPECIAL:   # no document separator at the end
            ids.pop()
            flags.pop()
        if ids:
            index = counters.get(first_doc, 0)
            counters[first_doc] = index + 1
            own = sum(1 for f in flags if f != SPECIAL)
            instances.append(Instance([specials.cls, *ids, specials.sep], [0] * (len(ids) + 2),
                                      bytearray([SPECIAL]) + flags + bytearray([SPECIAL]), False, first_doc,
                                      copy, index, own_tokens=own))
        ids, flags, first_doc = [], bytearray(), None

    for doc in docs:
        for sentence_ids, sentence_flags in doc.sentences:
            start = 0
            while start < len(sentence_ids):
                room = capacity - len(ids)
                rest = len(sentence_ids) - start
                if rest <= room:
                    take = rest
                elif ids:
                    close()
                    continue
                else:
                    take = room
                if first_doc is None:
                    first_doc = doc.id
                piece_flags = bytearray(sentence_flags[start:start + take])
                if piece_flags[0] == CONT:
                    piece_flags[0] = START
                ids.extend(sentence_ids[start:start + take])
                flags.extend(piece_flags)
                start += take
        if ids:
            if len(ids) < capacity:
                ids.append(specials.sep)
                flags.append(SPECIAL)
            else:
                close()
    close()
    return instances
