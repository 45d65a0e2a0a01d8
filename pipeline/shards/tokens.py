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


@dataclass
class TokenizedDocument:
    """A document as token ids and group flags per sentence (sentences with no token are left out).

    ``sentences`` holds ``(ids, flags)`` pairs as ``array('i')`` and ``bytes``: compact to ship
    between workers.
    """

    id: str
    sentences: list[tuple[array, bytes]]

    @property
    def tokens(self) -> int:
        return sum(len(ids) for ids, _ in self.sentences)


class DocumentTokenizer:
    """Tokenizes segmented documents with a vocab; built once per worker."""

    def __init__(self, vocab: str | list[str], lowercase: bool = True, whole_word: bool = True,
                 long_sentence_tokens: int = 0) -> None:
        self.entries = vocab if isinstance(vocab, list) else read_vocab(vocab)
        self.encoder = SentenceEncoder(self.entries, lowercase=lowercase)
        self.whole_word = whole_word
        self.long_sentence_tokens = long_sentence_tokens
        self.continuation = bytes(1 if e.startswith("##") else 0 for e in self.entries)

    def tokenize(self, doc_id: str, sentences: list[str], words: list[list[str]] | None = None,
                 count: CountFn = no_count, word_lengths: list | None = None) -> TokenizedDocument:
        """``words``: the segmenter's words per sentence; or ``word_lengths``: their lengths in characters per
        sentence (what the engines pass, computed column-wise from the table without making word strings)."""
        if word_lengths is None and words is not None:
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
        return TokenizedDocument(doc_id, out)

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
        is close (so a long sentence is spread over instances instead of truncated away)."""
        limit = self.long_sentence_tokens
        if not limit or len(ids) <= limit:
            yield ids, flags
            return
        count("shards.long_sentences_split")
        pieces = -(-len(ids) // limit)
        size = -(-len(ids) // pieces)
        begin = 0
        while begin < len(ids):
            end = min(begin + size, len(ids))
            if end < len(ids):
                cut = end
                while cut > begin + size // 2 and flags[cut] != START:
                    cut -= 1
                end = cut if flags[cut] == START and cut > begin else end
            piece_flags = bytearray(flags[begin:end])
            piece_flags[0] = START
            yield ids[begin:end], piece_flags
            begin = end
