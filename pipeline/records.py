"""The records that flow between stages, as plain dataclasses.

Field names and order follow the tables in ``schemas/``; ``to_row`` gives the
dict the Parquet writers take and ``from_row`` reads one back.  A test checks
that every record class matches its schema.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass


@dataclass(slots=True)
class Document:
    """One document: what ingest reads and clean/dedup keep."""

    id: str
    source: str
    format: str
    text: str
    file: str
    position: int
    title: str | None = None
    url: str | None = None
    sentences: list[str] | None = None
    chars_converted: int | None = None
    meta: str | None = None

    TABLE = "documents"


@dataclass(slots=True)
class Rejected:
    """A document a quality rule dropped, with the rule's name and measurement."""

    id: str
    source: str
    stage: str
    rule: str
    text: str
    file: str
    position: int
    detail: str | None = None
    title: str | None = None

    TABLE = "rejected"


@dataclass(slots=True)
class Duplicate:
    """A document dedup dropped in favour of ``duplicate_of``."""

    id: str
    source: str
    duplicate_of: str
    duplicate_of_source: str
    method: str
    similarity: float
    file: str
    position: int
    title: str | None = None

    TABLE = "duplicates"


@dataclass(slots=True)
class Quarantined:
    """Input that could not be processed, with where it was and what went wrong."""

    stage: str
    source: str
    file: str
    position: int
    error: str
    id: str | None = None
    excerpt: str | None = None

    TABLE = "quarantined"


@dataclass(slots=True)
class Segmented:
    """A document's sentences and the words of each (``"".join(words[i]) == sentences[i]``)."""

    id: str
    source: str
    sentences: list[str]
    words: list[list[str]]
    file: str
    position: int
    title: str | None = None

    TABLE = "segmented"


RECORD_TYPES = (Document, Rejected, Duplicate, Quarantined, Segmented)
_FIELDS = {cls: tuple(f.name for f in dataclasses.fields(cls)) for cls in RECORD_TYPES}


def to_row(record) -> dict:
    """The record as a dict keyed by its table's column names."""
    return {name: getattr(record, name) for name in _FIELDS[type(record)]}


def from_row(cls, row) -> object:
    """Build a record of type ``cls`` from a dict-like row (extra keys ignored)."""
    get = row.get if hasattr(row, "get") else row.__getitem__
    values = {}
    for name in _FIELDS[cls]:
        try:
            value = get(name)
        except (KeyError, ValueError):
            value = None
        if value is not None and name == "sentences":
            value = list(value)
        elif value is not None and name == "words":
            value = [list(w) for w in value]
        values[name] = value
    return cls(**values)


def excerpt(text: str | bytes | None, limit: int = 200) -> str | None:
    """A short printable excerpt of a bad record for the quarantine table."""
    if text is None:
        return None
    if isinstance(text, bytes):
        text = text[: limit * 4].decode("utf-8", errors="backslashreplace")
    return text[:limit]


__all__ = ["Document", "Rejected", "Duplicate", "Quarantined", "Segmented", "RECORD_TYPES",
           "to_row", "from_row", "excerpt"]
