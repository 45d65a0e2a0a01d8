"""What a vocab holds and how it tokenizes: entries by kind, held-out [UNK] rate, overlap with a reference."""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from typing import Iterable

from pipeline.vocab.wordpiece import bert_tokenizer, is_cjk

_SPECIAL = re.compile(r"^(\[(PAD|UNK|CLS|SEP|MASK|unused\d+)\]|<S>|<T>)$")


def _is_punctuation(char: str) -> bool:
    cp = ord(char)
    return 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126 or \
        unicodedata.category(char).startswith("P")


def _is_latin(char: str) -> bool:
    return char.isascii() and char.isalpha() or "LATIN" in unicodedata.name(char, "")


def entry_kind(entry: str) -> str:
    """special, cjk_char, digits, punctuation, latin or other; ``##`` pieces get a ``_continuation`` suffix."""
    if _SPECIAL.match(entry):
        return "special"
    continuation = entry.startswith("##") and len(entry) > 2
    body = entry[2:] if continuation else entry
    if len(body) == 1 and is_cjk(body):
        kind = "cjk_char"
    elif body.isdigit():
        kind = "digits"
    elif all(_is_punctuation(c) for c in body):
        kind = "punctuation"
    elif all(_is_latin(c) or c.isdigit() for c in body):
        kind = "latin"
    else:
        kind = "other"
    return kind + "_continuation" if continuation else kind


def entries_by_kind(entries: Iterable[str]) -> dict[str, int]:
    kinds = Counter(entry_kind(e) for e in entries)
    kinds["continuation_total"] = sum(n for k, n in kinds.items() if k.endswith("_continuation"))
    return dict(sorted(kinds.items()))


def tokenization_stats(entries: list[str], sentences: list[str], lowercase: bool = True) -> dict:
    """[UNK] rate (of tokens) and tokens per character (non-whitespace characters) of some text."""
    tokenizer = bert_tokenizer(entries, lowercase)
    unk = tokenizer.token_to_id("[UNK]")
    tokens = unks = 0
    unk_pieces: Counter = Counter()
    for start in range(0, len(sentences), 1024):
        batch = sentences[start:start + 1024]
        for sentence, encoding in zip(batch, tokenizer.encode_batch(batch, add_special_tokens=False)):
            tokens += len(encoding.ids)
            for token_id, (a, b) in zip(encoding.ids, encoding.offsets):
                if token_id == unk:
                    unks += 1
                    unk_pieces[sentence[a:b]] += 1
    chars = sum(len(s) - sum(c.isspace() for c in s) for s in sentences)
    return {"sentences": len(sentences), "characters": chars, "tokens": tokens, "unk_tokens": unks,
            "unk_rate": round(unks / tokens, 6) if tokens else None,
            "tokens_per_char": round(tokens / chars, 4) if chars else None,
            "top_unk": [[piece, n] for piece, n in unk_pieces.most_common(10)]}


def overlap(entries: list[str], reference: list[str]) -> dict:
    """Entries in both vocabs, overall and for CJK characters."""
    ours, theirs = set(entries), set(reference)
    cjk_ours = {e for e in ours if len(e) == 1 and is_cjk(e)}
    cjk_theirs = {e for e in theirs if len(e) == 1 and is_cjk(e)}
    both = ours & theirs
    return {"reference_size": len(reference), "common": len(both),
            "share_of_ours": round(len(both) / len(ours), 4) if ours else None,
            "share_of_reference": round(len(both) / len(theirs), 4) if theirs else None,
            "cjk_chars_common": len(cjk_ours & cjk_theirs), "cjk_chars_only_ours": len(cjk_ours - cjk_theirs),
            "cjk_chars_only_reference": len(cjk_theirs - cjk_ours)}
