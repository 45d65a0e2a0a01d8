"""WordPiece ids and token start offsets of sentences, exactly as the ``tokenizers`` BERT tokenizer gives them,
with a fast path for Chinese.

BERT's tokenizer makes every CJK character and every punctuation character a
word of its own, and WordPiece maps a one-character word to its entry (or
``[UNK]``).  So a character that is CJK or punctuation, and that cleaning,
lowercasing and accent stripping leave as it is, is one token whatever
surrounds it: a dictionary lookup.  Only the runs of other characters (Latin
words, digits, spaces, compatibility ideographs that NFD changes...) go
through the ``tokenizers`` pipeline, each run on its own; a run is bounded by
such characters, which are word boundaries in context too, so the result is
the same as tokenizing the whole sentence (the tests check it on the shared
corpora).  Chinese text is mostly such characters: this is several times faster.
"""

from __future__ import annotations

import functools
import re
import unicodedata

import numpy as np

from pipeline.vocab.wordpiece import bert_tokenizer, is_cjk


def _punctuation(char: str) -> bool:
    code = ord(char)
    if 33 <= code <= 47 or 58 <= code <= 64 or 91 <= code <= 96 or 123 <= code <= 126:
        return True
    return unicodedata.category(char).startswith("P")


# Characters looked up directly: the common CJK blocks, ASCII punctuation and CJK/full-width punctuation.
# Each is checked at start-up to be a one-token word (CJK or punctuation, unchanged by normalisation).
_DIRECT_RANGES = ((0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0x21, 0x2F), (0x3A, 0x40), (0x5B, 0x60), (0x7B, 0x7E),
                  (0xA1, 0xBF), (0x2010, 0x205E), (0x3001, 0x303F), (0xFE30, 0xFE4F), (0xFF01, 0xFF65))


def _one_token_word(char: str, lowercase: bool) -> bool:
    if not (is_cjk(char) or _punctuation(char)) or char.isspace() or unicodedata.category(char).startswith("C"):
        return False
    if lowercase:
        normal = "".join(c for c in unicodedata.normalize("NFD", char.lower()) if unicodedata.category(c) != "Mn")
        return normal == char
    return True


@functools.lru_cache(maxsize=2)
def _direct_chars(lowercase: bool) -> tuple[str, ...]:
    """The characters of ``_DIRECT_RANGES`` that are always one-token words (checked once per process)."""
    return tuple(chr(code) for lo, hi in _DIRECT_RANGES for code in range(lo, hi + 1)
                 if _one_token_word(chr(code), lowercase))


_ASCII_RUN = re.compile(r"[A-Za-z0-9]+(?: [A-Za-z0-9]+)*")


class SentenceEncoder:
    def __init__(self, entries: list[str], lowercase: bool = True) -> None:
        self.tokenizer = bert_tokenizer(entries, lowercase=lowercase)
        index = {entry: i for i, entry in enumerate(entries)}
        unk = index["[UNK]"]
        self.direct = {char: index.get(char, unk) for char in _direct_chars(lowercase)}
        self.index, self.unk, self.lowercase = index, unk, lowercase
        # run -> (ids, offsets) of the runs tokenized so far (a run's tokens depend on its text alone)
        self.words: dict[str, tuple[list[int], list[int]]] = {}
        klass = "".join(re.escape(c) for c in self.direct)
        self.runs = re.compile(f"[^{klass}]+")       # what tokenizers reads, between directly looked-up characters
        self.table = np.full(0x110000, -1, dtype=np.int32)     # code point -> id of a directly looked-up character
        self.table[np.fromiter(map(ord, self.direct), np.int64, len(self.direct))] = list(self.direct.values())

    def _wordpiece(self, word: str) -> tuple[list[int], list[int]]:
        """Greedy longest-match-first WordPiece of one word (as BERT's WordpieceTokenizer)."""
        if len(word) > 100:
            return [self.unk], [0]
        ids, offsets, start = [], [], 0
        while start < len(word):
            end = len(word)
            found = None
            while start < end:
                piece = word[start:end] if start == 0 else "##" + word[start:end]
                found = self.index.get(piece)
                if found is not None:
                    break
                end -= 1
            if found is None:
                return [self.unk], [0]
            ids.append(found)
            offsets.append(start)
            start = end
        return ids, offsets

    def _ascii_run(self, run: str) -> tuple[list[int], list[int]]:
        """A run of ASCII letters and digits separated by single spaces: words split on the spaces, each
        lowercased (if asked) and WordPiece'd; nothing else of BERT's normalisation applies to these characters."""
        cached = self.words.get(run)
        if cached is None:
            ids, offsets, at = [], [], 0
            for word in run.split(" "):
                word_ids, word_offsets = self._wordpiece(word.lower() if self.lowercase else word)
                ids.extend(word_ids)
                offsets.extend(at + o for o in word_offsets)
                at += len(word) + 1
            cached = self._remember(run, (ids, offsets))
        return cached

    def _remember(self, run: str, tokens: tuple[list[int], list[int]]) -> tuple[list[int], list[int]]:
        if len(self.words) >= 100_000:      # a builder lives as long as its worker: keep the cache bounded
            self.words.clear()
        self.words[run] = tokens
        return tokens

    def encode(self, sentences: list[str]) -> list[tuple[list[int], list[int] | None]]:
        """Per sentence: (ids, token start offsets); offsets None when every character is one token
        (then token i starts at character i)."""
        direct = self.direct.__getitem__
        finditer = self.runs.finditer
        results: list = []
        runs: list[tuple[int, int, int]] = []          # (sentence index, start, end) of the runs tokenizers reads
        for index, sentence in enumerate(sentences):
            found = [(m.start(), m.end()) for m in finditer(sentence)]
            if not found:
                results.append((list(map(direct, sentence)), None))
                continue
            results.append(None)
            runs.extend((index, a, b) for a, b in found)
        if not runs:
            return results
        texts = [sentences[i][a:b] for i, a, b in runs]
        simple = [_ASCII_RUN.fullmatch(text) is not None for text in texts]
        encodings = iter(self.tokenizer.encode_batch([t for t, easy in zip(texts, simple) if not easy],
                                                     add_special_tokens=False))
        pending: dict[int, list] = {}
        for (index, begin, end), text, easy in zip(runs, texts, simple):
            if easy:
                run_ids, run_offsets = self._ascii_run(text)
            else:
                encoding = next(encodings)
                run_ids, run_offsets = encoding.ids, [o[0] for o in encoding.offsets]
            pending.setdefault(index, []).append((begin, end, run_ids, run_offsets))
        for index, pieces in pending.items():
            sentence = sentences[index]
            ids: list[int] = []
            offsets: list[int] = []
            cursor = 0
            for begin, end, run_ids, run_offsets in pieces:
                if begin > cursor:                              # directly looked-up characters before the run
                    ids.extend(map(direct, sentence[cursor:begin]))
                    offsets.extend(range(cursor, begin))
                ids.extend(run_ids)
                offsets.extend(begin + o for o in run_offsets)
                cursor = end
            if cursor < len(sentence):
                ids.extend(map(direct, sentence[cursor:]))
                offsets.extend(range(cursor, len(sentence)))
            results[index] = (ids, offsets)
        return results

    def _run_tokens(self, texts: list[str]) -> list[tuple[list[int], list[int]]]:
        """(ids, start offsets) of each run of characters that are not looked up directly.  A run is tokenized
        on its own, so its tokens depend on its text alone: the runs seen already (most of them: numbers,
        Latin words and punctuation repeat) are looked up, each new one is tokenized once."""
        out = list(map(self.words.get, texts))
        missing = sorted({text for text, result in zip(texts, out) if result is None})
        if missing:
            hard = [text for text in missing if _ASCII_RUN.fullmatch(text) is None]
            encoded = dict(zip(hard, self.tokenizer.encode_batch(hard, add_special_tokens=False)))
            new = {}
            for text in missing:
                encoding = encoded.get(text)
                new[text] = (self._ascii_run(text) if encoding is None
                             else self._remember(text, (encoding.ids, [o[0] for o in encoding.offsets])))
            out = [new[text] if result is None else result for text, result in zip(texts, out)]
        return out

    def encode_joined(self, text: str, bounds: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``encode`` of many sentences at once: ``text`` is the sentences joined, sentence k is
        ``text[bounds[k]:bounds[k + 1]]``.  Returns the ids of all their tokens (int32), each token's first
        character in ``text`` (int64), and where each sentence's tokens start (``len(bounds)`` values):
        the same ids and offsets as ``encode`` gives sentence by sentence."""
        codes = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
        direct = self.table[codes]
        other = direct < 0
        if not other.any():
            return direct, np.arange(len(codes), dtype=np.int64), np.asarray(bounds, dtype=np.int64)
        n = len(codes)
        sentence_start = np.zeros(n + 1, dtype=bool)
        sentence_start[bounds] = True
        before = np.concatenate([[False], other[:-1]])
        after = np.concatenate([other[1:], [False]])
        starts = np.flatnonzero(other & (~before | sentence_start[:n]))
        ends = np.flatnonzero(other & (~after | sentence_start[1:])) + 1
        pieces = self._run_tokens([text[a:b] for a, b in zip(starts.tolist(), ends.tolist())])
        sizes = np.fromiter((len(ids) for ids, _ in pieces), np.int64, len(pieces))
        run_ids = np.fromiter((i for ids, _ in pieces for i in ids), np.int32, int(sizes.sum()))
        run_at = np.repeat(starts, sizes) + np.fromiter((o for _, offsets in pieces for o in offsets), np.int64,
                                                         int(sizes.sum()))
        kept = np.flatnonzero(~other)
        at = np.concatenate([kept, run_at])
        order = np.argsort(at, kind="stable")          # a run's tokens keep their order
        at = at[order]
        ids = np.concatenate([direct[kept], run_ids])[order]
        return ids, at, np.searchsorted(at, bounds, side="left")
