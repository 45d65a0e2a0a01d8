"""Pre-token counts: the input of WordPiece training, computed per segmented record.

Pre-tokens are what google-research/bert's ``BasicTokenizer`` hands to
WordPiece: the text cleaned of NUL, U+FFFD and control characters (category Cc
or Cf, but not tab/newline/CR), whitespace (category Zs, tab, newline, CR) made
a space, every CJK character (:func:`pipeline.vocab.wordpiece.is_cjk`) its own
pre-token, optionally lowercased with accents stripped (NFD, then marks of
category Mn removed), split on whitespace and on punctuation (ASCII
punctuation, or any category P*).

Three implementations give the same pre-tokens:

- :func:`basic_tokenize`: a plain character loop written from that
  description, the reference the tests check the others against;
- :class:`RegexPreTokenizer`: the same steps as whole-text regular expression
  substitutions (the loops run in C); counting uses its ``raw_counts``, which
  classifies code points with a table read off those expressions and counts
  CJK characters and punctuation with NumPy;
- :class:`TokenizersPreTokenizer`: ``tokenizers``' ``BertNormalizer`` and
  ``BertPreTokenizer`` (what :func:`pipeline.vocab.wordpiece.bert_tokenizer`
  applies at shard time), kept to check against and for the benchmark.

On this machine the regex version counts several times faster than the
``tokenizers`` one, whose Python call returns an offsets tuple per pre-token
(``bench/vocab.py`` measures both).

Documents are held out of counting by a hash of their id (:func:`is_held_out`),
the same choice on every engine and every run; the stats stage tokenizes them
with the finished vocab.
"""

from __future__ import annotations

import hashlib
import itertools
import re
import unicodedata
from collections import Counter
from functools import lru_cache
from typing import Iterable

import numpy as np

from pipeline.counters import CountFn, no_count
from pipeline.vocab.wordpiece import CJK_RANGES, is_cjk

# BERT's WordpieceTokenizer maps a pre-token longer than this to [UNK] whole, so it is not trained on.
MAX_PRETOKEN_CHARS = 100


def _is_control(char: str) -> bool:
    if char in "\t\n\r":
        return False
    return unicodedata.category(char) in ("Cc", "Cf")


def _is_whitespace(char: str) -> bool:
    return char in " \t\n\r" or unicodedata.category(char) == "Zs"


def _is_punctuation(char: str) -> bool:
    cp = ord(char)
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(char).startswith("P")


def basic_tokenize(text: str, lowercase: bool = True) -> list[str]:
    """BERT's ``BasicTokenizer`` pre-tokens of ``text``, one character at a time (the reference)."""
    cleaned = []
    for char in text:
        if char == "\0" or char == "\ufffd" or _is_control(char):
            continue
        cleaned.append(" " if _is_whitespace(char) else char)
    spaced = []
    for char in cleaned:
        spaced.append(f" {char} " if is_cjk(char) else char)
    tokens = []
    for token in "".join(spaced).split():
        if lowercase:
            token = "".join(c for c in unicodedata.normalize("NFD", token.lower())
                            if unicodedata.category(c) != "Mn")
        current: list[str] = []
        for char in token:
            if _is_punctuation(char):
                if current:
                    tokens.append("".join(current))
                    current = []
                tokens.append(char)
            else:
                current.append(char)
        if current:
            tokens.append("".join(current))
    return [t for t in " ".join(tokens).split()]


# Planes 4-13 are unassigned and 15-16 private use: no control, whitespace, mark or punctuation there.
_SCANNED = (range(0, 0xD800), range(0xE000, 0x40000), range(0xE0000, 0xF0000))


def _char_class(test) -> str:
    """A regex character class (without brackets) of every code point for which ``test`` holds."""
    ranges: list[tuple[int, int]] = []
    for cp in itertools.chain(*_SCANNED):
        if test(chr(cp)):
            if ranges and ranges[-1][1] == cp - 1:
                ranges[-1] = (ranges[-1][0], cp)
            else:
                ranges.append((cp, cp))
    return "".join(re.escape(chr(a)) if a == b else f"{re.escape(chr(a))}-{re.escape(chr(b))}" for a, b in ranges)


@lru_cache(maxsize=1)
def _classes() -> dict[str, str]:
    """The character classes (regex, without brackets) the patterns are made of, built once per process (a scan
    of the assigned planes, about 0.3 s)."""
    return {"drop": _char_class(lambda c: c == "\0" or c == "\ufffd" or _is_control(c)),
            "space": _char_class(lambda c: _is_whitespace(c) and c != " "),
            "marks": _char_class(lambda c: unicodedata.category(c) == "Mn"),
            "punct": _char_class(_is_punctuation),
            "cjk": "".join(f"{re.escape(chr(a))}-{re.escape(chr(b))}" for a, b in CJK_RANGES)}


@lru_cache(maxsize=1)
def _patterns() -> tuple[re.Pattern, ...]:
    """The compiled patterns, built once per process."""
    c = _classes()
    return (re.compile(f"[{c['drop']}]+"), re.compile(f"[{c['space']}]"), re.compile(f"[{c['marks']}]+"),
            re.compile(f"[{c['cjk']}]|[{c['punct']}]|[^\\s{c['punct']}{c['cjk']}]+"))


# What ``raw_tokens`` does with each code point (``_code_point_table``): removes it, splits on it, makes it a
# pre-token of its own (CJK and punctuation), or runs it together with its neighbours of the same kind.
_DROP, _SPLIT, _SINGLE, _RUN = 0, 1, 2, 3


@lru_cache(maxsize=1)
def _code_point_table() -> np.ndarray:
    """``_DROP``/``_SPLIT``/``_SINGLE``/``_RUN`` for every code point, read off the very patterns ``raw_tokens``
    applies (matched against a string of all code points), so the two cannot disagree."""
    c = _classes()
    every = np.arange(0x110000, dtype="<u4").tobytes().decode("utf-32-le", "surrogatepass")
    table = np.full(0x110000, _RUN, np.uint8)
    # later assignments win: the order is raw_tokens' (drop first, then whitespace, then the split alternatives)
    for kind, pattern in ((_SINGLE, f"[{c['punct']}]+"), (_SINGLE, f"[{c['cjk']}]+"), (_SPLIT, r"\s+"),
                          (_SPLIT, f"[{c['space']}]+"), (_DROP, f"[{c['drop']}]+")):
        for match in re.finditer(pattern, every):
            table[match.start():match.end()] = kind
    return table


class RegexPreTokenizer:
    """BERT's ``BasicTokenizer`` as whole-text regex passes; ``pre_tokens(text)`` is :func:`basic_tokenize`.

    Counting splits the cleaned text into CJK characters, punctuation and the
    runs between (:meth:`raw_tokens`), counts those, and lowercases and strips
    accents once per distinct token (:meth:`normalize_counts`), splitting again
    on punctuation that accent stripping can uncover (U+1FEF becomes a
    backquote).  Lowercasing and NFD never turn punctuation, CJK characters or
    whitespace into something else, so this gives BERT's pre-tokens with the
    per-character work done in C.
    """

    def __init__(self, lowercase: bool = True) -> None:
        self.lowercase = lowercase
        self.drop, self.space, self.marks, self.split = _patterns()

    def __getstate__(self):
        return {"lowercase": self.lowercase}

    def __setstate__(self, state):
        self.__init__(state["lowercase"])

    def raw_tokens(self, text: str) -> list[str]:
        """Pre-tokens before lowercasing and accent stripping."""
        return self.split.findall(self.space.sub(" ", self.drop.sub("", text)))

    def raw_counts(self, texts: list[str]) -> Counter:
        """``Counter`` of the ``raw_tokens`` of all the texts, by code point classes in NumPy: CJK characters and
        punctuation are counted with one ``bincount``, and only the runs between (Latin words, digits) are
        sliced out as strings."""
        table = _code_point_table()
        joined = "\n".join(texts)                      # a newline splits, so no pre-token spans two texts
        points = np.frombuffer(joined.encode("utf-32-le", "surrogatepass"), np.uint32)
        kinds = table[points]
        kept = kinds != _DROP
        if not kept.all():
            points, kinds = points[kept], kinds[kept]
            joined = points.tobytes().decode("utf-32-le", "surrogatepass")
        counts: Counter = Counter()
        singles = np.bincount(points[kinds == _SINGLE])
        present = np.flatnonzero(singles)
        counts.update(dict(zip(map(chr, present.tolist()), singles[present].tolist())))
        run = np.zeros(len(kinds) + 2, np.int8)
        run[1:-1] = kinds == _RUN
        edges = np.flatnonzero(np.diff(run))
        counts.update(joined[a:b] for a, b in zip(edges[::2].tolist(), edges[1::2].tolist()))
        return counts

    def normalize(self, token: str) -> list[str]:
        """One raw pre-token lowercased, accent-stripped and split again (none if only marks were left)."""
        if not self.lowercase:
            return [token]
        folded = self.marks.sub("", unicodedata.normalize("NFD", token.lower()))
        if folded == token:
            return [token]
        return self.split.findall(folded)

    def normalize_counts(self, raw: Counter) -> Counter:
        if not self.lowercase:
            return raw
        counts: Counter = Counter()
        for token, n in raw.items():
            for piece in self.normalize(token):
                counts[piece] += n
        return counts

    def pre_tokens(self, text: str) -> list[str]:
        return [piece for token in self.raw_tokens(text) for piece in self.normalize(token)]


class TokenizersPreTokenizer:
    """The same pre-tokens from ``tokenizers``' ``BertNormalizer`` + ``BertPreTokenizer``."""

    def __init__(self, lowercase: bool = True) -> None:
        self.lowercase = lowercase
        self._build()

    def _build(self) -> None:
        from tokenizers import normalizers, pre_tokenizers

        self.normalizer = normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=True,
                                                     strip_accents=None, lowercase=self.lowercase)
        self.pre_tokenizer = pre_tokenizers.BertPreTokenizer()

    def __getstate__(self):
        return {"lowercase": self.lowercase}

    def __setstate__(self, state):
        self.lowercase = state["lowercase"]
        self._build()

    def pre_tokens(self, text: str) -> list[str]:
        return [t for t, _ in self.pre_tokenizer.pre_tokenize_str(self.normalizer.normalize_str(text))]

    raw_tokens = pre_tokens

    def raw_counts(self, texts: list[str]) -> Counter:
        return Counter(token for text in texts for token in self.pre_tokens(text))

    def normalize_counts(self, raw: Counter) -> Counter:
        return raw


PRE_TOKENIZERS = {"regex": RegexPreTokenizer, "tokenizers": TokenizersPreTokenizer}


def is_held_out(doc_id: str, fraction: float) -> bool:
    """Whether a document is held out of counting: the first 8 bytes of sha256(id) as a share of 2**64."""
    if fraction <= 0:
        return False
    value = int.from_bytes(hashlib.sha256(doc_id.encode("utf-8", "surrogatepass")).digest()[:8], "big")
    return value < fraction * 2 ** 64


def document_text(sentences: Iterable[str]) -> str:
    """A document's sentences as one text (a newline between sentences is whitespace to BERT)."""
    return "\n".join(sentences)


# Characters of text counted in one ``raw_counts`` call: its arrays (4 bytes a character, a few copies) stay
# tens of MB whatever a partition holds.
COUNT_BATCH_CHARS = 1 << 22


class PreTokenCounter:
    """Counts the pre-tokens of segmented records (rows with ``id`` and ``sentences``).

    ``count_rows(rows, count)`` returns the pre-token counts of the records that
    are not held out.  Counters: ``vocab.read``, ``vocab.counted``,
    ``vocab.held_out``, ``vocab.chars`` (characters of the counted records),
    ``vocab.pretokens``, ``vocab.long_pretokens`` (longer than
    ``MAX_PRETOKEN_CHARS``: BERT maps them to [UNK] whole, so they are left out
    of the counts).
    """

    def __init__(self, options=None) -> None:
        lowercase = True if options is None else options.lowercase
        self.held_out_fraction = 0.01 if options is None else options.held_out_fraction
        kind = "regex" if options is None else options.pre_tokenizer
        if kind not in PRE_TOKENIZERS:
            raise ValueError(f"unknown pre-tokenizer {kind!r} ({', '.join(PRE_TOKENIZERS)})")
        self.pre_tokenizer = PRE_TOKENIZERS[kind](lowercase)

    def count_rows(self, rows: Iterable[dict], count: CountFn = no_count) -> Counter:
        """Pre-token counts of many records (a partition, a bundle)."""
        raw: Counter = Counter()
        chars = 0
        batch: list[str] = []
        batch_chars = 0
        for row in rows:
            count("vocab.read")
            if is_held_out(row["id"], self.held_out_fraction):
                count("vocab.held_out")
                continue
            count("vocab.counted")
            sentences = row["sentences"] or ()
            n = sum(len(s) for s in sentences)
            chars += n
            batch.append(document_text(sentences))
            batch_chars += n
            if batch_chars >= COUNT_BATCH_CHARS:
                raw.update(self.pre_tokenizer.raw_counts(batch))
                batch, batch_chars = [], 0
        if batch:
            raw.update(self.pre_tokenizer.raw_counts(batch))
        counts = self.pre_tokenizer.normalize_counts(raw)
        long = [t for t in counts if len(t) > MAX_PRETOKEN_CHARS]
        if long:
            count("vocab.long_pretokens", sum(counts[t] for t in long))
            for t in long:
                del counts[t]
        count("vocab.chars", chars)
        count("vocab.pretokens", sum(counts.values()))
        return counts
