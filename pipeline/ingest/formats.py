"""Input formats: detection, and how each JSON format's fields become a document.

Each JSON-lines format is described by a :class:`JsonFormat`: which field is the
native id, which is the title, url and text, and which other fields go to
``meta``.  A record missing a required field or with a field of the wrong type
is an error the reader quarantines.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from pipeline.ingest.files import OpenedFile

SNIFF_BYTES = 64 * 1024


@dataclass(frozen=True)
class JsonFormat:
    name: str
    id_field: str | None          # None: id from file and line
    text_fields: tuple[str, ...]  # joined with blank lines, empty ones skipped
    title_field: str | None = None
    url_field: str | None = None
    meta_fields: tuple[str, ...] = ()
    strip_title_line: bool = False  # wikiextractor repeats the title as the text's first line


JSON_FORMATS = {
    f.name: f
    for f in (
        JsonFormat("wiki2019zh", "id", ("text",), "title", "url", (), strip_title_line=True),
        JsonFormat("wikiextractor_json", "id", ("text",), "title", "url", ("revid",), strip_title_line=True),
        JsonFormat("news2016zh", "news_id", ("content",), "title", None,
                   ("keywords", "desc", "source", "time")),
        JsonFormat("baike2018qa", "qid", ("answer",), "title", None, ("category", "desc")),
        JsonFormat("webtext2019zh", "answer_id", ("content",), "title", None,
                   ("qid", "desc", "topic", "star", "answerer_tags")),
        JsonFormat("ccnet", None, ("raw_content",), "title", "url",
                   ("digest", "source_domain", "date_download", "language", "language_score",
                    "perplexity", "bucket")),
        JsonFormat("jsonl", "id", ("text",), "title", "url", ()),
    )
}

FORMATS = ("mediawiki", "wikiextractor", "squad", "text", *JSON_FORMATS)


class FormatError(ValueError):
    """The format of an input cannot be told, or a record does not fit its format."""


def _json_format_for_keys(keys: set[str]) -> str | None:
    if "raw_content" in keys:
        return "ccnet"
    if "news_id" in keys:
        return "news2016zh"
    if "answer_id" in keys:
        return "webtext2019zh"
    if {"qid", "answer"} <= keys:
        return "baike2018qa"
    if {"id", "title", "text"} <= keys:
        return "wikiextractor_json" if "revid" in keys else "wiki2019zh"
    if "text" in keys:
        return "jsonl"
    return None


def _first_json_object(text: str, lines: int = 20) -> dict | None:
    """The first of the sniffed lines that parses as a JSON object (a malformed first line, which the reader
    then quarantines, does not hide the format of the lines after it)."""
    for line in text.split("\n")[:lines]:
        if not line.startswith("{"):     # records of JSON lines start a line; indented objects are not records
            continue
        try:
            record = json.loads(line)
        except (ValueError, RecursionError):   # a line nested too deeply is the reader's to quarantine
            continue
        if isinstance(record, dict):
            return record
    return None


_STRING_STOP = re.compile(rb'["\\]')
SCAN_BYTES = 256 * 1024 * 1024


def first_object_keys(chunks: Iterable[bytes], limit: int = SCAN_BYTES) -> set[str]:
    """The top-level keys of the JSON object a byte stream starts with, found without holding it.

    For a first record longer than the sniff: strings are skipped with a
    search for the next quote or backslash, so a 50 MB text value costs one
    pass and no copy.  Stops at the end of the object, the end of the first
    line, or after ``limit`` bytes; returns the keys seen so far.
    """
    keys: set[str] = set()
    depth, in_string, escaped, expect_key = 0, False, False, False
    key: bytearray | None = None      # the key being read (a string at depth 1 where a key goes)
    after_key = False                 # a key was read; the next mark should be ':'
    seen = 0
    for chunk in chunks:
        i, n = 0, len(chunk)
        while i < n:
            if in_string:
                if escaped:
                    escaped = False
                    if key is not None:
                        key += chunk[i:i + 1]
                    i += 1
                    continue
                m = _STRING_STOP.search(chunk, i)
                end = m.start() if m else n
                if key is not None and len(key) < 256:
                    key += chunk[i:end]
                if not m:
                    i = n
                    continue
                if chunk[end:end + 1] == b"\\":
                    escaped, i = True, end + 1
                    continue
                in_string, i = False, end + 1
                if key is not None:
                    after_key, expect_key = True, False
                continue
            c = chunk[i:i + 1]
            i += 1
            if c == b'"':
                in_string = True
                key = bytearray() if depth == 1 and expect_key else None
            elif c in (b"{", b"["):
                depth += 1
                expect_key = depth == 1 and c == b"{"
            elif c in (b"}", b"]"):
                depth -= 1
                if depth <= 0:
                    return keys
            elif c == b",":
                expect_key = depth == 1
            elif c == b":":
                if after_key and key is not None:
                    keys.add(key.decode("utf-8", "replace"))
                after_key, key = False, None
            elif c == b"\n" and depth <= 1:
                return keys
        seen += n
        if seen >= limit:
            break
    return keys


def _stream_chunks(path: str, size: int = 1 << 20) -> Iterable[bytes]:
    with OpenedFile(path) as opened:
        try:
            while chunk := opened.stream.read1(size):
                yield chunk
        except (EOFError, OSError):
            return


def detect(path: str) -> str:
    """Tell an input file's format from its name and first bytes.

    Raises :class:`FormatError` when the content fits no format unambiguously
    (the user then names it with ``--format``).
    """
    name = Path(path).name.lower()
    if name.endswith((".xml", ".xml.bz2", ".xml.gz", ".xml.xz")):
        return "mediawiki"
    head = b""
    with OpenedFile(path) as opened:
        try:
            while len(head) < SNIFF_BYTES:
                chunk = opened.stream.read1(SNIFF_BYTES - len(head))   # read1 keeps what came before an error
                if not chunk:
                    break
                head += chunk
        except (EOFError, OSError):
            pass    # a truncated or corrupt stream: tell the format from what was read; the reader reports where
    text = head.decode("utf-8", errors="replace").lstrip("\ufeff \t\r\n")
    if not text:
        return "text"
    if text.startswith(("<mediawiki", "<?xml")):
        return "mediawiki"
    if text.startswith("<doc ") or text.startswith("<doc>"):
        return "wikiextractor"
    if text.startswith("{"):
        record = _first_json_object(text)
        if isinstance(record, dict):
            fmt = _json_format_for_keys(set(record))
            if fmt:
                return fmt
            raise FormatError(f"{path}: JSON lines with fields {sorted(record)} match no known format; "
                              f"pass --format")
        if '"data"' in text and '"paragraphs"' in text:
            return "squad"
        if "\n" not in text.rstrip("\n") and len(head) >= SNIFF_BYTES:
            # a first record longer than the sniff: its keys, scanned to its end without holding it
            keys = first_object_keys(_stream_chunks(path))
            fmt = _json_format_for_keys(keys) if keys else None
            if fmt:
                return fmt
            raise FormatError(f"{path}: its first record is longer than the {SNIFF_BYTES // 1024} KB read to tell "
                              f"the format, and its fields {sorted(keys)} match no known format; pass --format")
        raise FormatError(f"{path}: starts like JSON but is not a known JSON format; pass --format")
    if text.startswith("<"):
        raise FormatError(f"{path}: starts with markup of no known format; pass --format")
    return "text"
