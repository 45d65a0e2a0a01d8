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


def split_line(line: str) -> list[str]:
    """Sentences of one line, whitespace-stripped, empty ones dropped."""
    sentences = []
    start = 0
    for match in _END.finditer(line):
        end = match.end()
        piece = line[start:end].strip()
        if piece:
            sentences.append(piece)
        start = end
    tail = line[start:].strip()
    if tail:
        sentences.append(tail)
    return sentences


def split_sentences(lines: list[str]) -> list[str]:
    """Sentences of a document given as lines."""
    out: list[str] = []
    for line in lines:
        out.extend(split_line(line))
    return out
