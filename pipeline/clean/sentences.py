"""Sentence splitting for Chinese (and the Western text mixed into it).

A line break always ends a sentence.  Inside a line a sentence ends after
``。！？!?`` (and runs of them), an ellipsis ``……``/``...``, or a Western
full stop followed by a space or the end of the line and preceded by a letter
or a closing bracket (so ``3.14`` and ``www.example.com`` stay whole).  Closing
quotes and brackets right after the end mark stay with their sentence:
``他说：“好。”然后走了。`` is ``他说：“好。”`` + ``然后走了。``.
"""

from __future__ import annotations

import re

_CLOSERS = "”’」』）)】》〉\"'］]"
_END = re.compile(
    r"(?:[。！？!?]+|…+|\.{3,}|(?<=[A-Za-z\)）])\.(?=[\s" + re.escape(_CLOSERS) + r"]|$))"
    r"[" + re.escape(_CLOSERS) + r"]*"
)


_SENTENCE = re.compile(r"\s*(.+?(?:" + _END.pattern + r"|$))", re.S)


def split_line(line: str) -> list[str]:
    """Sentences of one line, whitespace-stripped, empty ones dropped."""
    return [s.strip() for s in _SENTENCE.findall(line) if not s.isspace()]


def split_sentences(lines: list[str]) -> list[str]:
    """Sentences of a document given as lines."""
    out: list[str] = []
    for line in lines:
        out.extend(split_line(line))
    return out
