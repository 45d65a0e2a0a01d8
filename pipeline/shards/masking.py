"""Whole-word masking of one instance.

As google-research/bert's ``create_masked_lm_predictions``: the number to
predict is ``min(max_predictions, max(1, round(len(ids) * masked_lm_prob)))``
(``[CLS]``/``[SEP]`` included in the length), groups are visited in random
order, a group that would overshoot is skipped.  A group is a whole word (see
``tokens``); it is masked whole or not at all.  The 80/10/10 choice
(``[MASK]`` / random token / unchanged) is drawn once per word by default
(``decision="word"``), or per token (``"token"``, google's and
Chinese-BERT-wwm's behaviour).  Random tokens come from ``replacements``: ids
that can occur in real input (no special tokens, no ``##`` forms of CJK
characters).  Labels are the original ids, so a ``##`` id is never a label of
a Chinese character.
"""

from __future__ import annotations

import random

import numpy as np

from pipeline.shards.tokens import SPECIAL, START
from pipeline.vocab.wordpiece import is_cjk


def replacement_ids(entries: list[str], lowercase: bool = True) -> list[int]:
    """Ids a random replacement may take: entries the tokenizer can produce from real text.

    Left out: ``[...]`` specials and unused slots, ``<S>``/``<T>``-style entries holding punctuation
    (the tokenizer splits punctuation off, so they never come out whole), ``##`` continuations of
    CJK characters or punctuation (those characters are always their own pre-token), and, when the
    tokenizer lowercases, entries with capitals.
    """
    import unicodedata

    def punctuation(char: str) -> bool:
        code = ord(char)
        if 33 <= code <= 47 or 58 <= code <= 64 or 91 <= code <= 96 or 123 <= code <= 126:
            return True
        return unicodedata.category(char).startswith("P")

    def splits(text: str) -> bool:
        return any(is_cjk(c) or punctuation(c) or c.isspace() for c in text)

    ids = []
    for index, entry in enumerate(entries):
        if entry.startswith("[") and entry.endswith("]"):
            continue
        body = entry[2:] if entry.startswith("##") else entry
        if not body or (lowercase and body != body.lower()):   # lowercased input never holds it
            continue
        if len(body) > 1 and splits(body):      # several pre-tokens: never produced as one token
            continue
        if entry.startswith("##") and splits(body):
            continue
        ids.append(index)
    return ids


_END = bytes([SPECIAL])    # a sentinel after the last position closes the last group


def mask(ids: list[int], flags, rng: random.Random, masked_lm_prob: float, max_predictions: int,
         mask_id: int, replacements: list[int], decision: str = "word"):
    """Returns (masked ids, positions, labels, words masked)."""
    n = len(ids)
    marks = np.frombuffer(bytes(flags) + _END, dtype=np.uint8)
    bounds = np.flatnonzero(marks)                  # group starts and specials; each ends the group before
    starts = marks[bounds[:-1]] == START
    begins, ends = bounds[:-1][starts].tolist(), bounds[1:][starts].tolist()
    groups = list(zip(begins, ends))
    wanted = min(max_predictions, max(1, int(round(n * masked_lm_prob))))
    output = list(ids)
    positions: list[int] = []
    covered = words = 0
    count = len(groups)
    pool = len(replacements)
    random_ = rng.random
    per_word = decision == "word"
    for j in range(count):                          # lazy Fisher-Yates: only as far as needed
        if covered >= wanted:
            break
        k = j + int(random_() * (count - j))
        groups[j], groups[k] = groups[k], groups[j]
        begin, end = groups[j]
        if covered + end - begin > wanted:
            continue
        covered += end - begin
        words += 1
        positions.extend(range(begin, end))
        if per_word:
            r = random_()
            if r < 0.8:
                output[begin:end] = [mask_id] * (end - begin)
            elif r >= 0.9:
                for p in range(begin, end):
                    output[p] = replacements[int(random_() * pool)]
        else:
            for p in range(begin, end):
                r = random_()
                if r < 0.8:
                    output[p] = mask_id
                elif r >= 0.9:
                    output[p] = replacements[int(random_() * pool)]
    positions.sort()
    labels = [ids[p] for p in positions]
    return output, positions, labels, words
