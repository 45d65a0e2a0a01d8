"""Masking units beyond single whole words: n-grams of whole words (MacBERT) and spans (SpanBERT).

A scheme is a distribution over unit lengths in whole words: ``ngram`` 1..N words with configured
probabilities (default 0.4/0.3/0.2/0.1), ``span`` a geometric distribution (p = 0.2) clipped at 10 words and
renormalised, as SpanBERT (mean 3.8 words).  ``wwm`` has no units: each word is tried alone
(``batch``'s walk, google-research/bert's loop).

``choose_units`` picks the units of a batch of instances, all at once with NumPy, in rounds: at round k each
instance still short of its target draws the length of its k-th unit (``seeds.uniform`` of its mask seed at
index k, salt ``SALT_UNIT``) and takes, of the words in its random word order (the same order as ``wwm``), the
first one that starts such a unit: that many consecutive words, none masked yet, not crossing a segment
boundary or any ``[SEP]``, whose tokens still fit in what is left of the target.  An instance whose drawn
unit fits nowhere stops there (one whose first unit fits nowhere tries a single word, once).  Stopping (rather than trying shorter units) keeps the lengths of the units
taken close to the configured distribution; the cost is a masked share a little under the target (about half
a unit short at the end of an instance).

Everything here is a plain function of arrays (no engine, no TensorFlow): the runners' dynamic masking can
call it too.
"""

from __future__ import annotations

import numpy as np

SCHEMES = ("wwm", "ngram", "span")
SALT_UNIT = 5


def parse_probabilities(text) -> list[float]:
    """``"0.4,0.3,0.2,0.1"`` (or a list) -> [0.4, 0.3, 0.2, 0.1]: the probability of a unit of 1, 2, ...
    words; each >= 0, not all 0 (they are normalised to sum to 1)."""
    if isinstance(text, (list, tuple)):
        parts = list(text)
    else:
        parts = [part for part in str(text).replace(" ", "").split(",") if part]
    try:
        values = [float(part) for part in parts]
    except ValueError:
        raise ValueError(f"ngram probabilities {text!r}: expected numbers separated by commas") from None
    if not values or any(v < 0 or v != v for v in values) or sum(values) <= 0:
        raise ValueError(f"ngram probabilities {text!r}: expected one or more numbers >= 0, not all 0")
    return values


def span_probabilities(p: float, longest: int) -> list[float]:
    """SpanBERT's span lengths: P(l) proportional to p (1 - p)^(l - 1) for l = 1..longest."""
    if not 0 < p <= 1 or longest < 1:
        raise ValueError(f"span: p in (0, 1] and a longest span >= 1 needed (got p={p}, longest={longest})")
    return [p * (1 - p) ** (length - 1) for length in range(1, longest + 1)]


def unit_distribution(scheme: str, ngram_probs="0.4,0.3,0.2,0.1", span_p: float = 0.2,
                      span_max: int = 10) -> np.ndarray | None:
    """The distribution of unit lengths (index 0: one word) of a scheme, normalised; None for ``wwm``."""
    if scheme == "wwm":
        return None
    if scheme == "ngram":
        values = parse_probabilities(ngram_probs)
    elif scheme == "span":
        values = span_probabilities(span_p, span_max)
    else:
        raise ValueError(f"masking scheme {scheme!r}: expected one of {', '.join(SCHEMES)}")
    values = np.asarray(values, np.float64)
    return values / values.sum()


def of_options(options) -> np.ndarray | None:
    """``unit_distribution`` from shard options (``masking``, ``ngram_probs``, ``span_p``, ``span_max``)."""
    return unit_distribution(getattr(options, "masking", "wwm"), getattr(options, "ngram_probs", "0.4,0.3,0.2,0.1"),
                             getattr(options, "span_p", 0.2), getattr(options, "span_max", 10))


def mean_length(distribution: np.ndarray) -> float:
    return float(np.dot(np.arange(1, len(distribution) + 1), distribution))


def draw_lengths(u: np.ndarray, distribution: np.ndarray) -> np.ndarray:
    """Unit lengths (words, >= 1) from uniform draws by the inverse of the cumulative distribution."""
    cdf = np.cumsum(distribution)
    cdf[-1] = 1.0
    return np.minimum(np.searchsorted(cdf, u, side="right"), len(distribution) - 1) + 1


def stop_threshold(wanted: np.ndarray, tokens: np.ndarray, words: np.ndarray, distribution: np.ndarray) -> np.ndarray:
    """Where an instance stops drawing units: its target less the expected overshoot of the unit that crosses
    it (renewal theory: E[X^2] / 2 E[X], less half a token, with X the tokens of a unit: its words times the
    instance's mean tokens per word), at least 1."""
    lengths = np.arange(1, len(distribution) + 1)
    ratio = float(np.dot(lengths ** 2, distribution) / np.dot(lengths, distribution)) / 2
    per_word = tokens / np.maximum(words, 1)
    return np.maximum(1, np.round(wanted - (per_word * ratio - 0.5))).astype(np.int64)


def choose_units(group_len: np.ndarray, group_row: np.ndarray, adjacent: np.ndarray, priority: np.ndarray,
                 seeds: np.ndarray, wanted: np.ndarray, distribution: np.ndarray, uniform,
                 cap: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The masking units of a batch of instances: (first word, words) of each unit, as two int64 arrays.

    ``group_len``: the tokens of each whole word of the batch, words in cell order (by instance, then
    position); ``group_row`` each word's instance; ``adjacent[g]``: word g + 1 follows word g directly (same
    instance, nothing between them: no [SEP], no segment boundary); ``priority`` each word's place in its
    instance's random order (a float in [0, 1)); ``seeds`` each instance's mask seed, ``wanted`` where it stops
    (tokens: no unit is drawn once it has that many), ``cap`` the most it may mask (default ``wanted``: no unit
    goes over it); ``uniform(seeds, index, salt)``: ``seeds.uniform``.  Units are in round order."""
    words = len(group_len)
    n = len(wanted)
    if not words or not n:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    group_len = group_len.astype(np.int64, copy=False)
    # the last word of each word's run of adjacent words
    breaks = np.flatnonzero(~adjacent)                      # a run ends at each of these words
    run_end = breaks[np.searchsorted(breaks, np.arange(words))]
    tokens_before = np.zeros(words + 1, np.int64)
    np.cumsum(group_len, out=tokens_before[1:])
    # candidate starts: every word, by instance, then its priority
    candidates = np.argsort((group_row + priority).view(np.uint64), kind="stable")
    covered = np.zeros(words + 1, dtype=bool)               # (one past the end: never read as free)
    need = np.asarray(wanted, np.int64).copy()          # tokens short of the stop
    room = need.copy() if cap is None else np.asarray(cap, np.int64).copy()   # tokens left under the cap
    active = need > 0
    longest = len(distribution)
    start_room = room.copy()
    retry = np.zeros(n, dtype=bool)
    firsts, sizes = [], []
    k = 0
    # each row's candidates, in priority order, are order[row_first[row]:row_first[row] + row_count[row]]
    order = candidates
    row_count = np.bincount(group_row, minlength=n)
    row_first = np.zeros(n, np.int64)
    np.cumsum(row_count[:-1], out=row_first[1:])
    while True:
        rows = np.flatnonzero(active)
        if not len(rows):
            break
        size_of = np.zeros(n, np.int64)
        size_of[rows] = draw_lengths(uniform(seeds[rows], np.full(len(rows), k, np.int64), SALT_UNIT), distribution)
        size_of[retry] = 1
        # the first fitting start of each row, in its priority order: the front of every row's candidates first
        # (each round covers about one front start, so the front grows with the round), then the rest of the
        # rows that found none there; the same first start either way
        width = _FIRST_LOOK + 2 * k
        hits, hit_rows = _first_fits(order, row_first[rows], np.minimum(row_count[rows], width), rows, size_of, room,
                                     run_end, tokens_before, covered, words, longest)
        found = np.zeros(n, dtype=bool)
        found[hit_rows] = True
        rest = rows[~found[rows] & (row_count[rows] > width)]
        if len(rest):
            more, more_rows = _first_fits(order, row_first[rest] + width, row_count[rest] - width, rest, size_of,
                                          room, run_end, tokens_before, covered, words, longest)
            hits, hit_rows = np.concatenate([hits, more]), np.concatenate([hit_rows, more_rows])
            by_row = np.argsort(hit_rows, kind="stable")
            hits, hit_rows = hits[by_row], hit_rows[by_row]
        missed = active.copy()
        missed[hit_rows] = False
        active[rows] = False
        # an instance whose first unit fits nowhere (a long span in a short instance) tries one word instead,
        # once: no instance is left with nothing masked when a word of it fits
        retry = missed & (room == start_room) & ~retry
        active |= retry
        if not len(hit_rows) and not retry.any():
            break
        if not len(hit_rows):
            k += 1
            continue
        start = hits
        size = size_of[hit_rows]
        firsts.append(start)
        sizes.append(size)
        cells = np.repeat(start, size) + np.arange(int(size.sum())) - np.repeat(np.cumsum(size) - size, size)
        covered[cells] = True
        taken = tokens_before[start + size] - tokens_before[start]
        need[hit_rows] -= taken
        room[hit_rows] -= taken
        active[hit_rows] = need[hit_rows] > 0
        k += 1
    if not firsts:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate(firsts).astype(np.int64), np.concatenate(sizes).astype(np.int64)


_FIRST_LOOK = 8     # candidates of each row tried first in a round


def _first_fits(order, begin, count, rows, size_of, room, run_end, tokens_before, covered, words: int,
                longest: int) -> tuple[np.ndarray, np.ndarray]:
    """For each of ``rows``, the first of its candidates ``order[begin:begin + count]`` where its unit fits:
    (the start words, their rows), rows in the order given, those with no fit left out."""
    total = int(count.sum())
    owner = np.repeat(np.arange(len(rows)), count)
    at = np.repeat(begin - (np.cumsum(count) - count), count) + np.arange(total)
    starts = order[at]
    row = rows[owner]
    ok = ~covered[starts] & _fits(starts, size_of[row], room[row], run_end, tokens_before, covered, words, longest)
    good = np.flatnonzero(ok)
    first = np.ones(len(good), dtype=bool)
    first[1:] = owner[good][1:] != owner[good][:-1]
    good = good[first]
    return starts[good], row[good]


def _fits(starts, m, room, run_end, tokens_before, covered, words: int, longest: int) -> np.ndarray:
    """Whether a unit of ``m`` words from each of ``starts`` stays in its run, is free and fits in ``room``."""
    ok = starts + m - 1 <= run_end[starts]
    ok &= tokens_before[np.minimum(starts + m, words)] - tokens_before[starts] <= room
    for j in range(1, min(longest, int(m.max()) if len(m) else 0)):
        ok &= (j >= m) | ~covered[np.minimum(starts + j, words)]
    return ok


def unit_histogram(sizes: np.ndarray, longest: int) -> np.ndarray:
    """How many units have 1, 2, ..., ``longest`` words."""
    return np.bincount(np.asarray(sizes, np.int64) - 1, minlength=longest)[:longest]
