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
from typing import Iterable

from pipeline.clean.normalize import ScriptConverter
from pipeline.counters import CountFn, no_count
from pipeline.records import Document, Duplicate

METHOD = "exact"


def _fold_table() -> dict[int, None]:
    """Every code point in a whitespace (Z), punctuation (P), symbol (S) or control (Cc, Cf) category."""
    drop = {}
    for cp in range(sys.maxunicode + 1):
        if 0xD800 <= cp <= 0xDFFF:
            continue
        cat = unicodedata.category(chr(cp))
        if cat[0] in "ZPS" or cat in ("Cc", "Cf"):
            drop[cp] = None
    for ws in "\t\n\r\x0b\x0c":
        drop[ord(ws)] = None
    return drop


_FOLD: dict[int, None] | None = None


def normalize_key_text(text: str, convert: ScriptConverter) -> str:
    """The text exact dedup compares: NFKC, simplified, lowercase, no spaces/punctuation/symbols."""
    global _FOLD
    if _FOLD is None:
        _FOLD = _fold_table()
    text = unicodedata.normalize("NFKC", text)
    text = convert(text)[0]
    return text.lower().translate(_FOLD)


class ExactKey:
    """Computes dedup keys; holds the script converter (loaded once per process)."""

    def __init__(self, convert: str = "t2s") -> None:
        self.convert = ScriptConverter(convert)

    def __call__(self, doc: Document) -> str:
        folded = normalize_key_text(doc.text, self.convert)
        return hashlib.blake2b(folded.encode("utf-8"), digest_size=16).hexdigest()


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
