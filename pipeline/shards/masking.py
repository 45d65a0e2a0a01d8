"""The ids a masked token may be replaced with (the 10% "random token" of 80/10/10).

Masking itself is done for a whole batch of instances in ``batch``.  Labels are
the original ids, so a ``##`` id is never the label of a Chinese character.
"""

from __future__ import annotations

from pipeline.vocab.wordpiece import is_cjk


def replacement_ids(entries: list[str], lowercase: bool = True) -> list[int]:
    """Ids a random replacement may take: entries the tokenizer can produce from real text.

    Left out: ``[...]`` specials and unused slots, ``<S>``/``<T>``-style entries holding punctuation
    (the tokenizer splits punctuation off, so they never come out whole), ``##`` continuations of
    CJK characters or punctuation (those characters are always their own pre-token), and, when the
    tokenizer lowercases, entries with capitals.
    """
    import unicodedata

    def punctuation(char: str) -> bool:
        code = ord(char)
        if 33 <= code <= 47 or 58 <= code <= 64 or 91 <= code <= 96 or 123 <= code <= 126:
            return True
        return unicodedata.category(char).startswith("P")

    def splits(text: str) -> bool:
        return any(is_cjk(c) or punctuation(c) or c.isspace() for c in text)

    ids = []
    for index, entry in enumerate(entries):
        if entry.startswith("[") and entry.endswith("]"):
            continue
        body = entry[2:] if entry.startswith("##") else entry
        if not body or (lowercase and body != body.lower()):   # lowercased input never holds it
            continue
        if len(body) > 1 and splits(body):      # several pre-tokens: never produced as one token
            continue
        if entry.startswith("##") and splits(body):
            continue
        ids.append(index)
    return ids
