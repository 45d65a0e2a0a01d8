"""Masking and Example encoding of all the instances of a pool at once, with NumPy.

The instances (ranges of the pool's token array, see ``instances``) are laid
into ``n × max_seq_length`` matrices; whole-word masking and the bytes of the
``tf.train.Example`` features are computed over the whole batch; Python only
joins each record's pieces and frames it.

Masking is google-research/bert's ``create_masked_lm_predictions`` on whole
words: ``min(max_predictions, max(1, round(len × masked_lm_prob)))`` positions
(``[CLS]``/``[SEP]`` counted in the length), words visited in random order, a
word that would overshoot skipped; 80% ``[MASK]`` / 10% random id / 10% kept,
decided per word (``decision="word"``) or per token.  Every random draw comes
from the instance's own seed through a counter-based hash (``seeds.uniform``),
so an instance's mask depends on nothing but its seed.
"""

from __future__ import annotations

import struct

import google_crc32c
import numpy as np

from pipeline.shards import tfrecord
from pipeline.shards.instances import InstanceTable, PoolTokens
from pipeline.shards.seeds import uniform
from pipeline.shards.tfrecord import _MASK_DELTA
from pipeline.shards.tokens import CONT, SPECIAL, START

_SALT_ORDER, _SALT_DECISION, _SALT_TOKEN, _SALT_REPLACE = 1, 2, 3, 4


def _exclusive_cumsum(values: np.ndarray) -> np.ndarray:
    out = np.zeros(len(values), dtype=np.int64)
    np.cumsum(values[:-1], out=out[1:])
    return out


def _varints(matrix: np.ndarray) -> tuple[bytes, np.ndarray]:
    """Packed varints of each row of a non-negative matrix (values < 2**21): the bytes of all rows and each
    row's offsets into them (``n + 1`` of them)."""
    values = matrix.astype(np.int64)
    if values.size and int(values.max()) >= 1 << 21:
        raise ValueError("ids of 2**21 and more are not supported")
    two, three = values >= 0x80, values >= 0x4000
    out = np.empty(values.shape + (3,), dtype=np.uint8)
    out[..., 0] = (values & 0x7F) | (two << 7)
    out[..., 1] = ((values >> 7) & 0x7F) | (three << 7)
    out[..., 2] = values >> 14
    valid = np.stack([np.ones_like(two), two, three], axis=-1)
    lengths = valid.reshape(len(values), -1).sum(axis=1)
    offsets = np.zeros(len(values) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    return out[valid].tobytes(), offsets


class BatchEncoder:
    """Masks and serializes batches of instances; built once per worker."""

    def __init__(self, options, vocab_size: int, cls: int, sep: int, mask: int, replacements: list[int]) -> None:
        self.options = options
        self.length = options.max_seq_length
        self.predictions = options.max_predictions_per_seq
        self.cls, self.sep, self.mask = cls, sep, mask
        self.replacements = np.asarray(replacements, dtype=np.int64)
        L, P = self.length, self.predictions
        int64_prefix = tfrecord.feature_prefix
        # the bytes before each feature's payload, by payload size (varints take 1 to 3 bytes a value)
        self._id_prefixes = [int64_prefix(b"input_ids", "int64", size) for size in range(3 * L + 1)]
        self._position_prefixes = [int64_prefix(b"masked_lm_positions", "int64", size) for size in range(3 * P + 1)]
        self._label_prefixes = [int64_prefix(b"masked_lm_ids", "int64", size) for size in range(3 * P + 1)]
        self._word_prefixes = [int64_prefix(b"word_ids", "int64", size) for size in range(3 * L + 1)]
        self.segment_prefix = int64_prefix(b"segment_ids", "int64", L)
        # input_mask depends only on the length: its feature bytes, by length
        mask_prefix = int64_prefix(b"input_mask", "int64", L)
        self._masks = [mask_prefix + b"\x01" * n + b"\x00" * (L - n) for n in range(L + 1)]
        # what follows the varint features depends only on (predictions, next sentence label): by 2 × count + label
        weights_prefix = tfrecord.feature_prefix(b"masked_lm_weights", "float", 4 * P)
        label_prefix = int64_prefix(b"next_sentence_labels", "int64", 1)
        one, zero = struct.pack("<f", 1.0), struct.pack("<f", 0.0)
        self._tails = [(b"" if options.unmasked else weights_prefix + one * count + zero * (P - count))
                       + label_prefix + (b"\x01" if label else b"\x00")
                       for count in range(P + 1) for label in (0, 1)]
        self._heads: dict[int, tuple[bytes, int]] = {}      # body size -> (record start, CRC32C of its Example head)
        if vocab_size >= 1 << 21:
            raise ValueError("vocabularies of 2**21 entries and more are not supported")

    def layout(self, pool: PoolTokens, instances: InstanceTable):
        """ids, group flags and segment ids matrices (n × L), and each instance's length."""
        n, L = len(instances), self.length
        ranges, per_instance = instances.ranges, instances.range_counts
        owner = np.repeat(np.arange(n), per_instance)
        size = ranges[:, 1] - ranges[:, 0]
        step = size + 1                                       # each range and its [SEP]
        before = np.cumsum(step) - step                      # exclusive running total over all ranges
        first = np.minimum(_exclusive_cumsum(per_instance), max(len(ranges) - 1, 0))
        base = before[first] if len(ranges) else np.zeros(n, np.int64)
        offset = 1 + before - np.repeat(base, per_instance)   # where each range starts, after [CLS]
        lengths = 1 + np.bincount(owner, weights=step, minlength=n).astype(np.int64)
        if n and int(lengths.max()) > L:
            raise AssertionError("an instance is longer than max_seq_length")
        within = np.arange(int(size.sum())) - np.repeat(_exclusive_cumsum(size), size)
        row = np.repeat(owner, size)
        col = np.repeat(offset, size) + within
        source = np.repeat(ranges[:, 0], size) + within
        matrix_ids = np.zeros((n, L), np.int64)
        matrix_flags = np.full((n, L), SPECIAL, np.uint8)
        matrix_segments = np.zeros((n, L), np.uint8)
        matrix_ids[:, 0] = self.cls
        matrix_ids[row, col] = pool.ids[source]
        flags = pool.flags[source]
        flags[(within == 0) & (flags == CONT)] = START       # what is left of a cut word is a group
        matrix_flags[row, col] = flags
        matrix_segments[row, col] = np.repeat(ranges[:, 2], size)
        matrix_ids[owner, offset + size] = self.sep
        matrix_segments[owner, offset + size] = ranges[:, 2]
        return matrix_ids, matrix_flags, matrix_segments, lengths

    def mask_batch(self, ids: np.ndarray, flags: np.ndarray, lengths: np.ndarray, seeds: np.ndarray):
        """Masked ids, positions and labels (n × P), predictions and words masked per instance (the weights are
        1.0 for each prediction, 0.0 after)."""
        n, L = ids.shape
        options = self.options
        flat = flags.ravel()
        bounds = np.flatnonzero(flat != CONT)           # group starts and specials (padding is special too)
        is_start = flat[bounds] == START
        group_at = bounds[is_start]
        group_len = bounds[np.flatnonzero(is_start) + 1] - group_at
        group_row = group_at // L
        per_row = np.bincount(group_row, minlength=n)
        first = _exclusive_cumsum(per_row)
        group_index = np.arange(len(group_at)) - np.repeat(first, per_row)
        priority = uniform(seeds[group_row], group_index, _SALT_ORDER)   # each instance's words in random order
        wanted = np.minimum(options.max_predictions_per_seq,
                            np.maximum(1, np.round(lengths * options.masked_lm_prob))).astype(np.int64)
        # Only the words first in that order can be reached: sort just the ones whose priority is under a
        # threshold that leaves about twice as many words as could be needed (each word is >= 1 token).
        threshold = np.minimum(1.0, 2.0 * (wanted + 2) / np.maximum(per_row, 1))
        candidate = priority < threshold[group_row]
        picks = np.flatnonzero(candidate)
        order = picks[np.argsort(group_row[picks] + priority[picks], kind="stable")]
        sorted_len = group_len[order]
        sorted_row = group_row[order]
        per_row_c = np.bincount(sorted_row, minlength=n)
        first_c = _exclusive_cumsum(per_row_c)
        # google's walk: accept each word in turn unless it would overshoot.  Up to the first overshoot that is a
        # prefix (vectorised); the instances still short after it finish the walk in Python.
        totals = np.cumsum(sorted_len)
        base = np.where(first_c > 0, totals[np.maximum(first_c - 1, 0)], 0) if len(totals) else np.zeros(n, np.int64)
        running = totals - np.repeat(base, per_row_c)
        chosen = running <= wanted[sorted_row]
        covered = np.bincount(sorted_row, weights=sorted_len * chosen, minlength=n).astype(np.int64)
        # after the first overshoot the walk goes on: in rounds, each short instance takes its next word that fits
        n_prefix = np.bincount(sorted_row, weights=chosen, minlength=n).astype(np.int64)
        cursor = first_c + n_prefix                      # the word that overshot; the walk resumes after it
        need = wanted - covered
        active = (need > 0) & (cursor < first_c + per_row_c)
        position = np.arange(len(order))
        while active.any():
            eligible = np.flatnonzero(active[sorted_row] & (position > cursor[sorted_row])
                                      & (sorted_len <= need[sorted_row]))
            rows, at = np.unique(sorted_row[eligible], return_index=True)
            stuck = active.copy()
            stuck[rows] = False
            active[stuck] = False                        # no candidate word fits any more
            if not len(rows):
                break
            taken = eligible[at]
            chosen[taken] = True
            need[rows] -= sorted_len[taken]
            cursor[rows] = taken
            active[rows] = need[rows] > 0
        picked = [order[chosen]]
        # rare: the candidates ran out; the walk goes on over the instance's other words, in priority order
        for row in np.flatnonzero((need > 0) & (per_row > per_row_c)).tolist():
            left = int(need[row])
            lo, hi = int(first[row]), int(first[row] + per_row[row])
            rest = np.arange(lo, hi)[~candidate[lo:hi]]
            extra = []
            for g in rest[np.argsort(priority[rest], kind="stable")].tolist():
                size = int(group_len[g])
                if size <= left:
                    extra.append(g)
                    left -= size
                    if not left:
                        break
            picked.append(np.asarray(extra, dtype=np.int64))
        picked = np.concatenate(picked)
        words = np.bincount(group_row[picked], minlength=n)
        p_len = group_len[picked]
        p_row = np.repeat(group_row[picked], p_len)
        p_col = (np.repeat(group_at[picked] % L, p_len)
                 + np.arange(int(p_len.sum())) - np.repeat(_exclusive_cumsum(p_len), p_len))
        seed_at = seeds[p_row]
        if options.mask_decision == "word":
            decision = np.repeat(uniform(seeds[group_row[picked]], group_index[picked], _SALT_DECISION), p_len)
        else:
            decision = uniform(seed_at, p_col, _SALT_TOKEN)
        masked = ids.copy()
        to_mask = decision < 0.8
        masked[p_row[to_mask], p_col[to_mask]] = self.mask
        to_replace = decision >= 0.9
        if to_replace.any():
            draw = uniform(seed_at[to_replace], p_col[to_replace], _SALT_REPLACE)
            masked[p_row[to_replace], p_col[to_replace]] = self.replacements[
                (draw * len(self.replacements)).astype(np.int64)]
        by_position = np.argsort(p_row * L + p_col)      # (row, column) pairs are distinct
        p_row, p_col = p_row[by_position], p_col[by_position]
        counts = np.bincount(p_row, minlength=n)
        slot = np.arange(len(p_row)) - np.repeat(_exclusive_cumsum(counts), counts)
        P = self.predictions
        positions = np.zeros((n, P), np.int64)
        labels = np.zeros((n, P), np.int64)
        positions[p_row, slot] = p_col
        labels[p_row, slot] = ids[p_row, p_col]
        return masked, positions, labels, counts, words

    def encode(self, pool: PoolTokens, instances: InstanceTable, seeds) -> tuple[bytearray, np.ndarray, np.ndarray]:
        """Framed TFRecords of the instances laid end to end, their offsets (n + 1), and per instance
        (tokens, masked, words masked) as an n × 3 array."""
        n = len(instances)
        if not n:
            return bytearray(), np.zeros(1, np.int64), np.zeros((0, 3), np.int64)
        L = self.length
        ids, flags, segments, lengths = self.layout(pool, instances)
        unmasked = self.options.unmasked
        if unmasked:
            words_per_position = np.cumsum(flags == START, axis=1) * (flags != SPECIAL)
            shown, counts, words = ids, np.zeros(n, np.int64), np.zeros(n, np.int64)
            extra = [(self._word_prefixes, *_varints(words_per_position))]
        else:
            shown, positions, labels, counts, words = self.mask_batch(
                ids, flags, lengths, np.asarray(seeds, dtype=np.uint64))
            extra = [(self._position_prefixes, *_varints(positions)), (self._label_prefixes, *_varints(labels))]
        id_bytes, id_offsets = _varints(shown)
        segment_bytes = segments.tobytes()
        id_prefixes, masks, tails, heads = self._id_prefixes, self._masks, self._tails, self._heads
        extend, join = google_crc32c.extend, b"".join
        out = bytearray()
        ends = [0]
        id_at = id_offsets.tolist()
        extra_at = [(prefixes, blob, offsets.tolist()) for prefixes, blob, offsets in extra]
        length_list = lengths.tolist()
        tail_index = (2 * counts + instances.is_random_next).tolist()
        for i in range(n):
            a, b = id_at[i], id_at[i + 1]
            parts = [id_prefixes[b - a], id_bytes[a:b], masks[length_list[i]],
                     self.segment_prefix, segment_bytes[i * L:(i + 1) * L]]
            for prefixes, blob, at in extra_at:
                a, b = at[i], at[i + 1]
                parts += (prefixes[b - a], blob[a:b])
            parts.append(tails[tail_index[i]])
            body = join(parts)
            head = heads.get(len(body))
            if head is None:
                head = heads[len(body)] = tfrecord.frame_head(len(body))
            crc = extend(head[1], body)
            out += head[0]
            out += body
            out += ((((crc >> 15) | (crc << 17)) + _MASK_DELTA) & 0xFFFFFFFF).to_bytes(4, "little")
            ends.append(len(out))
        figures = np.stack([lengths - 1 - instances.range_counts,
                            counts.astype(np.int64), words.astype(np.int64)], axis=1)
        return out, np.asarray(ends, dtype=np.int64), figures
