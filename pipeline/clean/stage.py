"""The clean stage for one document: normalise, filter, split into sentences.

``Cleaner.process`` returns the cleaned ``Document`` (with ``sentences`` and
``chars_converted`` set), a ``Rejected`` record naming the first rule it
failed, or a ``Quarantined`` record if processing raised.  Counters:
``clean.read``, ``clean.kept``, ``clean.rejected``, ``clean.rejected.<rule>``,
``clean.quarantined``, ``clean.docs_converted``, ``clean.chars_converted``,
``clean.chars_removed.invisible``, ``clean.markup_removed``,
``clean.chars_folded.fullwidth``, ``clean.lines_removed.boilerplate``,
``clean.sentences``, ``clean.chars_kept``.
"""

from __future__ import annotations

import dataclasses

from pipeline.clean.normalize import (ScriptConverter, fold_fullwidth, normalize_whitespace,
                                      remove_invisible, remove_markup)
from pipeline.clean.rules import TextView, first_failure, is_boilerplate, too_long_raw
from pipeline.clean.sentences import split_sentences
from pipeline.config import CleanOptions
from pipeline.counters import CountFn, no_count
from pipeline.records import Document, Quarantined, Rejected, excerpt

STAGE = "clean"


class Cleaner:
    def __init__(self, options: CleanOptions | None = None) -> None:
        self.options = options or CleanOptions()
        self.convert = ScriptConverter(self.options.convert)

    def normalize(self, text: str, count: CountFn = no_count) -> tuple[list[str], int, int]:
        """(lines kept, boilerplate lines removed, characters converted) for a raw text."""
        text, n = remove_invisible(text)
        if n:
            count("clean.chars_removed.invisible", n)
        text, n = remove_markup(text)
        if n:
            count("clean.markup_removed", n)
        if self.options.fullwidth:
            text, n = fold_fullwidth(text)
            if n:
                count("clean.chars_folded.fullwidth", n)
        text, converted = self.convert(text)
        lines = normalize_whitespace(text)
        kept = [line for line in lines if not is_boilerplate(line)]
        return kept, len(lines) - len(kept), converted

    def process(self, doc: Document, count: CountFn = no_count) -> Document | Rejected | Quarantined:
        count("clean.read")
        view = None
        try:
            failure = too_long_raw(doc.text, self.options)   # a huge document is not normalised (memory)
            if failure is None:
                lines, boilerplate, converted = self.normalize(doc.text, count)
                view = TextView(lines, boilerplate)
                failure = first_failure(view, self.options)
            if failure is None:
                sentences = split_sentences(lines)
                title = self.convert(doc.title)[0] if doc.title else doc.title
        except Exception as exc:  # one bad document must not end the job
            count("clean.quarantined")
            return Quarantined(stage=STAGE, source=doc.source, file=doc.file, position=doc.position,
                               id=doc.id, error=f"{type(exc).__name__}: {exc}", excerpt=excerpt(doc.text))
        if failure is not None:
            rule, detail = failure
            count("clean.rejected")
            count(f"clean.rejected.{rule}")
            return Rejected(id=doc.id, source=doc.source, stage=STAGE, rule=rule, detail=detail,
                            title=doc.title, text=view.text if view is not None else doc.text, file=doc.file,
                            position=doc.position)
        count("clean.kept")
        if boilerplate:
            count("clean.lines_removed.boilerplate", boilerplate)
        if converted:
            count("clean.docs_converted")
            count("clean.chars_converted", converted)
        count("clean.sentences", len(sentences))
        count("clean.chars_kept", view.nonspace)
        return dataclasses.replace(doc, text=view.text, title=title, sentences=sentences,
                                   chars_converted=converted)
