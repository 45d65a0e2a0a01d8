"""Exact deduplication: one document per normalised content.

The key of a document is a hash of its text after NFKC, conversion to
simplified script, lowercasing, and removal of every whitespace, punctuation,
symbol and control character, so copies that differ only in script, width,
case, spacing or punctuation collide.  Within a group of equal keys the
document with the smallest id (string order) is kept; the others become
``Duplicate`` records pointing at it.  Engines group small :class:`DocRef`
records (not whole documents) by key, call :func:`resolve_group`, and then
stream the documents once more, dropping the ids that came out as duplicates,
so grouping memory does not hold the corpus text.
"""

from __future__ import annotations

import hashlib
import sys
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from typing import Iterable

import numpy as np

from pipeline.clean.normalize import ScriptConverter
from pipeline.counters import CountFn, no_count
from pipeline.records import Document, Duplicate

METHOD = "exact"


_DROP_CATEGORIES = ("Zs", "Zl", "Zp", "Pc", "Pd", "Ps", "Pe", "Pi", "Pf", "Po", "Sm", "Sc", "Sk", "So", "Cc", "Cf")


@lru_cache(maxsize=1)
def code_tables() -> tuple[np.ndarray, np.ndarray]:
    """Boolean arrays indexed by code point: what the key drops (whitespace Z, punctuation P, symbols S,
    controls Cc and Cf) and the decimal digits (Nd) near dedup folds to 0."""
    size = sys.maxunicode + 1
    categories = list(map(unicodedata.category, map(chr, range(size))))
    drop = np.fromiter(map(frozenset(_DROP_CATEGORIES).__contains__, categories), dtype=bool, count=size)
    for ws in "\t\n\r\x0b\x0c":
        drop[ord(ws)] = True
    return drop, np.fromiter(map("Nd".__eq__, categories), dtype=bool, count=size)


@lru_cache(maxsize=1)
def _nfkc_table() -> tuple[np.ndarray, dict[int, str]]:
    """The code points NFKC changes on their own (only those with a decomposition can), and their NFKC."""
    changed = {}
    for cp in range(sys.maxunicode + 1):
        c = chr(cp)
        if unicodedata.decomposition(c):
            normal = unicodedata.normalize("NFKC", c)
            if normal != c:
                changed[cp] = normal
    mask = np.zeros(sys.maxunicode + 1, dtype=bool)
    mask[list(changed)] = True
    return mask, changed


def nfkc(text: str) -> str:
    """``unicodedata.normalize("NFKC", text)``, faster on text with a few compatibility characters.

    Each character NFKC changes on its own is first replaced by its NFKC (a
    table look-up over the code points).  The full decomposition of the result
    is the same sequence up to canonical reordering, so its NFKC is the same;
    and it usually passes NFKC's quick check, where the text itself (with,
    say, full-width punctuation) would be decomposed and recomposed whole.
    """
    mask, changed = _nfkc_table()
    codes = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
    where = np.flatnonzero(mask[codes])
    if len(where):
        parts, last = [], 0
        for i in where.tolist():
            parts += (text[last:i], changed[int(codes[i])])
            last = i + 1
        parts.append(text[last:])
        text = "".join(parts)
    return unicodedata.normalize("NFKC", text)


def key_codes(text: str, convert: ScriptConverter) -> np.ndarray:
    """The code points (uint32) of :func:`normalize_key_text`, without building the string: the fold is
    one table look-up over the whole text instead of a ``str.translate`` dictionary look-up per character."""
    text = convert(nfkc(text))[0]
    codes = np.frombuffer(text.lower().encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
    return codes[~code_tables()[0][codes]]


def codes_text(codes: np.ndarray) -> str:
    return codes.tobytes().decode("utf-32-le", "surrogatepass")


def normalize_key_text(text: str, convert: ScriptConverter) -> str:
    """The text exact dedup compares: NFKC, simplified, lowercase, no spaces/punctuation/symbols."""
    return codes_text(key_codes(text, convert))


def exact_key(codes: np.ndarray) -> str:
    """The exact-dedup key of a normalised text given as :func:`key_codes`."""
    return hashlib.blake2b(codes_text(codes).encode("utf-8"), digest_size=16).hexdigest()


class ExactKey:
    """Computes dedup keys; holds the script converter (loaded once per process)."""

    def __init__(self, convert: str = "t2s") -> None:
        self.convert = ScriptConverter(convert)

    def __call__(self, doc: Document) -> str:
        return exact_key(key_codes(doc.text, self.convert))


@dataclass(frozen=True, slots=True)
class DocRef:
    """What grouping needs of a document: its id and where it came from, not its text."""

    id: str
    source: str
    file: str
    position: int
    title: str | None = None

    @classmethod
    def of(cls, doc: Document) -> "DocRef":
        return cls(doc.id, doc.source, doc.file, doc.position, doc.title)


def resolve_group(docs: Iterable[Document | DocRef], count: CountFn = no_count
                  ) -> tuple[Document | DocRef, list[Duplicate]]:
    """Keep the smallest id of documents with equal keys; the rest are its duplicates."""
    docs = list(docs)
    kept = min(docs, key=lambda d: d.id)
    duplicates = [
        Duplicate(id=d.id, source=d.source, duplicate_of=kept.id, duplicate_of_source=kept.source,
                  method=METHOD, similarity=1.0, file=d.file, position=d.position, title=d.title)
        for d in sorted(docs, key=lambda d: d.id) if d is not kept
    ]
    count("dedup.read", len(docs))
    count("dedup.exact.kept")
    if duplicates:
        count("dedup.duplicates", len(duplicates))
        count("dedup.exact.duplicates", len(duplicates))
        count("dedup.exact.clusters")
        for dup in duplicates:
            count(f"dedup.duplicates.source.{dup.source}")
    return kept, duplicates
