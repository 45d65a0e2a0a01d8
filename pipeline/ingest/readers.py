"""Streaming readers: one input file in, ``Document`` and ``Quarantined`` records out.

Every reader goes through the file once, holding one record at a time (the
``squad`` format, a single JSON object, is the one exception: it is loaded
whole).  A malformed record becomes a ``Quarantined`` record with the file, the
1-based line where it starts and the error, and reading goes on; an error that
ends the file (a truncated ``.bz2``, broken XML) quarantines what is left with
the position reached.  Counters: ``ingest.read`` (records seen),
``ingest.documents``, ``ingest.quarantined``, ``ingest.skipped.redirect``,
``ingest.skipped.namespace``, ``ingest.files``, ``ingest.bytes``, ``ingest.files.no_records``
(files read to the end that gave no record: empty, or only skipped pages).
"""

from __future__ import annotations

import html
import json
import re
from typing import Iterator

from pipeline.counters import CountFn, no_count
from pipeline.ingest.files import InputFile, OpenedFile
from pipeline.ingest.formats import JSON_FORMATS, FormatError, JsonFormat, detect
from pipeline.ingest.wikitext import resolve_conversion_markup, wikitext_to_text
from pipeline.progress import Progress
from pipeline.records import Document, Quarantined, excerpt

STAGE = "ingest"
_DOC_OPEN = re.compile(rb"^<doc(\s[^>]*)?>\s*$")
_DOC_ATTR = re.compile(r'([A-Za-z_:][-\w:.]*)\s*=\s*"([^"]*)"')
_READ_CHUNK = 1 << 20
_SNIFF_BYTES = 64 * 1024
_SURROGATE = re.compile("[\ud800-\udfff]")

Record = Document | Quarantined


class _Reader:
    """State shared by the format readers for one file."""

    def __init__(self, file: InputFile, fmt: str, max_record_bytes: int, count: CountFn,
                 progress: Progress | None, opened: OpenedFile) -> None:
        self.file = file
        self.fmt = fmt
        self.max_record_bytes = max_record_bytes
        self.count = count
        self.progress = progress
        self.opened = opened
        self._raw_seen = 0

    def tick(self) -> None:
        if self.progress is not None:
            raw = self.opened.raw_position()
            self.progress.update(1, max(raw - self._raw_seen, 0))
            self._raw_seen = max(raw, self._raw_seen)

    def document(self, native_id, position: int, text: str, title=None, url=None, meta=None,
                 raw=None) -> Record:
        """The record as a ``Document``; quarantined instead when a field holds a lone surrogate (a JSON
        ``"\\ud800"`` escape decodes to one: it is no character, and no UTF-8 writer takes it)."""
        bad = _surrogate_field(id=native_id, text=text, title=title, url=url, meta=meta,
                               file=self.file.path, source=self.file.source)
        if bad is not None:
            return self.quarantine(position, bad, raw, record_id=_printable(native_id))
        self.count("ingest.read")
        self.count("ingest.documents")
        self.count(f"ingest.format.{self.fmt}")
        self.tick()
        doc_id = (f"{self.file.source}:{native_id}" if native_id is not None
                  else f"{self.file.source}:{self.file.relpath}:{position:09d}")
        return Document(id=doc_id, source=self.file.source, format=self.fmt, text=text,
                        file=self.file.path, position=position, title=title, url=url, meta=meta)

    def quarantine(self, position: int, error: str, raw=None, record_id=None) -> Quarantined:
        self.count("ingest.read")
        self.count("ingest.quarantined")
        self.tick()
        return Quarantined(stage=STAGE, source=self.file.source, file=self.file.path,
                           position=position, error=error, id=record_id, excerpt=excerpt(raw))

    def lines(self) -> Iterator[tuple[int, bytes | None]]:
        """(line number, line bytes) pairs; an over-long line comes as ``None`` (skipped, not held)."""
        stream = self.opened.stream
        limit = self.max_record_bytes
        lineno = 0
        while True:
            line = stream.readline(limit + 1)
            if not line:
                return
            lineno += 1
            if len(line) > limit:
                while line and not line.endswith(b"\n"):
                    line = stream.readline(_READ_CHUNK)
                yield lineno, None
            else:
                yield lineno, line


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def _surrogate_field(**fields) -> str | None:
    """The quarantine reason when one of the string fields holds a lone surrogate code point, else None."""
    for name, value in fields.items():
        if isinstance(value, str) and not value.isascii():
            found = _SURROGATE.search(value)
            if found:
                return (f"field {name!r} holds a lone surrogate U+{ord(found.group()):04X} at character "
                        f"{found.start()} (an unpaired \\u{ord(found.group()):04x} escape: not a character)")
    return None


def _printable(value) -> str | None:
    """``value`` as a string that any UTF-8 writer takes (lone surrogates as backslash escapes)."""
    if value is None:
        return None
    return str(value).encode("utf-8", "backslashreplace").decode("utf-8")


def _json_excerpt(value) -> str:
    """A short excerpt of a parsed JSON value for a quarantine row (safe to write: no lone surrogates)."""
    try:
        return _printable(json.dumps(value, ensure_ascii=False)[:800])
    except (RecursionError, ValueError, TypeError):
        return _printable(repr(value)[:800]) if not isinstance(value, (dict, list)) else type(value).__name__


def _too_deep(exc: RecursionError) -> str:
    return f"JSON nested too deeply to parse (RecursionError: {exc})"


def _looks_like_gbk(raw: bytes) -> bool:
    """Whether bytes that are not UTF-8 decode as GB18030 (a superset of GBK and GB2312) to mostly Han text."""
    sample = raw[:_SNIFF_BYTES]
    try:
        text = sample.decode("gb18030")
    except UnicodeDecodeError:
        if len(sample) < len(raw):      # the sample may end inside a character
            try:
                text = sample[:-1].decode("gb18030")
            except UnicodeDecodeError:
                return False
        else:
            return False
    letters = [c for c in text if not c.isspace() and c.isprintable() and ord(c) > 0x7F]
    han = sum(1 for c in letters if "\u4e00" <= c <= "\u9fff")
    return han >= 2 and han >= 0.7 * len(letters)


def _not_utf8(exc: UnicodeDecodeError, raw: bytes) -> str:
    """The quarantine reason for a record that is not UTF-8; GBK/GB18030 is named, with the fix.

    Such a record is never decoded by guessing: GBK bytes read in the wrong
    encoding still give Han characters, which pass every quality rule.
    """
    hint = (" (looks like GBK/GB18030; convert the file first: iconv -f GB18030 -t UTF-8)"
            if _looks_like_gbk(raw) else "")
    return f"not UTF-8{hint}: {_describe(exc)}"


def _text_field(record: dict, name: str, required: bool) -> str | None:
    if name not in record or record[name] is None:
        if required:
            raise FormatError(f"missing field {name!r}")
        return None
    value = record[name]
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    raise FormatError(f"field {name!r} is {type(value).__name__}, expected a string")


def _strip_title_line(text: str, title: str | None) -> str:
    if title:
        first, sep, rest = text.lstrip("\n").partition("\n")
        if first.strip() == title.strip():
            return rest.lstrip("\n")
    return text


def json_fields(record: dict, fmt: JsonFormat) -> tuple[object, str, str | None, str | None, str | None]:
    """(native id, text, title, url, meta JSON) of one JSON record; ``FormatError`` if it does not fit."""
    native_id = None
    if fmt.id_field is not None:
        value = record.get(fmt.id_field)
        if value is None:
            if fmt.name != "jsonl":
                raise FormatError(f"missing field {fmt.id_field!r}")
        elif isinstance(value, bool) or not isinstance(value, (str, int)):
            raise FormatError(f"field {fmt.id_field!r} is {type(value).__name__}, expected a string or integer")
        elif str(value).strip() == "":
            raise FormatError(f"field {fmt.id_field!r} is empty")
        else:
            native_id = str(value).strip()
    parts = []
    for i, name in enumerate(fmt.text_fields):
        value = _text_field(record, name, required=(i == 0))
        if value:
            parts.append(value)
    text = "\n\n".join(parts)
    title = _text_field(record, fmt.title_field, False) if fmt.title_field else None
    url = _text_field(record, fmt.url_field, False) if fmt.url_field else None
    if fmt.strip_title_line:
        text = _strip_title_line(text, title)
    meta = {k: record[k] for k in fmt.meta_fields if record.get(k) is not None}
    meta_json = json.dumps(meta, ensure_ascii=False, sort_keys=True) if meta else None
    return native_id, text, title, url, meta_json


def _read_json_lines(r: _Reader) -> Iterator[Record]:
    fmt = JSON_FORMATS[r.fmt]
    for lineno, line in r.lines():
        if line is None:
            yield r.quarantine(lineno, f"record longer than {r.max_record_bytes} bytes")
            continue
        if not line.strip():
            continue
        try:
            record = json.loads(line.decode("utf-8"))
            if not isinstance(record, dict):
                raise FormatError(f"a JSON {type(record).__name__}, expected an object")
            native_id, text, title, url, meta = json_fields(record, fmt)
        except UnicodeDecodeError as exc:
            yield r.quarantine(lineno, _not_utf8(exc, line), line)
            continue
        except ValueError as exc:
            yield r.quarantine(lineno, _describe(exc), line)
            continue
        except RecursionError as exc:          # json's C parser recurses once a level: 100k '[' end it
            yield r.quarantine(lineno, _too_deep(exc), line)
            continue
        yield r.document(native_id, lineno, text, title, url, meta, raw=line)


def _doc_attributes(match: re.Match) -> dict[str, str]:
    return dict(_DOC_ATTR.findall((match.group(1) or b"").decode("utf-8", "replace")))


def _read_wikiextractor(r: _Reader) -> Iterator[Record]:
    start, attrs, body, size, oversized = 0, None, [], 0, False
    for lineno, line in r.lines():
        if line is None:
            if attrs is not None:
                oversized = True
            continue
        if attrs is None:
            match = _DOC_OPEN.match(line)
            if match:
                start, body, size, oversized = lineno, [], 0, False
                attrs = _doc_attributes(match)
            elif line.strip():
                yield r.quarantine(lineno, "text outside a <doc> block", line)
            continue
        if line.strip() == b"</doc>":
            yield from _finish_doc(r, start, attrs, body, oversized)
            attrs = None
            continue
        reopened = _DOC_OPEN.match(line)
        if reopened:
            yield r.quarantine(start, "<doc> block not closed before the next one", b"".join(body[:1]))
            start, body, size, oversized = lineno, [], 0, False
            attrs = _doc_attributes(reopened)
            continue
        size += len(line)
        if size > r.max_record_bytes:
            oversized, body = True, []
        elif not oversized:
            body.append(line)
    if attrs is not None:
        yield r.quarantine(start, "<doc> block not closed at end of file", b"".join(body[:1]))


def _finish_doc(r: _Reader, start: int, attrs: dict, body: list[bytes], oversized: bool) -> Iterator[Record]:
    if oversized:
        yield r.quarantine(start, f"record longer than {r.max_record_bytes} bytes")
        return
    raw = b"".join(body)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        yield r.quarantine(start, _not_utf8(exc, raw), raw)
        return
    title = html.unescape(attrs["title"]) if "title" in attrs else None
    url = html.unescape(attrs["url"]) if "url" in attrs else None
    native = attrs.get("id") or None
    yield r.document(native, start, _strip_title_line(text, title).strip("\n"), title, url)


def _read_text(r: _Reader) -> Iterator[Record]:
    """google-research/bert text: one sentence a line, a blank line between documents."""
    start, lines, size, broken = 0, [], 0, None
    for lineno, line in r.lines():
        if line is not None and not line.strip():
            if start:
                yield _text_doc(r, start, lines, broken)
            start, lines, size, broken = 0, [], 0, None
            continue
        if not start:
            start = lineno
        if line is None:
            broken = broken or f"record longer than {r.max_record_bytes} bytes"
            continue
        size += len(line)
        if size > r.max_record_bytes:
            broken, lines = f"record longer than {r.max_record_bytes} bytes", []
        elif broken is None:
            lines.append(line)
    if start:
        yield _text_doc(r, start, lines, broken)


def _text_doc(r: _Reader, start: int, lines: list[bytes], broken: str | None) -> Record:
    raw = b"".join(lines)
    if broken:
        return r.quarantine(start, broken, raw)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return r.quarantine(start, _not_utf8(exc, raw), raw)
    return r.document(None, start, "\n".join(line.strip() for line in text.splitlines()))


def _read_squad(r: _Reader) -> Iterator[Record]:
    """SQuAD-format JSON (CMRC 2018, DRCD): every paragraph context is a document."""
    raw = r.opened.stream.read(r.max_record_bytes + 1)
    if len(raw) > r.max_record_bytes:
        yield r.quarantine(0, f"SQuAD file larger than {r.max_record_bytes} bytes (loaded whole; split it)")
        return
    try:
        data = json.loads(raw.decode("utf-8"))
        articles = data["data"]
        if not isinstance(articles, list):
            raise FormatError("'data' is not a list")
    except UnicodeDecodeError as exc:
        yield r.quarantine(0, _not_utf8(exc, raw), raw[:800])
        return
    except (ValueError, KeyError, TypeError) as exc:
        yield r.quarantine(0, _describe(exc), raw[:800])
        return
    except RecursionError as exc:
        yield r.quarantine(0, _too_deep(exc), raw[:800])
        return
    ordinal = 0
    for a_index, article in enumerate(articles):
        paragraphs = article.get("paragraphs") if isinstance(article, dict) else None
        if not isinstance(paragraphs, list):
            ordinal += 1
            yield r.quarantine(ordinal, f"article {a_index} has no 'paragraphs' list", _json_excerpt(article))
            continue
        title = article.get("title") if isinstance(article.get("title"), str) else None
        for p_index, paragraph in enumerate(paragraphs):
            ordinal += 1
            context = paragraph.get("context") if isinstance(paragraph, dict) else None
            if not isinstance(context, str):
                yield r.quarantine(ordinal, f"article {a_index} paragraph {p_index} has no 'context' string",
                                   _json_excerpt(paragraph))
                continue
            native = paragraph.get("id")
            if not isinstance(native, (str, int)) or isinstance(native, bool):
                article_id = article.get("id", a_index)
                native = f"{article_id}-{p_index}"
            yield r.document(str(native), ordinal, context, title)


def _read_mediawiki(r: _Reader) -> Iterator[Record]:
    """MediaWiki ``pages-articles`` XML: main-namespace pages, wikitext to plain text.

    Parsed with entity expansion, DTD loading and network access off: an
    entity reference is never expanded (no billion laughs, no external
    entities).
    """
    from lxml import etree

    parser = etree.iterparse(r.opened.stream, events=("end",), tag="{*}page", resolve_entities=False,
                             load_dtd=False, no_network=True, huge_tree=True, remove_comments=True,
                             remove_pis=True)
    last_line = 0
    try:
        for _, page in parser:
            position = page.sourceline or last_line
            last_line = position
            try:
                yield from _mediawiki_page(r, page, position)
            finally:
                page.clear(keep_tail=True)
                parent = page.getparent()
                if parent is not None:
                    while page.getprevious() is not None:
                        del parent[0]
    except etree.XMLSyntaxError as exc:
        line = exc.position[0] if getattr(exc, "position", None) else last_line
        yield r.quarantine(line or last_line, f"XML error, rest of file skipped: {_describe(exc)}")


def _mediawiki_page(r: _Reader, page, position: int) -> Iterator[Record]:
    ns = (page.findtext("{*}ns") or "0").strip()
    title = page.findtext("{*}title")
    if ns != "0":
        r.count("ingest.skipped.namespace")
        return
    if page.find("{*}redirect") is not None:
        r.count("ingest.skipped.redirect")
        return
    page_id = (page.findtext("{*}id") or "").strip() or None
    text_el = page.find("{*}revision/{*}text")
    if text_el is None:
        yield r.quarantine(position, "page has no <revision><text>", title, record_id=page_id)
        return
    wikitext = text_el.text or ""
    if len(wikitext) > r.max_record_bytes:
        yield r.quarantine(position, f"record longer than {r.max_record_bytes} bytes", title, record_id=page_id)
        return
    try:
        text = wikitext_to_text(wikitext)
        title = resolve_conversion_markup(title) if title else title
    except Exception as exc:  # a converter bug must not end the file
        yield r.quarantine(position, f"wikitext conversion failed: {_describe(exc)}", wikitext, page_id)
        return
    if page_id is None:
        yield r.quarantine(position, "page has no <id>", title)
        return
    url = f"https://zh.wikipedia.org/wiki?curid={page_id}"
    yield r.document(page_id, position, text, title, url)


READERS = {
    "mediawiki": _read_mediawiki,
    "wikiextractor": _read_wikiextractor,
    "squad": _read_squad,
    "text": _read_text,
    **{name: _read_json_lines for name in JSON_FORMATS},
}


def read_file(file: InputFile, max_record_bytes: int = 64 << 20, count: CountFn = no_count,
              progress: Progress | None = None) -> Iterator[Record]:
    """All records of one input file; never raises for bad input."""
    count("ingest.files")
    count("ingest.bytes", file.size)
    fmt = file.format
    if _SURROGATE.search(file.path):
        # a file name that is not UTF-8 (os.fsdecode keeps its bytes as lone surrogates): no table can hold it
        count("ingest.read")
        count("ingest.quarantined")
        yield Quarantined(stage=STAGE, source=_printable(file.source), file=_printable(file.path), position=0,
                          error="file name is not UTF-8 (rename the file: its path cannot be written to a table)")
        return
    try:
        if file.error:
            raise OSError(file.error)
        if fmt == "auto":
            fmt = detect(file.path)
        if fmt not in READERS:
            raise FormatError(f"unknown format {fmt!r}")
        opened = OpenedFile(file.path)
    except Exception as exc:
        count("ingest.read")
        count("ingest.quarantined")
        yield Quarantined(stage=STAGE, source=file.source, file=file.path, position=0,
                          error=f"cannot read file: {_describe(exc)}")
        return
    reader = _Reader(file, fmt, max_record_bytes, count, progress, opened)
    last, records = 0, 0
    try:
        for record in READERS[fmt](reader):
            last = record.position
            records += 1
            yield record
        if not records:
            count("ingest.files.no_records")     # an empty file (or one of skipped pages only): seen, not lost
    except (OSError, EOFError, ValueError, MemoryError) as exc:
        # the stream itself failed (truncated or corrupt compression, I/O error)
        yield reader.quarantine(last + 1 if last else 0, f"file ended early, rest skipped: {_describe(exc)}")
    finally:
        opened.close()
