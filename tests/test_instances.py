"""Bert instance building (``instances.bert_table``, all copies of all documents of a pool at once) against a
plain per-document reference written here: google-research/bert's ``create_instances_from_document`` as the
module describes it, chunk after chunk, sentence by sentence, truncating token by token, drawing from the same
counter-based generator (each chunk's draws named by its first sentence)."""

from __future__ import annotations

import random

import numpy as np
import pytest

from pipeline.shards.instances import LONE_CUT_SIDE, bert_table, pool_tokens
from pipeline.shards.seeds import (SLOT_A_END, SLOT_CUT, SLOT_NEXT, SLOT_PARTNER, SLOT_SHORT, SLOT_START,
                                   SLOT_TARGET, SLOT_TRUNCATE, copy_seeds, counter, document_values, uniform_at)
from pipeline.shards.tokens import CONT, START, TokenizedDocument


def draw(seed: int, index: int, slot: int) -> float:
    return float(uniform_at(seed, counter(index, slot))[0])


def randbelow(seed: int, index: int, slot: int, n: int) -> int:
    return min(int(draw(seed, index, slot) * n), n - 1)


def reference(pool, doc: int, seed: int, max_seq_length: int, short_seq_prob: float,
              overflow: str = "stop") -> list[tuple]:
    """One copy of one document: (A, B or None, random next, own, truncated, borrowed, single) per instance."""
    docs = len(pool.doc_ids)
    partners = [p for p in range(docs) if p != doc]
    bounds = [pool.sentence_bounds[g] for g in range(pool.first_sentence[doc], pool.first_sentence[doc + 1] + 1)]
    bounds = [int(b) for b in bounds]
    max_tokens = max_seq_length - 3
    target = max_tokens
    if draw(seed, -1, SLOT_SHORT) < short_seq_prob:
        target = 2 + randbelow(seed, -1, SLOT_TARGET, max_tokens - 1)
    groups = pool.group_starts.tolist()
    out, c0, m = [], 0, len(bounds) - 1
    while c0 < m:
        index = c0                  # an instance's draws are named by its chunk's first sentence
        # gather sentences until the target is reached (overflow "stop": stopping before one that would pass
        # max_tokens; "truncate": taking it, as google's)
        i, size = c0, 0
        while i < m:
            length = bounds[i + 1] - bounds[i]
            if overflow == "stop" and i > c0 and size + length > max_tokens:
                break
            size += length
            i += 1
            if size >= target:
                break
        n_pieces = i - c0
        random_next = draw(seed, index, SLOT_NEXT) < 0.5
        cut = None
        if not random_next and n_pieces == 1:
            # a group start leaving A and B each a quarter of the sentence and at least LONE_CUT_SIDE tokens
            side = max(LONE_CUT_SIDE, -(-(bounds[i] - bounds[c0]) // 4))
            inside = [g for g in groups if bounds[c0] + side <= g <= bounds[i] - side]
            if inside:
                cut = inside[randbelow(seed, index, SLOT_CUT, len(inside))]
                n_pieces = 2
            else:
                random_next = True
        single = False
        if random_next and not partners:
            single, random_next = n_pieces == 1, False
        a_end = 1 + randbelow(seed, index, SLOT_A_END, n_pieces - 1) if n_pieces >= 2 else 1
        a = list(range(bounds[c0], cut if cut is not None else bounds[c0 + a_end]))
        if random_next:
            partner = partners[randbelow(seed, index, SLOT_PARTNER, len(partners))]
            other = [int(b) for b in pool.sentence_bounds[pool.first_sentence[partner]:
                                                          pool.first_sentence[partner + 1] + 1]]
            b_target = max(1, target - len(a))
            start = randbelow(seed, index, SLOT_START, len(other) - 1)
            b = []
            for k in range(start, len(other) - 1):
                b += range(other[k], other[k + 1])
                if len(b) >= b_target:
                    break
            c0 += a_end
        else:
            b = list(range(a[-1] + 1 if a else bounds[c0], bounds[i]))
            c0 = i
        own = len(a) + (0 if random_next else len(b))
        cuts_a = cuts_b = draws = 0
        while len(a) + len(b) > max_tokens:                  # truncate_seq_pair, B on a tie
            side = a if len(a) > len(b) else b
            if side is a:
                cuts_a += 1
            else:
                cuts_b += 1
            if draw(seed, index, SLOT_TRUNCATE + draws) < 0.5:
                del side[0]
            else:
                side.pop()
            draws += 1
        truncated, borrowed = (cuts_a, cuts_b) if random_next else (cuts_a + cuts_b, 0)
        out.append(((a[0], a[-1] + 1), (b[0], b[-1] + 1) if b else None, random_next, own - truncated, truncated,
                    borrowed, single))
    return out


def table_rows(table) -> list[tuple]:
    """The instances of a table in the reference's form, in table order."""
    rows, at = [], 0
    for n, random_next, figures in zip(table.range_counts.tolist(), table.is_random_next.tolist(),
                                       table.figures.tolist()):
        ranges = table.ranges[at:at + n].tolist()
        at += n
        assert ranges[0][2] == 0 and (n == 1 or ranges[1][2] == 1)
        rows.append((tuple(ranges[0][:2]), tuple(ranges[1][:2]) if n == 2 else None, bool(random_next),
                     *figures[:3], bool(figures[3])))
    return rows


def synthetic_pool(rng: random.Random, docs: int, max_seq_length: int):
    """Documents of 1 to 12 sentences of 1 to 3 × max_seq_length tokens (mostly short), groups of 1 to 4 tokens,
    some sentences a single group."""
    out = []
    for d in range(docs):
        sentences = []
        for _ in range(rng.randint(1, 12)):
            n = rng.choice([1, 2, rng.randint(1, 10), rng.randint(1, 10), rng.randint(5, 3 * max_seq_length)])
            flags = [START] + [CONT] * (n - 1)
            if rng.random() < 0.8:
                flags = [START if k == 0 or rng.random() < 0.4 else CONT for k in range(n)]
            sentences.append(([d * 10000 + len(sentences) * 100 + k for k in range(n)], bytes(flags)))
        out.append(TokenizedDocument.of_sentences(f"doc{d:03d}", sentences))
    return out


@pytest.mark.parametrize("overflow", ["stop", "truncate"])
@pytest.mark.parametrize("docs", [1, 2, 7, 40])
@pytest.mark.parametrize("max_seq_length,short_seq_prob", [(16, 0.0), (16, 1.0), (32, 0.1), (128, 0.5), (8, 0.3)])
def test_bert_table_is_the_per_document_reference(docs, max_seq_length, short_seq_prob, overflow):
    rng = random.Random(docs * 1000 + max_seq_length)
    documents = synthetic_pool(rng, docs, max_seq_length)
    pool = pool_tokens(documents)
    copies = 3
    seeds = copy_seeds(np.tile(document_values(7, pool.doc_ids), copies), np.repeat(np.arange(copies), docs))
    table = bert_table(pool, seeds, max_seq_length, short_seq_prob, overflow)
    expected, runs = [], []
    for copy in range(copies):
        for d in range(docs):
            rows = reference(pool, d, int(seeds[copy * docs + d]), max_seq_length, short_seq_prob, overflow)
            expected += rows
            runs.append((pool.doc_ids[d], copy, len(rows), 0))
            # every token of every copy is the instance's own or truncated, once
            assert sum(row[3] + row[4] for row in rows) == len(documents[d].ids)
    assert table_rows(table) == expected
    assert table.runs == runs
    assert all(len(row[0]) and row[0][1] - row[0][0] + (row[1][1] - row[1][0] if row[1] else 0) <= max_seq_length - 3
               for row in expected)


def test_bert_table_labels_and_truncation_on_a_larger_pool():
    """Next-sentence labels near half and half, truncation counted on both sides."""
    rng = random.Random(5)
    documents = []
    for d in range(128):
        lengths = [rng.randint(4, 40) for _ in range(rng.randint(1, 20))]
        documents.append(TokenizedDocument.of_sentences(f"doc{d:03d}", [
            ([1] * n, bytes(START if k == 0 or rng.random() < 0.5 else CONT for k in range(n))) for n in lengths]))
    pool = pool_tokens(documents)
    seeds = copy_seeds(np.tile(document_values(1, pool.doc_ids), 10), np.repeat(np.arange(10), 128))
    table = bert_table(pool, seeds, 64, 0.1)
    assert abs(table.is_random_next.mean() - 0.5) < 0.05
    own, truncated, borrowed, single = table.figures.sum(axis=0).tolist()
    assert own + truncated == 10 * sum(len(doc.ids) for doc in documents)
    assert truncated > 0 and borrowed > 0 and single == 0


def test_instance_table_take():
    """``take`` keeps each instance's ranges, label and figures, in the order asked (repeats and none too)."""
    rng = random.Random(9)
    documents = [TokenizedDocument.of_sentences(f"doc{d}", [([1] * n, bytes([START] * n)) for n in
                                                            [rng.randint(2, 30) for _ in range(rng.randint(1, 8))]])
                 for d in range(12)]
    pool = pool_tokens(documents)
    table = bert_table(pool, copy_seeds(np.tile(document_values(3, pool.doc_ids), 2), np.repeat(np.arange(2), 12)),
                       48, 0.2)
    first = np.concatenate([[0], np.cumsum(table.range_counts)])
    for index in ([], [0], list(range(len(table)))[::-1], [rng.randrange(len(table)) for _ in range(40)]):
        taken = table.take(np.asarray(index, dtype=np.int64))
        assert len(taken) == len(index)
        expect = [table.ranges[first[i]:first[i + 1]] for i in index]
        assert np.array_equal(taken.ranges, np.concatenate(expect) if expect else np.zeros((0, 3), np.int64))
        assert taken.range_counts.tolist() == [int(table.range_counts[i]) for i in index]
        assert taken.is_random_next.tolist() == [int(table.is_random_next[i]) for i in index]
        assert taken.figures.tolist() == [table.figures[i].tolist() for i in index]


def test_bert_table_of_an_empty_pool():
    table = bert_table(pool_tokens([]), np.zeros(0, np.uint64), 128, 0.1)
    assert len(table) == 0 and table.runs == [] and table.ranges.shape == (0, 3)


def test_a_one_sentence_chunk_is_cut_in_its_middle_or_not_at_all():
    """Documents of one sentence each: an actual-next pair cut from one sentence leaves A and B each at least a
    quarter of it and LONE_CUT_SIDE tokens, at a group start; a sentence too short for that is random next."""
    rng = random.Random(11)
    documents = []
    for d in range(64):
        n = rng.randint(1, 60)
        documents.append(TokenizedDocument.of_sentences(f"doc{d:03d}", [
            (list(range(n)), bytes(START if k == 0 or rng.random() < 0.6 else CONT for k in range(n)))]))
    pool = pool_tokens(documents)
    seeds = copy_seeds(np.tile(document_values(2, pool.doc_ids), 8), np.repeat(np.arange(8), 64))
    rows = table_rows(bert_table(pool, seeds, 128, 0.0))
    starts = set(pool.group_starts.tolist())
    actual = [row for row in rows if not row[2]]
    assert len(actual) > 100
    sentence = {int(pool.sentence_bounds[d]): int(pool.sentence_bounds[d + 1]) for d in range(64)}
    for (a0, a1), b, random_next, *_ in rows:
        length = sentence[a0] - a0
        if length < 2 * 3:
            assert random_next            # nothing to cut in a sentence under twice LONE_CUT_SIDE
        if not random_next:
            side = max(3, -(-length // 4))
            assert a1 - a0 >= side and b[1] - b[0] >= side and a1 in starts and b == (a1, sentence[a0])
