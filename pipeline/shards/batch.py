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
so an instance's mask depends on nothing but its seed.  The random ids are drawn
from ``replacement_ids`` of the vocab (the runner's dynamic masking uses it too).
"""

from __future__ import annotations

import struct
import unicodedata

import google_crc32c
import numpy as np

from pipeline.shards import tfrecord
from pipeline.shards.instances import InstanceTable, PoolTokens
from pipeline.shards.seeds import _splitmix, splitmix_in_place, uniform
from pipeline.shards.tfrecord import _MASK_DELTA
from pipeline.shards import units
from pipeline.shards.tokens import CONT, SPECIAL, START
from pipeline.vocab.wordpiece import is_cjk
from pipeline.shards.units import choose_units

_SALT_ORDER, _SALT_DECISION, _SALT_TOKEN, _SALT_REPLACE = 1, 2, 3, 4


class _Uniform:
    """``seeds.uniform`` for indexes under ``size``: the hash of (index, salt) looked up, not computed."""

    def __init__(self, size: int, salts) -> None:
        self.size = size
        self.tables = {salt: _splitmix(np.arange(size, dtype=np.uint64) * np.uint64(4) + np.uint64(salt))
                       for salt in salts}

    def __call__(self, seeds: np.ndarray, index: np.ndarray, salt: int) -> np.ndarray:
        if len(index) and int(index.max()) >= self.size:
            return uniform(seeds, index, salt)
        mixed = splitmix_in_place(np.bitwise_xor(seeds.astype(np.uint64, copy=False), np.take(self.tables[salt], index)))
        mixed >>= np.uint64(11)
        return mixed.astype(np.float64) * (1.0 / (1 << 53))


def _exclusive_cumsum(values: np.ndarray) -> np.ndarray:
    out = np.zeros(len(values), dtype=np.int64)
    np.cumsum(values[:-1], out=out[1:])
    return out


def _padded(rows: list[bytes]) -> tuple[np.ndarray, np.ndarray]:
    """Byte strings as the rows of a zero-padded uint8 matrix, and which of its bytes are theirs."""
    width = max((len(row) for row in rows), default=0)
    data = np.zeros((len(rows), width), np.uint8)
    valid = np.zeros((len(rows), width), dtype=bool)
    for k, row in enumerate(rows):
        data[k, :len(row)] = np.frombuffer(row, np.uint8)
        valid[k, :len(row)] = True
    return data, valid


def _prefix_table(rows: list[bytes]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``_padded`` rows and their sizes."""
    return (*_padded(rows), np.asarray([len(row) for row in rows], np.int64))


def _varint_table(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Protobuf varints of 0..size-1 (< 2**21, so 1 to 3 bytes), each in 4 bytes read as one uint32, and which
    of those bytes are the varint's, the same way: a matrix of values gathers into n × 4·width bytes at once."""
    values = np.arange(size, dtype=np.int64)
    two, three = values >= 0x80, values >= 0x4000
    data = np.zeros((size, 4), np.uint8)
    data[:, 0] = (values & 0x7F) | (two << 7)
    data[:, 1] = ((values >> 7) & 0x7F) | (three << 7)
    data[:, 2] = values >> 14
    valid = np.zeros((size, 4), dtype=bool)
    valid[:, 0], valid[:, 1], valid[:, 2] = True, two, three
    return data.view(np.uint32).ravel(), valid.view(np.uint32).ravel()


class BatchEncoder:
    """Masks and serializes batches of instances; built once per worker."""

    def __init__(self, options, vocab_size: int, cls: int, sep: int, mask: int, replacements: list[int]) -> None:
        self.options = options
        self.length = options.max_seq_length
        self.predictions = options.max_predictions_per_seq
        self.cls, self.sep, self.mask = cls, sep, mask
        self.replacements = np.asarray(replacements, dtype=np.int64)
        self.masker = Masker(options, mask, replacements)
        L, P = self.length, self.predictions
        int64_prefix = tfrecord.feature_prefix
        # the bytes before each feature's payload, by payload size (varints take 1 to 3 bytes a value)
        self._id_prefixes = [int64_prefix(b"input_ids", "int64", size) for size in range(3 * L + 1)]
        self._position_prefixes = [int64_prefix(b"masked_lm_positions", "int64", size) for size in range(3 * P + 1)]
        self._label_prefixes = [int64_prefix(b"masked_lm_ids", "int64", size) for size in range(3 * P + 1)]
        self._word_prefixes = [int64_prefix(b"word_ids", "int64", size) for size in range(3 * L + 1)]
        self.segment_prefix = int64_prefix(b"segment_ids", "int64", L)
        # input_mask: its prefix, then one byte per position (1 up to the length, then 0)
        mask_prefix = int64_prefix(b"input_mask", "int64", L)
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
        # the same pieces as padded byte matrices, gathered by size, count or length for a whole batch
        self._varint_data, self._varint_valid = _varint_table(max(vocab_size, L + 1))
        self._id_table = _prefix_table(self._id_prefixes)
        self._extra_tables = ([_prefix_table(self._word_prefixes)] if options.unmasked
                              else [_prefix_table(self._position_prefixes), _prefix_table(self._label_prefixes)])
        self._tail_table = _padded(self._tails)
        self._tail_sizes = np.asarray([len(tail) for tail in self._tails], np.int64)
        self._mask_prefix = np.frombuffer(mask_prefix, np.uint8)
        self._segment_prefix = np.frombuffer(self.segment_prefix, np.uint8)

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
        # every token of every range: where it comes from in the pool array and where it goes in the n × L cells
        size_before = _exclusive_cumsum(size)
        source = np.arange(int(size.sum())) - np.repeat(size_before - ranges[:, 0], size)
        start_cell = owner * L + offset
        cell = source + np.repeat(start_cell - ranges[:, 0], size)
        matrix_ids = np.zeros((n, L), np.int32)
        matrix_flags = np.full((n, L), SPECIAL, np.uint8)
        matrix_ids[:, 0] = self.cls
        ids_flat, flags_flat = matrix_ids.reshape(-1), matrix_flags.reshape(-1)
        ids_flat[cell] = pool.ids[source]
        flags = pool.flags[source]
        first = size_before[size > 0]
        flags[first[flags[first] == CONT]] = START             # what is left of a cut word is a group
        flags_flat[cell] = flags
        ids_flat[start_cell + size] = self.sep
        return matrix_ids, matrix_flags, self._segments(ranges, owner, offset, size, n), lengths

    def _segments(self, ranges, owner, offset, size, n) -> np.ndarray:
        """Segment ids (n × L uint8): 1 over each segment-1 range and its [SEP]."""
        L = self.length
        second = np.flatnonzero(ranges[:, 2] == 1)
        who, lo = owner[second], offset[second]
        hi = lo + size[second]                                # the range's [SEP]
        joined = who[1:] == who[:-1]
        if not (lo[1:][joined] == hi[:-1][joined] + 1).all():
            # an instance whose segment-1 ranges are not one run of cells: a running sum of +1/-1 marks
            marks = np.zeros((n, L + 1), np.int8)
            np.add.at(marks, (who, lo), 1)
            np.add.at(marks, (who, hi + 1), -1)
            return np.cumsum(marks[:, :L], axis=1, dtype=np.int8).astype(np.uint8)
        # each instance's segment-1 cells are one run, from its first such range to its last one's [SEP]
        first, last = np.ones(len(who), dtype=bool), np.ones(len(who), dtype=bool)
        first[1:], last[:-1] = ~joined, ~joined
        begin, end = np.full(n, L, np.int64), np.full(n, -1, np.int64)
        begin[who[first]], end[who[last]] = lo[first], hi[last]
        column = np.arange(L)
        return ((column >= begin[:, None]) & (column <= end[:, None])).view(np.uint8)

    def mask_batch(self, ids: np.ndarray, flags: np.ndarray, lengths: np.ndarray, seeds: np.ndarray):
        """``Masker.mask_batch`` with this encoder's settings."""
        return self.masker.mask_batch(ids, flags, lengths, seeds)

    def _varints(self, prefixes: tuple[np.ndarray, np.ndarray, np.ndarray], matrix: np.ndarray, data: list,
                 valid: list) -> np.ndarray:
        """Append the feature prefix (by payload size) and the packed varints of each row of ``matrix``; returns
        the bytes of both per row."""
        n = len(matrix)
        payload = np.take(self._varint_data, matrix).view(np.uint8).reshape(n, -1)
        present = np.take(self._varint_valid, matrix).view(bool).reshape(n, -1)
        size = np.count_nonzero(present, axis=1)
        data += (np.take(prefixes[0], size, axis=0), payload)
        valid += (np.take(prefixes[1], size, axis=0), present)
        return size + np.take(prefixes[2], size)

    def encode(self, pool: PoolTokens, instances: InstanceTable, seeds) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Framed TFRecords of the instances laid end to end (uint8), their offsets (n + 1), and per instance
        (tokens, masked, words masked) as an n × 3 array.

        Every piece of every record (TFRecord head, feature prefixes, varints, fixed features, tail, CRC) is
        a block of columns of one byte matrix with a mask of the bytes that are there; the records are the
        masked bytes in order.  Only the CRC32C of each record is computed one record at a time."""
        n = len(instances)
        if not n:
            return np.zeros(0, np.uint8), np.zeros(1, np.int64), np.zeros((0, 3), np.int64)
        L = self.length
        ids, flags, segments, lengths = self.layout(pool, instances)
        if self.options.unmasked:
            words_per_position = np.cumsum(flags == START, axis=1) * (flags != SPECIAL)
            shown, counts, words = ids, np.zeros(n, np.int64), np.zeros(n, np.int64)
            extra = [words_per_position]
        else:
            shown, positions, labels, counts, words = self.mask_batch(
                ids, flags, lengths, np.asarray(seeds, dtype=np.uint64))
            extra = [positions, labels]
        data: list[np.ndarray] = [None]          # the TFRecord head goes first, once the body sizes are known
        valid: list[np.ndarray] = [None]
        body = self._varints(self._id_table, shown, data, valid)
        mask = np.empty((n, len(self._mask_prefix) + L), np.uint8)
        mask[:, :len(self._mask_prefix)] = self._mask_prefix
        mask[:, len(self._mask_prefix):] = np.arange(L) < lengths[:, None]
        segment = np.empty((n, len(self._segment_prefix) + L), np.uint8)
        segment[:, :len(self._segment_prefix)] = self._segment_prefix
        segment[:, len(self._segment_prefix):] = segments
        data += (mask, segment)
        valid.append(np.broadcast_to(np.True_, (n, mask.shape[1] + segment.shape[1])))
        body += mask.shape[1] + segment.shape[1]
        for table, matrix in zip(self._extra_tables, extra):
            body += self._varints(table, matrix, data, valid)
        tail = 2 * counts + instances.is_random_next
        data.append(np.take(self._tail_table[0], tail, axis=0))
        valid.append(np.take(self._tail_table[1], tail, axis=0))
        body += np.take(self._tail_sizes, tail)
        sizes, which = np.unique(body, return_inverse=True)
        heads = [self._head(int(size)) for size in sizes.tolist()]
        head_data, head_valid = _padded([head for head, _ in heads])
        data[0], valid[0] = head_data[which], head_valid[which]
        data.append(np.zeros((n, 4), np.uint8))                  # the record's CRC, filled in below
        valid.append(np.broadcast_to(np.True_, (n, 4)))
        # (np.compress over the flat matrices: a 2-D boolean index is several times slower on such masks)
        out = np.compress(np.concatenate(valid, axis=1).ravel(), np.concatenate(data, axis=1).ravel())
        head_size = np.asarray([len(head) for head, _ in heads], np.int64)[which]
        ends = np.zeros(n + 1, np.int64)
        np.cumsum(head_size + body + 4, out=ends[1:])
        blob, extend = out.tobytes(), google_crc32c.extend      # (extend takes bytes, not a memoryview)
        head_crc = np.asarray([crc for _, crc in heads], np.uint64)[which].tolist()
        starts = (ends[:-1] + head_size).tolist()
        crc = np.fromiter(map(extend, head_crc, [blob[a:b] for a, b in zip(starts, (ends[1:] - 4).tolist())]),
                          np.uint64, n)
        masked = (((crc >> np.uint64(15)) | (crc << np.uint64(17))) + np.uint64(_MASK_DELTA)) & np.uint64(0xFFFFFFFF)
        out[(ends[1:] - 4)[:, None] + np.arange(4)] = masked.astype("<u4").view(np.uint8).reshape(n, 4)
        figures = np.stack([lengths - 1 - instances.range_counts, counts.astype(np.int64), words.astype(np.int64)],
                           axis=1)
        return out, ends, figures

    def _head(self, size: int) -> tuple[bytes, int]:
        head = self._heads.get(size)
        if head is None:
            head = self._heads[size] = tfrecord.frame_head(size)
        return head


def replacement_ids(entries: list[str], lowercase: bool = True) -> list[int]:
    """Ids a random replacement may take: entries the tokenizer can produce from real text.

    Left out: ``[...]`` specials and unused slots, ``<S>``/``<T>``-style entries holding punctuation
    (the tokenizer splits punctuation off, so they never come out whole), ``##`` continuations of
    CJK characters or punctuation (those characters are always their own pre-token), and, when the
    tokenizer lowercases, entries with capitals.  Labels are the original ids, so a ``##`` id is never the
    label of a Chinese character.
    """

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


class Masker:
    """Masking of instances laid out as n × L matrices (ids and group flags, see ``BatchEncoder.layout``): a
    plain function of arrays and the settings (``masking``, ``masked_lm_prob``, ``max_predictions_per_seq``,
    ``mask_decision`` and the unit lengths of ``units``), so other runners can mask on the fly with it."""

    def __init__(self, options, mask: int, replacements, length: int | None = None) -> None:
        self.options = options
        self.mask = mask
        self.replacements = np.asarray(replacements, dtype=np.int64)
        self.units = units.of_options(options)
        size = (length or options.max_seq_length) + 1
        self._uniform = _Uniform(size, (_SALT_ORDER, _SALT_DECISION, _SALT_TOKEN, _SALT_REPLACE, units.SALT_UNIT))
        self.last_unit_sizes = np.zeros(0, np.int64)   # words of each unit of the last batch (n-gram / span)

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
        priority = self._uniform(seeds[group_row], group_index, _SALT_ORDER)   # each instance's words in random order
        wanted = np.minimum(options.max_predictions_per_seq,
                            np.maximum(1, np.round(lengths * options.masked_lm_prob))).astype(np.int64)
        if self.units is None:
            picked = self._walk(n, group_len, group_row, per_row, first, priority, wanted)
            decision_index = group_index[picked]
        else:
            # n-gram / span units: consecutive words of one run (no [SEP], no padding between them)
            ends = group_at + group_len
            adjacent = np.zeros(len(group_at), dtype=bool)
            adjacent[:-1] = (group_row[1:] == group_row[:-1]) & (group_at[1:] == ends[:-1])
            # stop short of the target by the expected overshoot of the unit that crosses it, which is taken
            # when it fits under max_predictions: the masked share is about masked_lm_prob and the lengths of
            # the units taken follow the distribution (all units up to the crossing one are i.i.d. draws)
            words_of = np.bincount(group_row, minlength=n)
            tokens_of = np.bincount(group_row, weights=group_len, minlength=n)
            stop = np.minimum(wanted, units.stop_threshold(wanted, tokens_of, words_of, self.units))
            cap = np.full(n, options.max_predictions_per_seq, np.int64)
            unit_first, unit_size = choose_units(group_len, group_row, adjacent, priority, seeds, stop,
                                                 self.units, self._uniform, cap)
            self.last_unit_sizes = unit_size
            unit_of = np.full(len(group_at), -1, np.int64)
            members = (np.repeat(unit_first, unit_size) + np.arange(int(unit_size.sum()))
                       - np.repeat(np.cumsum(unit_size) - unit_size, unit_size))
            unit_of[members] = np.repeat(unit_first, unit_size)
            picked = np.flatnonzero(unit_of >= 0)
            decision_index = group_index[unit_of[picked]]     # 80/10/10 drawn once per unit
        words = np.bincount(group_row[picked], minlength=n)
        p_len = group_len[picked]
        p_flat = (np.repeat(group_at[picked], p_len)              # the picked tokens, as cells of the n × L matrix
                  + np.arange(int(p_len.sum())) - np.repeat(_exclusive_cumsum(p_len), p_len))
        p_row, p_col = p_flat // L, p_flat % L
        seed_at = seeds[p_row]
        if options.mask_decision == "word":
            decision = np.repeat(self._uniform(seeds[group_row[picked]], decision_index, _SALT_DECISION), p_len)
        else:
            decision = self._uniform(seed_at, p_col, _SALT_TOKEN)
        masked = ids.copy()
        flat_masked = masked.reshape(-1)
        flat_masked[p_flat[decision < 0.8]] = self.mask
        to_replace = decision >= 0.9
        if to_replace.any():
            draw = self._uniform(seed_at[to_replace], p_col[to_replace], _SALT_REPLACE)
            flat_masked[p_flat[to_replace]] = self.replacements[(draw * len(self.replacements)).astype(np.int64)]
        counts = np.bincount(p_row, minlength=n)
        slot = np.arange(len(p_row)) - np.repeat(_exclusive_cumsum(counts), counts)
        P = options.max_predictions_per_seq
        positions = np.zeros((n, P), np.int64)
        labels = np.zeros((n, P), np.int64)
        positions[p_row, slot] = p_col
        labels[p_row, slot] = ids.reshape(-1)[p_flat]
        return masked, positions, labels, counts, words

    def _walk(self, n, group_len, group_row, per_row, first, priority, wanted) -> np.ndarray:
        """google's walk over whole words (``wwm``): the picked words, in position order."""
        # Only the words first in that order can be reached: sort just the ones whose priority is under a
        # threshold that leaves about twice as many words as could be needed (each word is >= 1 token).
        threshold = np.minimum(1.0, 2.0 * (wanted + 2) / np.maximum(per_row, 1))
        candidate = priority < threshold[group_row]
        picks = np.flatnonzero(candidate)
        # by row, then priority: row + priority (non-negative floats) sorted as the bits of the float, which
        # order as the floats do and sort faster
        order = picks[np.argsort((group_row[picks] + priority[picks]).view(np.uint64), kind="stable")]
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
        # the words still eligible: of an active instance, after its cursor, no longer than it needs (need only
        # shrinks, so a word that drops out never comes back); each round takes the first of each instance
        eligible = np.flatnonzero(active[sorted_row])
        while active.any():
            row_of = sorted_row[eligible]
            eligible = eligible[active[row_of] & (eligible > cursor[row_of]) & (sorted_len[eligible] <= need[row_of])]
            row_of = sorted_row[eligible]
            first_of_row = np.ones(len(eligible), dtype=bool)
            first_of_row[1:] = row_of[1:] != row_of[:-1]
            rows = row_of[first_of_row]
            stuck = active.copy()
            stuck[rows] = False
            active[stuck] = False                        # no candidate word fits any more
            if not len(rows):
                break
            taken = eligible[first_of_row]
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
        # the picked words in position order (groups are numbered in cell order and do not overlap), so their
        # tokens come out as cells in position order
        in_pick = np.zeros(len(group_len), dtype=bool)
        in_pick[np.concatenate(picked)] = True
        picked = np.flatnonzero(in_pick)
        return picked


def flags_from_word_ids(word_ids: np.ndarray) -> np.ndarray:
    """Group flags (n × L uint8: START, CONT, SPECIAL) from the ``word_ids`` of unmasked shards (0 for [CLS],
    [SEP] and padding; positions sharing a number are one word)."""
    word_ids = np.asarray(word_ids)
    flags = np.full(word_ids.shape, SPECIAL, np.uint8)
    previous = np.zeros_like(word_ids)
    previous[:, 1:] = word_ids[:, :-1]
    flags[(word_ids > 0) & (word_ids != previous)] = START
    flags[(word_ids > 0) & (word_ids == previous)] = CONT
    return flags


def mask_instances(ids: np.ndarray, flags: np.ndarray, lengths: np.ndarray, seeds: np.ndarray, options, mask_id: int,
                   replacements) -> tuple:
    """Mask a batch of instances (n × L ids and group flags, real lengths with [CLS]/[SEP], a uint64 seed each)
    as the shards stage does (``Masker``, every draw from the instance's seed): masked ids, positions and labels
    (n × P), predictions and words masked per instance."""
    masker = Masker(options, mask_id, replacements, ids.shape[1])
    return masker.mask_batch(np.asarray(ids), np.asarray(flags, np.uint8), np.asarray(lengths, np.int64),
                             np.asarray(seeds, np.uint64))
