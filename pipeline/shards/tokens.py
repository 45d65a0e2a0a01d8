"""Sentences and their segmenter words -> WordPiece ids with whole-word groups.

Every token carries a flag: ``START`` when it begins a masking group, ``CONT``
when it belongs to the group of the token before.  A token begins a group when
it begins a new segmenter word, unless it is a WordPiece ``##`` continuation
(so a non-Chinese word split into pieces is always one group, even where the
segmenter cut inside it).  A Chinese word of n characters is n tokens and one
group; the group is a flag beside the ids, never a ``##`` in them.  With whole-
word masking off, every token is its own group.

When a sentence's words do not join back to the sentence (they always do for
this pipeline's segment stage; a foreign table may differ), the sentence falls
back to WordPiece groups only and is counted (``shards.wwm_fallback_sentences``).
"""

from __future__ import annotations

from array import array
from dataclasses import dataclass
from itertools import accumulate

import numpy as np

from pipeline.counters import CountFn, no_count
from pipeline.shards.encoding import SentenceEncoder
from pipeline.vocab.wordpiece import read_vocab

CONT, START, SPECIAL = 0, 1, 2


@dataclass(eq=False)
class TokenizedDocument:
    """A document as token ids and group flags (sentences with no token are left out).

    ``ids`` (int32) and ``flags`` hold the tokens of all its sentences end to end, ``ends`` (int32) where each
    sentence ends in them: a few arrays per document, compact to ship between workers.
    """

    id: str
    ids: np.ndarray
    flags: bytes
    ends: np.ndarray
    source: str = ""          # the input source it came from (mixing weights are per source)

    @classmethod
    def of_sentences(cls, doc_id: str, sentences: list[tuple]) -> TokenizedDocument:
        """From ``(ids, flags)`` per sentence."""
        ids = [np.asarray(sentence_ids, dtype=np.int32) for sentence_ids, _ in sentences]
        return cls(doc_id, np.concatenate(ids) if ids else np.zeros(0, np.int32),
                   b"".join(bytes(flags) for _, flags in sentences),
                   np.cumsum([len(i) for i in ids], dtype=np.int64).astype(np.int32))

    @property
    def sentences(self) -> list[tuple[array, bytes]]:
        """``(ids, flags)`` per sentence."""
        out, begin = [], 0
        for end in self.ends.tolist():
            out.append((array("i", self.ids[begin:end].tolist()), self.flags[begin:end]))
            begin = end
        return out

    @property
    def tokens(self) -> int:
        return len(self.ids)


class DocumentTokenizer:
    """Tokenizes segmented documents with a vocab; built once per worker."""

    def __init__(self, vocab: str | list[str], lowercase: bool = True, whole_word: bool = True,
                 long_sentence_tokens: int = 0) -> None:
        self.entries = vocab if isinstance(vocab, list) else read_vocab(vocab)
        self.encoder = SentenceEncoder(self.entries, lowercase=lowercase)
        self.whole_word = whole_word
        self.long_sentence_tokens = long_sentence_tokens
        self.continuation = bytes(1 if e.startswith("##") else 0 for e in self.entries)
        self._continuation = np.frombuffer(self.continuation, dtype=np.uint8).astype(bool)

    def tokenize(self, doc_id: str, sentences: list[str], words: list[list[str]] | None = None,
                 count: CountFn = no_count) -> TokenizedDocument:
        """``words``: the segmenter's words per sentence (a sentence whose words do not join to it, or None,
        is masked per token)."""
        word_lengths = None
        if words is not None:
            word_lengths = [[len(w) for w in sentence_words] if sentence_words is not None else None
                            for sentence_words in words]
            joined = [sentence_words is not None and "".join(sentence_words) == sentence
                      for sentence_words, sentence in zip(words, sentences)]
            word_lengths = [lengths if ok else None for lengths, ok in zip(word_lengths, joined)]
        out = []
        for index, (ids, offsets) in enumerate(self.encoder.encode(sentences)):
            if not ids:
                continue
            lengths = word_lengths[index] if word_lengths is not None and index < len(word_lengths) else None
            flags = self._flags(ids, offsets, sentences[index], lengths, count)
            for piece_ids, piece_flags in self._split(ids, flags, count):
                out.append((array("i", piece_ids), bytes(piece_flags)))
        count("shards.sentences", len(out))
        return TokenizedDocument.of_sentences(doc_id, out)

    def _flags(self, ids, offsets, sentence: str, lengths, count: CountFn) -> bytearray:
        """``offsets``: each token's first character, or None when token i is character i; ``lengths``: the
        segmenter's word lengths (None, or not adding up to the sentence: WordPiece groups only)."""
        cont = self.continuation
        if not self.whole_word:
            return bytearray([START]) * len(ids)
        ends = np.cumsum(lengths) if lengths is not None and len(lengths) else None
        if ends is None or int(ends[-1]) != len(sentence) or (np.asarray(lengths) <= 0).any():
            count("shards.wwm_fallback_sentences")
            return bytearray(CONT if cont[i] else START for i in ids)
        marks = np.zeros(len(sentence) + 1, np.uint8)   # 1 where a segmenter word starts
        marks[0] = 1
        marks[ends[:-1]] = 1
        starts = bytearray(marks.tobytes())
        if offsets is None:                             # one token per character, none of them ##
            flags = starts[:len(ids)]
            flags[0] = START
            return flags
        seen = list(accumulate(starts))                 # word starts at or before each character
        flags = bytearray(len(ids))
        previous = -1
        for position, (token, begin) in enumerate(zip(ids, offsets)):
            if position == 0 or (seen[begin] != previous and not cont[token]):
                flags[position] = START
            previous = seen[begin]
        return flags

    def _split(self, ids, flags, count: CountFn):
        """A sentence longer than ``long_sentence_tokens`` in near-equal pieces, cut at group starts where one
        is close (so a long sentence is spread over instances instead of truncated away); see ``piece_starts``."""
        limit = self.long_sentence_tokens
        if not limit or len(ids) <= limit:
            yield ids, flags
            return
        count("shards.long_sentences_split")
        starts = piece_starts(flags, limit)
        for begin, end in zip(starts, [*starts[1:], len(ids)]):
            piece_flags = bytearray(flags[begin:end])
            piece_flags[0] = START
            yield ids[begin:end], piece_flags

    def tokenize_joined(self, sentences: list[str], ok: np.ndarray, word_starts: np.ndarray,
                        count: CountFn = no_count):
        """What ``tokenize`` does to each sentence, for many sentences (of many documents) at once.

        ``ok``: per sentence, whether its segmenter words join back to it (all of positive length, adding up
        to its length); ``word_starts``: the first character of every word of those sentences, counted in the
        sentences joined.  Returns the ids (int32) and flags (uint8) of all the tokens, the bounds of the
        pieces they form (a sentence with no token has none; a long one is cut in several) and, per sentence,
        its first piece (``len(sentences) + 1`` values).
        """
        lengths = np.fromiter(map(len, sentences), np.int64, len(sentences))
        bounds = np.zeros(len(sentences) + 1, np.int64)
        np.cumsum(lengths, out=bounds[1:])
        ids, at, token_bounds = self.encoder.encode_joined("".join(sentences), bounds)
        per_sentence = np.diff(token_bounds)
        has_tokens = per_sentence > 0
        if not self.whole_word:
            flags = np.full(len(ids), START, np.uint8)
        else:
            marks = np.zeros(int(bounds[-1]) + 1, np.int64)
            marks[word_starts] = 1
            seen = np.cumsum(marks)[at]                        # word starts at or before each token
            continuation = self._continuation[ids]
            changed = np.ones(len(ids), dtype=bool)
            changed[1:] = seen[1:] != seen[:-1]
            flags = np.where(changed & ~continuation, START, CONT).astype(np.uint8)
            flags[token_bounds[:-1][has_tokens]] = START       # a sentence's first token starts a word
            fallback = np.repeat(~ok, per_sentence)
            flags[fallback] = np.where(continuation[fallback], CONT, START)
            if int((~ok & has_tokens).sum()):
                count("shards.wwm_fallback_sentences", int((~ok & has_tokens).sum()))
        pieces = has_tokens.astype(np.int64)
        cuts = []
        limit = self.long_sentence_tokens
        if limit:
            for k in np.flatnonzero(per_sentence > limit).tolist():
                begin, end = int(token_bounds[k]), int(token_bounds[k + 1])
                starts = piece_starts(flags[begin:end], limit)
                flags[begin + np.asarray(starts)] = START
                cuts.extend(begin + start for start in starts[1:])
                pieces[k] = len(starts)
            if cuts:
                count("shards.long_sentences_split", int((per_sentence > limit).sum()))
        piece_bounds = np.sort(np.concatenate([token_bounds[:-1][has_tokens], np.asarray(cuts, np.int64),
                                               [len(ids)]]))
        first_piece = np.zeros(len(sentences) + 1, np.int64)
        np.cumsum(pieces, out=first_piece[1:])
        return ids, flags, piece_bounds, first_piece


def piece_starts(flags, limit: int) -> list[int]:
    """Where each piece of a sentence with these group flags starts (0 first) when it is cut into pieces of at
    most ``limit`` tokens: while more than ``limit`` tokens are left, the next piece takes a near-equal share of
    them (``ceil(left / ceil(left / limit))``) and ends at the last group start in the back half of that share
    (inside a group only when there is none), and the shares are worked out again from where it ended.  So a
    cut moved back to a word start never leaves a last piece of a token or two (such as the sentence's final
    ``。``): every piece but a sentence's only one holds at least about a quarter of ``limit``."""
    n = len(flags)
    starts, begin = [0], 0
    while n - begin > limit:
        left = n - begin
        size = -(-left // -(-left // limit))
        cut, low = begin + size, begin + max(1, size // 2)
        while cut > low and flags[cut] != START:
            cut -= 1
        if flags[cut] != START:
            cut = begin + size
        starts.append(cut)
        begin = cut
    return starts
